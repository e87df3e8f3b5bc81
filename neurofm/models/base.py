"""``BrainEncoder`` = stem + trunk + reconstruction head: the interface every backbone implements.

``encoder(x [B, C, N, P], sensors, patch_mask=None, patch_valid=None) -> [B, C', N, D]`` where
``C'`` is ``C`` (one token row per sensor) or ``K`` (latent channels, when the stem unifies
channels); ``embed`` pools to ``[B, D]``; ``reconstruct`` predicts the raw patches
``[B, C, N, P]``. All three are written here, once:

* the stem (:class:`neurofm.tokenizer.SensorTokenizer`) makes tokens ``[B, C', N, D]``;
* the trunk (a :class:`Trunk`: what a backbone file implements) maps them to features of the
  same shape, and declares its repeated ``blocks`` (``--freeze partial:N`` trains the last N);
* the reconstruction head predicts each patch after the stem has decoded latents back to sensors.
"""

from __future__ import annotations

import inspect
import warnings

import torch
from torch import nn

from neurofm._version import __version__
from neurofm.model_folder import ModelFolderMixin, folder_kind, preprocessing_record, recorded_as
from neurofm.models import registry
from neurofm.models.heads import ReconstructionHead, masked_mean_pool
from neurofm.nn import rename_keys
from neurofm.sensors import SensorBatch
from neurofm.strict import unknown_keys
from neurofm.tokenizer.model import FEED_FORWARD_RENAMES
from neurofm.tokenizer.stem import SensorTokenizer

PATCH_INPUTS = ("patches", "codes")

#: Format 1 (neurofm 0.1.0) -> 2: the input modules moved into the stem; the tokenizer's
#: feed-forward layers (channel unification, code input) became :class:`neurofm.nn.FeedForward`.
STEM_RENAMES = (
    (r"^(mask_token|patch_embed|sensor_encoding|position|unify|channel_decoder)\b", r"stem.\1"),
    *FEED_FORWARD_RENAMES,
)


class Trunk(nn.Module):
    """The backbone proper: tokens ``[B, C', N, D]`` -> features ``[B, C', N, D]``.

    Subclasses implement :meth:`forward` and set ``blocks``, the ``nn.ModuleList`` of their
    repeated blocks (what ``--freeze partial:N`` counts); they may override :meth:`pool`.
    """

    blocks: nn.ModuleList

    def forward(self, tokens: torch.Tensor, chan_valid: torch.Tensor | None,
                patch_valid: torch.Tensor | None) -> torch.Tensor:
        """Features ``[B, C', N, D]``.

        Parameters
        ----------
        tokens : Tensor ``[B, C', N, D]``
            The stem's output.
        chan_valid : Tensor ``[B, C']`` bool or None
            Real rows (None = all real, which allows the fastest kernels).
        patch_valid : Tensor ``[B, N]`` bool or None
            Valid patches (None = all valid).
        """
        raise NotImplementedError

    def pool(self, tokens: torch.Tensor, chan_valid: torch.Tensor | None,
             patch_valid: torch.Tensor | None) -> torch.Tensor:
        """Window embedding ``[B, D]``: mean of the features over real rows and valid patches."""
        return masked_mean_pool(self(tokens, chan_valid, patch_valid), chan_valid, patch_valid)


class BrainEncoder(nn.Module, ModelFolderMixin):
    """Stem + trunk + reconstruction head.

    Parameters
    ----------
    stem : SensorTokenizer
        Input tokens from patches and sensors.
    trunk : Trunk
        The backbone's layers.
    reconstruction : bool
        Add the linear reconstruction head (``D -> P``) used by :meth:`reconstruct`.

    Attributes
    ----------
    model_name : str
        Registry name the model was built under (set by :func:`neurofm.models.create_model`).
    config : dict
        Every constructor argument, so ``create_model(model_name, **config)`` rebuilds it (set by
        ``create_model``).
    preprocessing : neurofm.data.spec.PreprocessSpec or None
        How input windows must be prepared (sampling rate, patch length, ...); set by
        ``create_model``, saved in ``config.json`` and applied by evaluation.
    trunk_renames : tuple of (pattern, replacement)
        Class attribute: the trunk's state-dict renames from format 1 (see
        :meth:`upgrade_state_dict`).
    """

    trunk_renames: tuple = ()

    def __init__(self, stem: SensorTokenizer, trunk: Trunk, *, reconstruction: bool = True):
        super().__init__()
        self.model_name: str | None = None
        self.config: dict = {}
        self.preprocessing = None
        self.stem = stem
        self.trunk = trunk
        self.reconstruction_head = (ReconstructionHead(stem.dim, stem.patch_size)
                                    if reconstruction else None)

    @property
    def dim(self) -> int:
        """Feature width ``D``."""
        return self.stem.dim

    @property
    def patch_size(self) -> int:
        """Samples per patch ``P``."""
        return self.stem.patch_size

    @property
    def needs_sensors(self) -> bool:
        """Whether ``sensors`` is required (sensor encoding or code input)."""
        return self.stem.needs_sensors

    @property
    def unifies_channels(self) -> bool:
        """Whether the output rows are latent channels (``[B, K, N, D]``)."""
        return self.stem.unifies_channels

    @property
    def blocks(self) -> nn.ModuleList:
        """The trunk's repeated blocks (``--freeze partial:N`` trains the last N)."""
        return self.trunk.blocks

    def check_inputs(
        self,
        x: torch.Tensor,
        sensors: SensorBatch | None,
        patch_mask: torch.Tensor | None = None,
        patch_valid: torch.Tensor | None = None,
    ) -> None:
        """Raise ``ValueError`` with a fix when the inputs do not fit this model.

        Recordings, arrays and unpatched ``[B, C, T]`` tensors are refused with a ``TypeError``
        or ``ValueError`` that points to :func:`neurofm.embed`, which prepares them.
        """
        name = self.model_name or type(self).__name__
        high_level = ("For an MNE Raw or Epochs, neurofm.embed(model, inst) applies the model's "
                      "preprocessing, cuts the windows and reads the sensors from inst.info.")
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{name} reads patched windows, a tensor x [B, C, N, "
                            f"{self.patch_size}] in model units; got {type(x).__name__}. "
                            f"{high_level}")
        if sensors is not None and not isinstance(sensors, SensorBatch):
            raise TypeError(f"{name} reads sensors as a neurofm.sensors.SensorBatch "
                            f"(SensorBatch.from_info(info)); got {type(sensors).__name__}. "
                            f"{high_level}")
        if x.dim() != 4 or x.shape[-1] != self.patch_size:
            raise ValueError(
                f"{name} expects patched windows x [B, C, N, {self.patch_size}]; got "
                f"{tuple(x.shape)}. Window the data with patch_size={self.patch_size} "
                f"samples (neurofm.data.window_recording). {high_level}"
            )
        b, c, n, _ = x.shape
        if sensors is None and self.needs_sensors:
            raise ValueError(
                f"{name} needs sensors (a SensorBatch with positions and kinds); "
                "build one with SensorBatch.from_info(raw.info)."
            )
        if sensors is not None and (sensors.batch_size, sensors.n_channels) != (b, c):
            raise ValueError(
                f"sensors describe [B={sensors.batch_size}, C={sensors.n_channels}] "
                f"but x has [B={b}, C={c}]; collate x and sensors together."
            )
        if sensors is not None and not bool(sensors.chan_mask.any(dim=1).all()):
            raise ValueError(
                "A batch item has no real channel (chan_mask all False); "
                "drop empty recordings before batching."
            )
        if patch_mask is not None and tuple(patch_mask.shape) != (b, c, n):
            raise ValueError(
                f"patch_mask must have shape [B, C, N] = {(b, c, n)}; "
                f"got {tuple(patch_mask.shape)}."
            )
        if patch_valid is not None:
            if tuple(patch_valid.shape) != (b, n):
                raise ValueError(
                    f"patch_valid must have shape [B, N] = {(b, n)}; "
                    f"got {tuple(patch_valid.shape)}."
                )
            if not bool(patch_valid.any(dim=1).all()):
                raise ValueError(
                    "A batch item has no valid patch (patch_valid all False); "
                    "drop it before batching."
                )

    def output_channel_mask(
        self, x: torch.Tensor, sensors: SensorBatch | None
    ) -> torch.Tensor | None:
        """``[B, C']`` validity of the output rows (None = all real)."""
        return self.stem.token_mask(sensors)

    def _valid_keys(self, sensors: SensorBatch | None, patch_valid: torch.Tensor | None):
        """The trunk's ``chan_valid``, ``patch_valid``: None where everything is real."""
        chan_valid = self.stem.token_mask(sensors)
        if chan_valid is not None and bool(chan_valid.all()):
            chan_valid = None  # no padding: the unmasked fused kernels are fastest
        if patch_valid is not None and bool(patch_valid.all()):
            patch_valid = None
        return chan_valid, patch_valid

    def forward(
        self,
        x: torch.Tensor,
        sensors: SensorBatch | None = None,
        patch_mask: torch.Tensor | None = None,
        patch_valid: torch.Tensor | None = None,
        channel_ids=None,
    ) -> torch.Tensor:
        """Encode a batch of patched windows.

        Parameters
        ----------
        x : Tensor ``[B, C, N, P]``
            Patched windows in model units (zero rows for padding channels).
        sensors : SensorBatch or None
            Sensor metadata; None only for models that need no geometry (``needs_sensors``).
        patch_mask : Tensor ``[B, C, N]`` bool or None
            True = patch hidden behind the mask token (masked-reconstruction pretraining).
        patch_valid : Tensor ``[B, N]`` bool or None
            True = real signal; padded patches are never attended to.
        channel_ids : Tensor ``[C]`` or ``[B, C]`` of int, or None
            For models that look channels up by name (``labram_base``): rows of its table.

        Returns
        -------
        Tensor ``[B, C, N, D]``, or ``[B, K, N, D]`` with channel unification.
        """
        self.check_inputs(x, sensors, patch_mask, patch_valid)
        tokens = self.stem(x, sensors, patch_mask, patch_valid, channel_ids)
        return self.trunk(tokens, *self._valid_keys(sensors, patch_valid))

    def embed(
        self,
        x: torch.Tensor,
        sensors: SensorBatch | None = None,
        patch_valid: torch.Tensor | None = None,
        channel_ids=None,
    ) -> torch.Tensor:
        """Pooled window embedding ``[B, D]``.

        The trunk's :meth:`Trunk.pool`: the mean over real channels (or latents) and valid
        patches, or the backbone's own summary (LaBraM's [CLS] token).

        Parameters
        ----------
        x : Tensor ``[B, C, N, P]``
        sensors : SensorBatch or None
        patch_valid : Tensor ``[B, N]`` bool or None
            True for patches of real signal (False = padding at the end of short epochs).
        channel_ids : Tensor or None
            As in :meth:`forward`.
        """
        self.check_inputs(x, sensors, None, patch_valid)
        tokens = self.stem(x, sensors, None, patch_valid, channel_ids)
        return self.trunk.pool(tokens, *self._valid_keys(sensors, patch_valid))

    def reconstruct(
        self,
        x: torch.Tensor,
        sensors: SensorBatch | None = None,
        patch_mask: torch.Tensor | None = None,
        patch_valid: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Predict the raw patches ``[B, C, N, P]`` (masked ones are the training target).

        With channel unification the K latents are decoded back to the C sensors first.
        """
        if self.reconstruction_head is None:
            raise ValueError(f"{self.model_name or type(self).__name__} has no reconstruction "
                             "head; it is an encoder for feature extraction, probing and "
                             "fine-tuning.")
        feats = self(x, sensors, patch_mask, patch_valid)
        return self.reconstruction_head(self.stem.decode_channels(feats, sensors))

    def upgrade_state_dict(self, state: dict, format_version: int) -> dict:
        """Rename the keys of weights written in ``format_version`` to this version's layout.

        Format 1 (neurofm 0.1.0) -> 2: input modules moved under ``stem.`` (``patch_embed``,
        ``mask_token``, ``sensor_encoding``, ``position``, ``unify``, ``channel_decoder``), the
        trunk's under ``trunk.`` (:attr:`trunk_renames`), and the tokenizer's feed-forward
        layers became :class:`neurofm.nn.FeedForward` (``ffn.0``/``ffn.3`` ->
        ``ffn.linear1``/``ffn.linear2``). Keys already in the new layout pass unchanged.
        """
        if format_version >= 2:
            return state
        return rename_keys(state, STEM_RENAMES + tuple(self.trunk_renames))

    # -- model folders (neurofm.model_folder): config.json names a registered architecture -----
    def _folder_config(self, preprocessing=None) -> dict:
        """``config.json``: the registry name, every hyperparameter and the preprocessing."""
        if not self.model_name:
            raise ValueError(f"This {type(self).__name__} has no registry name; build it with "
                             "neurofm.models.create_model(name, ...) so it can be reloaded by "
                             "name.")
        return {"architecture": self.model_name, "hyperparameters": self.config,
                "preprocessing": preprocessing_record(self.preprocessing, preprocessing)}

    @classmethod
    def _from_folder_config(cls, config: dict, where) -> BrainEncoder:
        """An untrained model of the registered architecture ``config`` names.

        Hyperparameters unknown to this version (written by a newer one) are ignored with a
        warning; a folder of another class than ``cls`` (or its subclasses) is refused.
        """
        if folder_kind(config, where) == "tokenizer":
            raise ValueError(f"{where} describes a neurofm tokenizer, not a {cls.__name__}; load "
                             "it with NeuralTokenizer.from_pretrained or neurofm.from_pretrained.")
        if "hyperparameters" not in config:
            raise ValueError(f"{where} lacks 'hyperparameters'; it was not written by neurofm "
                             "save_pretrained.")
        name = config["architecture"]
        if name not in registry.list_models():
            raise ValueError(f"{where} needs architecture {name!r}, unknown to neurofm "
                             f"{__version__} (written by {config.get('neurofm_version', '?')}); "
                             f"upgrade neurofm. Known: {', '.join(registry.list_models())}.")
        target = registry.model_spec(name).cls
        if not issubclass(target, cls):  # the folder's content, not an argument's type:
            raise ValueError(  # noqa: TRY004
                f"{where} describes {name!r}, a {target.__name__}, not a {cls.__name__}; load it "
                f"with {target.__name__}.from_pretrained or neurofm.from_pretrained.")
        accepted = set(inspect.signature(target).parameters)
        hyperparameters = dict(config["hyperparameters"])
        unknown = unknown_keys(hyperparameters, accepted)
        if unknown:
            warnings.warn(f"{where} has hyperparameters {unknown} unknown to neurofm "
                          f"{__version__} (written by {config.get('neurofm_version', '?')}); "
                          "ignoring them.", UserWarning, stacklevel=4)
            hyperparameters = {k: v for k, v in hyperparameters.items() if k in accepted}
        model = registry.create_model(name, **hyperparameters)
        if "preprocessing" in config:
            model.preprocessing = recorded_as(model.preprocessing, config["preprocessing"], where)
        return model


def stem_patch_embedding(patch_input: str, patch_embedding: str = "neurofm") -> str:
    """The stem's ``patch_embedding`` for a backbone's ``patch_input`` (``"patches"``/``"codes"``).

    ``"codes"`` replaces the continuous patch embedding, which must then be the default.
    """
    if patch_input not in PATCH_INPUTS:
        raise ValueError(f"patch_input must be one of {PATCH_INPUTS}; got {patch_input!r}.")
    if patch_input == "codes":
        if patch_embedding != "neurofm":
            raise ValueError('patch_input="codes" replaces the patch embedding; leave '
                             f'patch_embedding="neurofm" (got {patch_embedding!r}).')
        return "codes"
    return patch_embedding
