"""``neurofm.embed``: one call from an MNE recording to window embeddings.

::

    raw = neurofm.data.read_raw("sample:emotiv14")
    out = neurofm.embed("criss_cross_small", raw)      # or a folder, a Hub id, "cbramod:..."
    out.embeddings                                     # [n_windows, D]
    out.times                                          # start of each window (s)

The model's recorded preprocessing (:class:`~neurofm.data.spec.PreprocessSpec`: channel kinds,
scale to model units, band-pass, notch, sampling rate) is applied by the code ``neurofm
prepare`` runs (:func:`neurofm.data.preprocess_raw`; epochs:
:func:`neurofm.data.epochs_to_windows`), without what only a pretraining corpus wants: no
trimming of the ends, no minimum length, no amplitude rejection. The rules of the data layer
hold: a recording whose Nyquist frequency is below the model's low-pass (a 128-Hz file and
75 Hz) keeps its band up to its Nyquist frequency, with a
:class:`~neurofm.data.band.BandLimitWarning`. Sensors come from ``inst.info`` (positions from the
file, else the standard montage by channel name).

**Windows.** A continuous recording is cut into back-to-back windows of ``window_seconds``
(whole patches). By default the window is the one the model records
(``preprocessing.window_samples``), else 30 s, shortened to the recording (whole patches) when
the recording is shorter; a window asked for explicitly is never shortened. Samples after the
last whole window are not used. Epochs are windows already: each epoch is one window (padded to
whole patches; padding never attended to).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

import mne
import numpy as np
import torch

from neurofm.data.preprocess import PreprocessConfig, preprocess_raw
from neurofm.data.spec import PreprocessSpec, as_spec
from neurofm.data.windows import epochs_to_windows, window_recording
from neurofm.hub import from_pretrained
from neurofm.models import BrainEncoder
from neurofm.sensors import SensorBatch, SensorLayout

#: Window length (s) when the model records none.
DEFAULT_WINDOW_SECONDS = 30.0
#: ``pool`` values: the model's pooled embedding, or one vector per channel (latent).
POOLS = ("mean", None)


@dataclass
class Embeddings:
    """Window embeddings of one recording.

    Attributes
    ----------
    embeddings : ndarray of float32, shape [W, D] or [W, C', D]
        ``pool="mean"``: the model's pooled embedding of each window. ``pool=None``: one vector
        per output row, averaged over the window's patches: ``C'`` is the channels the model
        read (:attr:`channels`), or its ``K`` latent channels for models that merge channels
        (``mamba_small``: 8), see :attr:`latent`.
    times : ndarray of float64, shape [W]
        Start of each window in seconds: from the first sample of a Raw (``raw.times``), or
        each epoch's start (its event time plus ``tmin``) for Epochs.
    window_seconds : float
        Window length (epochs: the epoch length, before padding to whole patches).
    sfreq : float
        Sampling rate the model read (Hz).
    channels : list of str
        The channels the model read, in order (channels of kinds the model does not keep are
        dropped).
    latent : bool
        Whether the rows of ``pool=None`` embeddings are latent channels, not :attr:`channels`.
    preprocessing : PreprocessSpec
        The model's preprocessing, as applied.
    report : list of str
        What preprocessing did, one line per step or finding.
    """

    embeddings: np.ndarray
    times: np.ndarray
    window_seconds: float
    sfreq: float
    channels: list[str]
    latent: bool
    preprocessing: PreprocessSpec
    report: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.embeddings)


def load_encoder(model, *, device: str | torch.device = "cpu") -> BrainEncoder:
    """The encoder ``model`` stands for, on ``device``.

    Parameters
    ----------
    model : BrainEncoder, str or path
        A model object (used as it is), or anything :func:`neurofm.from_pretrained` accepts: a
        model folder, a Hub repo id, ``"cbramod:SRC"`` / ``"labram:SRC"``, or a registered name
        (:func:`neurofm.models.list_models`; random initialisation).

    Raises
    ------
    TypeError
        ``model`` is another kind of object (a braindecode or plain torch module).
    ValueError
        ``model`` names a neural tokenizer, not an encoder.
    """
    if isinstance(model, BrainEncoder):
        return model.to(device)
    if isinstance(model, (str, os.PathLike)):
        loaded = from_pretrained(model, map_location=device)
        if not isinstance(loaded, BrainEncoder):  # what the folder holds, not the argument
            raise ValueError(  # noqa: TRY004
                f"{model} holds a {type(loaded).__name__}, not an encoder; pass a model folder, "
                "Hub id or registered model name (neurofm.models.list_models()).")
        return loaded
    raise TypeError(f"model must be a neurofm encoder or what neurofm.from_pretrained accepts (a "
                    f"folder, a Hub id, 'cbramod:...', a registered name); got "
                    f"{type(model).__name__}.")


def default_window_seconds(spec: PreprocessSpec, duration: float) -> float:
    """The window :func:`embed` cuts when none is given (see the module docstring).

    Parameters
    ----------
    spec : PreprocessSpec
        The model's preprocessing (its ``window_samples`` and patch length).
    duration : float
        Length of the preprocessed recording in seconds.
    """
    window = spec.window_seconds or DEFAULT_WINDOW_SECONDS
    if duration >= window:
        return window
    patch = spec.patch_seconds
    return math.floor(duration / patch + 1e-9) * patch


def features(model: BrainEncoder, x: torch.Tensor, sensors: SensorBatch | None,
             patch_valid: torch.Tensor, pool: str | None = "mean") -> torch.Tensor:
    """One batch through the model: ``[B, D]`` (``pool="mean"``, :meth:`BrainEncoder.embed`) or
    ``[B, C', D]`` (``pool=None``: the features averaged over valid patches, per output row).

    Parameters
    ----------
    model : BrainEncoder
    x : Tensor ``[B, C, N, P]``
    sensors : SensorBatch or None
    patch_valid : Tensor ``[B, N]`` bool
    pool : {"mean", None}
    """
    if pool == "mean":
        return model.embed(x, sensors, patch_valid=patch_valid)
    feats = model(x, sensors, patch_valid=patch_valid)  # [B, C', N, D]
    w = patch_valid[:, None, :, None].to(feats.dtype)
    return (feats * w).sum(2) / w.sum(2).clamp_min(1.0)


def encode(model: BrainEncoder, x: np.ndarray, patch_valid: np.ndarray, sensors: SensorLayout,
           *, pool: str | None = "mean", batch_size: int = 32,
           device: str | torch.device = "cpu") -> np.ndarray:
    """Run the model over preprocessed windows, batch by batch, without gradients.

    Parameters
    ----------
    model : BrainEncoder
    x : ndarray of float32, shape [W, C, N, P]
        Windows in model units.
    patch_valid : ndarray of bool, shape [W, N]
    sensors : SensorLayout
        The ``C`` channels. A model that looks channels up by name (``labram_base``) is given
        their names (``set_channel_names``).
    pool : {"mean", None}
        ``"mean"``: ``model.embed`` (``[W, D]``); None: the features averaged over valid patches
        per output row (``[W, C', D]``).

    Returns
    -------
    ndarray of float32, shape [W, D] or [W, C', D]
    """
    if pool not in POOLS:
        raise ValueError(f"pool must be 'mean' or None (one vector per channel); got {pool!r}.")
    device = torch.device(device)
    if hasattr(model, "set_channel_names"):
        model.set_channel_names(sensors.names)
    base = SensorBatch.from_layout(sensors).to(device) if model.needs_sensors else None
    was_training = model.training
    model.eval()
    out = []
    try:
        with torch.inference_mode():
            for i in range(0, len(x), batch_size):
                xb = torch.from_numpy(np.ascontiguousarray(x[i:i + batch_size])).to(device)
                pv = torch.from_numpy(patch_valid[i:i + batch_size]).to(device)
                sb = None if base is None else repeat_sensors(base, xb.shape[0])
                out.append(features(model, xb, sb, pv, pool).float().cpu().numpy())
    finally:
        model.train(was_training)
    if not out:
        dim = model.dim
        return np.zeros((0, dim) if pool == "mean" else (0, 0, dim), np.float32)
    return np.concatenate(out)


def repeat_sensors(sensors: SensorBatch, b: int) -> SensorBatch:
    """A batch of one repeated ``b`` times (views, no copies)."""
    return sensors.expand(b)


def embed(model, inst, window_seconds: float | None = None, pool: str | None = "mean", *,
          stride_seconds: float | None = None, batch_size: int = 32,
          device: str | torch.device = "cpu") -> Embeddings:
    """Embeddings of every window of an MNE recording, with the model's preprocessing applied.

    Parameters
    ----------
    model : BrainEncoder, str or path
        A model, or anything :func:`neurofm.from_pretrained` accepts (a folder, a Hub repo id,
        ``"cbramod:SRC"`` / ``"labram:SRC"``, a registered name for a randomly initialised
        model).
    inst : mne.io.BaseRaw or mne.BaseEpochs
        The recording, data in SI units (volts, tesla) as MNE keeps them.
    window_seconds : float, optional
        Window length for a Raw (a whole number of the model's patches). Default: the model's
        recorded window, else 30 s, shortened to the recording when it is shorter. Epochs are
        one window each: leave it None.
    pool : {"mean", None}
        ``"mean"``: one vector per window, ``[W, D]``. None: one vector per channel (or latent
        channel) per window, ``[W, C', D]``.
    stride_seconds : float, optional
        Step between window starts for a Raw (default: the window, no overlap).
    batch_size : int
        Windows per forward pass.
    device : str or torch.device

    Returns
    -------
    Embeddings
        ``.embeddings``, ``.times`` (each window's start, s), the channels, rate and report.

    Raises
    ------
    TypeError
        ``inst`` is not an MNE Raw or Epochs (read a file with :func:`neurofm.data.read_raw`).
    RecordingError
        The recording cannot be preprocessed for this model (channels without positions, NaN
        samples, Nyquist frequency below the high-pass, shorter than one patch or than the
        ``window_seconds`` asked for); the message names the recording and the fix.
    """
    encoder = load_encoder(model, device=device)
    spec = as_spec(encoder.preprocessing, where="the model's preprocessing")
    config = PreprocessConfig.from_spec(spec)
    if isinstance(inst, mne.io.BaseRaw):
        rec = preprocess_raw(inst, config)
        if window_seconds is None:
            window_seconds = default_window_seconds(spec, rec.duration)
            if window_seconds < (spec.window_seconds or DEFAULT_WINDOW_SECONDS):
                rec.report.append(f"window: {window_seconds:g} s, the whole recording (shorter "
                                  "than the default window)")
        windows = window_recording(rec, window_seconds, spec.patch_seconds, stride_seconds)
        report = rec.report + windows.report
        times = windows.start
    elif isinstance(inst, mne.BaseEpochs):
        if window_seconds is not None or stride_seconds is not None:
            raise ValueError("Epochs are one window each; crop them (epochs.crop) instead of "
                             "passing window_seconds or stride_seconds.")
        windows = epochs_to_windows(inst, config, patch_seconds=spec.patch_seconds)
        window_seconds = inst.times.size / inst.info["sfreq"]
        report = windows.report
        times = windows.start + inst.tmin
    else:
        raise TypeError(f"neurofm.embed reads an MNE Raw or Epochs; got {type(inst).__name__}. "
                        "Read a file with neurofm.data.read_raw(path) (or mne.io.read_raw), or "
                        "pass arrays to neurofm.interop.Embedder.")
    z = encode(encoder, windows.x, windows.patch_valid, windows.sensors, pool=pool,
               batch_size=batch_size, device=device)
    return Embeddings(embeddings=z, times=np.asarray(times, np.float64),
                      window_seconds=float(window_seconds), sfreq=float(windows.sfreq),
                      channels=list(windows.sensors.names), latent=encoder.unifies_channels,
                      preprocessing=spec, report=list(report))
