"""neurofm inside scikit-learn, MOABB and braindecode: ``Embedder`` and ``NeuroFM``."""

import sys
import warnings

import mne
import numpy as np
import pytest
import torch
from extras import needs_braindecode
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline

import neurofm
from neurofm import compat
from neurofm.interop import Embedder, info_from_chs
from neurofm.models import create_model

NAMES = ["F3", "Fz", "F4", "C3", "Cz", "C4", "P3", "Pz", "P4"]
SFREQ = 250.0


def tiny(name="criss_cross_small", seed=0, **overrides):
    torch.manual_seed(seed)
    sizes = {"criss_cross_small": {"depth": 1, "dim": 32, "n_heads": 2, "ffn_dim": 64},
             "mamba_small": {"depth": 2, "dim": 32, "n_latent": 4}}[name]
    return create_model(name, **{**sizes, **overrides}).eval()


def alpha_trials(n=40, seconds=2.0, seed=0):
    """Class 1: a 10-Hz rhythm of 30 µV over the parietal channels; class 0: noise only."""
    rng = np.random.default_rng(seed)
    t = np.arange(round(seconds * SFREQ)) / SFREQ
    y = np.tile([0, 1], n // 2)
    X = rng.normal(0.0, 10e-6, (n, len(NAMES), t.size))
    rhythm = 30e-6 * np.sin(2 * np.pi * 10 * t + rng.uniform(0, 2 * np.pi, (n, 1)))
    X[y == 1, 6:] += rhythm[y == 1, None, :]
    info = mne.create_info(NAMES, SFREQ, "eeg")
    return X, y, info


def test_embedder_maps_trials_to_the_models_embeddings():
    X, _, info = alpha_trials(n=6)
    model = tiny()
    z = Embedder(model, info=info).fit_transform(X)
    assert z.shape == (6, 32) and z.dtype == np.float32
    epochs = mne.EpochsArray(X, info, verbose="error")
    # the same as neurofm.embed on the same trials as MNE Epochs (one window per epoch)
    np.testing.assert_allclose(z, neurofm.embed(model, epochs).embeddings, rtol=1e-4, atol=1e-5)
    # Epochs directly, their info read in fit
    np.testing.assert_allclose(Embedder(model).fit_transform(epochs), z, rtol=1e-5, atol=1e-6)


def test_units_uv_reads_moabb_arrays():
    X, _, info = alpha_trials(n=4)
    volts = Embedder(tiny(), info=info).fit_transform(X)
    micro = Embedder(tiny(), info=info, units="uV").fit_transform(X * 1e6)
    np.testing.assert_allclose(micro, volts, rtol=1e-4, atol=1e-5)


def test_pool_none_gives_per_channel_features_or_the_latents():
    X, _, info = alpha_trials(n=4)
    per_channel = Embedder(tiny(), info=info, pool=None).fit_transform(X)
    assert per_channel.shape == (4, len(NAMES) * 32)
    latents = Embedder(tiny("mamba_small"), info=info, pool=None).fit_transform(X)
    assert latents.shape == (4, 4 * 32)  # K = 4 latent channels, whatever the montage


def test_clone_reloads_the_stored_model_spec(tmp_path):
    X, _, info = alpha_trials(n=4)
    tiny().save_pretrained(tmp_path / "m")
    embedder = Embedder(str(tmp_path / "m"), info=info).fit(X)
    copy = clone(embedder)
    assert copy.get_params()["model"] == str(tmp_path / "m") and not hasattr(copy, "model_")
    np.testing.assert_array_equal(copy.fit_transform(X), embedder.transform(X))
    # a registered name is a random initialisation, seeded by random_state
    a = Embedder("criss_cross_small", info=info, random_state=3).fit_transform(X)
    b = clone(Embedder("criss_cross_small", info=info, random_state=3)).fit_transform(X)
    np.testing.assert_array_equal(a, b)


def test_embedder_errors_say_what_to_pass():
    X, _, info = alpha_trials(n=4)
    with pytest.raises(ValueError, match="pass info=epochs.info"):
        Embedder(tiny()).fit(X)
    with pytest.raises(ValueError, match=r"expected trials \[n, 9 channels, T\]"):
        Embedder(tiny(), info=info).fit(X[:, :3])
    with pytest.raises(ValueError, match="units must be one of"):
        Embedder(tiny(), info=info, units="mV").fit(X)


def test_pipeline_with_logistic_regression_under_cross_val_score():
    X, y, info = alpha_trials(n=40)
    pipe = make_pipeline(Embedder(tiny(), info=info), LogisticRegression(max_iter=2000))
    scores = cross_val_score(pipe, X, y, cv=4)
    assert scores.mean() >= 0.8, scores


def test_moabb_within_session_evaluation_on_fake_data(tmp_path):
    pytest.importorskip("moabb", reason=compat.needs_extra("moabb"))
    from moabb.datasets.fake import FakeDataset
    from moabb.evaluations import WithinSessionEvaluation
    from moabb.paradigms import LeftRightImagery

    dataset = FakeDataset(event_list=("left_hand", "right_hand"), n_sessions=1, n_runs=1,
                          n_subjects=1, n_events=20, duration=60, channels=("C3", "Cz", "C4"),
                          seed=1)
    paradigm = LeftRightImagery(fmin=None, fmax=None)
    epochs, _, _ = paradigm.get_data(dataset, subjects=[1], return_epochs=True)
    info = epochs.info
    pipe = make_pipeline(Embedder(tiny(), info=info, units="uV"),
                         LogisticRegression(max_iter=2000))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        evaluation = WithinSessionEvaluation(paradigm=paradigm, datasets=[dataset],
                                             overwrite=True, hdf5_path=str(tmp_path),
                                             random_state=0)
        results = evaluation.process({"neurofm": pipe})
    assert len(results) == 1 and results["pipeline"].tolist() == ["neurofm"]
    assert 0.0 <= float(results["score"].iloc[0]) <= 1.0
    # MOABB's arrays (µV) through units="uV" are the epochs (V) as the Embedder reads them
    X, _, _ = paradigm.get_data(dataset, subjects=[1])
    np.testing.assert_allclose(pipe[0].fit_transform(X),
                               Embedder(tiny()).fit_transform(epochs), rtol=1e-4, atol=1e-5)


def test_info_from_chs_keeps_the_files_positions_and_reads_bare_names():
    info = mne.create_info(["C3", "Cz", "C4"], 200.0, "eeg")
    info.set_montage("standard_1020")
    back = info_from_chs(info["chs"], 200.0)
    np.testing.assert_array_equal(back["chs"][1]["loc"], info["chs"][1]["loc"])
    bare = info_from_chs([{"ch_name": n} for n in ("C3", "Cz")], 128.0)
    assert bare["ch_names"] == ["C3", "Cz"] and bare["sfreq"] == 128.0


def test_neurofm_without_braindecode_names_the_extra(monkeypatch):
    monkeypatch.setattr(compat, "braindecode_import_error",
                        lambda: "ModuleNotFoundError: No module named 'braindecode'")
    monkeypatch.delitem(sys.modules, "neurofm.interop.braindecode_model", raising=False)
    import neurofm.interop

    with pytest.raises(compat.MissingExtraError, match=r"pip install 'neurofm\[braindecode\]'"):
        neurofm.interop.NeuroFM  # noqa: B018


def _windows_dataset(n_trials=16, seconds=2.0):
    """A braindecode windows dataset: alpha (class 1) vs noise trials cut from one recording."""
    from braindecode.datasets import BaseConcatDataset, RawDataset
    from braindecode.preprocessing import create_windows_from_events

    X, y, info = alpha_trials(n=n_trials, seconds=seconds)
    raw = mne.io.RawArray(np.concatenate(list(X), axis=1), info, verbose="error")
    onsets = np.arange(n_trials) * seconds
    raw.set_annotations(mne.Annotations(onsets, seconds, [f"c{k}" for k in y]))
    ds = BaseConcatDataset([RawDataset(raw, description={"subject": 1})])
    return create_windows_from_events(ds, trial_start_offset_samples=0,
                                      trial_stop_offset_samples=0, mapping={"c0": 0, "c1": 1},
                                      preload=True)


@needs_braindecode
@pytest.mark.parametrize("freeze", [True, False])
def test_neurofm_trains_inside_braindecodes_eeg_classifier(freeze):
    from braindecode import EEGClassifier

    from neurofm.interop import NeuroFM

    windows = _windows_dataset()
    info = windows.datasets[0].raw.info
    encoder = tiny()
    before = {k: v.clone() for k, v in encoder.state_dict().items()}
    clf = EEGClassifier(NeuroFM, module__model=encoder, module__freeze=freeze,
                        module__chs_info=info["chs"], module__sfreq=info["sfreq"],
                        optimizer=torch.optim.AdamW, lr=1e-3, batch_size=8, max_epochs=2,
                        train_split=None, verbose=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf.fit(windows, y=None)
    net = clf.module_
    assert type(net).__name__ == "NeuroFM" and net.n_outputs == 2 and net.n_chans == len(NAMES)
    losses = [row["train_loss"] for row in clf.history]
    assert len(losses) == 2 and np.isfinite(losses).all()
    x = torch.from_numpy(np.stack([windows[i][0] for i in range(4)])).float()
    assert net(x).shape == (4, 2)
    after = net.encoder.state_dict()
    changed = any(not torch.equal(before[k], after[k]) for k in before)
    assert changed != freeze  # a frozen encoder keeps its weights, a trained one moves
    assert clf.predict(windows).shape == (16,)


@needs_braindecode
def test_neurofm_needs_the_channels_and_rate():
    from neurofm.interop import NeuroFM

    with pytest.raises(ValueError, match="module__chs_info"):
        NeuroFM(n_outputs=2, n_chans=3, n_times=400, model=tiny())
    net = NeuroFM(n_outputs=3, chs_info=[{"ch_name": n} for n in NAMES], n_times=500,
                  sfreq=SFREQ, model=tiny("mamba_small"), pool=None)
    assert net.final_layer.in_features == 4 * 32  # the K latents
    assert net(torch.zeros(2, len(NAMES), 500)).shape == (2, 3)
