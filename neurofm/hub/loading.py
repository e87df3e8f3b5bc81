"""``neurofm.from_pretrained``: one entry point for every saved model and tokenizer.

>>> model = neurofm.from_pretrained("org/neurofm-criss-cross-base")          # Hub repo
>>> model = neurofm.from_pretrained("runs/exp1/final")                       # local directory
>>> model = neurofm.from_pretrained("cbramod:pretrained_weights.pth")        # published weights

``config.json`` says what to build: an ``architecture`` (a registry name, see
:func:`neurofm.models.list_models`) for encoders, ``model_type: "neurofm_tokenizer"`` for the
neural tokenizer. A config written by a newer neurofm whose fields this version does not know
loads with a warning (the unknown fields are ignored); the weights file is checked before use so
a corrupted or truncated download is reported by name with the fix.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import fields
from pathlib import Path

from neurofm._version import __version__
from neurofm.hub.files import CONFIG_NAME, WEIGHTS_NAME, check_safetensors, resolve_model_dir

#: Top-level fields of an encoder's config.json that this version understands.
MODEL_CONFIG_FIELDS = frozenset({"architecture", "hyperparameters", "neurofm_version",
                                 "preprocessing"})
#: ``PREFIX:PATH`` sources that are imported from published (non-neurofm) checkpoints.
IMPORT_PREFIXES = ("cbramod", "labram")


def read_config(directory) -> dict:
    """Parse ``config.json`` of a model or tokenizer directory (clear errors when unusable)."""
    path = Path(directory) / CONFIG_NAME
    if not path.is_file():
        raise FileNotFoundError(f"No {CONFIG_NAME} in {directory}; a model directory is written "
                                "by model.save_pretrained(dir).")
    try:
        config = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{path} is not valid JSON ({err}); download or save it again.") from None
    if not isinstance(config, dict):  # bad file content, not a caller's type error
        raise ValueError(f"{path} does not hold a JSON object; it is not a neurofm config.")  # noqa: TRY004
    return config


def config_kind(config: dict, path="config.json") -> str:
    """``"model"`` (registry architecture) or ``"tokenizer"``; ``ValueError`` otherwise."""
    from neurofm.tokenizer.model import MODEL_TYPE

    if "architecture" in config:
        return "model"
    if config.get("model_type") == MODEL_TYPE:
        return "tokenizer"
    raise ValueError(f"{path} has neither 'architecture' (a neurofm model) nor model_type="
                     f"{MODEL_TYPE!r} (a neurofm tokenizer); it was not written by neurofm. "
                     "Published CBraMod/LaBraM weights are imported with 'cbramod:PATH' or "
                     "'labram:PATH'.")


def _is_newer(version: str) -> bool:
    from packaging.version import InvalidVersion, Version

    try:
        return Version(version) > Version(__version__)
    except InvalidVersion:
        return False


def warn_about_version(config: dict, path) -> None:
    """Warn when ``config`` comes from a newer neurofm or has top-level fields unknown here."""
    written_by = str(config.get("neurofm_version", ""))
    unknown = sorted(set(config) - MODEL_CONFIG_FIELDS) if "architecture" in config else []
    if unknown or (written_by and _is_newer(written_by)):
        warnings.warn(f"{path} was written by neurofm {written_by or '(unknown version)'}; this is "
                      f"neurofm {__version__}. Unknown fields {unknown} are ignored; "
                      "upgrade neurofm if the model behaves unexpectedly.", UserWarning,
                      stacklevel=3)


def _load_model(directory: Path, config: dict, map_location):
    from neurofm.models.pretrained import from_pretrained as load_local
    from neurofm.models.registry import list_models

    if config["architecture"] not in list_models():
        raise ValueError(f"{directory / CONFIG_NAME} needs architecture "
                         f"{config['architecture']!r}, unknown to neurofm {__version__} "
                         f"(written by {config.get('neurofm_version', '?')}); upgrade neurofm. "
                         f"Known: {', '.join(list_models())}.")
    try:
        return load_local(directory, map_location=map_location)
    except RuntimeError as err:  # load_state_dict: tensor shapes differ from the config's
        details = [line.strip() for line in str(err).splitlines() if "size mismatch" in line]
        raise ValueError(f"{directory / WEIGHTS_NAME} does not match the {config['architecture']} "
                         f"described by {CONFIG_NAME} ({len(details)} tensors differ in shape, "
                         f"e.g. {details[:1]}); the two files come from different models -- "
                         "save or download the model again.") from None


def _load_tokenizer(directory: Path, config: dict, map_location):
    from safetensors.torch import load_file

    from neurofm.tokenizer.model import NeuralTokenizer, TokenizerConfig

    known = {f.name for f in fields(TokenizerConfig)}
    values = {k: v for k, v in config.items() if k != "model_type"}
    unknown = sorted(set(values) - known)
    if unknown:
        warnings.warn(f"{directory / CONFIG_NAME} has tokenizer fields {unknown} unknown to "
                      f"neurofm {__version__} (written by a newer version?); ignoring "
                      "them.", UserWarning, stacklevel=3)
    tokenizer = NeuralTokenizer(TokenizerConfig.from_dict(
        {k: v for k, v in values.items() if k in known}))
    state = load_file(str(directory / WEIGHTS_NAME), device=str(map_location))
    state = tokenizer.upgrade_state_dict(state, int(config.get("format_version", 1)))
    result = tokenizer.load_state_dict(state, strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise ValueError(f"{directory / WEIGHTS_NAME} does not match the tokenizer in "
                         f"{CONFIG_NAME}: missing {result.missing_keys[:5]}, unexpected "
                         f"{result.unexpected_keys[:5]}.")
    return tokenizer.eval()


def _split_import_prefix(text: str):
    prefix, sep, rest = text.partition(":")
    if sep and prefix.lower() in IMPORT_PREFIXES:
        return prefix.lower(), rest
    return None, text


def from_pretrained(path_or_repo_id, revision: str | None = None, cache_dir=None,
                    local_files_only: bool = False, *, force_download: bool = False,
                    token: str | bool | None = None, map_location="cpu"):
    """Load a neurofm model or tokenizer from a directory, a Hub repo, or published weights.

    Parameters
    ----------
    path_or_repo_id : str or Path
        A local directory with ``config.json`` + ``model.safetensors``; a Hub repo id
        ``"org/name"``; or ``"cbramod:SRC"`` / ``"labram:SRC"`` to import CBraMod's or LaBraM's
        published weights (a ``.pth``/``.bin``/``.safetensors`` file or a directory holding
        one, e.g. braindecode's re-hosted repos downloaded locally).
    revision : str or None
        Branch, tag or commit of a Hub repo (default ``main``).
    cache_dir : str, Path or None
        Hub cache directory (default ``HF_HUB_CACHE``).
    local_files_only : bool
        Never touch the network (the cache must hold the revision). ``HF_HUB_OFFLINE=1`` does the
        same for every call.
    force_download : bool
        Fetch the files again even when cached (fixes a corrupted cache).
    token : str, bool or None
        Hub token for private repos.
    map_location : str or torch.device
        Where the weights are loaded.

    Returns
    -------
    A :class:`neurofm.models.BrainEncoder` (in eval mode) or a
    :class:`neurofm.tokenizer.NeuralTokenizer`.
    """
    prefix, source = _split_import_prefix(str(path_or_repo_id))
    if prefix == "cbramod":
        from neurofm.hub.convert_cbramod import convert_cbramod

        return convert_cbramod(source).to(map_location)
    if prefix == "labram":
        from neurofm.hub.convert_labram import convert_labram

        return convert_labram(source).to(map_location)
    directory = resolve_model_dir(source, revision=revision, cache_dir=cache_dir,
                                  local_files_only=local_files_only,
                                  force_download=force_download, token=token)
    config = read_config(directory)
    kind = config_kind(config, directory / CONFIG_NAME)
    warn_about_version(config, directory / CONFIG_NAME)
    hub_source = None if Path(source).expanduser().is_dir() else source
    check_safetensors(directory / WEIGHTS_NAME, source=hub_source)
    if kind == "tokenizer":
        return _load_tokenizer(directory, config, map_location)
    return _load_model(directory, config, map_location)
