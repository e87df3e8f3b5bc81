"""Save and load models as a local directory: ``config.json`` + ``model.safetensors``.

``config.json`` holds the registry ``architecture`` name, every ``hyperparameter``, the
``neurofm_version`` that wrote it and the ``preprocessing`` the model expects (sampling rate,
patch length, and whatever the training run recorded: band, notch, per-kind scales). This is the
layout ``huggingface_hub`` uses; Hub download and model cards live in ``neurofm.hub``.
"""

from __future__ import annotations

import inspect
import json
import warnings
from pathlib import Path

from neurofm._version import __version__
from neurofm.models.base import BrainEncoder

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"


def save_pretrained(model: BrainEncoder, directory, preprocessing: dict | None = None) -> Path:
    """Write ``model`` to ``directory`` (created if needed).

    Parameters
    ----------
    model : BrainEncoder
        A model built by :func:`neurofm.models.create_model` (its ``model_name`` is recorded).
    directory : str or Path
    preprocessing : dict or None
        Extra preprocessing facts (e.g. ``PreprocessConfig.to_dict()``), merged over the model's.

    Returns
    -------
    Path of the directory.
    """
    from safetensors.torch import save_file

    if not model.model_name:
        raise ValueError(
            f"This {type(model).__name__} has no registry name; build it with "
            "neurofm.models.create_model(name, ...) so it can be reloaded by name."
        )
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    config = {
        "architecture": model.model_name,
        "hyperparameters": model.config,
        "neurofm_version": __version__,
        "preprocessing": {**legacy_preprocessing(model.preprocessing), **(preprocessing or {})},
    }
    (directory / CONFIG_NAME).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(tensors, str(directory / WEIGHTS_NAME), metadata={"format": "pt"})
    return directory


def legacy_preprocessing(preprocessing) -> dict:
    """A model's preprocessing as the dict of neurofm 0.1.0's key names (``patch_size``,
    ``notch``...), which this writer and the code that reads models' dicts use.

    ``preprocessing`` is a ``PreprocessSpec`` (what ``create_model`` sets), a dict (what
    :func:`from_pretrained` reads) or None.
    """
    if preprocessing is None or isinstance(preprocessing, dict):
        return dict(preprocessing or {})
    spec = preprocessing
    return {"sfreq": spec.sfreq, "patch_size": spec.patch_samples,
            "patch_seconds": spec.patch_seconds, "l_freq": spec.l_freq, "h_freq": spec.h_freq,
            "notch": spec.line_freq, "kinds": list(spec.kinds), "scales": dict(spec.scales),
            "window_samples": spec.window_samples}


def read_config(directory) -> dict:
    """Read and check ``config.json`` of a model directory."""
    path = Path(directory) / CONFIG_NAME
    if not path.is_file():
        raise FileNotFoundError(
            f"No {CONFIG_NAME} in {directory}; a model directory is written "
            "by model.save_pretrained(dir)."
        )
    try:
        config = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON ({err}); re-save the model.") from None
    missing = [k for k in ("architecture", "hyperparameters") if k not in config]
    if missing:
        raise ValueError(f"{path} lacks {missing}; it was not written by neurofm save_pretrained.")
    return config


def from_pretrained(directory, map_location="cpu") -> BrainEncoder:
    """Rebuild a model saved by :func:`save_pretrained` and load its weights.

    Hyperparameters this neurofm version does not know (written by a newer version) are
    ignored with a warning.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from neurofm.models.registry import create_model, model_spec

    directory = Path(directory)
    config = read_config(directory)
    spec = model_spec(config["architecture"])
    accepted = set(inspect.signature(spec.cls.__init__).parameters) - {"self"}
    hyper = dict(config["hyperparameters"])
    unknown = sorted(set(hyper) - accepted)
    if unknown:
        warnings.warn(
            f"{directory / CONFIG_NAME} has hyperparameters {unknown} unknown to "
            f"neurofm {__version__} (written by "
            f"{config.get('neurofm_version', '?')}); ignoring them.",
            stacklevel=2,
        )
        hyper = {k: v for k, v in hyper.items() if k in accepted}
    model = create_model(config["architecture"], **hyper)
    model.preprocessing = legacy_preprocessing(config.get("preprocessing", model.preprocessing))
    weights = directory / WEIGHTS_NAME
    if not weights.is_file():
        raise FileNotFoundError(f"No {WEIGHTS_NAME} in {directory}; the directory is incomplete.")
    try:
        state = load_file(str(weights), device=str(map_location))
    except (SafetensorError, OSError) as err:
        raise ValueError(
            f"{weights} could not be read ({err}); the file is corrupted or "
            "truncated -- download or save it again."
        ) from None
    state = model.upgrade_state_dict(state, int(config.get("format_version", 1)))
    result = model.load_state_dict(state, strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise ValueError(
            f"{weights} does not match {config['architecture']}: missing "
            f"{result.missing_keys[:5]}, unexpected {result.unexpected_keys[:5]}."
        )
    return model.eval()
