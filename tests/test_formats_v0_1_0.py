"""Files written by neurofm 0.1.0 keep loading, and give what they gave then.

The fixtures in ``tests/fixtures/v0_1_0/`` were written by 0.1.0 (``make_fixtures.py`` there, run
at the commit that added it): a model folder of every backbone with its outputs on fixed inputs,
a tokenizer, a code-input model, a converted CBraMod folder, a prepared corpus and a 4-step
training run of ``pretrain/configs/sim_tiny.yaml`` with checkpoints at steps 2 and 4.
"""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hub_helpers import LABRAM_NAMES
from v0_1_0_fixtures import FIXTURES, MODEL_FOLDERS, TOLERANCE, recorded_inputs

import neurofm

ROOT = Path(__file__).resolve().parents[1]

@pytest.mark.parametrize("folder", MODEL_FOLDERS, ids=lambda p: p.name)
def test_a_0_1_0_model_folder_gives_the_same_outputs(folder):
    expected = np.load(folder / "expected.npz")
    model = neurofm.from_pretrained(folder)
    x, sensors = recorded_inputs(expected)
    if hasattr(model, "set_channel_names"):
        model.set_channel_names(LABRAM_NAMES[: x.shape[1]])
    with torch.no_grad():
        got = {"features": model(x, sensors), "embed": model.embed(x, sensors)}
        if "out_reconstruct" in expected:
            got["reconstruct"] = model.reconstruct(x, sensors)
        if "out_classify" in expected:
            got["classify"] = model.classify(x, sensors)
    assert {f"out_{k}" for k in got} == {k for k in expected if k.startswith("out_")}
    for key, value in got.items():
        diff = float((value - torch.from_numpy(expected[f"out_{key}"])).abs().max())
        assert diff <= TOLERANCE, f"{folder.name}: {key} differs by {diff:g}"


def test_a_0_1_0_tokenizer_folder_gives_the_same_codes():
    expected = np.load(FIXTURES / "tokenizer" / "expected.npz")
    tokenizer = neurofm.from_pretrained(FIXTURES / "tokenizer")
    x, sensors = recorded_inputs(expected)
    codes = tokenizer.encode(x, sensors)
    assert np.array_equal(codes.numpy(), expected["codes"])


def test_a_0_1_0_corpus_reads_the_same_windows():
    from neurofm.corpus import Corpus

    expected = np.load(FIXTURES / "corpus_expected.npz")
    corpus = Corpus(FIXTURES / "corpus")
    assert len(corpus) == len(expected["x"])
    for i in range(len(corpus)):
        item = corpus[i]
        assert np.array_equal(item["x"].numpy(), expected["x"][i])
        assert item["start"] == expected["start"][i]
        assert Path(item["source"]).name == expected["source"][i]


def _logged_loss(run: Path, step: int) -> float:
    for line in (run / "metrics.jsonl").read_text().splitlines():
        record = json.loads(line)
        if record["step"] == step:
            return record["loss"]
    raise AssertionError(f"no step {step} in {run / 'metrics.jsonl'}")


def test_a_0_1_0_training_run_resumes_with_todays_sim_tiny_config(tmp_path):
    run = tmp_path / "run"
    shutil.copytree(FIXTURES / "run", run)
    (run / "checkpoints" / "step-00000004.pt").unlink()
    shutil.rmtree(run / "model")
    original = (FIXTURES / "run" / "metrics.jsonl").read_text().splitlines()
    (run / "metrics.jsonl").write_text(
        "".join(line + "\n" for line in original if json.loads(line)["step"] <= 2))
    done = subprocess.run(
        [sys.executable, "-m", "neurofm", "pretrain", "--config",
         str(ROOT / "pretrain/configs/sim_tiny.yaml"), "--out", str(run),
         "--set", "run.steps=4", "--set", "run.checkpoint_every=2",
         "--set", "run.tensorboard=false", "--set", "run.progress=false",
         "--set", f"data.cache_dir={tmp_path / 'cache'}"],
        check=False, capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert "step-00000002.pt" in done.stderr and "step 2" in done.stderr
    resumed = _logged_loss(run, 4)
    assert resumed == pytest.approx(_logged_loss(FIXTURES / "run", 4), rel=1e-5)
    assert (run / "model" / "model.safetensors").is_file()
