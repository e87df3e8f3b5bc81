"""``neurofm.from_pretrained``: one entry point for every model, tokenizer and import.

>>> model = neurofm.from_pretrained("org/neurofm-criss-cross-base")          # Hub repo
>>> model = neurofm.from_pretrained("runs/exp1/model")                       # local folder
>>> model = neurofm.from_pretrained("cbramod:pretrained_weights.pth")        # published weights
>>> model = neurofm.from_pretrained("criss_cross_small")                     # random init

A folder's ``config.json`` says what to build: an ``architecture`` (a registry name, see
:func:`neurofm.models.list_models`) for encoders, ``model_type: "neurofm_tokenizer"`` for the
neural tokenizer; the class methods (:class:`neurofm.model_folder.ModelFolderMixin`) read the
files. This module sits above ``neurofm.models`` and ``neurofm.tokenizer`` and builds through
the registry, so every place that takes a model takes the same strings.
"""

from __future__ import annotations

from pathlib import Path

from neurofm.hub.convert_cbramod import convert_cbramod
from neurofm.hub.convert_labram import convert_labram
from neurofm.model_folder import CONFIG_NAME, folder_kind, load_folder, read_config, resolve_folder
from neurofm.models import BrainEncoder, create_model, list_models
from neurofm.tokenizer.model import NeuralTokenizer

#: ``PREFIX:PATH`` sources that are imported from published (non-neurofm) checkpoints.
IMPORT_PREFIXES = ("cbramod", "labram")
#: The class that loads each kind of folder (see :func:`neurofm.model_folder.folder_kind`).
FOLDER_CLASSES = {"model": BrainEncoder, "tokenizer": NeuralTokenizer}


def _split_import_prefix(text: str):
    prefix, sep, rest = text.partition(":")
    if sep and prefix.lower() in IMPORT_PREFIXES:
        return prefix.lower(), rest
    return None, text


def _random_init(name: str, revision, map_location):
    if Path(name).expanduser().exists():
        raise ValueError(f"{name!r} is both a registered model name and a local path; pass "
                         f"'./{name}' to load the folder, or neurofm.models.create_model({name!r}) "
                         "for a newly initialised model.")
    if revision is not None:
        raise ValueError(f"{name} is a registered model name (random initialisation), which has "
                         f"no revisions; drop revision={revision!r} or pass a Hub repo id.")
    return create_model(name).to(map_location).eval()


def from_pretrained(id_or_dir, revision: str | None = None, cache_dir=None,
                    local_files_only: bool = False, *, force_download: bool = False,
                    token: str | bool | None = None, map_location="cpu"):
    """Load a neurofm model or tokenizer from a folder or the Hub, import one, or build one.

    Parameters
    ----------
    id_or_dir : str or Path
        One of

        - a local folder with ``config.json`` + ``model.safetensors`` (written by
          ``save_pretrained``, pretraining or ``neurofm convert``);
        - a Hub repo id ``"org/name"``;
        - ``"cbramod:SRC"`` / ``"labram:SRC"``: CBraMod's or LaBraM's published weights (a
          ``.pth``/``.bin``/``.safetensors`` file, a folder holding one, or a Hub repo id);
        - a registered model name (:func:`neurofm.models.list_models`): a newly initialised
          model (random weights).

        An argument that looks like a path and does not exist is reported as a missing folder,
        never looked up on the Hub.
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
        Where the model is put.

    Returns
    -------
    A :class:`neurofm.models.BrainEncoder` or a :class:`neurofm.tokenizer.NeuralTokenizer`, in
    eval mode.
    """
    text = str(id_or_dir)
    prefix, source = _split_import_prefix(text)
    if prefix == "cbramod":
        return convert_cbramod(source, revision=revision).to(map_location)
    if prefix == "labram":
        return convert_labram(source, revision=revision).to(map_location)
    if isinstance(id_or_dir, str) and text in list_models():
        return _random_init(text, revision, map_location)
    directory, repo_id = resolve_folder(id_or_dir, revision=revision, cache_dir=cache_dir,
                                        local_files_only=local_files_only,
                                        force_download=force_download, token=token)
    kind = folder_kind(read_config(directory), directory / CONFIG_NAME)
    return load_folder(FOLDER_CLASSES[kind], directory, source=repo_id, map_location=map_location)
