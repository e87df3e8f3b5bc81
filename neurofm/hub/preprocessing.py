"""Check that data are prepared the way a pretrained model expects (sampling rate, patch length).

A checkpoint's ``config.json`` records the :class:`~neurofm.data.spec.PreprocessSpec` it was
trained with; a model fed 256-Hz data or 0.5-s patches still runs, but its outputs mean nothing.
:func:`check_preprocessing` is the public door onto the one check,
:func:`neurofm.data.spec.check_compatible`, which training and evaluation use too.
"""

from __future__ import annotations

from neurofm.data.spec import PreprocessSpec, check_compatible

#: Keys that give the patch length in a preprocessing record (0.1.0's names included).
_PATCH_KEYS = {"patch_samples", "patch_size", "patch_seconds", "n_steps"}


def expected_preprocessing(source) -> PreprocessSpec:
    """The :class:`PreprocessSpec` of a model, a tokenizer or a ``config.json`` dict.

    A record that lacks the sampling rate or the patch length gets the model's own
    (``hyperparameters``, the tokenizer's ``sfreq`` / ``patch_size``, ``model.patch_size``).

    Raises
    ------
    TypeError
        ``source`` is none of these.
    ValueError
        No sampling rate is recorded anywhere.
    """
    record = getattr(source, "preprocessing", None)
    if isinstance(record, PreprocessSpec):  # a model of this neurofm
        return record
    if isinstance(record, dict):  # a model whose record is still a dict
        return _spec(record, None, getattr(source, "patch_size", None), "the model's "
                     "preprocessing")
    if hasattr(source, "config") and hasattr(source.config, "to_dict"):
        source = source.config.to_dict()  # a NeuralTokenizer
    if not isinstance(source, dict):
        raise TypeError(f"check_preprocessing needs a model, a tokenizer or a config.json dict; "
                        f"got {type(source).__name__}.")
    hyper = source.get("hyperparameters") or {}
    return _spec(source.get("preprocessing") or {}, source.get("sfreq", hyper.get("sfreq")),
                 source.get("patch_size", hyper.get("patch_size")), "config.json preprocessing")


def _spec(record: dict, sfreq, patch, where: str) -> PreprocessSpec:
    record = dict(record)
    if sfreq is not None:
        record.setdefault("sfreq", sfreq)
    if patch is not None and not _PATCH_KEYS & set(record):
        record["patch_samples"] = patch
    if record.get("sfreq") is None:
        raise ValueError("The model's config records no sampling rate ('sfreq' in its "
                         "preprocessing); it cannot be checked -- re-save it with neurofm.")
    return PreprocessSpec.from_dict(record, where=where)


def check_preprocessing(config, sfreq: float, patch_size: int | None = None) -> PreprocessSpec:
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
    PreprocessSpec
        The model's preprocessing (``sfreq``, ``patch_samples``, band, mains, scales ...).

    Raises
    ------
    ValueError
        Naming the field, both values and the fix (resample, or window with the model's patch
        length).
    """
    expected = expected_preprocessing(config)
    have = {"sfreq": float(sfreq)}
    if patch_size is not None:
        have["patch_samples"] = int(patch_size)
    check_compatible(have, expected)
    return expected
