"""Share models on the Hugging Face Hub and import published EEG foundation models.

- :func:`from_pretrained` loads any neurofm model or tokenizer from a local directory or a Hub
  repo (revisions, cache, ``HF_HUB_OFFLINE=1``), or imports ``"cbramod:PATH"`` / ``"labram:PATH"``.
- :func:`push_to_hub` uploads a model directory (``neurofm hub push DIR REPO_ID``);
  :func:`write_model_card` writes its ``README.md``.
- :func:`convert_cbramod` / :func:`convert_labram` turn published weights into ``cbramod_base`` /
  ``labram_base`` directories (``neurofm convert cbramod|labram SRC OUT_DIR``).
- :func:`check_preprocessing` refuses data whose sampling rate or patch length differ from the
  model's.
"""

from neurofm.hub.card import render_model_card, write_model_card
from neurofm.hub.convert_cbramod import convert_cbramod
from neurofm.hub.convert_labram import convert_labram
from neurofm.hub.files import check_safetensors, resolve_model_dir
from neurofm.hub.loading import from_pretrained, read_config
from neurofm.hub.preprocessing import check_preprocessing
from neurofm.hub.push import push_to_hub

__all__ = [
    "check_preprocessing",
    "check_safetensors",
    "convert_cbramod",
    "convert_labram",
    "from_pretrained",
    "push_to_hub",
    "read_config",
    "render_model_card",
    "resolve_model_dir",
    "write_model_card",
]
