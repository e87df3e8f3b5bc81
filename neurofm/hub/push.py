"""Publish a model directory to the Hugging Face Hub (``neurofm hub push DIR REPO_ID``).

The directory is checked first (a readable ``config.json`` of a neurofm model or tokenizer and a
complete ``model.safetensors``), a model card is written when it has none, then
``HfApi.create_repo`` + ``HfApi.upload_folder`` upload ``config.json``, the weights and
``README.md`` in one commit. Authentication is huggingface_hub's: ``hf auth login``, ``HF_TOKEN``
or ``token=``.
"""

from __future__ import annotations

from pathlib import Path

from huggingface_hub import HfApi

from neurofm.hub.files import CARD_NAME, CONFIG_NAME, HUB_PATTERNS, WEIGHTS_NAME, check_safetensors


def push_to_hub(directory, repo_id: str, *, token: str | None = None,
                private: bool | None = None, revision: str | None = None,
                commit_message: str | None = None, create_pr: bool = False,
                card_fields: dict | None = None) -> str:
    """Upload a neurofm model or tokenizer directory to the Hub repo ``repo_id``.

    Parameters
    ----------
    directory : str or Path
        Written by ``save_pretrained`` (or ``neurofm convert``).
    repo_id : str
        ``"org/name"``; created when missing.
    token : str or None
        Hub token (default: the logged-in one / ``HF_TOKEN``).
    private : bool or None
        Visibility of a newly created repo (None = the Hub default).
    revision : str or None
        Branch to commit to (created from ``main`` when missing).
    commit_message : str or None
    create_pr : bool
        Open a pull request instead of committing directly.
    card_fields : dict or None
        Fields for :func:`neurofm.hub.card.write_model_card` when the directory has no
        ``README.md`` (``intended_use``, ``training_data``, ``objective``, ``metrics`` …).

    Returns
    -------
    str: the URL of the commit (or pull request).
    """
    from neurofm.hub.card import write_model_card
    from neurofm.hub.loading import config_kind, read_config

    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"No model directory at {directory}; write one with "
                                "model.save_pretrained(dir) or `neurofm convert`.")
    config_kind(read_config(directory), directory / CONFIG_NAME)
    check_safetensors(directory / WEIGHTS_NAME)
    if not (directory / CARD_NAME).is_file():
        write_model_card(directory, repo_id=repo_id, **(card_fields or {}))
    api = HfApi(token=token, library_name="neurofm")
    api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
    if revision is not None and not create_pr:
        api.create_branch(repo_id, branch=revision, exist_ok=True)
    info = api.upload_folder(
        repo_id=repo_id, folder_path=str(directory), repo_type="model", revision=revision,
        allow_patterns=HUB_PATTERNS, create_pr=create_pr,
        commit_message=commit_message or f"Upload {directory.name} with neurofm")
    return str(getattr(info, "pr_url", None) or getattr(info, "commit_url", info))
