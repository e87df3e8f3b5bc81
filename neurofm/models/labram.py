"""LaBraM's encoder (Jiang et al., ICLR 2024), reproducing braindecode's ``Labram`` forward pass.

LaBraM embeds every 1-s patch with a three-layer temporal convolution, adds a learned embedding of
the channel *by name* (a table of 128 electrode names) and of the patch index, and runs a ViT-style
transformer (LayerNorm on queries and keys, layer scale) over the [CLS] token plus all ``C x N``
patch tokens. :class:`LabramEncoder` has the same parameters, so published weights load through
:mod:`neurofm.hub.convert_labram`: its stem (:class:`~neurofm.tokenizer.SensorTokenizer`) holds
the convolution, the channel-name table and the patch-index embedding, its trunk
(:class:`LabramTrunk`) the [CLS] token, its position (row 0 of LaBraM's position table) and the
blocks.

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

from neurofm.models.base import STEM_RENAMES, BrainEncoder, Trunk
from neurofm.models.registry import register_model
from neurofm.nn import DropPath, FeedForward, attend, drop_path_rates, rename_keys
from neurofm.sensors import SensorBatch
from neurofm.sensors.names import OLD_1020_ALIASES, normalise_channel_name
from neurofm.tokenizer.stem import SensorTokenizer

#: LaBraM's channel table, in the order of the rows of ``stem.channel_embedding`` (LaBraM's
#: position embedding without its [CLS] row 0).
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


class LabramAttention(nn.Module):
    """Multi-head self-attention with LayerNorm on queries and keys, through :func:`attend`.

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
        out = attend(q, k, v, key_valid, self.attn_dropout if self.training else 0.0)
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
        self.mlp = FeedForward(dim, int(dim * mlp_ratio), output_dropout=dropout)
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


class LabramTrunk(Trunk):
    """LaBraM's transformer over the [CLS] token and all ``C x N`` patch tokens.

    ``tokens [B, C, N, D] -> [B, C, N, D]`` (final-normed patch tokens, ``fc_norm``-ed with mean
    pooling); :meth:`pool` is LaBraM's window embedding.

    Parameters
    ----------
    dim, depth, n_heads, mlp_ratio, qkv_bias, qk_norm, init_values, pooling, dropout,
    attn_dropout, drop_path
        As in :class:`LabramEncoder`.
    """

    def __init__(self, dim: int, depth: int, n_heads: int, mlp_ratio: float = 4.0,
                 qkv_bias: bool = False, qk_norm: bool = True, init_values: float = 0.1,
                 pooling: str = "cls", dropout: float = 0.0, attn_dropout: float = 0.0,
                 drop_path: float = 0.0):
        super().__init__()
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.cls_position = nn.Parameter(torch.zeros(1, 1, dim))  # row 0 of LaBraM's pos_embed
        for p in (self.cls_token, self.cls_position):
            nn.init.trunc_normal_(p, std=0.02)
        self.pos_dropout = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(
            LabramBlock(dim, n_heads, mlp_ratio, qkv_bias, qk_norm, attn_dropout, dropout,
                        init_values, rate)
            for rate in drop_path_rates(drop_path, depth))
        self.norm = nn.LayerNorm(dim, eps=1e-6) if pooling == "cls" else nn.Identity()
        self.fc_norm = nn.LayerNorm(dim, eps=1e-6) if pooling == "mean" else None

    def _normed_tokens(self, tokens, chan_valid, patch_valid):
        """``[B, 1 + C*N, D]`` after the final norm, and the key-validity mask or None."""
        b, c, n, _ = tokens.shape
        cls = self.cls_token + self.cls_position
        h = torch.cat([cls.expand(b, -1, -1), tokens.flatten(1, 2)], dim=1)
        h = self.pos_dropout(h)
        key_valid = self._key_valid(b, c, n, chan_valid, patch_valid, h.device)
        for block in self.blocks:
            h = block(h, key_valid)
        return self.norm(h), key_valid

    @staticmethod
    def _key_valid(b, c, n, chan_valid, patch_valid, device):
        if chan_valid is None and patch_valid is None:
            return None
        valid = torch.ones(b, c, n, dtype=torch.bool, device=device)
        if chan_valid is not None:
            valid = valid & chan_valid[:, :, None].to(device)
        if patch_valid is not None:
            valid = valid & patch_valid[:, None, :].to(device)
        return torch.cat([valid.new_ones(b, 1), valid.flatten(1)], dim=1)

    def forward(self, tokens: torch.Tensor, chan_valid: torch.Tensor | None,
                patch_valid: torch.Tensor | None) -> torch.Tensor:
        b, c, n, _ = tokens.shape
        h, _ = self._normed_tokens(tokens, chan_valid, patch_valid)
        if self.fc_norm is not None:
            h = self.fc_norm(h)
        return h[:, 1:].reshape(b, c, n, -1)

    def pool(self, tokens: torch.Tensor, chan_valid: torch.Tensor | None,
             patch_valid: torch.Tensor | None) -> torch.Tensor:
        """LaBraM's window embedding ``[B, D]``: the [CLS] token, or ``fc_norm`` of the mean
        of the valid patch tokens (``pooling="mean"``)."""
        h, key_valid = self._normed_tokens(tokens, chan_valid, patch_valid)
        if self.fc_norm is None:
            return h[:, 0]
        patch = h[:, 1:]
        if key_valid is None:
            return self.fc_norm(patch.mean(dim=1))
        w = key_valid[:, 1:, None].to(patch.dtype)
        return self.fc_norm((patch * w).sum(dim=1) / w.sum(dim=1).clamp_min(1.0))


class LabramEncoder(BrainEncoder):
    """LaBraM encoder ``x [B, C, N, P] -> [B, C, N, D]`` with channels looked up by name.

    ``embed`` is LaBraM's window embedding (the [CLS] token, or the mean patch token with
    ``pooling="mean"``); ``sensors`` are optional (only ``chan_mask`` is read: padded channels are
    never attended to); ``patch_mask`` is not supported (no mask token) and there is no
    ``reconstruct``. Methods taking ``channel_ids`` (rows of :data:`LABRAM_CHANNELS`, ``[C]`` or
    ``[B, C]``) default to :meth:`set_channel_names`, else to the table in order.

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

    trunk_renames = (
        (r"^(cls_token)$", r"trunk.\1"),
        (r"^(blocks|norm|fc_norm)\.", r"trunk.\1."),
        (r"\.mlp\.0\.", ".mlp.linear1."),
        (r"\.mlp\.2\.", ".mlp.linear2."),
    )

    def __init__(self, patch_size: int = 200, dim: int = 200, depth: int = 12, n_heads: int = 10,
                 mlp_ratio: float = 4.0, qkv_bias: bool = False, qk_norm: bool = True,
                 conv_channels: int = 8, init_values: float = 0.1, max_patches: int = 16,
                 pooling: str = "cls", n_classes: int = 0, dropout: float = 0.0,
                 attn_dropout: float = 0.0, drop_path: float = 0.0):
        if pooling not in ("cls", "mean"):
            raise ValueError(f"pooling must be 'cls' or 'mean'; got {pooling!r}.")
        stem = SensorTokenizer(patch_size, dim, patch_embedding="labram", sensor_encoding=False,
                               channel_names=len(LABRAM_CHANNELS), max_patches=max_patches,
                               conv_channels=conv_channels)
        trunk = LabramTrunk(dim, depth, n_heads, mlp_ratio, qkv_bias, qk_norm, init_values,
                            pooling, dropout, attn_dropout, drop_path)
        super().__init__(stem, trunk, reconstruction=False)
        self.head = nn.Linear(dim, n_classes) if n_classes > 0 else None

    def set_channel_names(self, names: Sequence[str]) -> LabramEncoder:
        """Use the embeddings of ``names`` (one per input channel, in order) by default."""
        table = self.stem.channel_embedding
        ids = torch.tensor(labram_channel_ids(names), dtype=torch.long)
        table.default_ids = ids.to(table.weight.device)
        return self

    def classify(self, x: torch.Tensor, sensors: SensorBatch | None = None,
                 patch_valid: torch.Tensor | None = None, channel_ids=None) -> torch.Tensor:
        """Class logits ``[B, n_classes]`` of the linear head on :meth:`embed`."""
        if self.head is None:
            raise ValueError("This LaBraM has no classification head; build it with "
                             "n_classes > 0 (or probe its embeddings with `neurofm probe`).")
        return self.head(self.embed(x, sensors, patch_valid, channel_ids))

    def upgrade_state_dict(self, state: dict, format_version: int) -> dict:
        """Rename the keys of weights written in ``format_version``: see
        :func:`upgrade_labram_state` (format 1 -> 2)."""
        if format_version >= 2:
            return state
        return upgrade_labram_state(state)


def upgrade_labram_state(state: dict) -> dict:
    """``labram_base`` weights of neurofm 0.1.0 (format 1) in today's layout.

    The renames of :meth:`BrainEncoder.upgrade_state_dict` (``patch_embed`` into the stem, the
    blocks and norms into the trunk, the MLP's ``0``/``2`` -> ``linear1``/``linear2``), and
    LaBraM's position table ``position_embedding [1, 129, D]`` cut into the [CLS] row
    (``trunk.cls_position [1, 1, D]``) and the channel-name table
    (``stem.channel_embedding.weight [128, D]``); ``temporal_embedding [1, M, D]`` ->
    ``stem.temporal_embedding.weight [M, D]``. Keys already in today's layout pass unchanged.
    """
    out = rename_keys(state, STEM_RENAMES + LabramEncoder.trunk_renames)
    if "position_embedding" in out:
        table = out.pop("position_embedding")
        out["trunk.cls_position"] = table[:, :1]
        out["stem.channel_embedding.weight"] = table[0, 1:]
    if "temporal_embedding" in out:
        out["stem.temporal_embedding.weight"] = out.pop("temporal_embedding")[0]
    return out


@register_model(LabramEncoder)
def labram_base():
    """LaBraM-Base encoder (D=200, 12 blocks, 10 heads); channels by name from a 128-name table;
    loads braindecode/LaBraM weights."""
    return {"dim": 200, "depth": 12, "n_heads": 10, "mlp_ratio": 4.0, "qkv_bias": False,
            "qk_norm": True, "init_values": 0.1, "max_patches": 16}
