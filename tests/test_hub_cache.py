"""Loading from a Hub-style cache offline: revisions (branch, tag, commit), missing entries."""

import huggingface_hub.constants
import pytest
import torch
from hub_helpers import add_to_hub_cache, model_inputs, tiny_model

from neurofm.hub import from_pretrained

REPO = "neurofm-test/tiny-criss-cross"
COMMIT_A = "a" * 40
COMMIT_B = "b" * 40


@pytest.fixture
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)


@pytest.fixture
def hub_cache(tmp_path):
    """A cache holding two revisions of REPO: main -> A, tag v2 -> B (different weights)."""
    models = {}
    for seed, commit, refs in ((0, COMMIT_A, ("main",)), (1, COMMIT_B, ("v2",))):
        model = tiny_model("criss_cross_small", seed=seed)
        model.save_pretrained(tmp_path / f"src{seed}")
        add_to_hub_cache(tmp_path / "cache", REPO, tmp_path / f"src{seed}", commit, refs)
        models[commit] = model
    return tmp_path / "cache", models


def _same(a, b):
    x, sensors = model_inputs(a.patch_size)
    with torch.no_grad():
        return torch.equal(a(x, sensors), b(x, sensors))


def test_offline_load_from_cache_uses_main(offline, hub_cache):
    cache, models = hub_cache
    loaded = from_pretrained(REPO, cache_dir=cache)
    assert _same(loaded, models[COMMIT_A])
    assert not _same(loaded, models[COMMIT_B])


@pytest.mark.parametrize("revision", ["v2", COMMIT_B])
def test_revision_selects_tag_or_commit(offline, hub_cache, revision):
    cache, models = hub_cache
    assert _same(from_pretrained(REPO, revision=revision, cache_dir=cache), models[COMMIT_B])


def test_local_files_only_without_offline_env(hub_cache):
    cache, models = hub_cache
    loaded = from_pretrained(REPO, cache_dir=cache, local_files_only=True)
    assert _same(loaded, models[COMMIT_A])


def test_uncached_revision_offline_says_what_to_do(offline, hub_cache):
    cache, _ = hub_cache
    with pytest.raises(FileNotFoundError, match="not in .*cannot be reached"):
        from_pretrained(REPO, revision="v3", cache_dir=cache)
    with pytest.raises(FileNotFoundError, match="other/repo"):
        from_pretrained("other/repo", cache_dir=cache)


def test_default_cache_location_from_environment(offline, hub_cache, monkeypatch):
    cache, models = hub_cache
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    assert _same(from_pretrained(REPO), models[COMMIT_A])


def test_local_directory_has_no_revision(tmp_path):
    tiny_model("criss_cross_small").save_pretrained(tmp_path / "m")
    with pytest.raises(ValueError, match="no revisions"):
        from_pretrained(tmp_path / "m", revision="main")


def test_missing_local_path_is_reported(tmp_path):
    with pytest.raises(FileNotFoundError, match="No model directory"):
        from_pretrained(str(tmp_path / "nothing" / "here"))
