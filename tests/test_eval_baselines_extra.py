"""The braindecode baselines: optional (without the extra their row says what to install), and
EEGNet learns what it should on one fold."""

import json

import numpy as np
import pytest
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


@pytest.mark.skipif(not compat.braindecode_available(), reason="needs neurofm[braindecode]")
def test_eegnet_learns_a_phase_locked_response_and_repeats_itself_with_its_seed():
    """EEGNet from scratch on one fold: a 10-Hz response on channel 0 (class 1) or channel 2
    (class 0), phase-locked to the trial start, is learnt from 60 trials and predicted on 20
    held-out ones; the same seed gives the same probabilities."""
    from neurofm.eval.baselines import supervised_method
    from neurofm.eval.protocols import Fold
    from neurofm.eval.training import FinetuneConfig

    rng = np.random.default_rng(0)
    n, sfreq = 80, 64.0
    y = np.tile([0, 1], n // 2)
    wave = 3 * np.sin(2 * np.pi * 10 * np.arange(64) / sfreq)
    X = 0.5 * rng.standard_normal((n, 3, 64)).astype(np.float32)
    X[y == 1, 0] += wave
    X[y == 0, 2] += wave
    subjects = np.repeat(["S1", "S2", "S3", "S4"], n // 4)
    fold = Fold("S4", np.arange(60), np.arange(60, 80), subject_level=True)
    config = FinetuneConfig(epochs=6, batch_size=16, min_steps_per_epoch=4, patience=6,
                            lr_head=1e-2)
    fit_predict = supervised_method("eegnet", X, sfreq, y, subjects, n_outputs=2,
                                    regression=False, config=config)
    pred, proba, extra = fit_predict(0, fold)
    assert pred.shape == (20,) and proba.shape == (20, 2)
    np.testing.assert_allclose(proba.sum(1), 1.0, rtol=1e-5)
    assert (pred == y[60:]).mean() >= 0.9
    history = extra["history"]
    assert len(history["train_loss"]) >= 1 and history["train_loss"][-1] < history["train_loss"][0]
    _, again, _ = fit_predict(0, fold)
    np.testing.assert_allclose(again, proba, rtol=1e-5, atol=1e-6)
