"""Model folders: ``config.json`` + ``model.safetensors`` + ``README.md``, read and written here.

A neurofm model or tokenizer is saved as the folder the Hugging Face Hub expects. This package
owns its files and sits below ``neurofm.models`` and ``neurofm.tokenizer`` (they import it; it
imports neither):

- :mod:`~neurofm.model_folder.config`: the two layouts of ``config.json`` and its
  ``format_version`` (:data:`FORMAT_VERSION`; absent = 1, written by neurofm 0.1.0);
- :mod:`~neurofm.model_folder.weights`: ``model.safetensors``, checked before it is read;
- :mod:`~neurofm.model_folder.card`: the model card (``huggingface_hub.ModelCard``);
- :mod:`~neurofm.model_folder.remote`: local path or Hub repo id, and uploads;
- :mod:`~neurofm.model_folder.files`: atomic writes with the umask's file mode;
- :mod:`~neurofm.model_folder.mixin`: :class:`ModelFolderMixin`, which gives every model class
  ``save_pretrained``, ``from_pretrained`` and ``push_to_hub``.

``neurofm.from_pretrained`` (in :mod:`neurofm.hub`, above models and tokenizers) is the one
function that loads any of them, imports published weights or builds a registered model.
"""

from neurofm.model_folder.card import (
    CARD_FIELDS,
    CARD_NAME,
    eval_results_from_metrics,
    is_neurofm_card,
    model_card,
    update_model_card,
    write_model_card,
)
from neurofm.model_folder.config import (
    CONFIG_NAME,
    FORMAT_VERSION,
    TOKENIZER_MODEL_TYPE,
    folder_kind,
    format_version,
    read_config,
    warn_about_version,
    write_config,
)
from neurofm.model_folder.files import new_file_mode, write_atomically, write_text_atomically
from neurofm.model_folder.mixin import (
    ModelFolderMixin,
    load_folder,
    preprocessing_record,
    recorded_as,
)
from neurofm.model_folder.remote import HUB_PATTERNS, looks_like_path, resolve_folder, upload_folder
from neurofm.model_folder.weights import (
    WEIGHTS_NAME,
    check_safetensors,
    count_parameters,
    load_weights,
    save_weights,
)

__all__ = [
    "CARD_FIELDS",
    "CARD_NAME",
    "CONFIG_NAME",
    "FORMAT_VERSION",
    "HUB_PATTERNS",
    "TOKENIZER_MODEL_TYPE",
    "WEIGHTS_NAME",
    "ModelFolderMixin",
    "check_safetensors",
    "count_parameters",
    "eval_results_from_metrics",
    "folder_kind",
    "format_version",
    "is_neurofm_card",
    "load_folder",
    "load_weights",
    "looks_like_path",
    "model_card",
    "new_file_mode",
    "preprocessing_record",
    "read_config",
    "recorded_as",
    "resolve_folder",
    "save_weights",
    "update_model_card",
    "upload_folder",
    "warn_about_version",
    "write_atomically",
    "write_config",
    "write_model_card",
    "write_text_atomically",
]
