"""``config.json`` of a model folder: its two layouts, its format version, reading and writing it.

A registered model (every :class:`~neurofm.models.BrainEncoder`) writes::

    {"format_version": 2, "neurofm_version": "0.2.0", "architecture": "criss_cross_small",
     "hyperparameters": {...every constructor argument...},
     "preprocessing": {...how its input windows are made...}}

and the neural tokenizer ``{"format_version": 2, "neurofm_version": ...,
"model_type": "neurofm_tokenizer", ...its TokenizerConfig fields}``.

``format_version`` numbers the layout of the whole folder (config keys and state-dict names).
Files written by neurofm 0.1.0 have none: they are format 1. This release writes
:data:`FORMAT_VERSION`; a folder of a newer format is refused with a message naming both
versions, an older one is read and its weights upgraded by the model's ``upgrade_state_dict``.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

from neurofm._version import __version__
from neurofm.model_folder.files import write_text_atomically
from neurofm.strict import unknown_keys

CONFIG_NAME = "config.json"
#: Format of the model and tokenizer folders this release writes.
FORMAT_VERSION = 2
#: Format of a folder whose config.json has no ``format_version`` (written by neurofm 0.1.0).
UNVERSIONED_FORMAT = 1
#: ``model_type`` of a tokenizer folder's config.json.
TOKENIZER_MODEL_TYPE = "neurofm_tokenizer"
#: Keys every config.json carries beside its layout's own.
VERSION_KEYS = ("format_version", "neurofm_version")
#: Top-level keys of a registered model's config.json that this release understands.
MODEL_CONFIG_KEYS = frozenset({"architecture", "hyperparameters", "preprocessing", *VERSION_KEYS})


def read_config(directory) -> dict:
    """Parse and check ``config.json`` of a model or tokenizer folder.

    Raises
    ------
    FileNotFoundError
        When the folder has no ``config.json``.
    ValueError
        When it is not a JSON object, or its format version is not one this release reads.
    """
    path = Path(directory) / CONFIG_NAME
    if not path.is_file():
        raise FileNotFoundError(f"No {CONFIG_NAME} in {directory}; a model directory is written "
                                "by model.save_pretrained(dir).")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{path} is not valid JSON ({err}); download or save it again.") from None
    if not isinstance(config, dict):  # bad file content, not a caller's type error:
        raise ValueError(  # noqa: TRY004
            f"{path} does not hold a JSON object; it is not a neurofm config.")
    format_version(config, path)
    return config


def format_version(config: dict, path=CONFIG_NAME) -> int:
    """The folder format of ``config`` (1 when absent); ``ValueError`` when newer than this release.

    Parameters
    ----------
    config : dict
        A parsed ``config.json``.
    path : str or Path
        Where it was read, for the messages.
    """
    version = config.get("format_version", UNVERSIONED_FORMAT)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ValueError(f"{path}: format_version must be a positive integer, not {version!r}; "
                         "the file is damaged -- save or download the model again.")
    if version > FORMAT_VERSION:
        raise ValueError(f"{path} has format version {version}, but neurofm {__version__} reads "
                         f"model folders up to format version {FORMAT_VERSION}; upgrade neurofm "
                         "(pip install --upgrade neurofm) to load it.")
    return version


def folder_kind(config: dict, path=CONFIG_NAME) -> str:
    """``"model"`` (a registry ``architecture``) or ``"tokenizer"``; ``ValueError`` otherwise."""
    if "architecture" in config:
        return "model"
    if config.get("model_type") == TOKENIZER_MODEL_TYPE:
        return "tokenizer"
    raise ValueError(f"{path} has neither 'architecture' (a neurofm model) nor model_type="
                     f"{TOKENIZER_MODEL_TYPE!r} (a neurofm tokenizer); it was not written by "
                     "neurofm. Published CBraMod/LaBraM weights are imported with 'cbramod:PATH' "
                     "or 'labram:PATH'.")


def _is_newer(version: str) -> bool:
    from packaging.version import InvalidVersion, Version

    try:
        return Version(version) > Version(__version__)
    except InvalidVersion:
        return False


def warn_about_version(config: dict, path=CONFIG_NAME) -> None:
    """Warn when ``config`` comes from a newer neurofm or has top-level keys unknown here.

    Unknown keys are checked for registered models; a tokenizer's keys are its config's fields,
    which the tokenizer checks itself.
    """
    written_by = str(config.get("neurofm_version", ""))
    unknown = unknown_keys(config, MODEL_CONFIG_KEYS) if "architecture" in config else []
    if unknown or (written_by and _is_newer(written_by)):
        warnings.warn(f"{path} was written by neurofm {written_by or '(unknown version)'}; this is "
                      f"neurofm {__version__}. Unknown fields {unknown} are ignored; "
                      "upgrade neurofm if the model behaves unexpectedly.", UserWarning,
                      stacklevel=3)


def write_config(directory, body: dict) -> dict:
    """Write ``body`` with this release's format and version as ``directory/config.json``.

    Returns
    -------
    dict: the config as written.
    """
    config = {**body, "format_version": FORMAT_VERSION, "neurofm_version": __version__}
    write_text_atomically(Path(directory) / CONFIG_NAME,
                          json.dumps(config, indent=2, sort_keys=True) + "\n")
    return config
