"""Bidirectional Mamba backbone: selective state-space blocks over time, per channel.

The selective scan (Mamba's S6 recurrence, per feature ``d`` and state ``s``)::

    h_t = exp(delta_t[d] * A[d, s]) * h_{t-1} + delta_t[d] * B_t[s] * u_t[d]
    y_t[d] = sum_s C_t[s] * h_t[d, s] + D[d] * u_t[d]

runs through ``mamba-ssm``'s CUDA kernel when that package imports and the tensors are on CUDA,
and otherwise through :func:`selective_scan`, an exact pure-PyTorch version that needs about
``2 sqrt(L)`` vectorised steps instead of ``L``: all chunks are scanned at once, then the chunk
states are carried and added back in closed form (see its docstring).
:func:`selective_scan_sequential` is the same recurrence written step by step (the reference).

:class:`BidirectionalMamba`'s stem embeds patches, adds the sensor encoding and optionally unifies
the C sensors into K latent channels; its trunk (:class:`BidirectionalMambaTrunk`) stacks blocks that each run one Mamba mixer forward and one
backward in time along every channel (outputs summed), with light spatial attention across
channels every few blocks. Cost is linear in the number of patches.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from neurofm.models.base import BrainEncoder, Trunk, stem_patch_embedding
from neurofm.models.registry import register_model
from neurofm.nn import DropPath, SelfAttention, drop_path_rates
from neurofm.tokenizer.stem import SensorTokenizer

try:  # mamba-ssm needs its CUDA build; importing it fails (variously) without one.
    from mamba_ssm.ops.selective_scan_interface import selective_scan_fn as _cuda_selective_scan
except Exception:  # noqa: BLE001 - any import-time failure means "not available"
    _cuda_selective_scan = None


def mamba_ssm_available() -> bool:
    """Whether mamba-ssm's CUDA selective-scan kernel is importable."""
    return _cuda_selective_scan is not None


def selective_scan_sequential(u, delta, A, B, C, D, h0=None):
    """Reference selective scan, one time step after the other.

    Parameters
    ----------
    u, delta : Tensor ``[S, L, Din]``
        Inputs and (positive) step sizes of ``S`` sequences of length ``L``.
    A : Tensor ``[Din, N]``
        State matrix (diagonal per feature; negative for a stable system).
    B, C : Tensor ``[S, L, N]``
        Input and output projections, per time step.
    D : Tensor ``[Din]``
        Skip connection.
    h0 : Tensor ``[S, Din, N]`` or None
        Initial state (zeros by default).

    Returns
    -------
    y : Tensor ``[S, L, Din]``
    h : Tensor ``[S, Din, N]``, the final state.
    """
    s, length, din = u.shape
    h = u.new_zeros(s, din, A.shape[1]) if h0 is None else h0
    ys = []
    for t in range(length):
        decay = torch.exp(delta[:, t, :, None] * A)
        h = decay * h + (delta[:, t] * u[:, t])[:, :, None] * B[:, t, None, :]
        ys.append((h * C[:, t, None, :]).sum(-1) + D * u[:, t])
    return torch.stack(ys, dim=1), h


def _chunked_scan(u, delta, A, B, C, h0, chunk):
    """Chunked selective scan without the ``D`` skip; see :func:`selective_scan`."""
    s, length, din = u.shape
    n_chunks = -(-length // chunk)
    pad = n_chunks * chunk - length
    if pad:  # padded steps have delta = 0: decay 1 and no input, so the state passes unchanged
        u, delta, B, C = (F.pad(t, (0, 0, 0, pad)) for t in (u, delta, B, C))
    u, delta = u.view(s, n_chunks, chunk, din), delta.view(s, n_chunks, chunk, din)
    B, C = B.view(s, n_chunks, chunk, -1), C.view(s, n_chunks, chunk, -1)
    # 1. Every chunk from a zero state, all chunks at once: ``chunk`` vectorised steps.
    h = u.new_zeros(s, n_chunks, din, A.shape[1])
    y_local = []
    for t in range(chunk):
        step = delta[:, :, t]  # [S, n_chunks, Din]
        h = torch.exp(step[..., None] * A) * h + (step * u[:, :, t])[..., None] * B[:, :, t, None]
        y_local.append(torch.matmul(h, C[:, :, t, :, None]).squeeze(-1))
    # 2. Carry the state across chunks: ``n_chunks`` steps on [S, Din, N]. Within a chunk the
    #    decay from its start to step t is exp(A * (delta_1 + ... + delta_t)) (A is diagonal).
    elapsed = delta.cumsum(dim=2)  # [S, n_chunks, chunk, Din]
    chunk_decay = torch.exp(elapsed[:, :, -1, :, None] * A)  # [S, n_chunks, Din, N]
    state, entering = h0, []
    for c in range(n_chunks):
        entering.append(state)
        state = chunk_decay[:, c] * state + h[:, c]
    entering = torch.stack(entering, dim=1)  # state before each chunk, [S, n_chunks, Din, N]
    # 3. Add what the entering state contributes to every output of its chunk.
    carried = torch.exp(elapsed[..., None] * A) * entering[:, :, None]  # [S, n_c, chunk, Din, N]
    y = torch.stack(y_local, dim=2) + torch.matmul(carried, C[..., None]).squeeze(-1)
    return y.reshape(s, n_chunks * chunk, din)[:, :length], state


def selective_scan(u, delta, A, B, C, D, h0=None, chunk: int | None = None):
    """Exact selective scan in O(sqrt(L)) vectorised steps (no Python loop per time step).

    The sequence is cut into chunks of ``chunk`` steps (default ``ceil(sqrt(L))``). All chunks
    are scanned at once from a zero state (``chunk`` steps), the chunk-end states are then carried
    from chunk to chunk (``L / chunk`` steps), and finally each chunk's entering state is added to
    its outputs with the closed-form decay ``exp(A * cumsum(delta))``. Every decay factor is
    ``exp`` of a non-positive number, so nothing overflows. Under autograd the scan is
    checkpointed (recomputed in backward), so training memory stays near the inputs' size.

    Same arguments and returns as :func:`selective_scan_sequential`.
    """
    s, length, din = u.shape
    h = u.new_zeros(s, din, A.shape[1]) if h0 is None else h0
    chunk = chunk or max(1, math.isqrt(max(length - 1, 0)) + 1)
    if torch.is_grad_enabled() and any(t.requires_grad for t in (u, delta, A, B, C, h)):
        y, h = checkpoint(_chunked_scan, u, delta, A, B, C, h, chunk, use_reentrant=False)
    else:
        y, h = _chunked_scan(u, delta, A, B, C, h, chunk)
    return y + D * u, h


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
        length = x.shape[1]
        u, z = self.in_proj(x).chunk(2, dim=-1)  # [S, L, Din] each
        u = F.silu(self.conv1d(u.transpose(1, 2))[..., :length])  # causal conv, [S, Din, L]
        params = self.x_proj(u.transpose(1, 2))
        dt, B, C = params.split([self.dt_rank, self.d_state, self.d_state], dim=-1)
        A = -torch.exp(self.A_log)
        if u.is_cuda and _cuda_selective_scan is not None:
            y = _cuda_selective_scan(
                u,
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
        delta = F.softplus(self.dt_proj(dt))
        dtype = torch.promote_types(x.dtype, torch.float32)  # the recurrence runs in >= float32
        with torch.autocast(x.device.type, enabled=False):
            y, _ = selective_scan(
                u.transpose(1, 2).to(dtype),
                delta.to(dtype),
                A.to(dtype),
                B.to(dtype),
                C.to(dtype),
                self.D.to(dtype),
            )
            y = y * F.silu(z.to(dtype))
        return self.out_proj(y)


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
    """

    def __init__(
        self, dim: int, d_state: int = 16, expand: int = 2, d_conv: int = 4, drop_path: float = 0.0
    ):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.forward_mixer = MambaMixer(dim, d_state, expand, d_conv)
        self.backward_mixer = MambaMixer(dim, d_state, expand, d_conv)
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
    """

    def __init__(self, dim: int, depth: int, d_state: int = 16, expand: int = 2, d_conv: int = 4,
                 n_heads: int = 4, spatial_every: int = 2, drop_path: float = 0.0):
        super().__init__()
        self.spatial_every = spatial_every
        self.blocks = nn.ModuleList(
            BidirectionalMambaBlock(dim, d_state, expand, d_conv, rate)
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
        Mamba mixer sizes (state per feature, inner width factor, causal conv kernel).
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
    ):
        stem = SensorTokenizer(patch_size, dim, patch_embedding=stem_patch_embedding(patch_input),
                               tokenizer=tokenizer, n_latent=n_latent, n_heads=n_heads)
        trunk = BidirectionalMambaTrunk(dim, depth, d_state, expand, d_conv, n_heads,
                                        spatial_every, drop_path)
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
