"""Frozen extraction: weights bit-identical, violations caught, disk cache; probe fitting."""

import numpy as np
import pytest
import torch
from eval_helpers import TinyEncoder, alpha_trials

from neurofm.data import BandLimitWarning
from neurofm.eval.embeddings import FrozenModelError, extract_embeddings, frozen
from neurofm.eval.inputs import prepare_trials, resolve_preprocessing
from neurofm.eval.probe import DEFAULT_CS, fit_probe


@pytest.fixture(scope="module")
def inputs():
    trials = alpha_trials(n_subjects=2, per_class=6)
    with pytest.warns(BandLimitWarning, match="low-pass 75 Hz"):  # 100-Hz trials
        return prepare_trials(trials.X, trials.sfreq, trials.sensors,
                              resolve_preprocessing(None))


def _snapshot(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_prepare_trials_follows_pad_rule_and_reports_steps(inputs):
    # 1 s at 100 Hz -> 200 samples at 200 Hz: exactly one 200-sample patch.
    assert inputs.x.shape == (24, 8, 1, 200) and inputs.x.dtype == np.float32
    assert inputs.patch_valid.all()
    assert "resample: 100 Hz -> 200 Hz (FFT, after filtering)" in inputs.applied
    assert any(s.startswith("low-pass 75 Hz is above the Nyquist frequency of the trials (50 Hz")
               for s in inputs.applied)
    assert any(s.startswith("high-pass 0.3 Hz skipped: trials (1 s)") for s in inputs.applied)
    half = alpha_trials(n_subjects=1, per_class=2, seconds=0.5)
    with pytest.warns(BandLimitWarning):
        short = prepare_trials(half.X, half.sfreq, half.sensors, resolve_preprocessing(None))
    assert short.x.shape[2:] == (1, 200) and short.n_times == 100
    assert np.all(short.x[..., 100:] == 0)  # padded half of the only patch
    assert short.continuous().shape == (4, 8, 100)


@pytest.mark.parametrize("pool", ["mean", "channels"])
def test_frozen_extraction_of_a_real_backbone_leaves_it_bit_identical(inputs, pool):
    from neurofm.models import create_model

    torch.manual_seed(0)
    model = create_model("criss_cross_small", dim=32, depth=2, n_heads=4, ffn_dim=64)
    model.train()  # extraction must switch to eval and back
    before = _snapshot(model)
    z = extract_embeddings(model, inputs.x, inputs.sensors, inputs.patch_valid, batch_size=10,
                           pool=pool)
    assert z.shape == (24, 32 if pool == "mean" else 8 * 32)
    after = model.state_dict()
    for k, v in before.items():
        assert torch.equal(v, after[k]), k
    assert all(p.grad is None for p in model.parameters())
    assert model.training
    # eval mode: deterministic despite dropout/drop-path
    z2 = extract_embeddings(model, inputs.x, inputs.sensors, inputs.patch_valid, pool=pool)
    np.testing.assert_allclose(z, z2, rtol=1e-5, atol=1e-5)


def test_frozen_guard_catches_buffer_updates_and_gradients():
    model = TinyEncoder()
    with pytest.raises(FrozenModelError, match="norm.running_mean"), frozen(model):
        model.norm.train()  # a model that re-enables BatchNorm inside embed
        model.norm(torch.randn(8, 16))
    with (pytest.raises(FrozenModelError, match="gradients were created"), frozen(model),
          torch.enable_grad()):
        model.proj(torch.randn(2, 200)).sum().backward()


def test_cache_is_keyed_by_weights_and_inputs(inputs, tmp_path):
    calls = []
    model = TinyEncoder()
    original = model.embed
    model.embed = lambda *a, **k: calls.append(1) or original(*a, **k)
    stats = {}
    z1 = extract_embeddings(model, inputs.x, inputs.sensors, inputs.patch_valid,
                            cache_dir=tmp_path, stats=stats)
    n_calls = len(calls)
    assert not stats["cached"] and n_calls > 0 and stats["seconds_per_1000"] > 0
    stats = {}
    z2 = extract_embeddings(model, inputs.x, inputs.sensors, inputs.patch_valid,
                            cache_dir=tmp_path, stats=stats)
    assert stats["cached"] and len(calls) == n_calls
    np.testing.assert_array_equal(z1, z2)
    with torch.no_grad():
        model.proj.bias.add_(1.0)  # new weights -> new key -> recomputed
    extract_embeddings(model, inputs.x, inputs.sensors, inputs.patch_valid, cache_dir=tmp_path)
    assert len(calls) > n_calls
    assert len(list(tmp_path.glob("*.npy"))) == 2


def test_probe_inner_folds_keep_whole_subjects_and_both_classes_when_labels_are_per_subject():
    import warnings

    rng = np.random.default_rng(1)
    subjects = np.repeat([f"s{i}" for i in range(8)], 6)
    y = np.repeat([0, 1, 0, 1, 1, 0, 0, 1], 6)  # one label per subject (abnormal vs normal)
    z = rng.standard_normal((48, 4)) + y[:, None]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a one-class inner fit would warn (FitFailedWarning)
        fit = fit_probe(z, y, groups=subjects)
    assert fit.inner_cv == "stratified group 3-fold by subject"

    # Three subjects, one of them the only class-1 subject: no subject-wise split trains on
    # both classes every time, so there is no search (and no trial-wise leak) instead.
    few = np.isin(subjects, ["s0", "s1", "s2"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fit = fit_probe(z[few], y[few], groups=subjects[few])
    assert fit.inner_cv.startswith("none (too few subjects per class")
    assert fit.params["C"] == DEFAULT_CS[len(DEFAULT_CS) // 2]


def test_probe_standardises_on_training_rows_and_searches_c():
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], 30)
    z = rng.standard_normal((60, 5)) + y[:, None] * np.array([2.0, 0, 0, 0, 0])
    groups = np.repeat(["a", "b", "c", "d"], 15)
    fit = fit_probe(z, y, groups=groups)
    assert fit.params["C"] in DEFAULT_CS
    assert fit.inner_cv == "stratified group 3-fold by subject"
    np.testing.assert_allclose(fit.pipeline[0].mean_, z.mean(0))
    _, proba = fit.predict(z + 100.0)  # test rows never refit the scaler
    np.testing.assert_allclose(fit.pipeline[0].mean_, z.mean(0))
    assert proba.shape == (60, 2)
    one_class = np.zeros(60, int)
    with pytest.raises(ValueError, match="single class"):
        fit_probe(z, one_class)
    few = fit_probe(z[[0, 30]], y[[0, 30]])  # 1 shot per class: no inner CV possible
    assert few.inner_cv.startswith("none")
