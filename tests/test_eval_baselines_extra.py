"""The braindecode baselines are optional: without the extra their row says what to install."""

import json

from eval_helpers import alpha_trials

from neurofm import compat
from neurofm.eval import baselines
from neurofm.eval.run import run_evaluation
from neurofm.eval.settings import EvalSettings

TINY = {"dim": 32, "depth": 1, "n_heads": 4, "ffn_dim": 64}


def test_eegnet_row_without_braindecode_reads_needs_the_extra(tmp_path, monkeypatch):
    monkeypatch.setattr(compat, "braindecode_import_error",
                        lambda: "OSError: libtorchaudio.so: undefined symbol")
    settings = EvalSettings(model="criss_cross_small", data="synthetic", out=str(tmp_path / "o"),
                            protocol="cross-subject", seeds=1, n_folds=2, model_overrides=TINY,
                            baselines=["bandpower", "eegnet"], importance=False)
    run_evaluation(settings, trials=alpha_trials(n_subjects=2, per_class=6))
    saved = json.loads((tmp_path / "o" / "results.json").read_text())
    rows = {m["method"]: m for m in saved["methods"]}
    skipped = rows["EEGNet (supervised): needs neurofm[braindecode]"]
    assert skipped["n_runs"] == 0 and skipped["summary"] == {}
    assert skipped["skipped_folds"] == ["not run: pip install 'neurofm[braindecode]'"]
    assert rows["log band power + LR (classic)"]["n_runs"] == 2  # the other rows ran
    table = (tmp_path / "o" / "results.md").read_text()
    assert "| EEGNet (supervised): needs neurofm[braindecode] | 0 | n/a" in table


def test_baselines_run_when_braindecode_is_there(monkeypatch):
    monkeypatch.setattr(compat, "braindecode_import_error", lambda: None)
    assert baselines.skipped_row("eegnet") is None and baselines.skipped_row("bandpower") is None
