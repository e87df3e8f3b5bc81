"""Reference rows for every table: classic pipelines and supervised braindecode networks.

- ``bandpower``: log band power (Welch) per channel in the classic bands + the same linear probe
  as the foundation models (:func:`neurofm.eval.probe.fit_probe`); features are computed batch
  by batch, so it runs on trial sets whose signals stay on disk.
- ``fbcsp``: filter-bank common spatial patterns (MNE's ``CSP`` per band, log-variance features,
  fitted on the training side of each fold) + the same probe. It filters every trial in memory
  and is refused for trial sets whose signals stay on disk (:data:`IN_MEMORY_ONLY`).
- ``eegnet``, ``shallow``: braindecode's ``EEGNet`` / ``ShallowFBCSPNet`` trained from scratch on
  each fold's training trials with early stopping on a validation split of the training side.
  They need the ``braindecode`` extra; without it their row is :func:`skipped_row` (it reads
  "needs neurofm[braindecode]") and the other rows run.

Every baseline is a ``fit_predict(seed, fold)`` for :func:`neurofm.eval.harness.run_method`, so it
is scored on exactly the folds the model rows use.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import signal

from neurofm import compat
from neurofm.eval.harness import MethodResult
from neurofm.eval.probe import fit_probe_on_fold
from neurofm.eval.protocols import Fold, fit_and_validation
from neurofm.eval.training import FinetuneConfig, predict, train_model

#: Frequency bands (Hz) of the log-band-power features.
BANDS = {"delta": (1.0, 4.0), "theta": (4.0, 8.0), "alpha": (8.0, 13.0), "beta": (13.0, 30.0),
         "gamma": (30.0, 45.0)}
#: Filter bank (Hz) of FBCSP.
FILTER_BANK = ((4, 8), (8, 12), (12, 16), (16, 20), (20, 24), (24, 28), (28, 32), (32, 40))
#: Baseline names accepted by ``neurofm probe --baselines``.
BASELINES = ("bandpower", "fbcsp", "eegnet", "shallow")
#: Baselines that need every trial in memory (not run on trial sets left on disk).
IN_MEMORY_ONLY = ("fbcsp",)
#: Table labels of the supervised braindecode networks.
SUPERVISED_LABELS = {"eegnet": "EEGNet (supervised)", "shallow": "ShallowFBCSPNet (supervised)"}


def log_band_power(X: np.ndarray, sfreq: float, bands: dict = BANDS) -> tuple[np.ndarray, list]:
    """Log power per channel and band.

    Parameters
    ----------
    X : ndarray, shape [n, C, T]
        Trials (any unit: the log makes the unit an offset the probe's scaler removes).
    sfreq : float

    Returns
    -------
    features : ndarray, shape [n, C * n_bands]
    names : list of str
        The bands used (those below the Nyquist frequency with at least one frequency bin).
    """
    nperseg = min(X.shape[-1], round(sfreq))
    freqs, psd = signal.welch(X, fs=sfreq, nperseg=nperseg, axis=-1)
    feats, used = [], []
    for name, (lo, hi) in bands.items():
        sel = (freqs >= lo) & (freqs < hi)
        if not sel.any():
            continue
        feats.append(np.log(psd[..., sel].mean(-1) + np.finfo(float).tiny))
        used.append(name)
    if not feats:
        raise ValueError(f"No band of {list(bands)} has a frequency bin at {sfreq:g} Hz with "
                         f"{X.shape[-1]}-sample trials.")
    return np.concatenate(feats, axis=1), used


def band_power_features(trials, batch_size: int = 256) -> np.ndarray:
    """:func:`log_band_power` of every trial of a trial set, read ``batch_size`` trials at a time
    (signals left on disk are never all in memory): ``[n, C * n_bands]``."""
    blocks = [log_band_power(np.asarray(block, dtype=np.float64), trials.sfreq)[0]
              for _, block in trials.batches(batch_size)]
    return np.concatenate(blocks)


def bandpower_method(X, sfreq, y, subjects, *, regression: bool):
    """``fit_predict`` of log-band-power + linear probe (features computed once).

    ``X`` is ``[n, C, T]`` trials, or a trial set (its features are computed batch by batch,
    :func:`band_power_features`; ``sfreq`` is then its rate).
    """
    if hasattr(X, "batches"):
        feats = band_power_features(X)
    else:
        feats, _ = log_band_power(np.asarray(X, dtype=np.float64), sfreq)

    def fit_predict(seed: int, fold: Fold):
        fit = fit_probe_on_fold(feats, y, subjects, fold, regression=regression, seed=seed)
        pred, proba = fit.predict(feats[fold.test])
        return pred, proba, {"params": fit.params}

    return fit_predict


def fbcsp_method(X, sfreq, y, subjects, *, n_components: int = 4):
    """``fit_predict`` of filter-bank CSP + linear probe (CSP refitted on each fold)."""
    from mne.decoding import CSP
    from mne.utils import use_log_level

    bank = [(lo, hi) for lo, hi in FILTER_BANK if hi < sfreq / 2]
    if not bank:
        raise ValueError(f"FBCSP needs a sampling rate above 2 x 8 Hz; got {sfreq:g} Hz.")
    filtered = []
    for lo, hi in bank:
        sos = signal.butter(4, (lo, hi), "bandpass", fs=sfreq, output="sos")
        padlen = min(3 * (2 * len(sos) + 1), X.shape[-1] - 1)
        filtered.append(signal.sosfiltfilt(sos, np.asarray(X, np.float64), axis=-1,
                                           padlen=padlen))
    n_comp = min(n_components, X.shape[1])

    def fit_predict(seed: int, fold: Fold):
        order = np.concatenate([fold.fitting, fold.test])  # CSP fitted on fold.train only
        feats = []
        with use_log_level("error"):
            for band in filtered:
                csp = CSP(n_components=n_comp, log=True, reg="ledoit_wolf")
                csp.fit(band[fold.train], y[fold.train])
                feats.append(csp.transform(band[order]))
        z = np.zeros((len(y), n_comp * len(filtered)))
        z[order] = np.concatenate(feats, 1)
        fit = fit_probe_on_fold(z, y, subjects, fold, seed=seed)
        pred, proba = fit.predict(z[fold.test])
        return pred, proba, {"params": fit.params, "bands": bank}

    return fit_predict


def skipped_row(name: str) -> MethodResult | None:
    """The table row of a baseline whose extra is missing, else None (the baseline can run).

    ``eegnet`` / ``shallow`` without braindecode (or with a braindecode that cannot load beside
    this torch) give a row without runs named ``"EEGNet (supervised): needs
    neurofm[braindecode]"``; its one skipped-fold note is the pip command.
    """
    if name not in SUPERVISED_LABELS or compat.braindecode_available():
        return None
    return MethodResult(f"{SUPERVISED_LABELS[name]}: {compat.needs_extra('braindecode')}",
                        errors=[f"not run: {compat.install_hint('braindecode')}"])


def _braindecode_net(name: str, n_chans: int, n_outputs: int, n_times: int, sfreq: float):
    models = compat.braindecode_models(f"the {SUPERVISED_LABELS[name]} baseline")
    if name == "eegnet":
        return models.EEGNet(n_chans=n_chans, n_outputs=n_outputs, n_times=n_times,
                      kernel_length=min(64, max(8, n_times // 2)))
    pool = min(75, max(4, n_times // 3))
    return models.ShallowFBCSPNet(n_chans=n_chans, n_outputs=n_outputs, n_times=n_times,
                           filter_time_length=min(25, max(4, n_times // 4)),
                           pool_time_length=pool, pool_time_stride=max(1, pool // 5))


def supervised_method(name: str, X: np.ndarray, sfreq: float, y, subjects, *, n_outputs: int,
                      regression: bool, config: FinetuneConfig, device="cpu"):
    """``fit_predict`` of a braindecode network trained from scratch on each fold.

    Parameters
    ----------
    X : ndarray of float32, shape [n, C, T], or an array-like of that shape
        Trials in model units (preprocessed like the model's input, before patching); an
        array-like (windows left on disk) is read batch by batch while training.
    """
    if isinstance(X, np.ndarray) or not hasattr(X, "shape"):
        X = np.ascontiguousarray(X, np.float32)

    def fit_predict(seed: int, fold: Fold):
        torch.manual_seed(seed)
        net = _braindecode_net(name, X.shape[1], n_outputs, X.shape[2], sfreq).to(device)
        fit_idx, val_idx = fit_and_validation(fold, y, subjects, fraction=config.val_fraction,
                                              seed=seed, stratify=not regression)
        history = train_model(net, net, (X,), y, fit_idx, val_idx,
                              [{"params": list(net.parameters()), "lr": config.lr_head}], config,
                              regression=regression, seed=seed, device=device,
                              desc=f"{name} {fold.name}")
        pred, proba = predict(net, net, (X,), fold.test, regression=regression,
                              device=device)
        return pred, proba, {"history": history.to_dict()}

    return fit_predict
