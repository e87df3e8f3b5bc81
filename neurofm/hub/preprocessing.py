"""Check that data are prepared the way a pretrained model expects (sampling rate, patch length).

A checkpoint's ``config.json`` records the sampling rate and patch length it was trained with; a
model fed 256-Hz data or 0.5-s patches still runs, but its outputs mean nothing. Evaluation and
user code call :func:`check_preprocessing` before encoding to turn that into a clear error.
"""

from __future__ import annotations

import math

from neurofm.data.spec import legacy_preprocessing


def expected_preprocessing(config) -> dict:
    """The preprocessing dict of a model, a tokenizer or a ``config.json`` dict.

    Returns a dict with at least ``sfreq`` (Hz) and ``patch_size`` (samples) when recorded.
    """
    if hasattr(config, "preprocessing") and hasattr(config, "patch_size"):
        out = legacy_preprocessing(config.preprocessing)  # a BrainEncoder
        if "patch_size" not in out and hasattr(config, "patch_size"):
            out["patch_size"] = int(config.patch_size)
        return out
    if hasattr(config, "config") and hasattr(config.config, "to_dict"):
        config = config.config.to_dict()  # a NeuralTokenizer
    if not isinstance(config, dict):
        raise TypeError(f"check_preprocessing needs a model, a tokenizer or a config.json dict; "
                        f"got {type(config).__name__}.")
    out = dict(config.get("preprocessing") or {})
    hyper = config.get("hyperparameters") or {}
    for key in ("sfreq", "patch_size"):
        if key not in out:
            value = config.get(key, hyper.get(key))
            if value is not None:
                out[key] = value
    return out


def check_preprocessing(config, sfreq: float, patch_size: int | None = None) -> dict:
    """Raise ``ValueError`` when data at ``sfreq`` Hz in ``patch_size``-sample patches do not fit.

    Parameters
    ----------
    config : BrainEncoder, NeuralTokenizer or dict
        The model (its ``preprocessing``), or a ``config.json`` dict.
    sfreq : float
        Sampling rate of the data (Hz).
    patch_size : int or None
        Samples per patch of the data (``x.shape[-1]``); None skips that check.

    Returns
    -------
    dict: the model's expected preprocessing (``sfreq``, ``patch_size``, band, notch, scales …).

    Raises
    ------
    ValueError
        Naming the mismatch and the fix (resample, or window with the model's patch length).
    """
    expected = expected_preprocessing(config)
    want_sfreq = expected.get("sfreq")
    want_patch = expected.get("patch_size")
    if want_sfreq is None:
        raise ValueError("The model's config records no sampling rate ('sfreq' in its "
                         "preprocessing); it cannot be checked -- re-save it with neurofm.")
    if not math.isclose(float(sfreq), float(want_sfreq), rel_tol=1e-6):
        raise ValueError(f"The model was pretrained at {want_sfreq:g} Hz but the data are at "
                         f"{float(sfreq):g} Hz; resample first (raw.resample({want_sfreq:g}) or "
                         f"neurofm.data.PreprocessConfig(sfreq={want_sfreq:g})).")
    if patch_size is not None and want_patch is not None and int(patch_size) != int(want_patch):
        seconds = int(want_patch) / float(want_sfreq)
        raise ValueError(f"The model expects patches of {int(want_patch)} samples "
                         f"({seconds:g} s at {want_sfreq:g} Hz) but the data have {int(patch_size)}; "
                         f"window with patch_seconds={seconds:g} "
                         "(neurofm.data.window_recording).")
    return expected
