"""``save_pretrained`` / ``from_pretrained`` / ``push_to_hub`` for every neurofm model class.

:class:`ModelFolderMixin` mirrors the signatures of ``huggingface_hub.PyTorchModelHubMixin``
without inheriting it (that mixin would write the constructor arguments as ``config.json``;
neurofm's layout is ``architecture / hyperparameters / preprocessing``, see
:mod:`neurofm.model_folder.config`)::

    model.save_pretrained("runs/my-model")      # config.json, model.safetensors, README.md
    model = CrissCrossTransformer.from_pretrained("org/my-model", revision="v1")
    model.push_to_hub("org/my-model")

A class inherits it and implements two hooks: ``_folder_config`` (what its ``config.json``
says) and ``_from_folder_config`` (an untrained instance from that). Loading
checks the files first, upgrades the state dict of an older folder format with
``upgrade_state_dict`` and loads it strictly. A class method called on a subclass refuses a
folder of another class.

This package sits below ``neurofm.models``: it knows no architecture. A class says what its
``config.json`` holds and how an untrained instance is built from it through two hooks,
``_folder_config`` and ``_from_folder_config`` (``BrainEncoder`` builds registered models by
name; ``NeuralTokenizer`` builds itself from its configuration).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from neurofm.model_folder.card import CARD_FIELDS, write_model_card
from neurofm.model_folder.config import (
    CONFIG_NAME,
    FORMAT_VERSION,
    format_version,
    read_config,
    warn_about_version,
    write_config,
)
from neurofm.model_folder.remote import resolve_folder, upload_folder
from neurofm.model_folder.weights import WEIGHTS_NAME, load_weights, save_weights
from neurofm.strict import check_keys


def preprocessing_record(recorded, override=None) -> dict:
    """``config.json``'s ``preprocessing``: a model's record with ``override`` over it.

    Parameters
    ----------
    recorded : PreprocessSpec or dict
        The model's ``preprocessing``.
    override : PreprocessSpec, dict or None
        A spec replaces the record; a dict's keys replace the record's.
    """
    if override is not None and hasattr(override, "to_dict"):
        return override.to_dict()
    base = recorded.to_dict() if hasattr(recorded, "to_dict") else dict(recorded or {})
    return {**base, **(override or {})}


def recorded_as(current, recorded: dict, where):
    """``recorded`` (a config.json dict) in the type the model holds (a spec, or a dict)."""
    if hasattr(current, "from_dict"):
        return type(current).from_dict(recorded, where=str(where))
    return dict(recorded)


class ModelFolderMixin:
    """Model folders (``config.json`` + ``model.safetensors`` + ``README.md``) for a module.

    The default hooks describe a model built by name from the registry: it has ``model_name``
    (the registry name), ``config`` (every constructor argument) and ``preprocessing``.
    """

    # -- writing ------------------------------------------------------------------------------
    def save_pretrained(self, save_directory, *, preprocessing=None, repo_id: str | None = None,
                        push_to_hub: bool = False, model_card_kwargs: dict | None = None,
                        **push_to_hub_kwargs):
        """Write ``config.json``, ``model.safetensors`` and the model card ``README.md``.

        Each file is written atomically and gets the mode a new file has under the umask.

        Parameters
        ----------
        save_directory : str or Path
            The folder (created if needed; existing files are replaced).
        preprocessing : PreprocessSpec, dict or None
            Recorded over the model's own preprocessing (a dict's keys replace the model's).
        repo_id : str or None
            Hub repo id: named in the card's loading example; where ``push_to_hub`` uploads
            (default: the folder's name).
        push_to_hub : bool
            Upload the folder after writing it.
        model_card_kwargs : dict or None
            Card fields (``intended_use``, ``training_data``, ``objective``, ``training``,
            ``metrics``, ``eval_results``, ``notes``, ``license``, ``datasets``,
            ``base_model``, ``source``, ``tags``; see :func:`neurofm.model_folder.model_card`).
        **push_to_hub_kwargs
            Passed to :func:`neurofm.model_folder.upload_folder` (``token``, ``private``,
            ``branch``, ``create_pr``, ``commit_message`` ...).

        Returns
        -------
        Path of the folder, or the URL of the Hub commit with ``push_to_hub=True``.
        """
        card_fields = dict(model_card_kwargs or {})
        check_keys(card_fields, [f for f in CARD_FIELDS if f != "repo_id"],
                   where="model_card_kwargs")
        body = self._folder_config(preprocessing)
        directory = Path(save_directory)
        directory.mkdir(parents=True, exist_ok=True)
        save_weights(self.state_dict(), directory / WEIGHTS_NAME)
        write_config(directory, body)
        write_model_card(directory, repo_id=repo_id, **card_fields)
        if push_to_hub:
            return upload_folder(directory, repo_id or directory.name, **push_to_hub_kwargs)
        return directory

    def push_to_hub(self, repo_id: str, *, commit_message: str | None = None,
                    private: bool | None = None, token: str | None = None,
                    branch: str | None = None, create_pr: bool | None = None,
                    allow_patterns: list[str] | str | None = None,
                    ignore_patterns: list[str] | str | None = None,
                    delete_patterns: list[str] | str | None = None,
                    model_card_kwargs: dict | None = None, preprocessing=None) -> str:
        """Save the model to a temporary folder and upload it to the Hub repo ``repo_id``.

        Parameters
        ----------
        repo_id : str
            ``"org/name"``; created when missing.
        commit_message, private, token, branch, create_pr : optional
            See :func:`neurofm.model_folder.upload_folder`.
        allow_patterns, ignore_patterns, delete_patterns : list of str, str or None
            As in ``HfApi.upload_folder``.
        model_card_kwargs : dict or None
            Card fields, as in :meth:`save_pretrained`.
        preprocessing : PreprocessSpec, dict or None
            As in :meth:`save_pretrained`.

        Returns
        -------
        str: the URL of the commit (or pull request).
        """
        with tempfile.TemporaryDirectory() as tmp:
            folder = self.save_pretrained(Path(tmp) / repo_id.split("/")[-1],
                                          preprocessing=preprocessing, repo_id=repo_id,
                                          model_card_kwargs=model_card_kwargs)
            return upload_folder(folder, repo_id, commit_message=commit_message, private=private,
                                 token=token, branch=branch, create_pr=create_pr,
                                 allow_patterns=allow_patterns, ignore_patterns=ignore_patterns,
                                 delete_patterns=delete_patterns)

    # -- reading ------------------------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *, force_download: bool = False,
                        token: str | bool | None = None, cache_dir=None,
                        local_files_only: bool = False, revision: str | None = None,
                        map_location="cpu"):
        """Load a model of this class from a local folder or a Hub repo.

        Parameters
        ----------
        pretrained_model_name_or_path : str or Path
            A folder written by :meth:`save_pretrained`, or a Hub repo id ``"org/name"``.
        force_download : bool
            Fetch the files again even when cached (fixes a corrupted cache).
        token : str, bool or None
            Hub token for private repos.
        cache_dir : str, Path or None
            Hub cache directory (default ``HF_HUB_CACHE``).
        local_files_only : bool
            Never touch the network (``HF_HUB_OFFLINE=1`` does the same for every call).
        revision : str or None
            Branch, tag or commit of a Hub repo (default ``main``).
        map_location : str or torch.device
            Where the model is put.

        Returns
        -------
        An instance of the class the folder describes (this class or a subclass), in eval mode.
        """
        directory, repo_id = resolve_folder(
            pretrained_model_name_or_path, revision=revision, cache_dir=cache_dir,
            local_files_only=local_files_only, force_download=force_download, token=token)
        return load_folder(cls, directory, source=repo_id, map_location=map_location)

    def upgrade_state_dict(self, state: dict, format_version: int) -> dict:
        """Rename the weights of a folder of an older ``format_version`` to today's names.

        Called before the strict ``load_state_dict`` when the folder's format is older than
        :data:`~neurofm.model_folder.FORMAT_VERSION`. The default returns ``state`` unchanged;
        classes whose module layout changed override it.
        """
        return state

    # -- hooks: what config.json says, and an instance from it ---------------------------------
    def _folder_config(self, preprocessing=None) -> dict:
        """The layout of ``config.json`` (without the version keys) for this model."""
        raise NotImplementedError(f"{type(self).__name__} does not say what its config.json holds "
                                  "(implement _folder_config).")

    @classmethod
    def _from_folder_config(cls, config: dict, where):
        """An untrained instance of the model ``config`` (a ``config.json`` dict) describes."""
        raise NotImplementedError(f"{cls.__name__} cannot be built from a config.json "
                                  "(implement _from_folder_config).")


def load_folder(cls, directory, *, source: str | None = None, map_location="cpu"):
    """Build the model a local folder describes and load its weights.

    Parameters
    ----------
    cls : type
        A :class:`ModelFolderMixin` class; the folder must describe it or a subclass.
    directory : str or Path
        Holds ``config.json`` and ``model.safetensors``.
    source : str or None
        The Hub repo id the folder was downloaded from (quoted in the fix of errors).
    map_location : str or torch.device
        Where the model is put.

    Returns
    -------
    The model, in eval mode.
    """
    directory = Path(directory)
    where = directory / CONFIG_NAME
    config = read_config(directory)
    version = format_version(config, where)
    warn_about_version(config, where)
    weights = directory / WEIGHTS_NAME
    state = load_weights(weights, source=source)
    model = cls._from_folder_config(config, where)
    if version < FORMAT_VERSION:
        state = model.upgrade_state_dict(state, version)
    described = config.get("architecture", "tokenizer")
    try:
        result = model.load_state_dict(state, strict=False)
    except RuntimeError as err:  # tensor shapes differ from the config's
        details = [line.strip() for line in str(err).splitlines() if "size mismatch" in line]
        raise ValueError(f"{weights} does not match the {described} described by {CONFIG_NAME} "
                         f"({len(details)} tensors differ in shape, e.g. {details[:1]}); the two "
                         "files come from different models -- save or download the model "
                         "again.") from None
    if result.missing_keys or result.unexpected_keys:
        raise ValueError(f"{weights} does not match the {described} described by {CONFIG_NAME}: "
                         f"missing {result.missing_keys[:5]}, unexpected "
                         f"{result.unexpected_keys[:5]}.")
    return model.to(map_location).eval()
