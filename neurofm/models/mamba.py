"""Bidirectional Mamba backbone: selective state-space blocks over time, per channel.

Two mixers, chosen by ``mixer=``:

* ``"mamba1"`` (:class:`MambaMixer`, Mamba's S6): a decay per feature ``d`` and state ``s``::

      h_t = exp(delta_t[d] * A[d, s]) * h_{t-1} + delta_t[d] * B_t[s] * u_t[d]
      y_t[d] = sum_s C_t[s] * h_t[d, s] + D[d] * u_t[d]

  through ``mamba-ssm``'s CUDA kernel when that package imports and the tensors are on CUDA, and
  otherwise through :func:`neurofm.nn.scan.selective_scan` (exact, element-wise work).
* ``"mamba2"`` (:class:`Mamba2Mixer`, Mamba-2's block): one scalar decay per head of ``headdim``
  features, so the scan (:func:`neurofm.nn.scan.ssd_scan`) is chunked matrix products.

:class:`BidirectionalMamba`'s stem embeds patches, adds the sensor encoding and optionally unifies
the C sensors into K latent channels; its trunk (:class:`BidirectionalMambaTrunk`) stacks blocks
that each run one mixer forward and one backward in time along every channel (outputs summed),
with light spatial attention across channels every few blocks. Cost is linear in the number of
patches.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from neurofm.models.base import BrainEncoder, Trunk, stem_patch_embedding
from neurofm.models.registry import register_model
from neurofm.nn import DropPath, SelfAttention, cpu_kernels, drop_path_rates, mamba_kernels
from neurofm.nn.scan import selective_scan, ssd_scan
from neurofm.tokenizer.stem import SensorTokenizer

try:  # mamba-ssm needs its CUDA build; importing it fails (variously) without one.
    from mamba_ssm.ops.selective_scan_interface import selective_scan_fn as _cuda_selective_scan
except Exception:  # noqa: BLE001 - any import-time failure means "not available"
    _cuda_selective_scan = None


def mamba_ssm_available() -> bool:
    """Whether mamba-ssm's CUDA selective-scan kernel is importable."""
    return _cuda_selective_scan is not None


def causal_depthwise_conv(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor
                          ) -> torch.Tensor:
    """Causal depthwise convolution along time, channels last: ``x [S, L, C] -> [S, L, C]``.

    The same as ``nn.Conv1d(C, C, K, groups=C, padding=K - 1)`` on ``x.transpose(1, 2)`` cut to
    the first ``L`` outputs (``weight [C, 1, K]``, ``bias [C]``), written as ``K`` multiply-adds
    of time-shifted slices with a backward of the same kind: on a CPU several times cheaper than
    the depthwise convolution kernel, and without the layout changes around it. Computes in the
    wider of the input's and the weight's precision.
    """
    dtype = torch.promote_types(x.dtype, weight.dtype)
    return _CausalDepthwiseConv.apply(x.to(dtype), weight.to(dtype), bias.to(dtype))


def causal_conv_silu(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """``F.silu(causal_depthwise_conv(x, weight, bias))``, ``[S, L, C] -> [S, L, C]``, in the
    wider of the input's and the weight's precision: one pass of the fused C kernel
    (:mod:`neurofm.nn.mamba_kernels`) for float32 and float64 on CPU where it can be built,
    which also reads a bfloat16 ``x`` (bf16 autocast) without a cast."""
    dtype = torch.promote_types(x.dtype, weight.dtype)
    weight, bias = weight.to(dtype), bias.to(dtype)
    if cpu_kernels.usable(weight) and mamba_kernels.io_suffix(dtype, x.dtype) is not None:
        return mamba_kernels.FusedCausalConvSiLU.apply(x, weight, bias)
    return F.silu(_CausalDepthwiseConv.apply(x.to(dtype), weight, bias))


class _CausalDepthwiseConv(torch.autograd.Function):
    """``out[:, t] = bias + sum_j taps[:, j] * x[:, t - (K - 1) + j]`` (zero before the start)."""

    @staticmethod
    def forward(ctx, x, weight, bias):
        taps = weight[:, 0]  # [C, K]
        k = taps.shape[1]
        out = torch.addcmul(bias, x, taps[:, k - 1])
        for shift in range(1, min(k, x.shape[1])):
            out[:, shift:].addcmul_(x[:, :-shift], taps[:, k - 1 - shift])
        ctx.save_for_backward(x, weight)
        return out

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        taps = weight[:, 0]
        k = taps.shape[1]
        grad_x = grad * taps[:, k - 1]
        grad_taps = torch.zeros_like(taps)
        grad_taps[:, k - 1] = (grad * x).sum((0, 1))
        for shift in range(1, min(k, x.shape[1])):
            grad_x[:, :-shift].addcmul_(grad[:, shift:], taps[:, k - 1 - shift])
            grad_taps[:, k - 1 - shift] = (grad[:, shift:] * x[:, :-shift]).sum((0, 1))
        return grad_x, grad_taps.unsqueeze(1), grad.sum((0, 1))


class MambaMixer(nn.Module):
    """One Mamba (S6) mixer along time ``[S, L, D] -> [S, L, D]``.

    Parameter names follow ``mamba_ssm.Mamba`` (``in_proj``, ``conv1d``, ``x_proj``, ``dt_proj``,
    ``A_log``, ``D``, ``out_proj``), so weights move between the two.

    Parameters
    ----------
    dim : int
        Token width ``D``.
    d_state : int
        State size ``N`` per inner feature.
    expand : int
        Inner width ``Din = expand * D``.
    d_conv : int
        Kernel of the causal depthwise convolution.
    dt_min, dt_max : float
        Range of the initial step sizes (log-uniform).
    """

    def __init__(
        self,
        dim: int,
        d_state: int = 16,
        expand: int = 2,
        d_conv: int = 4,
        dt_min: float = 1e-3,
        dt_max: float = 0.1,
    ):
        super().__init__()
        inner = expand * dim
        self.d_state = d_state
        self.dt_rank = math.ceil(dim / 16)
        self.in_proj = nn.Linear(dim, 2 * inner, bias=False)
        self.conv1d = nn.Conv1d(inner, inner, d_conv, groups=inner, padding=d_conv - 1)
        self.x_proj = nn.Linear(inner, self.dt_rank + 2 * d_state, bias=False)
        self.dt_proj = nn.Linear(self.dt_rank, inner)
        self.out_proj = nn.Linear(inner, dim, bias=False)
        nn.init.uniform_(self.dt_proj.weight, -(self.dt_rank**-0.5), self.dt_rank**-0.5)
        dt = torch.exp(torch.rand(inner) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min))
        with torch.no_grad():
            self.dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))  # softplus^-1(dt)
        self.A_log = nn.Parameter(
            torch.log(torch.arange(1, d_state + 1, dtype=torch.float32)).repeat(inner, 1)
        )
        self.D = nn.Parameter(torch.ones(inner))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Mix along time; ``x [S, L, D]`` are ``S`` independent sequences."""
        inner = self.in_proj.out_features // 2  # two GEMMs: no copy of a joint gradient
        u = F.linear(x, self.in_proj.weight[:inner])  # [S, L, Din]
        z = F.linear(x, self.in_proj.weight[inner:])
        u = causal_conv_silu(u, self.conv1d.weight, self.conv1d.bias)
        A = -torch.exp(self.A_log)
        if u.is_cuda and _cuda_selective_scan is not None:
            dt, B, C = self.x_proj(u).split([self.dt_rank, self.d_state, self.d_state], dim=-1)
            y = _cuda_selective_scan(
                u.transpose(1, 2),
                self.dt_proj.weight @ dt.transpose(1, 2),
                A,
                B.transpose(1, 2).contiguous(),
                C.transpose(1, 2).contiguous(),
                self.D.float(),
                z=z.transpose(1, 2).contiguous(),
                delta_bias=self.dt_proj.bias.float(),
                delta_softplus=True,
            )
            return self.out_proj(y.transpose(1, 2))
        # Between the two large projections everything runs in >= float32, also under autocast:
        # the recurrence needs it, and the small x_proj / dt_proj GEMMs cost less than the casts.
        dtype = torch.promote_types(x.dtype, torch.float32)
        with torch.autocast(x.device.type, enabled=False):
            u = u.to(dtype)
            dt, B, C = self.x_proj(u).split([self.dt_rank, self.d_state, self.d_state], dim=-1)
            delta = F.softplus(self.dt_proj(dt))
            y, _ = selective_scan(u, delta, A.to(dtype), B, C, self.D.to(dtype), z=z)
        return self.out_proj(y)


class Mamba2Mixer(nn.Module):
    """One Mamba-2 mixer along time ``[S, L, D] -> [S, L, D]`` (scalar decay per head).

    Parameter names and initialisation follow ``mamba_ssm.Mamba2`` with one group (``in_proj``
    giving ``z, x, B, C, dt`` at once, ``conv1d`` over ``x, B, C``, ``dt_bias``, ``A_log`` and
    ``D`` per head, the gated RMS norm ``norm``, ``out_proj``). The scan is
    :func:`neurofm.nn.scan.ssd_scan` on every device.

    Parameters
    ----------
    dim : int
        Token width ``D``.
    d_state : int
        State size ``N`` per head channel.
    expand : int
        Inner width ``Din = expand * D``.
    d_conv : int
        Kernel of the causal depthwise convolution.
    headdim : int
        Features per head ``P`` (must divide ``Din``).
    dt_min, dt_max : float
        Range of the initial step sizes (log-uniform).
    """

    def __init__(self, dim: int, d_state: int = 64, expand: int = 2, d_conv: int = 4,
                 headdim: int = 64, dt_min: float = 1e-3, dt_max: float = 0.1):
        super().__init__()
        inner = expand * dim
        if inner % headdim:
            raise ValueError(
                f"Mamba-2 heads split the inner width expand * dim = {inner} into heads of "
                f"headdim = {headdim} features: choose a headdim that divides {inner}."
            )
        self.inner, self.d_state, self.headdim = inner, d_state, headdim
        self.n_heads = inner // headdim
        self.in_proj = nn.Linear(dim, 2 * inner + 2 * d_state + self.n_heads, bias=False)
        conv_dim = inner + 2 * d_state
        self.conv1d = nn.Conv1d(conv_dim, conv_dim, d_conv, groups=conv_dim, padding=d_conv - 1)
        dt = torch.exp(torch.rand(self.n_heads) * (math.log(dt_max) - math.log(dt_min))
                       + math.log(dt_min)).clamp(min=1e-4)
        self.dt_bias = nn.Parameter(dt + torch.log(-torch.expm1(-dt)))  # softplus^-1(dt)
        self.A_log = nn.Parameter(torch.log(torch.empty(self.n_heads).uniform_(1, 16)))
        self.D = nn.Parameter(torch.ones(self.n_heads))
        self.norm = nn.RMSNorm(inner, eps=1e-5)
        self.out_proj = nn.Linear(inner, dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Mix along time; ``x [S, L, D]`` are ``S`` independent sequences."""
        s, length, _ = x.shape
        n = self.d_state
        weights = self.in_proj.weight.split([self.inner, self.inner + 2 * n, self.n_heads])
        z, xbc, dt = (F.linear(x, w) for w in weights)  # separate GEMMs: no joint gradient copy
        xbc = causal_conv_silu(xbc, self.conv1d.weight, self.conv1d.bias)
        dtype = torch.promote_types(x.dtype, torch.float32)  # the recurrence runs in >= float32
        with torch.autocast(x.device.type, enabled=False):
            u, B, C = xbc.to(dtype).split([self.inner, n, n], dim=-1)
            y, _ = ssd_scan(
                u.reshape(s, length, self.n_heads, self.headdim),
                F.softplus(dt.to(dtype) + self.dt_bias.to(dtype)),
                -torch.exp(self.A_log.to(dtype)),
                B,
                C,
                self.D.to(dtype),
            )
            y = self.norm(y.reshape(s, length, self.inner) * F.silu(z.to(dtype)))
        return self.out_proj(y)


#: Mixer name (the ``mixer`` hyperparameter) -> class.
MIXERS = {"mamba1": MambaMixer, "mamba2": Mamba2Mixer}


def reverse_valid(x: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
    """Reverse each sequence of ``x [S, L, ...]`` within its first ``lengths[s]`` steps.

    Padding steps stay at the end, so a backward scan meets them only after the real ones.
    Applying it twice restores ``x``.
    """
    if lengths is None:
        return x.flip(1)
    length = x.shape[1]
    t = torch.arange(length, device=x.device)
    index = torch.where(t < lengths[:, None], lengths[:, None] - 1 - t, t)  # [S, L]
    return x.gather(1, index.view(*index.shape, *([1] * (x.dim() - 2))).expand_as(x))


class BidirectionalMambaBlock(nn.Module):
    """Pre-norm residual block: a forward and a backward Mamba mixer along time, summed.

    ``x [S, L, D] -> [S, L, D]``; ``lengths [S]`` (valid steps, padding at the end) or None.
    ``mixer`` names the mixer class in :data:`MIXERS`; ``headdim`` is used by ``"mamba2"``.
    """

    def __init__(self, dim: int, d_state: int = 16, expand: int = 2, d_conv: int = 4,
                 drop_path: float = 0.0, mixer: str = "mamba1", headdim: int = 64):
        super().__init__()
        if mixer not in MIXERS:
            raise ValueError(f"mixer must be one of {tuple(MIXERS)}; got {mixer!r}.")
        extra = {"headdim": headdim} if mixer == "mamba2" else {}
        self.norm = nn.LayerNorm(dim)
        self.forward_mixer = MIXERS[mixer](dim, d_state, expand, d_conv, **extra)
        self.backward_mixer = MIXERS[mixer](dim, d_state, expand, d_conv, **extra)
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        h = self.norm(x)
        backward = reverse_valid(self.backward_mixer(reverse_valid(h, lengths)), lengths)
        return x + self.drop_path(self.forward_mixer(h) + backward)


class SpatialAttentionBlock(nn.Module):
    """Pre-norm residual attention across channels within each patch ``[B, C, N, D]``."""

    def __init__(self, dim: int, n_heads: int, dropout: float = 0.0):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.attn = SelfAttention(dim, n_heads, dropout)

    def forward(self, x: torch.Tensor, chan_valid: torch.Tensor | None) -> torch.Tensor:
        b, c, n, d = x.shape
        rows = self.norm(x).transpose(1, 2).reshape(b * n, c, d)
        keys = (
            None
            if chan_valid is None
            else (chan_valid[:, None, :].expand(b, n, c).reshape(b * n, c))
        )
        out = self.attn(rows, keys).view(b, n, c, d).transpose(1, 2)
        return x + out


class BidirectionalMambaTrunk(Trunk):
    """Bidirectional Mamba blocks along time, with spatial attention across channels every few.

    ``tokens [B, C', N, D] -> [B, C', N, D]`` (final LayerNorm). With ``patch_valid`` the padding
    must be at the end of each window (as produced by ``epochs_to_patches(rule="pad")``), so the
    backward scan can skip it.

    Parameters
    ----------
    dim : int
        Token width ``D``.
    depth : int
        Number of bidirectional Mamba blocks (the declared ``blocks``).
    d_state, expand, d_conv : int
        Mamba mixer sizes.
    n_heads : int
        Heads of the spatial attention.
    spatial_every : int
        A spatial attention block after every ``spatial_every`` Mamba blocks (0 = never).
    drop_path : float
        Largest stochastic-depth rate.
    mixer : {"mamba1", "mamba2"}
        Mamba-1 (S6, a decay per feature and state) or Mamba-2 (a scalar decay per head).
    headdim : int
        Features per head of the Mamba-2 mixer.
    """

    def __init__(self, dim: int, depth: int, d_state: int = 16, expand: int = 2, d_conv: int = 4,
                 n_heads: int = 4, spatial_every: int = 2, drop_path: float = 0.0,
                 mixer: str = "mamba1", headdim: int = 64):
        super().__init__()
        self.spatial_every = spatial_every
        self.blocks = nn.ModuleList(
            BidirectionalMambaBlock(dim, d_state, expand, d_conv, rate, mixer, headdim)
            for rate in drop_path_rates(drop_path, depth)
        )
        n_spatial = depth // spatial_every if spatial_every else 0
        self.spatial_blocks = nn.ModuleList(
            SpatialAttentionBlock(dim, n_heads) for _ in range(n_spatial)
        )
        self.norm = nn.LayerNorm(dim)

    def forward(self, tokens: torch.Tensor, chan_valid: torch.Tensor | None,
                patch_valid: torch.Tensor | None) -> torch.Tensor:
        b, c, n, d = tokens.shape
        lengths = None
        if patch_valid is not None:
            lengths = patch_valid.sum(dim=1)
            prefix = torch.arange(n, device=tokens.device)[None, :] < lengths[:, None]
            if not torch.equal(prefix, patch_valid):
                raise ValueError(
                    "BidirectionalMamba needs padding patches at the end of each "
                    "window (patch_valid = True...True False...False); reorder or "
                    "crop the patches."
                )
        seq_lengths = None if lengths is None else lengths.repeat_interleave(c)
        h = tokens.reshape(b * c, n, d)
        spatial = iter(self.spatial_blocks)
        every = self.spatial_every
        for i, block in enumerate(self.blocks):
            h = block(h, seq_lengths)
            if every and (i + 1) % every == 0:
                h = next(spatial)(h.view(b, c, n, d), chan_valid).reshape(b * c, n, d)
        return self.norm(h).view(b, c, n, d)


class BidirectionalMamba(BrainEncoder):
    """Bidirectional Mamba encoder ``x [B, C, N, P] -> [B, C, N, D]`` (or ``[B, K, N, D]``).

    Parameters
    ----------
    patch_size : int
        Samples per patch ``P``.
    dim : int
        Token width ``D``.
    depth : int
        Number of bidirectional Mamba blocks.
    d_state, expand, d_conv : int
        Mamba mixer sizes (state per feature or head channel, inner width factor, causal conv
        kernel).
    n_heads : int
        Heads of the channel unification and of the spatial attention.
    n_latent : int or None
        Unify the C sensors into ``n_latent`` latent channels before the blocks (cost independent
        of C); None keeps one row per sensor.
    spatial_every : int
        Insert a spatial attention block across channels after every ``spatial_every`` Mamba
        blocks (0 = never; channels then mix only through the unification).
    drop_path : float
        Largest stochastic-depth rate.
    patch_input : {"patches", "codes"}
        ``"patches"``: continuous patch embedding. ``"codes"``: the frozen ``tokenizer``'s
        quantised code vectors, projected to ``dim`` (:class:`~neurofm.tokenizer.CodeEmbedding`).
    tokenizer : NeuralTokenizer, str, TokenizerConfig, dict or None
        With ``patch_input="codes"``: the tokenizer or its directory (see
        :func:`~neurofm.tokenizer.load_tokenizer`); stored in ``config`` as its dict.
    mixer : {"mamba1", "mamba2"}
        ``"mamba1"``: Mamba's S6 mixer (:class:`MambaMixer`). ``"mamba2"``: Mamba-2's block
        (:class:`Mamba2Mixer`), whose scan is matrix products (much cheaper on a CPU).
    headdim : int
        Features per head of the Mamba-2 mixer (divides ``expand * dim``).
    """

    trunk_renames = ((r"^(blocks|spatial_blocks|norm)\.", r"trunk.\1."),)

    def __init__(
        self,
        patch_size: int = 200,
        dim: int = 128,
        depth: int = 6,
        d_state: int = 16,
        expand: int = 2,
        d_conv: int = 4,
        n_heads: int = 4,
        n_latent: int | None = None,
        spatial_every: int = 2,
        drop_path: float = 0.0,
        patch_input: str = "patches",
        tokenizer=None,
        mixer: str = "mamba1",
        headdim: int = 64,
    ):
        stem = SensorTokenizer(patch_size, dim, patch_embedding=stem_patch_embedding(patch_input),
                               tokenizer=tokenizer, n_latent=n_latent, n_heads=n_heads)
        trunk = BidirectionalMambaTrunk(dim, depth, d_state, expand, d_conv, n_heads,
                                        spatial_every, drop_path, mixer, headdim)
        super().__init__(stem, trunk)


@register_model(BidirectionalMamba)
def mamba_small():
    """Bidirectional Mamba, 8 latent channels (channel unification), D=128, 6 blocks."""
    return {"dim": 128, "depth": 6, "d_state": 8, "expand": 2, "n_heads": 4, "n_latent": 8,
            "spatial_every": 2, "drop_path": 0.05}


@register_model(BidirectionalMamba)
def mamba_base():
    """Bidirectional Mamba, 32 latent channels (channel unification), D=256, 12 blocks."""
    return {"dim": 256, "depth": 12, "d_state": 16, "expand": 2, "n_heads": 8, "n_latent": 32,
            "spatial_every": 3, "drop_path": 0.1}


@register_model(BidirectionalMamba)
def mamba2_small():
    """Bidirectional Mamba-2 (scalar decay per head), 8 latent channels, D=128, 6 blocks."""
    return {"dim": 128, "depth": 6, "d_state": 16, "expand": 2, "n_heads": 4, "n_latent": 8,
            "spatial_every": 2, "drop_path": 0.05, "mixer": "mamba2", "headdim": 32}
