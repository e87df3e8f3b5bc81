"""Whose preprocessing applies (the paper's or the model's), a loader's band applied once, the
window, the IIR filter, NaN trials named or dropped, and the patch-MLP head."""

import json

import numpy as np
import pytest
import torch
from eval_helpers import alpha_trials
from scipy import signal

from neurofm.data.spec import PreprocessSpec
from neurofm.datasets.trials import AppliedBand
from neurofm.eval.run import EvalSettings, run_evaluation
from neurofm.eval.settings import read_task_config
from neurofm.eval.task_preprocessing import (
    TaskPreprocessing,
    butterworth_bandpass,
    plan_preprocessing,
    prepare_inputs,
)
from neurofm.models.heads import PatchMLPHead

TINY = {"dim": 32, "depth": 2, "n_heads": 4, "ffn_dim": 64}
MOABB_BAND = AppliedBand(8.0, 30.0, "IIR Butterworth order 4", "MOABB MotorImagery")


def _plan(task: dict, band=None, pretrained=False, model_spec=None):
    return plan_preprocessing(model_spec, TaskPreprocessing.from_dict(task), trials_band=band,
                              pretrained=pretrained, model_name="m", data_name="the trials")


def test_the_papers_preprocessing_wins_over_the_models_and_is_recorded():
    model = PreprocessSpec(l_freq=0.3, h_freq=75.0, line_freq=None)
    plan = _plan({"source": "paper, section 4", "l_freq": 4.0, "h_freq": 40.0, "line_freq": 50,
                  "filter": "iir", "window": [0.5, 2.5]}, model_spec=model)
    assert (plan.origin, plan.source) == ("paper", "paper, section 4")
    assert (plan.spec.l_freq, plan.spec.h_freq, plan.spec.line_freq) == (4.0, 40.0, 50.0)
    assert plan.differences() == [
        "l_freq: 0.3 vs 4.0", "h_freq: 75.0 vs 40.0", "line_freq: None vs 50.0",
        "filter: FIR (pretraining) vs IIR Butterworth order 4, zero-phase, on each trial",
        "window: 0.5-2.5 s of each trial (pretraining: whole recordings cut into windows)"]
    plain = _plan({}, model_spec=model)
    assert plain.origin == "model" and plain.differences() == [] and plain.spec == model


def test_a_pretrained_model_keeps_its_rate_and_patch_length_whatever_the_paper_says():
    with pytest.raises(ValueError, match=r"may change the band, notch, filter and window, not "
                                         r"the sampling rate or patch length.*sfreq"):
        _plan({"source": "paper", "sfreq": 250}, pretrained=True)
    assert _plan({"source": "paper", "sfreq": 250}).spec.sfreq == 250  # random init takes it


def test_a_band_the_loader_applied_is_never_applied_again():
    adopted = _plan({}, band=MOABB_BAND)                   # the model's 0.3-75 Hz is not added
    assert (adopted.spec.l_freq, adopted.spec.h_freq, adopted.filter) == (8.0, 30.0, "loader")
    assert any("not applied on top" in note for note in adopted.notes)
    same = _plan({"source": "p", "l_freq": 8, "h_freq": 30, "filter": "iir"}, band=MOABB_BAND)
    assert same.filter == "loader"
    with pytest.raises(ValueError, match=r"band-passed when loaded.*ask for 4-40 Hz"):
        _plan({"source": "p", "l_freq": 4, "h_freq": 40}, band=MOABB_BAND)
    with pytest.raises(ValueError, match="states filter: fir"):
        _plan({"source": "p", "l_freq": 8, "h_freq": 30, "filter": "fir"}, band=MOABB_BAND)
    with pytest.raises(ValueError, match="filter must be one of fir, iir"):
        TaskPreprocessing.from_dict({"filter": "fft"})
    with pytest.raises(ValueError, match=r"unknown key\(s\) windows"):
        TaskPreprocessing.from_dict({"windows": [0, 1]})


def test_inputs_get_the_window_and_one_iir_band_pass():
    trials = alpha_trials(n_subjects=1, per_class=3, sfreq=200.0, seconds=2.0)
    plan = _plan({"source": "p", "l_freq": 4.0, "h_freq": 40.0, "filter": "iir",
                  "window": [0.5, 1.5]})
    cropped = trials.crop(*plan.window)
    inputs = prepare_inputs(cropped, plan)
    assert inputs.x.shape == (6, 8, 1, 200)
    sos = signal.butter(4, (4.0, 40.0), "bandpass", fs=200.0, output="sos")
    expected = signal.sosfiltfilt(sos, trials.X[..., 100:300].astype(np.float64), axis=-1,
                                  padlen=27) * 1e4
    np.testing.assert_allclose(inputs.continuous(), expected, rtol=1e-4, atol=1e-5)
    assert inputs.preprocessing.l_freq == 4.0          # recorded band = the band applied
    assert not any(s.startswith("band-pass: none") for s in inputs.applied)
    assert any("IIR Butterworth order 4" in s for s in inputs.applied)
    _, described = butterworth_bandpass(trials.X, 200.0, None, 150.0)
    assert described.startswith("IIR band-pass: none")  # 150 Hz is above Nyquist


def test_results_name_nan_trials_and_drop_them_on_request(tmp_path):
    trials = alpha_trials(n_subjects=3, per_class=4)
    X = trials.X.copy()
    X[5, 1, 10] = np.nan
    source = [f"rec-{s}.fif" for s in trials.subject]
    trials = type(trials)(trials.name, X, trials.y, trials.subject, trials.sfreq, trials.sensors,
                          class_names=trials.class_names, source=source,
                          onset=np.arange(len(X)) * 2.0)
    settings = EvalSettings(model="criss_cross_small", data="synthetic", out=str(tmp_path / "o"),
                            protocol="loso", seeds=1, pool="channels", model_overrides=TINY,
                            cache_dir=str(tmp_path / "cache"), importance=False, baselines=[])
    with pytest.raises(ValueError, match=r"1 trial\(s\) of synthetic-alpha contain NaN/Inf "
                                         r"samples: trial 5 \(subject S00, session 0, run 0, "
                                         r"file rec-S00.fif, onset 10.00 s\).*--on-nan drop"):
        run_evaluation(settings, trials=trials)
    settings.on_nan = "drop"
    payload = run_evaluation(settings, trials=trials)
    saved = json.loads((tmp_path / "o" / "results.json").read_text())
    assert saved["data"]["n_trials"] == len(X) - 1
    (dropped,) = saved["data"]["dropped_trials"]
    assert dropped["source"] == "rec-S00.fif" and dropped["onset"] == 10.0
    assert dropped["reason"] == "NaN/Inf samples"
    fold = payload["methods"][0]["folds"][0]
    assert fold["test_groups"] == [["S00", "0"]]
    assert fold["train_groups"] == [["S01", "0"], ["S02", "0"]]
    assert saved["preprocessing"]["origin"] == "model"


def test_patch_mlp_head_reads_every_real_patch_and_ignores_padding():
    torch.manual_seed(0)
    head = PatchMLPHead(dim=8, n_channels=3, n_patches=4, n_outputs=2, dropout=0.0).eval()
    feats = torch.randn(5, 3, 4, 8)
    patch_valid = torch.tensor([[True, True, True, False]] * 5)
    out = head(feats, None, patch_valid)
    assert out.shape == (5, 2)
    changed_padding = feats.clone()
    changed_padding[:, :, 3] = 100.0
    torch.testing.assert_close(head(changed_padding, None, patch_valid), out)
    swapped = feats[:, [2, 1, 0]]             # which channel carries what matters (laterality)
    assert not torch.allclose(head(swapped, None, patch_valid), out)
    with pytest.raises(ValueError, match="3 channels x 4 patches"):
        head(torch.randn(5, 3, 5, 8))


def test_shipped_bci_configs_state_the_papers_preprocessing_and_split():
    for name in ("bcic_iv_2a", "physionet_mi"):
        config = read_task_config(f"finetune/{name}.yaml")
        assert config.data.startswith("moabb:") and config.protocol == "official"
        assert config.split["source"] and config.preprocessing["source"]
        assert config.pool == "patches" and config.to_check
        published = config.published_results()
        assert {p.metric for p in published} == {"balanced_accuracy", "cohen_kappa",
                                                 "f1_weighted"}
        assert all(p.source for p in published)


def test_on_nan_flag_reaches_the_settings():
    from neurofm.cli import build_parser
    from neurofm.commands.probe import settings_from_args

    common = ["--model", "criss_cross_small", "--data", "aeon:FingerMovements", "--out", "o"]
    args = build_parser().parse_args(["probe", *common, "--on-nan", "drop", "--pool", "patches"])
    settings = settings_from_args(args, "probe")
    assert (settings.on_nan, settings.pool) == ("drop", "patches")
    assert settings_from_args(build_parser().parse_args(["probe", *common]), "probe").on_nan == \
        "error"
