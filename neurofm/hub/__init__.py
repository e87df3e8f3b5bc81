"""Share models on the Hugging Face Hub and import published EEG foundation models.

- :func:`from_pretrained` (also ``neurofm.from_pretrained``) loads any neurofm model or tokenizer
  from a local folder or a Hub repo (revisions, cache, ``HF_HUB_OFFLINE=1``), imports
  ``"cbramod:PATH"`` / ``"labram:PATH"``, or builds a registered model by name.
- :func:`push_to_hub` uploads a model folder (``neurofm hub push DIR REPO_ID``);
  :func:`write_model_card` writes its ``README.md``. A model in memory has its own
  ``save_pretrained`` / ``push_to_hub`` methods.
- :func:`convert_cbramod` / :func:`convert_labram` turn published weights into ``cbramod_base`` /
  ``labram_base`` folders (``neurofm convert cbramod|labram SRC OUT_DIR``).
- :func:`check_preprocessing` refuses data whose sampling rate or patch length differ from the
  model's.

The files of a model folder are read and written by :mod:`neurofm.model_folder`.
"""

from neurofm.hub.convert_cbramod import convert_cbramod
from neurofm.hub.convert_labram import convert_labram
from neurofm.hub.loading import from_pretrained
from neurofm.hub.preprocessing import check_preprocessing
from neurofm.hub.push import push_to_hub
from neurofm.model_folder import (
    check_safetensors,
    model_card,
    read_config,
    resolve_folder,
    write_model_card,
)

__all__ = [
    "check_preprocessing",
    "check_safetensors",
    "convert_cbramod",
    "convert_labram",
    "from_pretrained",
    "model_card",
    "push_to_hub",
    "read_config",
    "resolve_folder",
    "write_model_card",
]
