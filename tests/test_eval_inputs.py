"""Evaluation inputs are prepared like pretraining windows: one filter path for both.

Rule tested here (docs/data.md, "Trials and recordings"): a recording prepared by
``neurofm prepare --dtype float32`` and the same recording cut into trials at the window starts
and prepared by :func:`neurofm.eval.inputs.prepare_trials` give the same windows at every sample
farther than half the filter length (:meth:`FilterPlan.reach_seconds`) from a trial's ends: to
float32 rounding at the recording's own rate, to 3e-5 of the peak when the rate changes (exact
FFT resampling is not local). Nearer the ends a trial has the reflection of its own samples where
the recording had its neighbours.
"""

import json

import mne
import numpy as np
import pandas as pd
import pytest
import torch
from eval_helpers import alpha_trials

from neurofm.corpus import Corpus, PrepareOptions, prepare_corpus
from neurofm.data import read_raw
from neurofm.data.preprocess import plan_preprocessing
from neurofm.datasets.montages import Derivation
from neurofm.datasets.recordings import RecordingFile, SkippedRecordings, recording_windows
from neurofm.eval.inputs import prepare_trials, resolve_preprocessing
from neurofm.eval.run import EvalSettings, run_evaluation
from neurofm.eval.window_inputs import RecordingInputs, recording_inputs

WINDOW_SECONDS = 30.0


def _eeg(sfreq, seconds=60.0, seed=0):
    """Six 10-20 channels: 20 µV noise, a 10-Hz rhythm and 30 µV of 50-Hz mains."""
    rng = np.random.default_rng(seed)
    t = np.arange(round(seconds * sfreq)) / sfreq
    data = (rng.normal(0, 20e-6, (6, t.size)) + 10e-6 * np.sin(2 * np.pi * 10 * t)
            + 30e-6 * np.sin(2 * np.pi * 50 * t))
    info = mne.create_info(["Fp1", "Fp2", "C3", "C4", "O1", "O2"], sfreq, "eeg")
    info["line_freq"] = 50.0
    raw = mne.io.RawArray(data, info, verbose="error")
    return raw.set_montage("standard_1020", verbose="error")


def _meg(seconds=60.0, seed=1):
    """10 magnetometers and 20 gradiometers of MNE's Neuromag-306 helmet at 1000 Hz."""
    info = mne.channels.read_meg_canonical_info("neuromag")
    kinds = np.array(info.get_channel_types())
    picks = np.concatenate([np.flatnonzero(kinds == "mag")[:10],
                            np.flatnonzero(kinds == "grad")[:20]])
    info = mne.pick_info(info, np.sort(picks))
    kinds = np.array(info.get_channel_types())
    rng = np.random.default_rng(seed)
    data = rng.normal(size=(len(kinds), round(seconds * info["sfreq"])))
    return mne.io.RawArray(data * np.where(kinds == "mag", 5e-13, 1e-11)[:, None], info,
                           verbose="error")


def _ieeg(seconds=60.0, seed=2):
    """Three sEEG contacts and two ECoG electrodes at 512 Hz, positions in the head frame."""
    names = ["LA1", "LA2", "LA3", "G1", "G2"]
    info = mne.create_info(names, 512.0, ["seeg"] * 3 + ["ecog"] * 2)
    rng = np.random.default_rng(seed)
    raw = mne.io.RawArray(rng.normal(0, 50e-6, (5, round(seconds * 512.0))), info,
                          verbose="error")
    pos = {n: np.array([0.03 + 0.005 * i, -0.01, 0.02]) for i, n in enumerate(names)}
    return raw.set_montage(mne.channels.make_dig_montage(pos, coord_frame="head"),
                           verbose="error")


CASES = {  # name: (recording, --channels, --line-freq, tolerance relative to the peak)
    "eeg-200Hz-notch": (lambda: _eeg(200.0), "all-eeg", 50.0, 1e-6),
    "eeg-250Hz-notch": (lambda: _eeg(250.0), "all-eeg", 50.0, 3e-5),
    "meg-mag-grad-1000Hz": (_meg, "all", 60.0, 3e-5),
    "seeg-ecog-512Hz": (_ieeg, "all", None, 3e-5),
}


@pytest.mark.parametrize("case", CASES)
def test_trials_cut_from_a_recording_equal_its_prepared_windows(case, tmp_path):
    make, channels, line_freq, tolerance = CASES[case]
    (tmp_path / "src").mkdir()
    path = tmp_path / "src" / "rec_raw.fif"
    make().save(path, verbose="error")
    options = PrepareOptions(window_seconds=WINDOW_SECONDS, channels=channels, max_abs_uv=None,
                             trim_seconds=0.0, min_minutes=0.0, dtype="float32",
                             line_freq=line_freq)
    prepare_corpus(tmp_path / "src", tmp_path / "corpus", options, progress=False)
    corpus = Corpus(tmp_path / "corpus")
    prepared = np.stack([corpus[i]["x"].numpy() for i in range(len(corpus))])  # [W, C, N, P]

    raw = read_raw(path)  # the evaluation side: epochs of the recording at the window starts
    plan = plan_preprocessing(raw.info, options.preprocess_config())
    sfreq = raw.info["sfreq"]
    n = round(WINDOW_SECONDS * sfreq)
    starts = [round(corpus[i]["start"] * sfreq) for i in range(len(corpus))]
    signal = raw.get_data(picks=plan.picks)
    trials = np.stack([signal[:, s:s + n] for s in starts]).astype(np.float32)  # TrialSet's type
    inputs = prepare_trials(trials, sfreq, plan.layout, corpus.spec)

    assert len(corpus) == 2 and inputs.x.shape == prepared.shape
    assert list(inputs.sensors.canonical) == corpus[0]["channels"]
    if case.startswith("meg"):
        assert set(inputs.sensors.kind_labels()) == {"meg_mag", "meg_grad"}
        assert "scale meg_grad: x 1e+10 (1.0 = 100 pT/m)" in inputs.applied
    if line_freq:
        assert f"notch: {line_freq:g} Hz (mains {line_freq:g} Hz from line_freq setting)" \
            in inputs.applied
    edge = int(np.ceil(plan.filter.reach_seconds() * corpus.sfreq))
    ours = inputs.x.reshape(len(corpus), inputs.x.shape[1], -1)[..., edge:-edge]
    theirs = prepared.reshape(ours.shape[:2] + (-1,))[..., edge:-edge]
    peak = np.abs(theirs).max()
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=tolerance * peak)


def test_short_trials_are_demeaned_instead_of_high_passed_and_keep_their_band():
    trials = alpha_trials(n_subjects=1, per_class=4, sfreq=200.0, seconds=2.0, effect=5.0)
    X = trials.X + np.float32(2e-4)  # a 200-µV offset the high-pass would have removed
    inputs = prepare_trials(X, trials.sfreq, trials.sensors, resolve_preprocessing(None))
    assert any(line.startswith("high-pass 0.3 Hz skipped: trials (2 s) are shorter than its "
                               "filter (11.0 s); each trial is demeaned") for line in inputs.applied)
    x = inputs.continuous()
    assert np.abs(x.mean(axis=-1)).max() < 0.02  # offset gone (it was 2.0 units)
    c3 = x[trials.y == 1, 0]  # the 50-µV 10-Hz rhythm on C3 survives the low-pass
    assert np.abs(c3[:, 100:-100]).max() > 0.4


def test_a_pretrained_model_refuses_another_rate_and_lists_other_overrides(tmp_path):
    from neurofm.models import create_model

    torch.manual_seed(0)
    model = create_model("criss_cross_small", dim=32, depth=1, n_heads=4, ffn_dim=64)
    model.save_pretrained(tmp_path / "model")
    trials = alpha_trials(n_subjects=2, per_class=4, sfreq=200.0, seconds=1.0)

    def settings(**preprocessing):
        return EvalSettings(model=str(tmp_path / "model"), data="synthetic",
                            out=str(tmp_path / "out"), protocol="loso", seeds=1, n_folds=2,
                            baselines=[], random_init_reference=False, importance=False,
                            preprocessing=preprocessing, cache_dir=str(tmp_path / "cache"))

    with pytest.raises(ValueError, match=r"sfreq: .* was pretrained at 200 Hz but the evaluation "
                                         r"inputs are at 250 Hz .*Resample to 200 Hz"):
        run_evaluation(settings(sfreq=250.0), trials=trials)
    payload = run_evaluation(settings(h_freq=40.0), trials=trials)
    applied = payload["preprocessing"]["applied"]
    assert applied[0] == ("differs from the model's pretraining preprocessing (override): "
                          "h_freq: 75.0 vs 40.0")
    assert "band-pass: 0–40 Hz (FIR, zero phase, at 200 Hz)" in applied  # 1-s trials
    saved = json.loads((tmp_path / "out" / "results.json").read_text())
    assert saved["preprocessing"]["settings"]["h_freq"] == 40.0


def test_the_old_notch_override_is_read_as_line_freq_with_a_warning():
    with pytest.warns(FutureWarning, match="'notch' is deprecated; use 'line_freq'"):
        spec = resolve_preprocessing(None, {"notch": 60, "patch_size": 100, "l_freq": None})
    assert (spec.line_freq, spec.patch_samples, spec.l_freq) == (60.0, 100, 0.3)
    with pytest.raises(ValueError, match="preprocessing overrides: unknown key.* hfreq"):
        resolve_preprocessing(None, {"hfreq": 40})


def test_meg_windows_left_on_disk_equal_their_prepared_windows(tmp_path):
    """The lazy path (each recording preprocessed whole, then cut; ``eval/window_inputs.py``)
    on magnetometers and gradiometers with a 60-Hz notch gives ``neurofm prepare``'s windows,
    each sensor kind at its own scale."""
    (tmp_path / "src").mkdir()
    path = tmp_path / "src" / "rec_raw.fif"
    _meg().save(path, verbose="error")
    options = PrepareOptions(window_seconds=WINDOW_SECONDS, channels="all", max_abs_uv=None,
                             trim_seconds=0.0, min_minutes=0.0, dtype="float32", line_freq=60.0)
    prepare_corpus(tmp_path / "src", tmp_path / "corpus", options, progress=False)
    corpus = Corpus(tmp_path / "corpus")
    prepared = np.stack([corpus[i]["x"].numpy() for i in range(len(corpus))])  # [W, C, N, P]

    raw = read_raw(path)
    plan = plan_preprocessing(raw.info, options.preprocess_config())
    names = tuple(raw.ch_names[i] for i in plan.picks)
    recording = RecordingFile(str(path), raw.info["sfreq"], raw.n_times,
                              Derivation("as recorded", names, names, np.eye(len(names))), 60.0)
    rows = pd.DataFrame({"rec": 0, "onset": [corpus[i]["start"] for i in range(len(corpus))],
                         "label": 0, "subject": "S1", "session": "0", "run": "0"})
    trials = recording_windows("meg", [recording], rows, window_seconds=WINDOW_SECONDS,
                               montage="as recorded", class_names=["rest"],
                               skipped=SkippedRecordings(), provenance={}, lazy=True,
                               layout=plan.layout)
    inputs = recording_inputs(trials, corpus.spec)
    assert isinstance(inputs.x, RecordingInputs)
    assert "scale meg_grad: x 1e+10 (1.0 = 100 pT/m)" in inputs.applied
    ours = inputs.x[np.arange(len(corpus))]
    assert ours.shape == prepared.shape and len(corpus) == 2
    peak = np.abs(prepared).max()
    np.testing.assert_allclose(ours, prepared, rtol=0, atol=3e-5 * peak)
