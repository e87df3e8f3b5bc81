"""Model folders: the card, format versions, file modes, path vs Hub id, class checks, old names."""

import json
import os
import stat
import warnings
from typing import ClassVar

import huggingface_hub
import huggingface_hub.constants
import huggingface_hub.errors
import pytest
import torch
from hub_helpers import assert_same_weights, tiny_model, tiny_tokenizer
from huggingface_hub import EvalResult, ModelCard

import neurofm
from neurofm.model_folder import FORMAT_VERSION, update_model_card, write_atomically
from neurofm.models import BidirectionalMamba, BrainEncoder, CrissCrossTransformer
from neurofm.tokenizer import NeuralTokenizer
from neurofm.train.export import export_pretrained

FILES = ("config.json", "model.safetensors", "README.md")


@pytest.fixture
def folder(tmp_path):
    model = tiny_model("criss_cross_small")
    return model, model.save_pretrained(tmp_path / "m")


def _set_config(directory, **changes):
    path = directory / "config.json"
    config = {**json.loads(path.read_text()), **changes}
    path.write_text(json.dumps({k: v for k, v in config.items() if v is not None}))


# -- the card -------------------------------------------------------------------------------

def test_card_metadata_parses_with_huggingface_hub(tmp_path):
    model = tiny_model("mamba_small")
    model.save_pretrained(tmp_path / "m", repo_id="org/tiny-mamba", model_card_kwargs={
        "license": "mit", "datasets": ["org/tueg"], "tags": ["sleep"],
        "metrics": {"TUAB": {"balanced_accuracy": 0.8123}},
        "eval_results": [EvalResult(task_type="feature-extraction", dataset_type="org/bciiv2a",
                                    dataset_name="BCI IV 2a", metric_type="accuracy",
                                    metric_value=0.71)]})
    card = ModelCard.load(tmp_path / "m" / "README.md")
    data = card.data
    assert data.library_name == "neurofm" and data.license == "mit"
    assert data.pipeline_tag == "feature-extraction" and data.datasets == ["org/tueg"]
    assert {"neurofm", "eeg", "mamba_small", "sleep"} <= set(data.tags)
    assert data.model_name == "org/tiny-mamba"
    got = {(r.dataset_name, r.metric_type, r.metric_value) for r in data.eval_results}
    assert got == {("BCI IV 2a", "accuracy", 0.71), ("TUAB", "balanced_accuracy", 0.8123)}
    assert "| TUAB | balanced_accuracy | 0.8123 |" in card.text
    n_params = sum(v.numel() for v in model.state_dict().values())
    assert f"({n_params:,} parameters)" in card.text
    assert "import neurofm\n\nmodel = neurofm.from_pretrained('org/tiny-mamba')" in card.text


def test_card_without_evaluation_has_no_model_index(folder):
    _, directory = folder
    card = ModelCard.load(directory / "README.md")
    assert card.data.eval_results is None and "model-index" not in card.content
    assert "No evaluation reported." in card.text
    assert card.data.pipeline_tag == "feature-extraction"


def test_tokenizer_card(tmp_path):
    tiny_tokenizer().save_pretrained(tmp_path / "tok", model_card_kwargs={"notes": "Tiny."})
    card = ModelCard.load(tmp_path / "tok" / "README.md")
    assert card.data.library_name == "neurofm" and "neurofm tokenizer" in card.data.tags
    assert "model.encode(x, sensors)" in card.text and "| patch_size | 20 |" in card.text


def test_unknown_card_fields_are_refused_before_writing(tmp_path):
    with pytest.raises(ValueError, match="model_card_kwargs: unknown key.*intended_usage"):
        tiny_model("criss_cross_small").save_pretrained(
            tmp_path / "m", model_card_kwargs={"intended_usage": "x"})
    assert not (tmp_path / "m").exists()
    with pytest.raises(ValueError, match="metrics per dataset"):
        tiny_model("criss_cross_small").save_pretrained(
            tmp_path / "m2", model_card_kwargs={"metrics": {"auroc": 0.9}})


def test_pretraining_export_card_has_the_run_and_the_objective_description(tmp_path):
    model = tiny_model("criss_cross_small")
    summary = {"data": "sim:tiny", "n_windows": 1234, "steps": 7, "global_batch": 4,
               "world_size": 1, "objective": {},
               "objective_description": "Masked patch reconstruction, MSE on 50 % of tokens.",
               "optim": {"lr": 1e-3, "weight_decay": 0.05, "warmup_steps": 2, "min_lr": 1e-5,
                         "grad_clip": 1.0},
               "final_loss": 0.4321, "config": {"run": {"steps": 7}}}
    directory = export_pretrained(model, tmp_path / "model", preprocessing={"l_freq": 0.3},
                                  summary=summary)
    card = ModelCard.load(directory / "README.md")
    assert card.data.library_name == "neurofm" and "foundation-model" in card.data.tags
    for fact in ("## Objective\n\nMasked patch reconstruction, MSE on 50 % of tokens.",
                 "- Corpus: sim:tiny", "- Windows in the corpus: 1,234", "Steps: 7 optimizer",
                 "(28 windows seen)", "Final training loss: 0.4321", '"steps": 7',
                 "model = neurofm.from_pretrained("):
        assert fact in card.text
    assert json.loads((directory / "config.json").read_text())["preprocessing"]["l_freq"] == 0.3
    assert_same_weights(model, neurofm.from_pretrained(directory))


def test_updating_a_card_keeps_its_texts_and_replaces_what_is_given(tmp_path):
    model = tiny_model("criss_cross_small")
    model.save_pretrained(tmp_path / "m", model_card_kwargs={
        "training": "- Steps: 5", "objective": "Masked reconstruction.", "license": "mit",
        "metrics": {"A": {"acc": 0.5}}})
    readme = tmp_path / "m" / "README.md"
    readme.write_text(readme.read_text() + "\n## Limitations\n\nSimulated data only.\n")
    update_model_card(tmp_path / "m", repo_id="org/m", metrics={"B": {"acc": 0.75}})
    card = ModelCard.load(readme)
    assert "## Training\n\n- Steps: 5" in card.text and "Masked reconstruction." in card.text
    assert "## Limitations\n\nSimulated data only." in card.text
    assert card.data.license == "mit" and card.data.model_name == "org/m"
    assert [r.dataset_name for r in card.data.eval_results] == ["B"]
    assert "neurofm.from_pretrained('org/m')" in card.text
    assert card.text.count("Written by neurofm") == 1
    readme.write_text("---\nlibrary_name: timm\n---\n# Someone else's card\n")
    with pytest.raises(ValueError, match="not written by neurofm"):
        update_model_card(tmp_path / "m", notes="x")


# -- format versions ------------------------------------------------------------------------

def test_this_release_writes_format_2(folder, tmp_path):
    _, directory = folder
    assert json.loads((directory / "config.json").read_text())["format_version"] == 2
    tiny_tokenizer().save_pretrained(tmp_path / "tok")
    assert json.loads((tmp_path / "tok" / "config.json").read_text())["format_version"] == 2
    assert FORMAT_VERSION == 2


@pytest.mark.parametrize("kind", ["model", "tokenizer"])
def test_a_newer_format_is_refused_naming_both_versions(kind, folder, tmp_path):
    directory = folder[1] if kind == "model" else \
        tiny_tokenizer().save_pretrained(tmp_path / "tok")
    _set_config(directory, format_version=FORMAT_VERSION + 1)
    cls = BrainEncoder if kind == "model" else NeuralTokenizer
    for load in (neurofm.from_pretrained, cls.from_pretrained):
        with pytest.raises(ValueError, match=r"format version 3, but neurofm .* up to format "
                                             r"version 2; upgrade neurofm"):
            load(directory)


def test_a_damaged_format_version_is_reported(folder):
    _, directory = folder
    _set_config(directory, format_version="two")
    with pytest.raises(ValueError, match="format_version must be a positive integer"):
        neurofm.from_pretrained(directory)


@pytest.mark.parametrize("kind", ["model", "tokenizer"])
def test_an_unversioned_folder_loads_through_upgrade_state_dict(kind, folder, tmp_path,
                                                                monkeypatch):
    model = folder[0] if kind == "model" else tiny_tokenizer()
    directory = folder[1] if kind == "model" else model.save_pretrained(tmp_path / "tok")
    calls = []

    def upgrade(self, state, format_version):
        calls.append(format_version)
        return state

    monkeypatch.setattr(type(model), "upgrade_state_dict", upgrade)
    assert_same_weights(model, neurofm.from_pretrained(directory))
    assert calls == []  # today's format: nothing to upgrade
    _set_config(directory, format_version=None)  # as neurofm 0.1.0 wrote it
    assert_same_weights(model, neurofm.from_pretrained(directory))
    assert calls == [1]


def test_upgrade_state_dict_renames_before_the_strict_load(folder, monkeypatch):
    model, directory = folder
    state = {("old." + k): v for k, v in model.state_dict().items()}
    from safetensors.torch import save_file

    save_file(state, str(directory / "model.safetensors"))
    _set_config(directory, format_version=1)
    with pytest.raises(ValueError, match="does not match.*unexpected"):
        neurofm.from_pretrained(directory)
    monkeypatch.setattr(CrissCrossTransformer, "upgrade_state_dict",
                        lambda self, s, v: {k.removeprefix("old."): t for k, t in s.items()})
    assert_same_weights(model, neurofm.from_pretrained(directory))


# -- file modes and atomic writes -------------------------------------------------------------

@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o002, 0o664)])
def test_written_files_get_the_umask_mode(umask, mode, tmp_path):
    old = os.umask(umask)
    try:
        tiny_model("criss_cross_small").save_pretrained(tmp_path / "m")
        tiny_tokenizer().save_pretrained(tmp_path / "tok")
    finally:
        os.umask(old)
    for directory in (tmp_path / "m", tmp_path / "tok"):
        assert sorted(p.name for p in directory.iterdir()) == sorted(FILES)
        for name in FILES:
            assert stat.S_IMODE((directory / name).stat().st_mode) == mode, name


def test_an_interrupted_write_leaves_the_previous_file(folder):
    _, directory = folder
    config = directory / "config.json"
    before = config.read_bytes()

    def fail_halfway(tmp):
        tmp.write_text('{"architecture": ')
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        write_atomically(config, fail_halfway)
    assert config.read_bytes() == before
    assert sorted(p.name for p in directory.iterdir()) == sorted(FILES)


# -- what a class method accepts --------------------------------------------------------------

def test_a_class_method_refuses_a_folder_of_another_class(folder, tmp_path):
    _, directory = folder
    with pytest.raises(ValueError, match="'criss_cross_small', a CrissCrossTransformer, not a "
                                         "BidirectionalMamba"):
        BidirectionalMamba.from_pretrained(directory)
    with pytest.raises(ValueError, match="a neurofm model .*not a tokenizer"):
        NeuralTokenizer.from_pretrained(directory)
    tiny_tokenizer().save_pretrained(tmp_path / "tok")
    with pytest.raises(ValueError, match="a neurofm tokenizer, not a BrainEncoder"):
        BrainEncoder.from_pretrained(tmp_path / "tok")


def test_class_method_reads_a_hub_cache_offline(folder, tmp_path, monkeypatch):
    from hub_helpers import add_to_hub_cache

    model, directory = folder
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    add_to_hub_cache(tmp_path / "cache", "org/tiny", directory, "d" * 40, refs=("main", "v1"))
    loaded = CrissCrossTransformer.from_pretrained("org/tiny", revision="v1",
                                                   cache_dir=tmp_path / "cache")
    assert_same_weights(model, loaded)


# -- neurofm.from_pretrained: paths, Hub ids, registry names ----------------------------------

@pytest.mark.parametrize("text", ["./missing", "../missing/model", "~/no/such/model",
                                  "runs/exp1/model", "my_model", "runs/model/", "/abs/model"])
def test_a_missing_path_is_reported_as_a_missing_folder(text, monkeypatch):
    def no_hub(*args, **kwargs):
        raise AssertionError("a path must not be looked up on the Hub")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", no_hub)
    with pytest.raises(FileNotFoundError, match="that folder does not exist"):
        neurofm.from_pretrained(text)
    with pytest.raises(FileNotFoundError, match="that folder does not exist"):
        CrissCrossTransformer.from_pretrained(text)


def test_a_repo_id_goes_to_the_hub(tmp_path, monkeypatch):
    asked = []

    def fake_download(repo_id, **kwargs):
        asked.append((repo_id, kwargs["revision"]))
        raise huggingface_hub.errors.LocalEntryNotFoundError("offline")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_download)
    with pytest.raises(FileNotFoundError, match="org/model .*not in .*no local folder"):
        neurofm.from_pretrained("org/model", revision="v2")
    assert asked == [("org/model", "v2")]


def test_a_registry_name_builds_a_new_model(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    torch.manual_seed(0)
    model = neurofm.from_pretrained("criss_cross_small")
    assert isinstance(model, CrissCrossTransformer) and model.model_name == "criss_cross_small"
    assert not model.training
    with pytest.raises(ValueError, match="no revisions"):
        neurofm.from_pretrained("criss_cross_small", revision="v1")
    tiny_model("criss_cross_small").save_pretrained(tmp_path / "criss_cross_small")
    with pytest.raises(ValueError, match=r"both a registered model name and a local path.*"
                                         r"'\./criss_cross_small'"):
        neurofm.from_pretrained("criss_cross_small")
    assert neurofm.from_pretrained("./criss_cross_small").config["depth"] == 1


# -- push_to_hub ------------------------------------------------------------------------------

class RecordingApi:
    """Stands in for huggingface_hub.HfApi: records the files uploaded, uploads nothing."""

    calls: ClassVar[list] = []

    def __init__(self, token=None, library_name=None):
        RecordingApi.calls.append(("init", token))

    def create_repo(self, repo_id, **kwargs):
        RecordingApi.calls.append(("create_repo", repo_id))

    def create_branch(self, repo_id, branch, exist_ok):
        RecordingApi.calls.append(("create_branch", branch))

    def upload_folder(self, **kwargs):
        from pathlib import Path

        folder = Path(kwargs["folder_path"])
        files = {p.name: p.read_bytes() for p in folder.iterdir()}
        RecordingApi.calls.append(("upload_folder", files, kwargs))

        class Info:
            commit_url = f"https://huggingface.co/{kwargs['repo_id']}/commit/1"
            pr_url = None
        return Info()


def test_push_to_hub_method_uploads_a_complete_folder(monkeypatch, tmp_path):
    RecordingApi.calls = []
    monkeypatch.setattr(huggingface_hub, "HfApi", RecordingApi)
    model = tiny_model("criss_cross_small")
    url = model.push_to_hub("org/tiny", token="t", branch="dev", commit_message="first",
                            model_card_kwargs={"license": "mit"})
    assert url == "https://huggingface.co/org/tiny/commit/1"
    assert [c[0] for c in RecordingApi.calls] == ["init", "create_repo", "create_branch",
                                                   "upload_folder"]
    files, kwargs = RecordingApi.calls[-1][1], RecordingApi.calls[-1][2]
    assert sorted(files) == sorted(FILES)
    assert kwargs["revision"] == "dev" and kwargs["commit_message"] == "first"
    assert "neurofm.from_pretrained('org/tiny')" in files["README.md"].decode()
    (tmp_path / "pushed").mkdir()
    for name, data in files.items():
        (tmp_path / "pushed" / name).write_bytes(data)
    assert_same_weights(model, neurofm.from_pretrained(tmp_path / "pushed"))


def test_save_pretrained_can_push(monkeypatch, tmp_path):
    RecordingApi.calls = []
    monkeypatch.setattr(huggingface_hub, "HfApi", RecordingApi)
    url = tiny_tokenizer().save_pretrained(tmp_path / "tok", push_to_hub=True,
                                           repo_id="org/tok", private=True)
    assert url == "https://huggingface.co/org/tok/commit/1"
    assert sorted(RecordingApi.calls[-1][1]) == sorted(FILES)


# -- names of neurofm 0.1.0 -------------------------------------------------------------------

def test_old_import_paths_work_with_a_deprecation_warning(folder, tmp_path):
    import neurofm.models

    model, directory = folder
    with pytest.warns(DeprecationWarning, match=r"neurofm\.from_pretrained"):
        from neurofm.models import from_pretrained
    assert_same_weights(model, from_pretrained(directory, "cpu"))
    with pytest.warns(DeprecationWarning, match=r"model\.save_pretrained"):
        save = neurofm.models.save_pretrained
    save(model, tmp_path / "old", preprocessing={"l_freq": 1.0})
    assert json.loads((tmp_path / "old" / "config.json").read_text())["preprocessing"][
        "l_freq"] == 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        from neurofm.hub import from_pretrained as hub_from_pretrained
    assert hub_from_pretrained is neurofm.from_pretrained
    with pytest.raises(AttributeError, match="no attribute 'load_pretrained'"):
        neurofm.models.load_pretrained  # noqa: B018


def test_loading_from_a_hub_download_names_the_repo_in_errors(folder, tmp_path, monkeypatch):
    from hub_helpers import add_to_hub_cache

    _, directory = folder
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    snapshot = add_to_hub_cache(tmp_path / "cache", "org/tiny", directory, "e" * 40)
    weights = snapshot / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-10])
    with pytest.raises(ValueError, match=r"from_pretrained\('org/tiny', force_download=True\)"):
        BrainEncoder.from_pretrained("org/tiny", cache_dir=tmp_path / "cache")
