"""Training checkpoints: atomic writes, rotation, a full disk, RNG round trip."""

import errno
import random

import numpy as np
import pytest
import torch

from neurofm.train import checkpoint as ckpt
from neurofm.train.checkpoint import CheckpointManager, capture_rng_state, restore_rng_state


def test_keeps_the_newest_checkpoints(tmp_path):
    manager = CheckpointManager(tmp_path / "ck", keep=2)
    for step in (1, 2, 3):
        manager.save({"step": step, "w": torch.full((3,), float(step))}, step)
    assert [s for s, _ in manager.checkpoints()] == [2, 3]
    assert manager.load(manager.latest())["step"] == 3
    assert not list((tmp_path / "ck").glob(".*tmp*"))


def test_out_of_disk_leaves_the_previous_checkpoint_intact(tmp_path, monkeypatch):
    manager = CheckpointManager(tmp_path / "ck", keep=1)
    manager.save({"step": 1, "w": torch.ones(4)}, 1)
    before = (tmp_path / "ck" / "step-00000001.pt").read_bytes()

    def full_disk(obj, fh, *args, **kwargs):
        fh.write(b"partial checkpoint bytes")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(ckpt.torch, "save", full_disk)
    with pytest.raises(OSError) as err:
        manager.save({"step": 2, "w": torch.zeros(4)}, 2)
    assert err.value.errno == errno.ENOSPC
    assert "step-00000001.pt is intact" in str(err.value)
    monkeypatch.undo()
    assert [s for s, _ in manager.checkpoints()] == [1]
    assert (tmp_path / "ck" / "step-00000001.pt").read_bytes() == before
    assert sorted(p.name for p in (tmp_path / "ck").iterdir()) == ["step-00000001.pt"]


def test_temporary_files_are_not_checkpoints(tmp_path):
    manager = CheckpointManager(tmp_path, keep=3)
    (tmp_path / ".step-00000009.pt.tmp-123").write_bytes(b"cut short")
    assert manager.latest() is None


def test_rng_state_round_trip():
    state = capture_rng_state()
    first = (random.random(), np.random.rand(), torch.rand(3))
    restore_rng_state(state)
    again = (random.random(), np.random.rand(), torch.rand(3))
    assert first[0] == again[0] and first[1] == again[1] and torch.equal(first[2], again[2])


def test_checkpoints_carry_this_releases_format_version(tmp_path):
    manager = CheckpointManager(tmp_path, keep=1)
    path = manager.save({"step": 1, "w": torch.ones(2)}, 1)
    assert torch.load(path, weights_only=False)["format_version"] == 2
    assert ckpt.CHECKPOINT_FORMAT_VERSION == 2
    assert manager.load(path)["format_version"] == 2


def test_a_checkpoint_of_neurofm_0_1_0_is_format_1():
    from pathlib import Path

    path = Path(__file__).parent / "fixtures/v0_1_0/run/checkpoints/step-00000002.pt"
    state = CheckpointManager.load(path)
    assert state["format_version"] == 1 and state["step"] == 2


def test_a_newer_checkpoint_format_is_refused_naming_both_versions(tmp_path):
    path = tmp_path / "step-00000003.pt"
    torch.save({"step": 3, "format_version": 3}, path)
    with pytest.raises(ValueError, match=r"checkpoint format version 3, but neurofm .* up to "
                                         r"format version 2; upgrade neurofm"):
        CheckpointManager.load(path)
