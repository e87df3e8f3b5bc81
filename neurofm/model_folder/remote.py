"""Model folders on the Hugging Face Hub: find one (local path or repo id) and upload one.

:func:`resolve_folder` returns a local folder for a path, or downloads a Hub repository through
``huggingface_hub.snapshot_download`` -- so the Hub cache (``HF_HUB_CACHE``), revisions (branch,
tag or commit), offline mode (``HF_HUB_OFFLINE=1``) and tokens behave as Hugging Face users know
them. An argument that looks like a path is never sent to the Hub: a missing folder is reported
as a missing folder. :func:`upload_folder` creates the repository when needed and uploads the
folder's files in one commit.
"""

from __future__ import annotations

import os
from pathlib import Path

from neurofm.model_folder.card import CARD_NAME
from neurofm.model_folder.config import CONFIG_NAME
from neurofm.model_folder.weights import WEIGHTS_NAME

#: Files fetched from and uploaded to a Hub repository (anything else stays where it is).
HUB_PATTERNS = [CONFIG_NAME, "*.safetensors", CARD_NAME]


def looks_like_path(text: str) -> bool:
    """True when ``text`` is meant as a local path rather than a Hub repo id ``"org/name"``.

    A path starts with ``.``, ``/`` or ``~``, ends in a path separator, or holds a separator
    more than once or not at all (a bare folder name: Hub repo ids are ``org/name``).
    """
    separators = tuple({"/", os.sep, os.altsep or "/"})
    if text.startswith((".", "~", *separators)) or text.endswith(separators):
        return True
    return sum(text.count(s) for s in separators) != 1


def resolve_folder(id_or_dir, revision: str | None = None, cache_dir=None,
                   local_files_only: bool = False, force_download: bool = False,
                   token: str | bool | None = None) -> tuple[Path, str | None]:
    """A local folder holding ``config.json`` + weights, for a path or a Hub repo id.

    Parameters
    ----------
    id_or_dir : str or Path
        A local model folder, or a Hub repo id ``"org/name"``.
    revision : str or None
        Branch, tag or commit hash of a Hub repo (default: ``main``); not allowed with a local
        folder.
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
    (folder, repo_id)
        The folder (for a Hub repo: its snapshot inside the cache) and the repo id it came from
        (None for a local folder).
    """
    text = str(id_or_dir)
    path = Path(text).expanduser()
    if path.is_dir():
        if revision is not None:
            raise ValueError(f"{text} is a local directory, which has no revisions; drop "
                             f"revision={revision!r} or pass a Hub repo id.")
        return path, None
    if path.exists():
        raise ValueError(f"{text} is a file; pass the directory that holds {CONFIG_NAME} and "
                         f"{WEIGHTS_NAME} (or 'cbramod:{text}' / 'labram:{text}' to import "
                         "published weights).")
    if isinstance(id_or_dir, os.PathLike) or looks_like_path(text):
        raise FileNotFoundError(f"No model directory at {text}: that folder does not exist (a "
                                f"model folder holds {CONFIG_NAME} and {WEIGHTS_NAME}). Check "
                                "the path, or pass a Hub repo id 'org/name'.")
    return _download(text, revision=revision, cache_dir=cache_dir,
                     local_files_only=local_files_only, force_download=force_download,
                     token=token), text


def _download(repo_id: str, *, revision, cache_dir, local_files_only, force_download,
              token) -> Path:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import (
        HFValidationError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    try:
        snapshot = snapshot_download(
            repo_id=repo_id, revision=revision, cache_dir=cache_dir, allow_patterns=HUB_PATTERNS,
            local_files_only=local_files_only, force_download=force_download, token=token,
            library_name="neurofm")
    except HFValidationError as err:
        raise ValueError(f"{repo_id!r} is neither a local directory nor a valid Hub repo id "
                         f"('org/name'): {err}") from None
    except RevisionNotFoundError:
        raise ValueError(f"Hub repo {repo_id} has no revision {revision!r}; list its branches "
                         "and tags on the Hub, or omit revision for 'main'.") from None
    except RepositoryNotFoundError:
        raise ValueError(f"Hub repo {repo_id} was not found (or is private: log in with "
                         "`hf auth login` or pass token=...), and no local folder "
                         f"{repo_id} exists.") from None
    except LocalEntryNotFoundError as err:
        where = cache_dir or "the Hugging Face cache (HF_HUB_CACHE)"
        raise FileNotFoundError(
            f"{repo_id} (revision {revision or 'main'}) is not in {where} and the Hub cannot be "
            "reached (offline: HF_HUB_OFFLINE=1 or local_files_only=True, or no network); no "
            f"local folder {repo_id} exists either. Download it once while online, or pass a "
            f"local directory. ({err})") from None
    snapshot = Path(snapshot)
    if not (snapshot / CONFIG_NAME).is_file():
        raise FileNotFoundError(f"Hub repo {repo_id} (revision {revision or 'main'}) has no "
                                f"{CONFIG_NAME}; it is not a neurofm model repository.")
    return snapshot


def upload_folder(directory, repo_id: str, *, commit_message: str | None = None,
                  private: bool | None = None, token: str | None = None,
                  branch: str | None = None, create_pr: bool | None = None,
                  allow_patterns: list[str] | str | None = None,
                  ignore_patterns: list[str] | str | None = None,
                  delete_patterns: list[str] | str | None = None) -> str:
    """Upload a model folder to the Hub repo ``repo_id`` (created when missing) in one commit.

    Parameters
    ----------
    directory : str or Path
        The folder (``config.json``, ``model.safetensors``, ``README.md``).
    repo_id : str
        ``"org/name"``.
    commit_message : str or None
    private : bool or None
        Visibility of a newly created repo (None = the Hub default).
    token : str or None
        Hub token (default: the logged-in one / ``HF_TOKEN``).
    branch : str or None
        Branch to commit to (created from ``main`` when missing).
    create_pr : bool or None
        Open a pull request instead of committing directly.
    allow_patterns, ignore_patterns, delete_patterns : list of str, str or None
        As in ``HfApi.upload_folder``; ``allow_patterns`` defaults to the model folder's files.

    Returns
    -------
    str: the URL of the commit (or pull request).
    """
    from huggingface_hub import HfApi

    directory = Path(directory)
    api = HfApi(token=token, library_name="neurofm")
    api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
    if branch is not None and not create_pr:
        api.create_branch(repo_id, branch=branch, exist_ok=True)
    info = api.upload_folder(
        repo_id=repo_id, folder_path=str(directory), repo_type="model", revision=branch,
        allow_patterns=HUB_PATTERNS if allow_patterns is None else allow_patterns,
        ignore_patterns=ignore_patterns, delete_patterns=delete_patterns,
        create_pr=bool(create_pr),
        commit_message=commit_message or f"Upload {directory.name} with neurofm")
    return str(getattr(info, "pr_url", None) or getattr(info, "commit_url", info))
