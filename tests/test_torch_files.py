"""PyTorch files are read without running code from them: checkpoints, published weights."""

import argparse
import ast
import os
from pathlib import Path

import pytest
import torch
from hub_helpers import cbramod_published_state

from neurofm.cli import main
from neurofm.torch_files import (
    NUMPY_ARRAY_GLOBALS,
    DamagedFileError,
    InertObject,
    RefusedGlobalError,
    load_torch_file,
)
from neurofm.train import CheckpointManager

PACKAGE = Path(__file__).resolve().parents[1] / "neurofm"
V0_1_0_CHECKPOINT = (Path(__file__).parent / "fixtures" / "v0_1_0" / "run" / "checkpoints"
                     / "step-00000002.pt")


class RunsCode:
    """Pickles as a call of ``os.system`` (what a planted checkpoint does)."""

    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


def test_every_torch_load_in_the_package_passes_weights_only_true():
    calls = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "load" and getattr(node.func.value, "id", "") == "torch"):
                safe = any(k.arg == "weights_only" and getattr(k.value, "value", None) is True
                           for k in node.keywords)
                calls.append((f"{path.relative_to(PACKAGE)}:{node.lineno}", safe))
    assert calls, "the scan found no torch.load at all"
    assert [where for where, safe in calls if not safe] == []


def test_a_planted_pickle_is_refused_naming_the_global_and_nothing_runs(tmp_path):
    marker = tmp_path / "ran"
    torch.save({"objective": {}, "x": RunsCode(f"touch {marker}")}, tmp_path / "step.pt")
    with pytest.raises(RefusedGlobalError, match=r"names posix.system\. neurofm reads only "
                                                 r"tensors.*can run code.*delete it"):
        CheckpointManager.load(tmp_path / "step.pt")
    assert not marker.exists()


def test_a_0_1_0_checkpoint_reads_with_exactly_numpys_array_globals():
    with pytest.raises(RefusedGlobalError, match="numpy._core.multiarray._reconstruct"):
        load_torch_file(V0_1_0_CHECKPOINT)
    state = load_torch_file(V0_1_0_CHECKPOINT, allow=NUMPY_ARRAY_GLOBALS)
    assert state["rng"][0]["numpy"][1].shape == (624,)
    assert CheckpointManager.load(V0_1_0_CHECKPOINT)["format_version"] == 1


def test_a_truncated_file_is_damaged_not_refused(tmp_path):
    torch.save({"w": torch.ones(1000)}, tmp_path / "w.pt")
    (tmp_path / "cut.pt").write_bytes((tmp_path / "w.pt").read_bytes()[:700])
    with pytest.raises(DamagedFileError, match="cut.pt could not be read as a PyTorch file"):
        load_torch_file(tmp_path / "cut.pt")


def test_inert_globals_are_rebuilt_as_stand_ins_that_run_nothing(tmp_path):
    torch.save({"model": {"w": torch.ones(2)}, "args": argparse.Namespace(lr=0.1)},
               tmp_path / "published.pth")
    with pytest.raises(RefusedGlobalError, match="argparse.Namespace"):
        load_torch_file(tmp_path / "published.pth")
    state = load_torch_file(tmp_path / "published.pth", inert=["argparse.Namespace"])
    assert isinstance(state["args"], InertObject) and state["args"].state == {"lr": 0.1}
    assert torch.equal(state["model"]["w"], torch.ones(2))


def test_convert_names_the_refused_global_and_reads_it_inert_when_allowed(tmp_path, capsys):
    from neurofm.models import create_model

    state = cbramod_published_state(create_model("cbramod_base", depth=1, ffn_dim=64))
    torch.save({"model": state, "args": argparse.Namespace(epochs=40)}, tmp_path / "w.pth")
    assert main(["convert", "cbramod", str(tmp_path / "w.pth"), str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "names argparse.Namespace" in err and "--allow-global" in err
    assert "corrupted or truncated" not in err and "weights_only" not in err
    assert not (tmp_path / "out").exists()
    assert main(["convert", "cbramod", str(tmp_path / "w.pth"), str(tmp_path / "out"),
                 "--allow-global", "argparse.Namespace"]) == 0
    assert (tmp_path / "out" / "model.safetensors").is_file()
    marker = tmp_path / "ran"
    torch.save({"model": state, "x": RunsCode(f"touch {marker}")}, tmp_path / "evil.pth")
    assert main(["convert", "cbramod", str(tmp_path / "evil.pth"), str(tmp_path / "o2"),
                 "--allow-global", "posix.system"]) == 2
    assert "names posix.system" in capsys.readouterr().err
    assert not marker.exists()
