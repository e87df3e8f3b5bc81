"""LaBraM's encoder (Jiang et al., ICLR 2024), reproducing braindecode's ``Labram`` forward pass.

LaBraM embeds every 1-s patch with a three-layer temporal convolution, adds a learned embedding of
the channel *by name* (a table of 128 electrode names, row 0 being the [CLS] token) and of the patch
index, and runs a ViT-style transformer (LayerNorm on queries and keys, layer scale) over the
[CLS] token plus all ``C x N`` patch tokens. :class:`LabramEncoder` has the same parameters, so
published weights load through :mod:`neurofm.hub.convert_labram`.

Channel handling is the documented exception to neurofm's order-free sensor encoding: the model
looks each channel up in :data:`LABRAM_CHANNELS` by name. :func:`labram_channel_ids` matches names
case-insensitively, and otherwise after :func:`neurofm.sensors.names.normalise_channel_name`
(``EEG FP1-REF`` -> ``FP1``, bipolar ``Fp1-F7`` -> ``FP1-F7``); old 10-20 names keep their own rows
(``EEG T3-REF`` -> ``T3``), since LaBraM learned separate embeddings for ``T3`` and ``T7``. Tell the
model its channels once with :meth:`LabramEncoder.set_channel_names`, or pass ``channel_ids`` per
call. The temporal convolution's group norm pools statistics over all channels and patches of a
window, so zero-padded channels change real tokens slightly (as in braindecode and the original).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from neurofm.models.base import BrainEncoder
from neurofm.models.layers import DropPath, drop_path_rates
from neurofm.models.registry import register_model
from neurofm.sensors import SensorBatch

#: LaBraM's channel table, in the order of the rows of its position embedding (row 0 = [CLS]).
LABRAM_CHANNELS: tuple[str, ...] = (
    "FP1", "FPZ", "FP2", "AF9", "AF7", "AF5", "AF3", "AF1", "AFZ", "AF2", "AF4", "AF6", "AF8",
    "AF10", "F9", "F7", "F5", "F3", "F1", "FZ", "F2", "F4", "F6", "F8", "F10", "FT9", "FT7", "FC5",
    "FC3", "FC1", "FCZ", "FC2", "FC4", "FC6", "FT8", "FT10", "T9", "T7", "C5", "C3", "C1", "CZ",
    "C2", "C4", "C6", "T8", "T10", "TP9", "TP7", "CP5", "CP3", "CP1", "CPZ", "CP2", "CP4", "CP6",
    "TP8", "TP10", "P9", "P7", "P5", "P3", "P1", "PZ", "P2", "P4", "P6", "P8", "P10", "PO9", "PO7",
    "PO5", "PO3", "PO1", "POZ", "PO2", "PO4", "PO6", "PO8", "PO10", "O1", "OZ", "O2", "O9", "CB1",
    "CB2", "IZ", "O10", "T3", "T5", "T4", "T6", "M1", "M2", "A1", "A2", "CFC1", "CFC2", "CFC3",
    "CFC4", "CFC5", "CFC6", "CFC7", "CFC8", "CCP1", "CCP2", "CCP3", "CCP4", "CCP5", "CCP6", "CCP7",
    "CCP8", "T1", "T2", "FTT9H", "TTP7H", "TPP9H", "FTT10H", "TPP8H", "TPP10H", "FP1-F7", "F7-T7",
    "T7-P7", "P7-O1", "FP2-F8", "F8-T8", "T8-P8", "P8-O2",
)
_TABLE_INDEX = {name: i for i, name in enumerate(LABRAM_CHANNELS)}
_TOKEN = re.compile(r"[A-Z0-9]+")


def _table_key(name: str) -> str | None:
    """Row name in :data:`LABRAM_CHANNELS` for a recording label, or None."""
    from neurofm.sensors.names import OLD_1020_ALIASES, normalise_channel_name

    upper = name.strip().upper()
    if upper in _TABLE_INDEX:
        return upper
    normalised = normalise_channel_name(name)
    parts = []
    for part in normalised.parts:
        part = part.upper()
        # Keep the old 10-20 spelling when the label used it (LaBraM has rows for both).
        for old, new in OLD_1020_ALIASES.items():
            if part == new and old in _TOKEN.findall(upper):
                part = old
        parts.append(part)
    key = "-".join(parts)
    return key if key in _TABLE_INDEX else None


def labram_channel_ids(names: Sequence[str]) -> list[int]:
    """Rows of :data:`LABRAM_CHANNELS` for the channel ``names`` of a recording.

    Parameters
    ----------
    names : sequence of str
        Channel labels (``"EEG FP1-REF"``, ``"Cz"``, ``"FP1-F7"`` …).

    Returns
    -------
    list of int, one row index (0-based, without the [CLS] row) per name.

    Raises
    ------
    ValueError
        Listing every name with no row in LaBraM's table.
    """
    keys = [_table_key(n) for n in names]
    unknown = [n for n, k in zip(names, keys) if k is None]
    if unknown:
        raise ValueError(f"LaBraM has no embedding for channel(s) {unknown}; it knows the 128 names "
                         "in neurofm.models.labram.LABRAM_CHANNELS. Drop or rename these channels "
                         "(raw.drop_channels / raw.rename_channels) before encoding.")
    return [_TABLE_INDEX[k] for k in keys]


class LabramPatchEmbedding(nn.Module):
    """LaBraM's temporal convolution ``[B, C, N, P] -> [B, C*N, D]`` (channel-major tokens).

    Three ``(1, k)`` convolutions over ``[B, 1, C*N, P]`` (the first with stride 8), each followed
    by group norm (4 groups; statistics over the whole window) and GELU; the output
    ``[B, K, C*N, P']`` is flattened per token to ``D = P' * K`` features, time-major.

    Parameters
    ----------
    patch_size : int
        Samples per patch ``P``.
    channels : int
        Convolution channels ``K`` (8 in LaBraM).
    """

    def __init__(self, patch_size: int = 200, channels: int = 8):
        super().__init__()
        self.conv1 = nn.Conv2d(1, channels, (1, 15), stride=(1, 8), padding=(0, 7))
        self.norm1 = nn.GroupNorm(4, channels)
        self.conv2 = nn.Conv2d(channels, channels, (1, 3), padding=(0, 1))
        self.norm2 = nn.GroupNorm(4, channels)
        self.conv3 = nn.Conv2d(channels, channels, (1, 3), padding=(0, 1))
        self.norm3 = nn.GroupNorm(4, channels)
        self.dim = ((patch_size + 2 * 7 - 15) // 8 + 1) * channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, n, p = x.shape
        h = x.reshape(b, 1, c * n, p)
        h = F.gelu(self.norm1(self.conv1(h)))
        h = F.gelu(self.norm2(self.conv2(h)))
        h = F.gelu(self.norm3(self.conv3(h)))  # [B, K, C*N, P']
        return h.permute(0, 2, 3, 1).reshape(b, c * n, -1)


class LabramAttention(nn.Module):
    """Multi-head self-attention with LayerNorm on queries and keys, through fused SDPA.

    Parameters
    ----------
    dim : int
        Token width ``D``.
    n_heads : int
        Number of heads (``D / n_heads`` features each).
    qkv_bias : bool
        Learned biases for queries and values (keys have none), as in BEiT/LaBraM.
    qk_norm : bool
        LayerNorm (eps 1e-6) over each head's queries and keys.
    attn_dropout, dropout : float
        Dropout on the attention weights and on the output projection.
    """

    def __init__(self, dim: int, n_heads: int, qkv_bias: bool = False, qk_norm: bool = True,
                 attn_dropout: float = 0.0, dropout: float = 0.0):
        super().__init__()
        if dim % n_heads:
            raise ValueError(f"LaBraM width {dim} is not divisible by n_heads={n_heads}.")
        self.n_heads = n_heads
        head_dim = dim // n_heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.q_bias = nn.Parameter(torch.zeros(dim)) if qkv_bias else None
        self.v_bias = nn.Parameter(torch.zeros(dim)) if qkv_bias else None
        self.q_norm = nn.LayerNorm(head_dim, eps=1e-6) if qk_norm else None
        self.k_norm = nn.LayerNorm(head_dim, eps=1e-6) if qk_norm else None
        self.attn_dropout = attn_dropout
        self.proj = nn.Linear(dim, dim)
        self.proj_dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, key_valid: torch.Tensor | None = None) -> torch.Tensor:
        """``x [B, L, D]``, ``key_valid [B, L]`` bool or None -> ``[B, L, D]``."""
        b, length, d = x.shape
        bias = None
        if self.q_bias is not None:
            bias = torch.cat([self.q_bias, torch.zeros_like(self.q_bias), self.v_bias])
        qkv = F.linear(x, self.qkv.weight, bias).reshape(b, length, 3, self.n_heads, -1)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each [B, H, L, e]
        if self.q_norm is not None:
            q, k = self.q_norm(q), self.k_norm(k)
        mask = None if key_valid is None else key_valid[:, None, None, :]
        p = self.attn_dropout if self.training else 0.0
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)
        return self.proj_dropout(self.proj(out.transpose(1, 2).reshape(b, length, d)))


class LabramBlock(nn.Module):
    """Pre-norm transformer block with layer scale: ``x + g1 * attn(norm1 x)``, ``+ g2 * mlp``.

    Parameters
    ----------
    dim, n_heads, qkv_bias, qk_norm, attn_dropout, dropout
        As in :class:`LabramAttention`.
    mlp_ratio : float
        MLP hidden width / ``dim``.
    init_values : float
        Initial layer-scale value; 0 disables layer scale.
    drop_path : float
        Stochastic-depth probability.
    """

    def __init__(self, dim: int, n_heads: int, mlp_ratio: float = 4.0, qkv_bias: bool = False,
                 qk_norm: bool = True, attn_dropout: float = 0.0, dropout: float = 0.0,
                 init_values: float = 0.1, drop_path: float = 0.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = LabramAttention(dim, n_heads, qkv_bias, qk_norm, attn_dropout, dropout)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim),
                                 nn.Dropout(dropout))
        if init_values > 0:
            self.gamma_1 = nn.Parameter(torch.full((dim,), float(init_values)))
            self.gamma_2 = nn.Parameter(torch.full((dim,), float(init_values)))
        else:
            self.gamma_1 = self.gamma_2 = None
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor, key_valid: torch.Tensor | None = None) -> torch.Tensor:
        a = self.attn(self.norm1(x), key_valid)
        if self.gamma_1 is not None:
            a = self.gamma_1 * a
        x = x + self.drop_path(a)
        m = self.mlp(self.norm2(x))
        if self.gamma_2 is not None:
            m = self.gamma_2 * m
        return x + self.drop_path(m)


class LabramEncoder(BrainEncoder):
    """LaBraM encoder ``x [B, C, N, P] -> [B, C, N, D]`` with channels looked up by name.

    Parameters
    ----------
    patch_size : int
        Samples per patch ``P`` (200 = 1 s at 200 Hz).
    dim : int
        Token width ``D``; must equal the temporal convolution's width
        (``conv_channels * ((P - 1) // 8 + 1)``, 200 for P = 200).
    depth : int
        Number of transformer blocks.
    n_heads : int
        Attention heads.
    mlp_ratio : float
        MLP hidden width / ``dim``.
    qkv_bias : bool
        Learned query and value biases.
    qk_norm : bool
        LayerNorm on queries and keys.
    conv_channels : int
        Channels of the temporal convolution.
    init_values : float
        Layer-scale initial value (0 = no layer scale).
    max_patches : int
        Rows of the temporal embedding: the longest window in patches.
    pooling : {"cls", "mean"}
        Window embedding: the final-normed [CLS] token, or ``fc_norm`` of the mean patch token
        (LaBraM's ``use_mean_pooling``; then features are ``fc_norm``-ed too).
    n_classes : int
        Outputs of the linear classification head (0 = no head); see :meth:`classify`.
    dropout, attn_dropout, drop_path : float
        Dropout after projections/MLP, on attention weights, and stochastic depth (max rate).
    """

    needs_sensors = False

    def __init__(self, patch_size: int = 200, dim: int = 200, depth: int = 12, n_heads: int = 10,
                 mlp_ratio: float = 4.0, qkv_bias: bool = False, qk_norm: bool = True,
                 conv_channels: int = 8, init_values: float = 0.1, max_patches: int = 16,
                 pooling: str = "cls", n_classes: int = 0, dropout: float = 0.0,
                 attn_dropout: float = 0.0, drop_path: float = 0.0):
        super().__init__()
        if pooling not in ("cls", "mean"):
            raise ValueError(f"pooling must be 'cls' or 'mean'; got {pooling!r}.")
        self.config = {"patch_size": patch_size, "dim": dim, "depth": depth, "n_heads": n_heads,
                           "mlp_ratio": mlp_ratio, "qkv_bias": qkv_bias, "qk_norm": qk_norm,
                           "conv_channels": conv_channels, "init_values": init_values,
                           "max_patches": max_patches, "pooling": pooling, "n_classes": n_classes,
                           "dropout": dropout, "attn_dropout": attn_dropout, "drop_path": drop_path}
        self.patch_embed = LabramPatchEmbedding(patch_size, conv_channels)
        if self.patch_embed.dim != dim:
            raise ValueError(f"LaBraM's temporal convolution gives width {self.patch_embed.dim} "
                             f"for patch_size={patch_size} and conv_channels={conv_channels}; "
                             f"set dim={self.patch_embed.dim}.")
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.position_embedding = nn.Parameter(torch.zeros(1, len(LABRAM_CHANNELS) + 1, dim))
        self.temporal_embedding = nn.Parameter(torch.zeros(1, max_patches, dim))
        self.pos_dropout = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(
            LabramBlock(dim, n_heads, mlp_ratio, qkv_bias, qk_norm, attn_dropout, dropout,
                        init_values, rate)
            for rate in drop_path_rates(drop_path, depth))
        self.norm = nn.LayerNorm(dim, eps=1e-6) if pooling == "cls" else nn.Identity()
        self.fc_norm = nn.LayerNorm(dim, eps=1e-6) if pooling == "mean" else None
        self.head = nn.Linear(dim, n_classes) if n_classes > 0 else None
        self.register_buffer("default_channel_ids", None, persistent=False)
        for p in (self.cls_token, self.position_embedding, self.temporal_embedding):
            nn.init.trunc_normal_(p, std=0.02)

    # -- channels ---------------------------------------------------------------------------
    def set_channel_names(self, names: Sequence[str]) -> LabramEncoder:
        """Use the embeddings of ``names`` (one per input channel, in order) by default."""
        ids = torch.tensor(labram_channel_ids(names), dtype=torch.long)
        self.default_channel_ids = ids.to(self.cls_token.device)
        return self

    def _channel_rows(self, b: int, c: int, channel_ids) -> torch.Tensor:
        """``[B, C]`` rows of the position embedding (1-based: row 0 is [CLS])."""
        ids = channel_ids if channel_ids is not None else self.default_channel_ids
        if ids is None:
            if c != len(LABRAM_CHANNELS):
                raise ValueError(
                    f"{self.model_name or 'LabramEncoder'} looks channels up by name, but no names "
                    f"are set and x has {c} channels (not LaBraM's {len(LABRAM_CHANNELS)} in table "
                    "order). Call model.set_channel_names(raw.ch_names) or pass channel_ids="
                    "labram_channel_ids(names).")
            ids = torch.arange(c)
        ids = torch.as_tensor(ids, dtype=torch.long, device=self.cls_token.device)
        if ids.shape[-1] != c:
            raise ValueError(f"{ids.shape[-1]} channel ids for x with {c} channels; give one id "
                             "per channel of x, in order.")
        return ids.expand(b, c) + 1

    # -- encoder ----------------------------------------------------------------------------
    def _normed_tokens(self, x, sensors, patch_mask, patch_valid, channel_ids):
        """``[B, 1 + C*N, D]`` after the final norm, and the key-validity mask or None."""
        self.check_inputs(x, sensors, patch_mask, patch_valid)
        if patch_mask is not None:
            raise ValueError("LaBraM's encoder has no mask token; patch_mask is not supported "
                             "(use it for feature extraction, probing and fine-tuning).")
        b, c, n, _ = x.shape
        if n > self.temporal_embedding.shape[1]:
            raise ValueError(f"x has {n} patches but this LaBraM knows at most "
                             f"{self.temporal_embedding.shape[1]} (max_patches); cut the "
                             "recording into shorter windows.")
        rows = self._channel_rows(b, c, channel_ids)  # [B, C]
        pos = self.position_embedding[0, rows]  # [B, C, D]
        tokens = (self.patch_embed(x).view(b, c, n, -1) + pos[:, :, None, :]
                  + self.temporal_embedding[0, None, None, :n, :])
        cls = self.cls_token + self.position_embedding[:, :1]
        h = torch.cat([cls.expand(b, -1, -1), tokens.flatten(1, 2)], dim=1)
        h = self.pos_dropout(h)
        key_valid = self._key_valid(b, c, n, sensors, patch_valid, h.device)
        for block in self.blocks:
            h = block(h, key_valid)
        return self.norm(h), key_valid

    @staticmethod
    def _key_valid(b, c, n, sensors, patch_valid, device):
        chan = None if sensors is None or bool(sensors.chan_mask.all()) else sensors.chan_mask
        patch = None if patch_valid is None or bool(patch_valid.all()) else patch_valid
        if chan is None and patch is None:
            return None
        valid = torch.ones(b, c, n, dtype=torch.bool, device=device)
        if chan is not None:
            valid = valid & chan[:, :, None].to(device)
        if patch is not None:
            valid = valid & patch[:, None, :].to(device)
        return torch.cat([valid.new_ones(b, 1), valid.flatten(1)], dim=1)

    def forward(self, x: torch.Tensor, sensors: SensorBatch | None = None,
                patch_mask: torch.Tensor | None = None, patch_valid: torch.Tensor | None = None,
                channel_ids=None) -> torch.Tensor:
        """Encode patched windows.

        Parameters
        ----------
        x : Tensor ``[B, C, N, P]``
        sensors : SensorBatch or None
            Only ``chan_mask`` is used (padded channels are never attended to).
        patch_mask : None
            Not supported (LaBraM's encoder has no mask token).
        patch_valid : Tensor ``[B, N]`` bool or None
        channel_ids : Tensor ``[C]`` or ``[B, C]`` of int, or None
            Rows of :data:`LABRAM_CHANNELS`; default: :meth:`set_channel_names`, else table order.

        Returns
        -------
        Tensor ``[B, C, N, D]``: final-normed patch tokens (``fc_norm``-ed with mean pooling).
        """
        b, c, n, _ = x.shape
        h, _ = self._normed_tokens(x, sensors, patch_mask, patch_valid, channel_ids)
        if self.fc_norm is not None:
            h = self.fc_norm(h)
        return h[:, 1:].reshape(b, c, n, -1)

    def embed(self, x: torch.Tensor, sensors: SensorBatch | None = None,
              patch_valid: torch.Tensor | None = None, channel_ids=None) -> torch.Tensor:
        """LaBraM's window embedding ``[B, D]``: the [CLS] token, or ``fc_norm`` of the mean
        of the valid patch tokens (``pooling="mean"``)."""
        h, key_valid = self._normed_tokens(x, sensors, None, patch_valid, channel_ids)
        if self.fc_norm is None:
            return h[:, 0]
        patch = h[:, 1:]
        if key_valid is None:
            return self.fc_norm(patch.mean(dim=1))
        w = key_valid[:, 1:, None].to(patch.dtype)
        return self.fc_norm((patch * w).sum(dim=1) / w.sum(dim=1).clamp_min(1.0))

    def classify(self, x: torch.Tensor, sensors: SensorBatch | None = None,
                 patch_valid: torch.Tensor | None = None, channel_ids=None) -> torch.Tensor:
        """Class logits ``[B, n_classes]`` of the linear head on :meth:`embed`."""
        if self.head is None:
            raise ValueError("This LaBraM has no classification head; build it with "
                             "n_classes > 0 (or probe its embeddings with `neurofm probe`).")
        return self.head(self.embed(x, sensors, patch_valid, channel_ids))


register_model(
    "labram_base", LabramEncoder,
    "LaBraM-Base encoder (D=200, 12 blocks, 10 heads); channels by name from a 128-name table; "
    "loads braindecode/LaBraM weights.",
    dim=200, depth=12, n_heads=10, mlp_ratio=4.0, qkv_bias=False, qk_norm=True, init_values=0.1,
    max_patches=16)
