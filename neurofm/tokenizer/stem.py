"""The stem of every backbone: patches (or frozen VQ codes) + sensors -> tokens ``[B, C', N, D]``.

::

    x [B, C, N, P] ──patch embedding──► [B, C, N, D]   masked patches -> mask token
        + sensor encoding [B, C, D]                    (or LaBraM's channel-name table)
        + patch-index embedding [N, D]                 (LaBraM only)
        ──position convolution (optional)──►           temporal (1 x k) or CBraMod's ACPE
        ──channel unification (optional)──► tokens [B, C', N, D]   (C' = C, or K latents)

:class:`SensorTokenizer` is the one place where a backbone's input is made: the criss-cross
transformer, the bidirectional Mamba, ``cbramod_base`` and ``labram_base`` differ only in the
options they pass. Its :meth:`~SensorTokenizer.decode_channels` is the inverse of the
unification, used before the reconstruction head. The position convolution runs *before* the
unification, on the sensor tokens.
"""

from __future__ import annotations

import torch
from torch import nn

from neurofm.sensors import SensorBatch
from neurofm.tokenizer.cbramod_embed import CBraModPatchEmbedding
from neurofm.tokenizer.code_embed import CodeEmbedding
from neurofm.tokenizer.labram_embed import ChannelNameEmbedding, LabramPatchEmbedding
from neurofm.tokenizer.patch_embed import PatchEmbedding
from neurofm.tokenizer.position import ConvPositionEncoding
from neurofm.tokenizer.sensor_encoding import SensorEncoding
from neurofm.tokenizer.unify import ChannelDecoder, ChannelUnification

PATCH_EMBEDDINGS = ("neurofm", "cbramod", "labram", "codes")


class SensorTokenizer(nn.Module):
    """Backbone input tokens ``x [B, C, N, P]`` + sensors -> ``[B, C', N, D]``.

    Parameters
    ----------
    patch_size : int
        Samples per patch ``P``.
    dim : int
        Token width ``D``.
    patch_embedding : {"neurofm", "cbramod", "labram", "codes"}
        ``"neurofm"``: :class:`~neurofm.tokenizer.PatchEmbedding` (temporal convolutions +
        spectrum) and a learned mask token. ``"cbramod"``: CBraMod's embedding, which replaces
        masked patches by its frozen zero patch (``dim`` must equal its width, 200 for P = 200).
        ``"labram"``: LaBraM's temporal convolution (no masking; ``dim`` must equal its width).
        ``"codes"``: the frozen ``tokenizer``'s code vectors projected to ``dim``
        (:class:`~neurofm.tokenizer.CodeEmbedding`) and a learned mask token.
    tokenizer : NeuralTokenizer, str, TokenizerConfig, dict or None
        With ``patch_embedding="codes"``: the tokenizer or its directory.
    sensor_encoding : bool
        Add :class:`~neurofm.tokenizer.SensorEncoding` (position, orientation, kind) to every
        token of a channel: channel order then carries no meaning.
    channel_names : int
        Rows of a learned channel-name table (LaBraM: 128) added instead; 0 = none.
    max_patches : int
        Rows of a learned patch-index embedding (LaBraM); 0 = none.
    position_kernel : tuple of int or None
        ``(channels, patches)`` kernel of a depthwise position convolution added to the tokens
        before unification: ``(1, k)`` is temporal only, ``(19, 7)`` is CBraMod's ACPE.
    n_latent : int or None
        Unify the C sensors into ``n_latent`` latent channels (needs the sensor encoding).
    n_heads : int
        Heads of the unification and of its decoder.
    dropout : float
        Dropout of CBraMod's spectral branch.
    conv_channels : int
        Channels of LaBraM's temporal convolution.
    """

    def __init__(self, patch_size: int, dim: int, *, patch_embedding: str = "neurofm",
                 tokenizer=None, sensor_encoding: bool = True, channel_names: int = 0,
                 max_patches: int = 0, position_kernel: tuple[int, int] | None = None,
                 n_latent: int | None = None, n_heads: int = 4, dropout: float = 0.0,
                 conv_channels: int = 8):
        super().__init__()
        if patch_embedding not in PATCH_EMBEDDINGS:
            raise ValueError(f"patch_embedding must be one of {PATCH_EMBEDDINGS}; "
                             f"got {patch_embedding!r}.")
        if tokenizer is not None and patch_embedding != "codes":
            raise ValueError('A tokenizer is only used with patch_input="codes"; set '
                             'patch_input="codes" or leave tokenizer=None.')
        if n_latent is not None and not sensor_encoding:
            raise ValueError("Channel unification (n_latent) needs the sensor encoding: latent "
                             "channels are formed from sensor-encoded tokens.")
        self.patch_size = int(patch_size)
        self.dim = int(dim)
        self.patch_embedding = patch_embedding
        # Modules are built in this order (the order of their parameters and of the random
        # draws of their initialisation), as the backbones of neurofm 0.1.0 built them.
        self.patch_embed = self._patch_embed(tokenizer, dropout, conv_channels)
        if patch_embedding in ("neurofm", "codes"):
            self.mask_token = nn.Parameter(torch.zeros(dim))
            nn.init.trunc_normal_(self.mask_token, std=0.02)
        else:
            self.mask_token = None
        self.sensor_encoding = SensorEncoding(dim) if sensor_encoding else None
        self.channel_embedding = ChannelNameEmbedding(channel_names, dim) if channel_names else None
        self.temporal_embedding = nn.Embedding(max_patches, dim) if max_patches else None
        if self.temporal_embedding is not None:
            nn.init.trunc_normal_(self.temporal_embedding.weight, std=0.02)
        self.position = ConvPositionEncoding(dim, position_kernel) if position_kernel else None
        if n_latent is not None:
            self.unify = ChannelUnification(dim, n_latent, n_heads)
            self.channel_decoder = ChannelDecoder(dim, n_heads)
        else:
            self.unify = self.channel_decoder = None

    def _patch_embed(self, tokenizer, dropout: float, conv_channels: int) -> nn.Module:
        p, d = self.patch_size, self.dim
        if self.patch_embedding == "codes":
            return CodeEmbedding(tokenizer, d, p)
        if self.patch_embedding == "neurofm":
            return PatchEmbedding(p, d)
        if self.patch_embedding == "cbramod":
            embed, what = CBraModPatchEmbedding(p, dropout), "CBraMod's patch embedding"
            setting = f"patch_size={p}"
        else:
            embed, what = LabramPatchEmbedding(p, conv_channels), "LaBraM's temporal convolution"
            setting = f"patch_size={p} and conv_channels={conv_channels}"
        if embed.dim != d:
            raise ValueError(f"{what} gives width {embed.dim} for {setting}; set dim={embed.dim}.")
        return embed

    @property
    def needs_sensors(self) -> bool:
        """Whether :meth:`forward` reads sensor geometry (sensor encoding or code input)."""
        return self.sensor_encoding is not None or self.patch_embedding == "codes"

    @property
    def unifies_channels(self) -> bool:
        """Whether the output rows are ``K`` latent channels instead of the ``C`` sensors."""
        return self.unify is not None

    @property
    def code_tokenizer(self):
        """The frozen :class:`~neurofm.tokenizer.NeuralTokenizer` of a code input, else None."""
        return self.patch_embed.tokenizer if self.patch_embedding == "codes" else None

    def token_mask(self, sensors: SensorBatch | None) -> torch.Tensor | None:
        """``[B, C']`` real rows of the output tokens (None = all real)."""
        if self.unify is not None or sensors is None:
            return None
        return sensors.chan_mask

    def embed_patches(self, x: torch.Tensor, sensors: SensorBatch | None,
                      patch_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Patch tokens ``[B, C, N, D]``; hidden patches (``patch_mask`` True) are masked."""
        if self.patch_embedding == "cbramod":
            return self.patch_embed(x, patch_mask)  # its frozen zero patch replaces hidden ones
        if self.patch_embedding == "codes":
            tokens = self.patch_embed(x, sensors, patch_mask)
        else:
            tokens = self.patch_embed(x)
        if patch_mask is not None:
            tokens = torch.where(patch_mask[..., None], self.mask_token.to(tokens.dtype), tokens)
        return tokens

    def forward(self, x: torch.Tensor, sensors: SensorBatch | None = None,
                patch_mask: torch.Tensor | None = None, patch_valid: torch.Tensor | None = None,
                channel_ids=None) -> torch.Tensor:
        """Tokens of a batch of patched windows.

        Parameters
        ----------
        x : Tensor ``[B, C, N, P]``
        sensors : SensorBatch or None
            Needed by the sensor encoding, the code input and the unification.
        patch_mask : Tensor ``[B, C, N]`` bool or None
            True = patch hidden behind the mask token.
        patch_valid : Tensor ``[B, N]`` bool or None
            True = real signal. With the sensor encoding, padded patches enter the position
            convolution as zeros, as if absent (CBraMod's ACPE sees them as CBraMod would).
        channel_ids : Tensor ``[C]`` or ``[B, C]`` of int, or None
            Rows of the channel-name table (``channel_names > 0`` only).

        Returns
        -------
        Tensor ``[B, C, N, D]``, or ``[B, K, N, D]`` with channel unification.
        """
        b, c, n, _ = x.shape
        if patch_mask is not None and self.mask_token is None and self.patch_embedding != "cbramod":
            raise ValueError(f"The {self.patch_embedding} patch embedding has no mask token; "
                             "patch_mask is not supported (use this model for feature extraction, "
                             "probing and fine-tuning).")
        if self.temporal_embedding is not None and n > self.temporal_embedding.num_embeddings:
            raise ValueError(f"x has {n} patches but this model knows at most "
                             f"{self.temporal_embedding.num_embeddings} (max_patches); cut the "
                             "recording into shorter windows.")
        if channel_ids is not None and self.channel_embedding is None:
            raise ValueError("channel_ids are read only by models that look channels up by name "
                             "(labram_base); this model tells channels apart by their sensors.")
        channels = None
        if self.channel_embedding is not None:
            channels = self.channel_embedding(b, c, channel_ids)[:, :, None, :]
        tokens = self.embed_patches(x, sensors, patch_mask)
        if self.sensor_encoding is not None:
            tokens = tokens + self.sensor_encoding(sensors)[:, :, None, :].to(tokens.dtype)
        if channels is not None:
            tokens = tokens + channels
        if self.temporal_embedding is not None:
            tokens = tokens + self.temporal_embedding.weight[:n]
        if self.position is not None:
            if self.sensor_encoding is not None and patch_valid is not None:
                tokens = tokens * patch_valid[:, None, :, None].to(tokens.dtype)
            tokens = self.position(tokens)
        if self.unify is not None:
            tokens = self.unify(tokens, sensors.chan_mask)
        return tokens

    def decode_channels(self, tokens: torch.Tensor, sensors: SensorBatch | None) -> torch.Tensor:
        """Inverse of the unification: ``[B, K, N, D] -> [B, C, N, D]`` (identity without it)."""
        if self.channel_decoder is None:
            return tokens
        return self.channel_decoder(tokens, self.sensor_encoding(sensors), sensors.chan_mask)
