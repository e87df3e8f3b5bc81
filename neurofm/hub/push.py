"""Publish a model folder on disk to the Hugging Face Hub (``neurofm hub push DIR REPO_ID``).

The folder is checked first (a readable ``config.json`` of a neurofm model or tokenizer and a
complete ``model.safetensors``), its model card is written or updated (the repo id in the loading
example, the card fields given), then the files are uploaded in one commit
(:func:`neurofm.model_folder.upload_folder`). Authentication is huggingface_hub's: ``hf auth
login``, ``HF_TOKEN`` or ``token=``. A model in memory is published with its own
``model.push_to_hub(repo_id)``.
"""

from __future__ import annotations

from pathlib import Path

from neurofm.model_folder import (
    CARD_NAME,
    CONFIG_NAME,
    WEIGHTS_NAME,
    check_safetensors,
    folder_kind,
    is_neurofm_card,
    read_config,
    update_model_card,
    upload_folder,
)


def push_to_hub(directory, repo_id: str, *, token: str | None = None,
                private: bool | None = None, revision: str | None = None,
                commit_message: str | None = None, create_pr: bool = False,
                card_fields: dict | None = None) -> str:
    """Upload a neurofm model or tokenizer folder to the Hub repo ``repo_id``.

    Parameters
    ----------
    directory : str or Path
        Written by ``save_pretrained`` (or pretraining, or ``neurofm convert``).
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
        Card fields (:func:`neurofm.model_folder.model_card`: ``intended_use``,
        ``training_data``, ``objective``, ``metrics``, ``license`` ...) written over what the
        folder's card says (:func:`neurofm.model_folder.update_model_card`). A ``README.md``
        that neurofm did not write is uploaded as it is, and refused with card fields.

    Returns
    -------
    str: the URL of the commit (or pull request).
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"No model directory at {directory}; write one with "
                                "model.save_pretrained(dir) or `neurofm convert`.")
    folder_kind(read_config(directory), directory / CONFIG_NAME)
    check_safetensors(directory / WEIGHTS_NAME)
    card = directory / CARD_NAME
    if card_fields or not card.is_file() or is_neurofm_card(card):
        update_model_card(directory, repo_id=repo_id, **(card_fields or {}))
    return upload_folder(directory, repo_id, token=token, private=private, branch=revision,
                         commit_message=commit_message, create_pr=create_pr)
