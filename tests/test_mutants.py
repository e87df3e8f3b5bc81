"""The curated mutation check (``tests/mutants.py``) applies to today's code and judges right.

Running the whole list takes many minutes (``python tests/mutants.py``); here only the list is
checked against the code, and the runner is run on a tiny project of its own.
"""

import mutants
import pytest
from mutants import Mutant, MutantListError, Patch, check_patches, run_mutants, verdict


def test_every_curated_mutant_applies_to_todays_code_and_names_real_tests():
    check_patches()
    names = [m.name for m in mutants.MUTANTS]
    assert len(names) == len(set(names)) >= 30
    assert {"finetune_fits_on_test_fold", "finetune_early_stops_on_test_fold",
            "validation_split_swapped_by_subject", "subject_leak_check_removed_everywhere",
            "tokenizer_amplitude_loss_adds", "eval_inputs_swap_mag_and_grad_scales",
            "demo_pretraining_lr_1000x_too_small", "spectral_target_phase_flipped"} <= set(names)


def test_a_stale_mutant_is_named_with_what_moved(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "a.py").write_text("X = 1\nX = 1\n")
    stale = (Mutant("twice", "?", (Patch("pkg/a.py", "X = 1", "X = 2"),), ("tests/t.py",)),
             Mutant("gone", "?", (Patch("pkg/b.py", "Y", "Z"),), ("tests/t.py::test_y",)))
    with pytest.raises(MutantListError) as err:
        check_patches(tmp_path, stale)
    text = str(err.value)
    assert "twice: the snippet 'X = 1' is found 2 times in pkg/a.py" in text
    assert "twice: no test file tests/t.py" in text and "gone: no file pkg/b.py" in text


def test_verdicts_follow_pytest_exit_status():
    assert [verdict(s) for s in (0, 1, None, 2, 5)] == ["survived", "killed", "killed", "error",
                                                         "error"]


def test_mutants_run_on_a_copy_and_the_tree_is_left_alone(tmp_path, monkeypatch):
    (tmp_path / "calc.py").write_text("def add(a, b):\n    return a + b  # sum\n")
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_calc.py").write_text(
        "from calc import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n")
    before = {p: p.read_text() for p in tmp_path.rglob("*.py")}
    monkeypatch.setattr(mutants, "ROOT", tmp_path)
    lines = []
    results = run_mutants(
        [Mutant("subtracts", "-", (Patch("calc.py", "a + b", "a - b"),), ("tests/test_calc.py",)),
         Mutant("comment", "-", (Patch("calc.py", "# sum", "# total"),), ("tests/test_calc.py",))],
        jobs=1, show=lines.append)
    assert results == {"subtracts": "killed", "comment": "survived"}
    assert lines == ["subtracts: killed", "comment: survived"]
    assert {p: p.read_text() for p in tmp_path.rglob("*.py")} == before
