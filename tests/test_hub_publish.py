"""Model cards, push_to_hub (against a recording stand-in for HfApi), preprocessing checks, CLI."""

from typing import ClassVar

import pytest
import yaml
from hub_helpers import cbramod_published_state, tiny_model

from neurofm.hub import check_preprocessing, push_to_hub, read_config, write_model_card
from neurofm.model_folder import count_parameters


@pytest.fixture
def model_dir(tmp_path):
    model = tiny_model("criss_cross_small")
    model.save_pretrained(tmp_path / "m", preprocessing={"l_freq": 0.3, "h_freq": 75.0})
    return model, tmp_path / "m"


def _front_matter(text):
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n")[1])


def test_model_card_has_metadata_and_sections(model_dir):
    model, directory = model_dir
    path = write_model_card(directory, intended_use="Sleep staging research.",
                            training_data="Simulated EEG.", objective="Masked reconstruction.",
                            metrics={"Sleep-EDF": {"balanced_accuracy": 0.71234}},
                            license="mit", repo_id="org/tiny")
    text = path.read_text()
    meta = _front_matter(text)
    assert meta["library_name"] == "neurofm" and meta["license"] == "mit"
    assert {"neurofm", "eeg", "criss_cross_small"} <= set(meta["tags"])
    n_params = sum(v.numel() for v in model.state_dict().values())
    assert f"({n_params:,} parameters)" in text
    for needle in ("## Intended use\n\nSleep staging research.", "Simulated EEG.",
                   "Masked reconstruction.", "| Sleep-EDF | balanced_accuracy | 0.7123 |",
                   "| sfreq | 200.0 |", "| l_freq | 0.3 |", "from_pretrained('org/tiny')"):
        assert needle in text


def test_card_says_when_facts_are_missing(model_dir):
    _, directory = model_dir
    text = write_model_card(directory).read_text()
    assert "Not documented by the author." in text and "No evaluation reported." in text


def test_count_parameters_reads_the_header(model_dir):
    model, directory = model_dir
    assert count_parameters(directory / "model.safetensors") == sum(
        v.numel() for v in model.state_dict().values())


class RecordingApi:
    """Stands in for huggingface_hub.HfApi: records calls, uploads nothing."""

    calls: ClassVar[list] = []

    def __init__(self, token=None, library_name=None):
        RecordingApi.calls.append(("init", token))

    def create_repo(self, repo_id, **kwargs):
        RecordingApi.calls.append(("create_repo", repo_id, kwargs))

    def create_branch(self, repo_id, branch, exist_ok):
        RecordingApi.calls.append(("create_branch", repo_id, branch))

    def upload_folder(self, **kwargs):
        from pathlib import Path

        files = sorted(p.name for p in Path(kwargs["folder_path"]).iterdir())
        RecordingApi.calls.append(("upload_folder", files, kwargs))

        class Info:
            commit_url = f"https://huggingface.co/{kwargs['repo_id']}/commit/123"
            pr_url = None
        return Info()


def test_push_writes_card_then_uploads(model_dir, monkeypatch):
    _, directory = model_dir
    RecordingApi.calls = []
    monkeypatch.setattr("huggingface_hub.HfApi", RecordingApi)
    url = push_to_hub(directory, "org/tiny", token="t", private=True, revision="v1",
                      card_fields={"objective": "Masked reconstruction."})
    assert url == "https://huggingface.co/org/tiny/commit/123"
    kinds = [c[0] for c in RecordingApi.calls]
    assert kinds == ["init", "create_repo", "create_branch", "upload_folder"]
    assert RecordingApi.calls[1][2]["private"] is True
    files, kwargs = RecordingApi.calls[3][1], RecordingApi.calls[3][2]
    assert {"README.md", "config.json", "model.safetensors"} <= set(files)
    assert kwargs["revision"] == "v1" and "config.json" in kwargs["allow_patterns"]
    assert "Masked reconstruction." in (directory / "README.md").read_text()


def test_push_refuses_broken_directory(model_dir, monkeypatch, tmp_path):
    _, directory = model_dir
    RecordingApi.calls = []
    monkeypatch.setattr("huggingface_hub.HfApi", RecordingApi)
    weights = directory / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:200])
    with pytest.raises(ValueError, match="truncated"):
        push_to_hub(directory, "org/tiny")
    with pytest.raises(FileNotFoundError, match="No model directory"):
        push_to_hub(tmp_path / "missing", "org/tiny")
    assert RecordingApi.calls == []


def test_check_preprocessing(model_dir):
    model, directory = model_dir
    config = read_config(directory)
    assert check_preprocessing(model, 200.0, 20).patch_samples == 20
    assert check_preprocessing(config, 200, 20).l_freq == 0.3
    with pytest.raises(ValueError, match=r"200 Hz but the data are at 256 Hz.*resample\(200\)"):
        check_preprocessing(config, 256.0)
    with pytest.raises(ValueError, match="patches of 20 samples .* have 200"):
        check_preprocessing(model, 200.0, 200)


def test_check_preprocessing_of_a_tokenizer():
    from neurofm.tokenizer import NeuralTokenizer, tokenizer_config

    tok = NeuralTokenizer(tokenizer_config("small", dim=32, n_heads=2, n_encoder_layers=1,
                                           code_dim=8, codebook_size=16))
    assert check_preprocessing(tok, 200.0, 200).sfreq == 200.0
    with pytest.raises(ValueError, match="resample"):
        check_preprocessing(tok, 250.0, 200)


def test_cli_convert_and_push(tmp_path, monkeypatch, capsys):
    import torch

    from neurofm.cli import main

    state = cbramod_published_state(tiny_model("cbramod_base"))
    torch.save({"module." + k: v for k, v in state.items()},
               tmp_path / "pretrained_weights.pth")
    assert main(["convert", "cbramod", str(tmp_path / "pretrained_weights.pth"),
                 str(tmp_path / "out")]) == 0
    assert "cbramod_base" in capsys.readouterr().out
    assert read_config(tmp_path / "out")["architecture"] == "cbramod_base"
    RecordingApi.calls = []
    monkeypatch.setattr("huggingface_hub.HfApi", RecordingApi)
    assert main(["hub", "push", str(tmp_path / "out"), "org/cbramod",
                 "--metrics", '{"TUAB": {"auroc": 0.9}}']) == 0
    assert "org/cbramod" in capsys.readouterr().out
    assert main(["hub", "push", str(tmp_path / "out"), "org/x", "--metrics", "{bad"]) == 2
    assert "--metrics is not valid JSON" in capsys.readouterr().err
    assert main(["convert", "labram", str(tmp_path / "nope.pth"), str(tmp_path / "o2")]) == 2
    assert "does not exist" in capsys.readouterr().err
