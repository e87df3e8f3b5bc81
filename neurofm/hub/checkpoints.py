"""Read published (non-neurofm) checkpoints: raw PyTorch state dicts or safetensors files.

Published EEG foundation models ship their weights in several ways: CBraMod's
``pretrained_weights.pth`` (a raw ``state_dict``, ``module.``-prefixed when trained with
DataParallel), LaBraM's ``labram-base.pth`` (``{"model": state_dict}``), and braindecode's
re-hosted Hub repos (``model.safetensors`` and/or ``pytorch_model.bin`` next to braindecode's
``config.json``). :func:`read_state_dict` accepts any of these -- a file, a directory, or a Hub
repo id -- and returns a flat ``{name: tensor}`` dict.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import torch

from neurofm.model_folder import check_safetensors, looks_like_path
from neurofm.torch_files import DamagedFileError, load_torch_file

#: Weight files looked for, in order, inside a checkpoint directory.
CHECKPOINT_NAMES = ("model.safetensors", "pytorch_model.bin", "pretrained_weights.pth")
#: Keys under which training scripts nest the state dict.
_NESTING_KEYS = ("state_dict", "model", "model_state_dict", "module")


def _unwrap(obj, path: Path) -> dict:
    for _ in range(3):
        if isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor)
                                                 for v in obj.values()):
            return dict(obj)
        nested = next((obj[k] for k in _NESTING_KEYS if isinstance(obj, dict) and k in obj), None)
        if nested is None:
            break
        obj = nested
    raise ValueError(f"{path} does not hold a state dict (name -> tensor); pass the weights file "
                     "that the authors published (e.g. CBraMod's pretrained_weights.pth).")


def _find_in_directory(directory: Path) -> Path:
    for name in CHECKPOINT_NAMES:
        if (directory / name).is_file():
            return directory / name
    found = sorted(p for ext in ("*.safetensors", "*.pth", "*.pt", "*.bin")
                   for p in directory.glob(ext))
    if len(found) == 1:
        return found[0]
    if not found:
        raise FileNotFoundError(f"No weights in {directory}: expected one of "
                                f"{list(CHECKPOINT_NAMES)} (or a single .pth/.pt/.bin/"
                                ".safetensors file).")
    raise ValueError(f"{directory} holds several weight files {[p.name for p in found]}; pass "
                     "the one to convert.")


def _download(repo_id: str, revision: str | None = None) -> Path:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HFValidationError, LocalEntryNotFoundError

    try:
        return Path(snapshot_download(repo_id, revision=revision,
                                      allow_patterns=list(CHECKPOINT_NAMES),
                                      library_name="neurofm"))
    except HFValidationError:
        raise FileNotFoundError(f"{repo_id} is neither an existing file/directory nor a Hub "
                                "repo id; check the path.") from None
    except LocalEntryNotFoundError as err:
        raise FileNotFoundError(f"{repo_id} is not a local path and could not be fetched from "
                                f"the Hub ({err}); download the weights first and pass the "
                                "file.") from None


def checkpoint_file(src, revision: str | None = None) -> Path:
    """The weights file for ``src``: itself, the checkpoint inside a directory, or a Hub repo's
    (at ``revision``: a branch, tag or commit; default main)."""
    path = Path(str(src)).expanduser()
    if path.is_file():
        return path
    if path.is_dir():
        return _find_in_directory(path)
    if looks_like_path(str(src)) or path.suffix in (".pth", ".pt", ".bin", ".safetensors"):
        raise FileNotFoundError(f"{src} does not exist; check the path to the weights file.")
    return _find_in_directory(_download(str(src), revision))


def read_state_dict(src, *, inert: Iterable[str] = (),
                    revision: str | None = None) -> tuple[dict, Path]:
    """Read a published checkpoint, running no code from it.

    Parameters
    ----------
    src : str or Path
        A ``.pth``/``.pt``/``.bin`` file (PyTorch pickle, read with ``weights_only=True``), a
        ``.safetensors`` file, a directory holding one of :data:`CHECKPOINT_NAMES`, or a Hub
        repo id such as ``"braindecode/cbramod-pretrained"``.
    inert : iterable of str
        Globals the pickle may name besides tensors (``"argparse.Namespace"``: training
        arguments saved beside the weights); they are read as inert stand-ins that run nothing
        (:class:`neurofm.torch_files.InertObject`) and only the tensors are used.
    revision : str or None
        Branch, tag or commit when ``src`` is a Hub repo id (default main).

    Returns
    -------
    (state_dict, path): ``{name: tensor}`` and the file it came from.

    Raises
    ------
    RefusedGlobalError
        The pickle names another Python object; the message names it and how to read the file
        anyway when it is harmless.
    DamagedFileError
        The file is truncated or not a PyTorch file.
    """
    path = checkpoint_file(src, revision)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        check_safetensors(path)
        return load_file(str(path)), path
    try:
        obj = load_torch_file(path, inert=inert, refused_advice=(
            "If the file comes from the model's authors and what it names is plain data (such "
            "as argparse.Namespace, the training arguments saved beside the weights), pass "
            "--allow-global NAME (convert_*(..., inert_globals=[NAME])) for each: it is then "
            "read as an inert stand-in that runs nothing, and only the tensors are used."))
    except DamagedFileError as err:
        raise DamagedFileError(f"{err} Download it again.") from None
    return _unwrap(obj, path), path
