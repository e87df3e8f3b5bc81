"""Find a model directory (local path or Hub repo) and check its files before loading them.

A neurofm model or tokenizer directory holds ``config.json`` + ``model.safetensors`` (+ the
``README.md`` model card). :func:`resolve_model_dir` returns such a directory for a local path,
or downloads a Hub repository through ``huggingface_hub.snapshot_download`` -- so the Hub cache
(``HF_HUB_CACHE``), revisions (branch, tag or commit), offline mode (``HF_HUB_OFFLINE=1``) and
tokens behave as Hugging Face users know them. :func:`check_safetensors` reads a weights file's
header and size so a corrupted or truncated download is reported by name, with the fix.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
CARD_NAME = "README.md"
#: Files fetched from a Hub repository (anything else in the repo is left on the Hub).
HUB_PATTERNS = [CONFIG_NAME, "*.safetensors", CARD_NAME]
#: Largest plausible safetensors header (the format itself caps it at 100 MB).
_MAX_HEADER_BYTES = 100_000_000


def _redownload_hint(source: str | None) -> str:
    if source:
        return (f"download it again with neurofm.from_pretrained({source!r}, "
                "force_download=True)")
    return "save or download the model again"


def check_safetensors(path, source: str | None = None) -> dict:
    """Check that ``path`` is a complete safetensors file; return its header.

    Parameters
    ----------
    path : str or Path
        The weights file.
    source : str or None
        The repo id or path the user asked for, quoted in the fix of the error message.

    Returns
    -------
    dict
        The JSON header: tensor name -> ``{"dtype", "shape", "data_offsets"}`` (and
        ``"__metadata__"``).

    Raises
    ------
    FileNotFoundError
        When the file is missing.
    ValueError
        When the file is truncated or its header is unreadable, naming the file and the fix.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found; a model directory holds {CONFIG_NAME} and "
                                f"{WEIGHTS_NAME} (written by model.save_pretrained(dir)).")
    size = path.stat().st_size
    fix = _redownload_hint(source)
    with path.open("rb") as f:
        prefix = f.read(8)
        if len(prefix) < 8:
            raise ValueError(f"{path} is truncated ({size} bytes, not even a safetensors "
                             f"header); {fix}.")
        (header_len,) = struct.unpack("<Q", prefix)
        if header_len > min(_MAX_HEADER_BYTES, size - 8):
            raise ValueError(f"{path} is corrupted or truncated (its header claims {header_len} "
                             f"bytes but the file has {size}); {fix}.")
        raw = f.read(header_len)
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ValueError(f"{path} is corrupted (its safetensors header is not valid JSON); "
                         f"{fix}.") from None
    if not isinstance(header, dict):  # bad file content, not a caller's type error
        raise ValueError(f"{path} is corrupted (unexpected safetensors header); {fix}.")  # noqa: TRY004
    ends = [entry["data_offsets"][1] for name, entry in header.items()
            if name != "__metadata__" and isinstance(entry, dict) and "data_offsets" in entry]
    expected = 8 + header_len + max(ends, default=0)
    if size < expected:
        raise ValueError(f"{path} is truncated: {size} bytes of the {expected} its header "
                         f"describes; {fix}.")
    return header


def _looks_like_path(text: str) -> bool:
    return text.startswith((".", "/", "~")) or "\\" in text or text.count("/") > 1


def resolve_model_dir(path_or_repo_id, revision: str | None = None, cache_dir=None,
                      local_files_only: bool = False, force_download: bool = False,
                      token: str | bool | None = None) -> Path:
    """A local directory holding ``config.json`` + weights for a path or a Hub repo id.

    Parameters
    ----------
    path_or_repo_id : str or Path
        A local model directory, or a Hub repo id ``"org/name"``.
    revision : str or None
        Branch, tag or commit hash of a Hub repo (default: ``main``); not allowed with a local
        directory.
    cache_dir : str, Path or None
        Hub cache directory (default: ``HF_HUB_CACHE``, ``~/.cache/huggingface/hub``).
    local_files_only : bool
        Use the Hub cache only (as with ``HF_HUB_OFFLINE=1``).
    force_download : bool
        Download again even when cached (the fix for a corrupted cache).
    token : str, bool or None
        Hub token (default: the logged-in token or ``HF_TOKEN``).

    Returns
    -------
    Path of the directory (for a Hub repo: its snapshot inside the cache).
    """
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import (
        HFValidationError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    text = str(path_or_repo_id)
    path = Path(text).expanduser()
    if path.is_dir():
        if revision is not None:
            raise ValueError(f"{text} is a local directory, which has no revisions; drop "
                             f"revision={revision!r} or pass a Hub repo id.")
        return path
    if path.exists():
        raise ValueError(f"{text} is a file; pass the directory that holds {CONFIG_NAME} and "
                         f"{WEIGHTS_NAME} (or 'cbramod:{text}' / 'labram:{text}' to import "
                         "published weights).")
    if _looks_like_path(text):
        raise FileNotFoundError(f"No model directory at {text}; check the path, or pass a Hub "
                                "repo id 'org/name'.")
    try:
        snapshot = snapshot_download(
            repo_id=text, revision=revision, cache_dir=cache_dir, allow_patterns=HUB_PATTERNS,
            local_files_only=local_files_only, force_download=force_download, token=token,
            library_name="neurofm")
    except HFValidationError as err:
        raise ValueError(f"{text!r} is neither a local directory nor a valid Hub repo id "
                         f"('org/name'): {err}") from None
    except RevisionNotFoundError:
        raise ValueError(f"Hub repo {text} has no revision {revision!r}; list its branches and "
                         "tags on the Hub, or omit revision for 'main'.") from None
    except RepositoryNotFoundError:
        raise ValueError(f"Hub repo {text} was not found (or is private: log in with "
                         "`hf auth login` or pass token=...).") from None
    except LocalEntryNotFoundError as err:
        where = cache_dir or "the Hugging Face cache (HF_HUB_CACHE)"
        raise FileNotFoundError(
            f"{text} (revision {revision or 'main'}) is not in {where} and the Hub cannot be "
            "reached (offline: HF_HUB_OFFLINE=1 or local_files_only=True, or no network). "
            f"Download it once while online, or pass a local directory. ({err})") from None
    snapshot = Path(snapshot)
    if not (snapshot / CONFIG_NAME).is_file():
        raise FileNotFoundError(f"Hub repo {text} (revision {revision or 'main'}) has no "
                                f"{CONFIG_NAME}; it is not a neurofm model repository.")
    return snapshot
