"""Selective state-space scans (Mamba's S6 recurrence), exact and in pure PyTorch.

Mamba-1 (:func:`selective_scan`), per feature ``d`` and state ``n``::

    h_t[d, n] = exp(delta_t[d] * A[d, n]) * h_{t-1}[d, n] + delta_t[d] * B_t[n] * u_t[d]
    y_t[d] = sum_n C_t[n] * h_t[d, n] + D[d] * u_t[d]

Every (feature, state) pair has its own decay, so the work is ``L * Din * N`` distinct
exponentials and multiply-adds: element-wise, memory-bound work. The scan goes through time in
blocks of a few steps sized to stay in the CPU cache (the states of a block are written once, the
decays of a block computed once), one fused multiply-add per step over all sequences, and a custom
backward that runs the adjoint recurrence block by block from the saved block-entering states
(instead of autograd through the loop). :func:`selective_scan_sequential` is the same recurrence
written step by step, the reference the tests compare with.

Mamba-2 (:func:`ssd_scan`, state-space duality): one scalar decay per head, so within a chunk of
``T`` steps the scan is a masked matrix product, ``Y = (M * C B^T) X`` with ``M[t, s] =
exp(cum_t - cum_s)`` for ``s <= t`` (``cum`` the running sum of ``dt * A``), and chunk states
are matrix products too: matmul-bound work, which is what makes a Mamba-2-style block cheap on a
CPU.

On CPU, float32 and float64 Mamba-1 scans run through the fused C kernel of
:mod:`neurofm.nn.mamba_kernels` where it can be built (the blocks here are its fallback).
Compilation (:func:`set_compiled`, :func:`compiled_scans`) runs the Mamba-1 blocks through
``torch.compile``d kernels of a fixed block length where the C kernel does not run (a GPU
without mamba-ssm, or the kernel switched off); it is off unless asked for.
"""

from __future__ import annotations

import warnings
from contextlib import contextmanager

import torch
import torch.nn.functional as F

from neurofm.nn import cpu_kernels, mamba_kernels

#: Elements of one block's ``[S, T, N, Din]`` tensors: about 1 MiB of float32, so that the
#: decays, states and adjoints of a block stay in the CPU's L2 cache between passes.
BLOCK_ELEMENTS = 2**18

#: Steps per block of the compiled scan (:func:`set_compiled`). Lengths are padded to a multiple
#: of it with steps that leave the state unchanged, and the batch size is a dynamic dimension, so
#: one compiled graph serves every batch size and window length of a model.
COMPILED_BLOCK = 16


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


def selective_scan(u, delta, A, B, C, D, h0=None, chunk: int | None = None, z=None):
    """Exact Mamba-1 selective scan; same arguments and returns as
    :func:`selective_scan_sequential`, with Mamba's output gate: ``y * silu(z)`` for ``z``.

    float32 and float64 scans on CPU run through the fused C kernel
    (:mod:`neurofm.nn.mamba_kernels`) where it can be built, others through blocks of PyTorch
    operations (or their compiled form, :func:`set_compiled`); the results agree to float
    rounding.

    Parameters
    ----------
    z : Tensor ``[S, L, Din]`` or None
        Gate (as in ``mamba_ssm``'s ``selective_scan_fn``): the output is multiplied by
        ``silu(z)``. None: no gate. A bfloat16 ``z`` with float32 ``u`` (the mixer under bf16
        autocast) gives a bfloat16 output, computed in float32 and rounded once (the fused
        kernel converts as it reads and writes); otherwise ``z`` is cast to ``u``'s dtype.
    chunk : int or None
        Time steps per block (default: as many as keep a block's ``[S, T, N, Din]`` tensors near
        :data:`BLOCK_ELEMENTS`). Any value gives the same result; it only trades Python
        overhead against cache traffic.

    Notes
    -----
    Forward and backward are one :class:`torch.autograd.Function`. Training memory is the
    inputs plus the state entering each block (``[S, L / chunk, N, Din]``); the states inside a
    block are recomputed in backward, one block at a time.
    """
    s, length, din = u.shape
    n = A.shape[1]
    state = (u.new_zeros(s, n, din) if h0 is None else h0.transpose(1, 2)).contiguous()
    if z is not None and mamba_kernels.io_suffix(u.dtype, z.dtype) is None:
        z = z.to(u.dtype)
    if cpu_kernels.usable(u):
        y, last = mamba_kernels.FusedSelectiveScan.apply(u, delta, A, B, C, D, z, state)
        return y, last.transpose(1, 2)
    kernels, y = _compiled_kernels(), None
    if kernels is not None:
        try:
            y, last = _SelectiveScan.apply(u, delta, A, B, C, D, state, COMPILED_BLOCK, kernels)
        except Exception as err:  # noqa: BLE001 - any compiler failure: warn, run eagerly
            _compile_failed(err)
    if y is None:
        block = chunk or max(1, BLOCK_ELEMENTS // max(1, s * n * din))
        block = max(1, min(block, length))
        y, last = _SelectiveScan.apply(u, delta, A, B, C, D, state, block, None)
    if z is not None:
        y = (y * F.silu(z.to(y.dtype))).to(z.dtype)
    return y, last.transpose(1, 2)


_COMPILE = {"enabled": False, "kernels": None}


def set_compiled(enabled: bool = True) -> None:
    """Run the Mamba-1 scan (:func:`selective_scan`) through ``torch.compile``d block kernels
    wherever the fused CPU kernel (:mod:`neurofm.nn.mamba_kernels`) does not run.

    Off by default (and in tests). The kernels are compiled on first use (tens of seconds, less
    with a warm inductor cache) for blocks of :data:`COMPILED_BLOCK` steps with a dynamic batch
    dimension, so one graph serves every batch size and window length of a model; see
    ``docs/models.md`` for the compile time and the number of training steps it takes to pay off.
    Where ``torch.compile`` is unavailable or fails, a warning says so and the eager scan runs
    (same results up to float rounding). Gradients are exact either way.
    """
    _COMPILE["enabled"] = bool(enabled)


@contextmanager
def compiled_scans(enabled: bool = True):
    """Within the block, :func:`set_compiled` is ``enabled``; the previous setting returns after.

    The trainer wraps a run in it (``run.compile``)."""
    before = _COMPILE["enabled"]
    set_compiled(enabled)
    try:
        yield
    finally:
        set_compiled(before)


def _compiled_kernels():
    """The compiled ``(forward, backward)`` block kernels, or None when compilation is off."""
    if not _COMPILE["enabled"]:
        return None
    if _COMPILE["kernels"] is None:
        _COMPILE["kernels"] = (torch.compile(scan_block_forward, dynamic=True),
                               torch.compile(scan_block_backward, dynamic=True))
    return _COMPILE["kernels"]


def _compile_failed(err: Exception) -> None:
    _COMPILE["enabled"], _COMPILE["kernels"] = False, None
    warnings.warn(f"torch.compile could not build the selective-scan kernels ({type(err).__name__}:"
                  f" {err}); the scan runs eagerly (same results). Turn compilation off "
                  "(run.compile: false) to silence this.", RuntimeWarning, stacklevel=3)


def _blocks(length: int, block: int):
    return [(t0, min(t0 + block, length)) for t0 in range(0, length, block)]


def _decays(delta: torch.Tensor, a_t: torch.Tensor) -> torch.Tensor:
    """``exp(delta_t[d] * A[d, n])`` as ``[S, T, N, Din]`` for ``delta [S, T, Din]``."""
    return torch.mul(delta.unsqueeze(2), a_t).exp_()


def _block_states(x, b, decay, state):
    """States ``[S, T, N, Din]`` of one block: ``h_t = decay_t * h_{t-1} + B_t x_t``."""
    h = torch.mul(b.unsqueeze(3), x.unsqueeze(2))
    prev = state
    for i in range(h.shape[1]):
        prev = h[:, i].addcmul_(decay[:, i], prev)
    return h


def forward_block(x, b, c, delta, a_t, state):
    """One block of the scan: outputs ``y [S, T, Din]`` (without ``D u``) and the last state.

    ``x = delta * u`` and ``delta [S, T, Din]``, ``b, c [S, T, N]``, ``a_t = A^T [N, Din]``,
    ``state [S, N, Din]`` (the state entering the block).
    """
    h = _block_states(x, b, _decays(delta, a_t), state)
    return torch.matmul(c.unsqueeze(2), h).squeeze(2), h[:, -1].clone()


def backward_block(x, b, c, delta, a_t, entering, gy, carry):
    """Adjoint of :func:`forward_block`, given ``gy [S, T, Din]`` and ``carry [S, N, Din]``
    (the gradient reaching the block's last state from the steps after it).

    Returns the gradients of ``x``, ``delta`` (through the decays only), ``b``, ``c``, ``a_t``
    and the carry into the state entering the block.
    """
    decay = _decays(delta, a_t)
    h = _block_states(x, b, decay, entering)
    g_c = torch.matmul(gy.unsqueeze(2), h.transpose(2, 3)).squeeze(2)
    # Adjoint recurrence: gh_t = C_t gy_t + decay_{t+1} * gh_{t+1}.
    gh = torch.mul(c.unsqueeze(3), gy.unsqueeze(2))
    gh[:, -1] += carry
    for i in range(x.shape[1] - 2, -1, -1):
        gh[:, i].addcmul_(decay[:, i + 1], gh[:, i + 1])
    grad_log_decay = decay.mul_(gh)  # d loss / d (delta_t A) = gh_t decay_t h_{t-1}
    carry = grad_log_decay[:, 0].clone()
    grad_log_decay[:, 1:].mul_(h[:, :-1])
    grad_log_decay[:, 0].mul_(entering)
    g_delta = torch.mul(grad_log_decay, a_t).sum(2)
    g_a = grad_log_decay.mul_(delta.unsqueeze(2)).sum((0, 1))
    g_x = torch.matmul(b.unsqueeze(2), gh).squeeze(2)
    g_b = torch.matmul(x.unsqueeze(2), gh.transpose(2, 3)).squeeze(2)
    return g_x, g_delta, g_b, g_c, g_a, carry


def scan_block_forward(x, b, c, delta, a_t, state):
    """:func:`forward_block` written step by step without in-place updates (for compilation:
    inductor fuses each step's decay, input and read-out into one loop)."""
    decay = torch.exp(delta.unsqueeze(2) * a_t)
    source = b.unsqueeze(3) * x.unsqueeze(2)
    h, ys = state, []
    for i in range(x.shape[1]):
        h = decay[:, i] * h + source[:, i]
        ys.append((h * c[:, i].unsqueeze(2)).sum(1))
    return torch.stack(ys, 1), h


def scan_block_backward(x, b, c, delta, a_t, entering, gy, carry):
    """:func:`backward_block` written step by step without in-place updates (for compilation)."""
    length = x.shape[1]
    decay = torch.exp(delta.unsqueeze(2) * a_t)
    source = b.unsqueeze(3) * x.unsqueeze(2)
    states, h = [], entering
    for i in range(length):
        h = decay[:, i] * h + source[:, i]
        states.append(h)
    g_x, g_delta, g_b, g_c = [], [], [], []
    g_a, g = torch.zeros_like(a_t), carry
    for i in range(length - 1, -1, -1):
        gh = c[:, i].unsqueeze(2) * gy[:, i].unsqueeze(1) + g
        g_c.append((states[i] * gy[:, i].unsqueeze(1)).sum(2))
        g_x.append((gh * b[:, i].unsqueeze(2)).sum(1))
        g_b.append((gh * x[:, i].unsqueeze(1)).sum(2))
        g = decay[:, i] * gh
        grad_log_decay = g * (states[i - 1] if i else entering)
        g_delta.append((grad_log_decay * a_t).sum(1))
        g_a = g_a + (grad_log_decay * delta[:, i].unsqueeze(1)).sum(0)
    grads = [torch.stack(v[::-1], 1) for v in (g_x, g_delta, g_b, g_c)]
    return (*grads, g_a, g)


class _SelectiveScan(torch.autograd.Function):
    """Blocked Mamba-1 scan with its adjoint; internal layout ``[S, L, N, Din]`` (``Din`` last).

    ``kernels`` is None (eager blocks, the last one shorter) or compiled ``(forward, backward)``
    block kernels, for which the sequence is padded to whole blocks of ``block`` steps.
    """

    @staticmethod
    def forward(ctx, u, delta, A, B, C, D, state, block, kernels):
        s, length, din = u.shape
        a_t = A.t().contiguous()  # [N, Din]
        x, b, c, dt = _padded(kernels, block, delta * u, B, C, delta)
        y = x.new_empty(x.shape)
        spans = _blocks(x.shape[1], block)
        entering = u.new_empty(s, len(spans), A.shape[1], din)
        forward = forward_block if kernels is None else kernels[0]
        for k, (t0, t1) in enumerate(spans):
            entering[:, k] = state
            y[:, t0:t1], state = forward(x[:, t0:t1], b[:, t0:t1], c[:, t0:t1], dt[:, t0:t1],
                                         a_t, state)
        ctx.save_for_backward(u, delta, A, B, C, D, entering)
        ctx.block, ctx.kernels = block, kernels
        return torch.addcmul(y[:, :length], D, u), state

    @staticmethod
    def backward(ctx, gy, g_last):
        u, delta, A, B, C, D, entering = ctx.saved_tensors
        length = u.shape[1]
        a_t = A.t().contiguous()
        padded = _padded(ctx.kernels, ctx.block, delta * u, B, C, delta, gy)
        # In the forward's precision, also when backward() is called under autocast.
        with torch.autocast(u.device.type, enabled=False):
            if ctx.kernels is None:
                grads = _scan_backward(backward_block, padded, a_t, entering, g_last, ctx.block)
            else:
                try:
                    grads = _scan_backward(ctx.kernels[1], padded, a_t, entering, g_last,
                                           ctx.block)
                except Exception as err:  # noqa: BLE001 - any compiler failure: run eagerly
                    _compile_failed(err)
                    grads = _scan_backward(backward_block, padded, a_t, entering, g_last,
                                           ctx.block)
        gx, g_delta, gB, gC, gA, carry = grads
        gx, g_delta, gB, gC = (v[:, :length] for v in (gx, g_delta, gB, gC))
        g_u = torch.addcmul(gy * D, gx, delta)
        g_delta = g_delta.addcmul_(gx, u)
        gD = (gy * u).sum((0, 1))
        return g_u, g_delta, gA.t(), gB, gC, gD, carry, None, None


def _scan_backward(backward, padded, a_t, entering, carry, block):
    """Run ``backward`` (a block adjoint) over the blocks from the last to the first."""
    x, b, c, dt, g = padded
    gx, g_delta = torch.empty_like(x), torch.empty_like(x)
    gB, gC = torch.empty_like(b), torch.empty_like(c)
    gA = torch.zeros_like(a_t)
    spans = _blocks(x.shape[1], block)
    for k in range(len(spans) - 1, -1, -1):  # carry: d loss / d (the block's last state)
        t0, t1 = spans[k]
        gx[:, t0:t1], g_delta[:, t0:t1], gB[:, t0:t1], gC[:, t0:t1], g_a, carry = backward(
            x[:, t0:t1], b[:, t0:t1], c[:, t0:t1], dt[:, t0:t1], a_t, entering[:, k],
            g[:, t0:t1], carry)
        gA += g_a
    return gx, g_delta, gB, gC, gA, carry


def _padded(kernels, block, *tensors):
    """``tensors [S, L, ...]`` padded with zeros to whole blocks when ``kernels`` is not None.

    A padded step has ``delta = 0`` (decay 1) and no input, so it leaves the state unchanged.
    """
    pad = 0 if kernels is None else -tensors[0].shape[1] % block
    if not pad:
        return tensors
    return tuple(F.pad(t, (0, 0, 0, pad)) for t in tensors)


def ssd_scan(x, dt, A, B, C, D=None, h0=None, chunk: int = 32):
    """Exact Mamba-2 selective scan (one scalar decay per head), as chunked matrix products.

    Per head ``h``, channel ``p`` and state ``n``::

        h_t[h, p, n] = exp(dt_t[h] * A[h]) * h_{t-1}[h, p, n] + dt_t[h] * x_t[h, p] * B_t[n]
        y_t[h, p] = sum_n C_t[n] * h_t[h, p, n] + D[h] * x_t[h, p]

    which is :func:`selective_scan_sequential` with ``A`` and ``delta`` shared by the ``P``
    channels of a head. Within a chunk of ``T`` steps, ``Y = (M * C B^T) X`` with the decay mask
    ``M[t, s] = exp(cum_t - cum_s)`` (``s <= t``; ``cum`` the running sum of ``dt * A`` inside
    the chunk, so every exponent is <= 0); the state leaving each chunk is ``X^T (decay * B)``,
    carried to the next chunk by one multiply-add per chunk, and read out by ``C`` with the
    decay since the chunk start. All but the carry are batched matrix products.

    Parameters
    ----------
    x : Tensor ``[S, L, H, P]``
        Inputs of ``H`` heads of ``P`` channels.
    dt : Tensor ``[S, L, H]``
        Positive step sizes.
    A : Tensor ``[H]``
        Negative decay rates.
    B, C : Tensor ``[S, L, N]``
        Input and output projections (shared by all heads).
    D : Tensor ``[H]`` or None
        Skip connection per head.
    h0 : Tensor ``[S, H, P, N]`` or None
        Initial state (zeros by default).
    chunk : int
        Steps per chunk ``T`` (the result does not depend on it).

    Returns
    -------
    y : Tensor ``[S, L, H, P]``
    h : Tensor ``[S, H, P, N]``, the final state.
    """
    s, length, heads, p = x.shape
    n = B.shape[-1]
    t = max(1, min(chunk, length))
    n_chunks = -(-length // t)
    pad = n_chunks * t - length
    xs = x * dt.unsqueeze(-1)
    if pad:  # padded steps have dt = 0: no input and decay 1, so the state passes unchanged
        xs = F.pad(xs, (0, 0, 0, 0, 0, pad))
        dt, B, C = (F.pad(v, (0, 0, 0, pad)) for v in (dt, B, C))
    xs = xs.view(s, n_chunks, t, heads, p).transpose(2, 3)  # [S, K, H, T, P]
    B, C = B.view(s, n_chunks, t, n), C.view(s, n_chunks, t, n)
    cum = (dt * A).view(s, n_chunks, t, heads).transpose(2, 3).cumsum(-1)  # [S, K, H, T]
    # Inside each chunk: Y = (M * C B^T) X with M[t, s] = exp(cum_t - cum_s), s <= t.
    # cum is non-increasing, so gaps <= 0 on and below the diagonal. Above it the gaps are zeroed
    # before exp and the result zeroed after: on a CPU exp(-inf) and masked_fill take ~17x the
    # time of these multiplications.
    causal = torch.ones(t, t, dtype=x.dtype, device=x.device).tril()
    gaps = (cum.unsqueeze(-1) - cum.unsqueeze(-2)) * causal
    scores = torch.matmul(C, B.transpose(-1, -2)).unsqueeze(2) * (gaps.exp() * causal)
    y = torch.matmul(scores, xs)  # [S, K, H, T, P]
    # The state each chunk leaves behind (from a zero start), then carried chunk to chunk.
    to_end = (cum[..., -1:] - cum).exp()  # decay from step s to the chunk end, [S, K, H, T]
    local = torch.matmul((xs * to_end.unsqueeze(-1)).transpose(-1, -2), B.unsqueeze(2))
    chunk_decay = cum[..., -1].exp()  # [S, K, H]
    state = x.new_zeros(s, heads, p, n) if h0 is None else h0
    entering = []
    for k in range(n_chunks):
        entering.append(state)
        state = torch.addcmul(local[:, k], chunk_decay[:, k, :, None, None], state)
    if n_chunks > 1 or h0 is not None:  # (one chunk from a zero state: nothing enters it)
        entering = torch.stack(entering, dim=1)  # [S, K, H, P, N]
        # What the entering state contributes: C_t . h_in, decayed since the chunk start.
        y = y + torch.matmul(C.unsqueeze(2), entering.transpose(-1, -2)) * cum.exp().unsqueeze(-1)
    y = y.transpose(2, 3).reshape(s, n_chunks * t, heads, p)[:, :length]
    if D is not None:
        y = y + x * D[:, None]
    return y, state
