"""Criss-cross transformer: spatial and temporal attention side by side in every layer.

Each layer splits the token width and the heads in two halves: the first half attends across
channels within each patch (spatial), the second across patches within each channel (temporal);
the two run in parallel and are concatenated (CBraMod's criss-cross attention). Pre-norm, FFN,
dropout and drop-path complete the layer. Padded channels and patches are excluded as keys, so
they never change real tokens.
"""

from __future__ import annotations

import torch
from torch import nn

from neurofm.models.attention import SelfAttention
from neurofm.models.base import BrainEncoder
from neurofm.models.cbramod import CBraModPatchEmbedding, ConvPositionEncoding
from neurofm.models.code_input import (
    CodeEmbedding,
    check_patch_input,
    embed_patches,
    tokenizer_hyperparameter,
)
from neurofm.models.heads import ReconstructionHead
from neurofm.models.layers import (
    Dropout,
    DropPath,
    FeedForward,
    add_residual,
    drop_path_rates,
)
from neurofm.sensors import SensorBatch

PATCH_EMBEDDINGS = ("neurofm", "cbramod")
POSITION_ENCODINGS = ("sensor", "acpe")


class CrissCrossLayer(nn.Module):
    """One criss-cross transformer layer ``[B, C, N, D] -> [B, C, N, D]``.

    Parameters
    ----------
    dim : int
        Token width ``D`` (even; ``D / 2`` features per attention).
    n_heads : int
        Total heads (even; half spatial, half temporal).
    ffn_dim : int
        Hidden width of the feed-forward network.
    dropout : float
        Dropout on attention weights, attention output and in/after the FFN.
    drop_path : float
        Stochastic-depth probability of both residual branches.
    """

    def __init__(
        self, dim: int, n_heads: int, ffn_dim: int, dropout: float = 0.1, drop_path: float = 0.0
    ):
        super().__init__()
        if dim % 2 or n_heads % 2:
            raise ValueError(
                f"Criss-cross attention splits width and heads in two: dim ({dim}) "
                f"and n_heads ({n_heads}) must both be even."
            )
        half = dim // 2
        self.norm1 = nn.LayerNorm(dim)
        self.spatial_attn = SelfAttention(half, n_heads // 2, dropout)
        self.temporal_attn = SelfAttention(half, n_heads // 2, dropout)
        self.attn_dropout = Dropout(dropout)
        self.norm2 = nn.LayerNorm(dim)
        self.ffn = FeedForward(dim, ffn_dim, dropout)
        self.ffn_dropout = Dropout(dropout)
        self.drop_path = DropPath(drop_path)

    def criss_cross_attention(
        self, h: torch.Tensor, chan_valid: torch.Tensor | None, patch_valid: torch.Tensor | None
    ) -> torch.Tensor:
        """Spatial attention on ``h[..., :D/2]``, temporal on ``h[..., D/2:]``, concatenated."""
        b, c, n, d = h.shape
        half = d // 2
        # Spatial: sequences over channels, one per (item, patch); one copy puts heads first.
        qkv = self.spatial_attn.project_qkv(h[..., :half])  # [B, C, N, 3, H, e]
        qkv = qkv.permute(3, 0, 2, 4, 1, 5).contiguous().flatten(1, 2)  # [3, B*N, H, C, e]
        keys = (
            None
            if chan_valid is None
            else (chan_valid[:, None, :].expand(b, n, c).reshape(b * n, c))
        )
        spatial = self.spatial_attn.attend_heads(qkv, keys)  # [B*N, C, D/2]
        spatial = self.spatial_attn.out_proj(spatial).view(b, n, c, half).transpose(1, 2)
        # Temporal: sequences over patches, one per (item, channel); merging B and C is a view.
        qkv = self.temporal_attn.project_qkv(h[..., half:]).flatten(0, 1)  # [B*C, N, 3, H, e]
        keys = (
            None
            if patch_valid is None
            else (patch_valid[:, None, :].expand(b, c, n).reshape(b * c, n))
        )
        temporal = self.temporal_attn.attend_sequences(qkv, keys)  # [B*C, N, D/2]
        temporal = self.temporal_attn.out_proj(temporal).view(b, c, n, half)
        return torch.cat([spatial, temporal], dim=-1)

    def forward(
        self,
        x: torch.Tensor,
        chan_valid: torch.Tensor | None = None,
        patch_valid: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Apply the layer.

        Parameters
        ----------
        x : Tensor ``[B, C, N, D]``
        chan_valid : Tensor ``[B, C]`` bool or None
            Real channels (keys of the spatial attention); None = all real.
        patch_valid : Tensor ``[B, N]`` bool or None
            Valid patches (keys of the temporal attention); None = all valid.
        """
        attn = self.criss_cross_attention(self.norm1(x), chan_valid, patch_valid)
        x = add_residual(x, attn, self.attn_dropout.p, self.drop_path.p, self.training)
        ffn = self.ffn(self.norm2(x))
        return add_residual(x, ffn, self.ffn_dropout.p, self.drop_path.p, self.training)


class CrissCrossTransformer(BrainEncoder):
    """Criss-cross transformer encoder ``x [B, C, N, P] -> [B, C, N, D]`` (or ``[B, K, N, D]``).

    Parameters
    ----------
    patch_size : int
        Samples per patch ``P`` (200 = 1 s at 200 Hz).
    dim : int
        Token width ``D``.
    depth : int
        Number of criss-cross layers.
    n_heads : int
        Heads per layer (half spatial, half temporal).
    ffn_dim : int
        FFN hidden width.
    dropout : float
        Dropout in the layers.
    drop_path : float
        Largest stochastic-depth rate (linearly increasing over layers).
    patch_embedding : {"neurofm", "cbramod"}
        ``neurofm.tokenizer.PatchEmbedding`` (learned mask token in token space) or CBraMod's
        (frozen zero mask patch; ``dim`` must equal its width, 200 for P = 200).
    position : {"sensor", "acpe"}
        ``"sensor"``: sensor encoding (position, orientation, kind) per channel plus a temporal
        convolutional position encoding -- channel order carries no meaning. ``"acpe"``: CBraMod's
        (19, 7) convolution over channels x patches; ``sensors`` may be None.
    n_latent : int or None
        With ``position="sensor"``: unify the C sensors into ``n_latent`` latent channels first
        (``neurofm.tokenizer.ChannelUnification``); the output is then ``[B, K, N, D]``.
    time_kernel : int
        Patches covered by the temporal position convolution (``position="sensor"``).
    patch_input : {"patches", "codes"}
        ``"patches"``: continuous patch embedding (``patch_embedding``). ``"codes"``: the frozen
        ``tokenizer``'s quantised code vectors, projected to ``dim``
        (:class:`~neurofm.models.code_input.CodeEmbedding`); needs sensors.
    tokenizer : NeuralTokenizer, str, TokenizerConfig, dict or None
        With ``patch_input="codes"``: the tokenizer or its directory (see
        :func:`~neurofm.models.code_input.load_tokenizer`); stored in ``config`` as its dict.
    """

    def __init__(
        self,
        patch_size: int = 200,
        dim: int = 200,
        depth: int = 12,
        n_heads: int = 8,
        ffn_dim: int = 800,
        dropout: float = 0.1,
        drop_path: float = 0.0,
        patch_embedding: str = "neurofm",
        position: str = "sensor",
        n_latent: int | None = None,
        time_kernel: int = 7,
        patch_input: str = "patches",
        tokenizer=None,
    ):
        super().__init__()
        check_patch_input(patch_input)
        if patch_input == "codes" and patch_embedding != "neurofm":
            raise ValueError(
                'patch_input="codes" replaces the patch embedding; leave '
                f'patch_embedding="neurofm" (got {patch_embedding!r}).'
            )
        if patch_input == "patches" and tokenizer is not None:
            raise ValueError(
                'A tokenizer is only used with patch_input="codes"; set patch_input="codes" '
                "or leave tokenizer=None."
            )
        if patch_embedding not in PATCH_EMBEDDINGS:
            raise ValueError(
                f"patch_embedding must be one of {PATCH_EMBEDDINGS}; got {patch_embedding!r}."
            )
        if position not in POSITION_ENCODINGS:
            raise ValueError(f"position must be one of {POSITION_ENCODINGS}; got {position!r}.")
        if n_latent is not None and position != "sensor":
            raise ValueError(
                "Channel unification (n_latent) needs position='sensor': latent "
                "channels are formed from sensor-encoded tokens."
            )
        self.config = {
            "patch_size": patch_size,
            "dim": dim,
            "depth": depth,
            "n_heads": n_heads,
            "ffn_dim": ffn_dim,
            "dropout": dropout,
            "drop_path": drop_path,
            "patch_embedding": patch_embedding,
            "position": position,
            "n_latent": n_latent,
            "time_kernel": time_kernel,
            "patch_input": patch_input,
            "tokenizer": None,
        }
        self.needs_sensors = position == "sensor" or patch_input == "codes"
        self.unifies_channels = n_latent is not None

        if patch_embedding == "cbramod":
            self.patch_embed = CBraModPatchEmbedding(patch_size, dropout)
            if self.patch_embed.dim != dim:
                raise ValueError(
                    f"CBraMod's patch embedding gives width {self.patch_embed.dim} "
                    f"for patch_size={patch_size}; set dim={self.patch_embed.dim}."
                )
            self.mask_token = None
        elif patch_input == "codes":
            self.patch_embed = CodeEmbedding(tokenizer, dim, patch_size)
            self.config["tokenizer"] = tokenizer_hyperparameter(self.patch_embed)
            self.mask_token = nn.Parameter(torch.zeros(dim))
            nn.init.trunc_normal_(self.mask_token, std=0.02)
        else:
            from neurofm.tokenizer.patch_embed import PatchEmbedding

            self.patch_embed = PatchEmbedding(patch_size, dim)
            self.mask_token = nn.Parameter(torch.zeros(dim))
            nn.init.trunc_normal_(self.mask_token, std=0.02)

        if position == "sensor":
            from neurofm.tokenizer.sensor_encoding import SensorEncoding

            self.sensor_encoding = SensorEncoding(dim)
            self.position = ConvPositionEncoding(dim, (1, time_kernel))
        else:
            self.sensor_encoding = None
            self.position = ConvPositionEncoding(dim, (19, 7))

        if n_latent is not None:
            from neurofm.tokenizer.unify import ChannelDecoder, ChannelUnification

            self.unify = ChannelUnification(dim, n_latent, n_heads)
            self.channel_decoder = ChannelDecoder(dim, n_heads)
        else:
            self.unify = None
            self.channel_decoder = None

        self.layers = nn.ModuleList(
            CrissCrossLayer(dim, n_heads, ffn_dim, dropout, rate)
            for rate in drop_path_rates(drop_path, depth)
        )
        self.reconstruction_head = ReconstructionHead(dim, patch_size)

    def tokens(
        self,
        x: torch.Tensor,
        sensors: SensorBatch | None,
        patch_mask: torch.Tensor | None,
        patch_valid: torch.Tensor | None,
    ) -> torch.Tensor:
        """Input tokens ``[B, C, N, D]``: patch embedding, mask token, position encodings."""
        if self.mask_token is None:
            tokens = self.patch_embed(x, patch_mask)
        else:
            tokens = embed_patches(self.patch_embed, x, sensors, patch_mask, self.mask_token)
        if self.sensor_encoding is not None:
            tokens = tokens + self.sensor_encoding(sensors)[:, :, None, :].to(tokens.dtype)
            if patch_valid is not None:
                # Padded patches enter the temporal convolution as zeros, as if absent.
                tokens = tokens * patch_valid[:, None, :, None].to(tokens.dtype)
        return self.position(tokens)

    def forward(
        self,
        x: torch.Tensor,
        sensors: SensorBatch | None = None,
        patch_mask: torch.Tensor | None = None,
        patch_valid: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Encode a batch of patched windows.

        Parameters
        ----------
        x : Tensor ``[B, C, N, P]``
            Patched windows in model units (zero rows for padding channels).
        sensors : SensorBatch or None
            Sensor metadata; required unless ``position="acpe"``.
        patch_mask : Tensor ``[B, C, N]`` bool or None
            True = patch hidden behind the mask token (masked-reconstruction pretraining).
        patch_valid : Tensor ``[B, N]`` bool or None
            True = real signal; padded patches are never attended to.

        Returns
        -------
        Tensor ``[B, C, N, D]``, or ``[B, K, N, D]`` with channel unification.
        """
        self.check_inputs(x, sensors, patch_mask, patch_valid)
        h = self.tokens(x, sensors, patch_mask, patch_valid)
        chan_valid = None if sensors is None else sensors.chan_mask
        if self.unify is not None:
            h = self.unify(h, chan_valid)
            chan_valid = None
        elif chan_valid is not None and bool(chan_valid.all()):
            chan_valid = None  # no padding: the unmasked fused kernels are fastest
        if patch_valid is not None and bool(patch_valid.all()):
            patch_valid = None
        for layer in self.layers:
            h = layer(h, chan_valid, patch_valid)
        return h

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
        feats = self(x, sensors, patch_mask, patch_valid)
        if self.channel_decoder is not None:
            feats = self.channel_decoder(feats, self.sensor_encoding(sensors), sensors.chan_mask)
        return self.reconstruction_head(feats)
