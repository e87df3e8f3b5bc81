"""``BrainEncoder``: the interface every backbone implements (DESIGN.md "Encoder API").

``encoder(x [B, C, N, P], sensors, patch_mask=None, patch_valid=None) -> [B, C', N, D]`` where
``C'`` is ``C`` (one token row per sensor) or ``K`` (latent channels, when the model unifies
channels); ``embed`` pools to ``[B, D]``; ``reconstruct`` predicts the raw patches
``[B, C, N, P]``. Concrete models implement ``forward`` and ``reconstruct`` and say whether their
output rows are sensors (``unifies_channels = False``) or latents.
"""

from __future__ import annotations

import torch
from torch import nn

from neurofm.model_folder import ModelFolderMixin
from neurofm.models.heads import masked_mean_pool
from neurofm.sensors import SensorBatch


class BrainEncoder(nn.Module, ModelFolderMixin):
    """Base class of the backbones.

    Attributes
    ----------
    model_name : str
        Registry name the model was built under (set by :func:`neurofm.models.create_model`).
    config : dict
        Every constructor argument, so ``create_model(model_name, **config)`` rebuilds it.
    preprocessing : dict
        How input windows must be prepared (sampling rate, patch length, ...); saved in
        ``config.json`` and applied by evaluation.
    """

    unifies_channels: bool = False
    needs_sensors: bool = True

    def __init__(self):
        super().__init__()
        self.model_name: str | None = None
        self.config: dict = {}
        self.preprocessing: dict = {}

    @property
    def dim(self) -> int:
        """Feature width ``D``."""
        return int(self.config["dim"])

    @property
    def patch_size(self) -> int:
        """Samples per patch ``P``."""
        return int(self.config["patch_size"])

    def check_inputs(
        self,
        x: torch.Tensor,
        sensors: SensorBatch | None,
        patch_mask: torch.Tensor | None = None,
        patch_valid: torch.Tensor | None = None,
    ) -> None:
        """Raise ``ValueError`` with a fix when the inputs do not fit this model."""
        name = self.model_name or type(self).__name__
        if x.dim() != 4 or x.shape[-1] != self.patch_size:
            raise ValueError(
                f"{name} expects patched windows x [B, C, N, {self.patch_size}]; got "
                f"{tuple(x.shape)}. Window the data with patch_size={self.patch_size} "
                "samples (neurofm.data.window_recording)."
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
        if self.unifies_channels or sensors is None:
            return None
        return sensors.chan_mask

    def embed(
        self,
        x: torch.Tensor,
        sensors: SensorBatch | None = None,
        patch_valid: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Pooled window embedding.

        Parameters
        ----------
        x : Tensor ``[B, C, N, P]``
        sensors : SensorBatch or None
        patch_valid : Tensor ``[B, N]`` bool or None
            True for patches of real signal (False = padding at the end of short epochs).

        Returns
        -------
        Tensor ``[B, D]``: mean over real channels (or latents) and valid patches.
        """
        feats = self(x, sensors, patch_valid=patch_valid)
        return masked_mean_pool(feats, self.output_channel_mask(x, sensors), patch_valid)
