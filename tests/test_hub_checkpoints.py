"""Reading published checkpoints (``neurofm.hub.checkpoints``): files, folders and Hub ids.

Hub ids are read from a local Hub-style cache offline (no network): ``models--org--name`` with
``snapshots/<commit>/`` and ``refs/<branch or tag>``, as huggingface_hub lays it out.
"""

import huggingface_hub.constants
import pytest
import torch
from hub_helpers import add_to_hub_cache
from safetensors.torch import save_file

from neurofm.hub.checkpoints import checkpoint_file, read_state_dict
from neurofm.torch_files import DamagedFileError

REPO = "someone/published-eeg-model"


def _state(seed=0) -> dict:
    g = torch.Generator().manual_seed(seed)
    return {"encoder.weight": torch.randn(4, 3, generator=g),
            "encoder.bias": torch.randn(4, generator=g)}


def _same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k, value in a.items():
        assert torch.equal(value, b[k]), k


@pytest.mark.parametrize("wrap", [
    lambda s: s,                                  # CBraMod: a raw state dict
    lambda s: {"model": s, "epoch": 3},           # LaBraM: {"model": state_dict}
    lambda s: {"state_dict": {"module": s}},      # nested twice
], ids=["raw", "model-key", "nested"])
def test_a_torch_file_gives_its_state_dict_however_it_is_nested(tmp_path, wrap):
    torch.save(wrap(_state()), tmp_path / "w.pth")
    state, path = read_state_dict(tmp_path / "w.pth")
    _same(state, _state())
    assert path == tmp_path / "w.pth"


def test_a_safetensors_file_and_a_file_without_a_state_dict(tmp_path):
    save_file(_state(1), str(tmp_path / "w.safetensors"))
    _same(read_state_dict(tmp_path / "w.safetensors")[0], _state(1))
    torch.save({"epoch": 3, "lr": 0.1}, tmp_path / "args.pth")
    with pytest.raises(ValueError, match=r"args.pth does not hold a state dict"):
        read_state_dict(tmp_path / "args.pth")


def test_a_damaged_file_says_to_download_it_again(tmp_path):
    torch.save(_state(), tmp_path / "w.pth")
    data = (tmp_path / "w.pth").read_bytes()
    (tmp_path / "w.pth").write_bytes(data[: len(data) // 2])
    with pytest.raises(DamagedFileError, match="Download it again"):
        read_state_dict(tmp_path / "w.pth")


def test_a_folder_is_searched_in_the_documented_order(tmp_path):
    folder = tmp_path / "ckpt"
    folder.mkdir()
    torch.save(_state(0), folder / "pretrained_weights.pth")
    assert checkpoint_file(folder) == folder / "pretrained_weights.pth"
    torch.save(_state(1), folder / "pytorch_model.bin")
    save_file(_state(2), str(folder / "model.safetensors"))
    state, path = read_state_dict(folder)  # model.safetensors first
    assert path == folder / "model.safetensors"
    _same(state, _state(2))
    other = tmp_path / "other"
    other.mkdir()
    torch.save(_state(3), other / "epoch_40.pt")  # a single weights file of any name
    _same(read_state_dict(other)[0], _state(3))
    torch.save(_state(4), other / "epoch_50.pt")
    with pytest.raises(ValueError, match=r"several weight files .*epoch_40.pt.*pass the one"):
        read_state_dict(other)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"No weights in .*empty.*model.safetensors"):
        read_state_dict(tmp_path / "empty")


def test_a_missing_path_is_not_taken_for_a_hub_id(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist; check the path"):
        read_state_dict(tmp_path / "nope.pth")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_state_dict("./weights/nope")


@pytest.fixture
def hub_cache(tmp_path, monkeypatch):
    """REPO in a local cache: main -> commit a (safetensors), tag v1 -> commit b (a .pth)."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    cache = tmp_path / "cache"
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    (tmp_path / "a").mkdir()
    save_file(_state(0), str(tmp_path / "a" / "model.safetensors"))
    add_to_hub_cache(cache, REPO, tmp_path / "a", "a" * 40, ("main",))
    (tmp_path / "b").mkdir()
    torch.save({"model": _state(1)}, tmp_path / "b" / "pretrained_weights.pth")
    add_to_hub_cache(cache, REPO, tmp_path / "b", "b" * 40, ("v1",))
    return cache


def test_a_hub_id_reads_the_cached_snapshot_of_main_or_a_revision(hub_cache):
    state, path = read_state_dict(REPO)
    _same(state, _state(0))
    assert path.name == "model.safetensors" and "a" * 40 in str(path)
    state, path = read_state_dict(REPO, revision="v1")
    _same(state, _state(1))
    assert path.name == "pretrained_weights.pth" and "b" * 40 in str(path)


def test_a_hub_id_that_cannot_be_fetched_says_to_download_the_weights(hub_cache):
    with pytest.raises(FileNotFoundError, match=r"someone/other is not a local path and could "
                                                r"not be fetched from the Hub .*download the"):
        read_state_dict("someone/other")
