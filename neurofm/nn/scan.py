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
``T`` steps the scan is a masked matrix product, ``Y = (L * C B^T) X`` with ``L[t, s] =
exp(A * (cum_t - cum_s))`` for ``s <= t``, and chunk states are carried by matrix products too:
matmul-bound work, which is what makes a Mamba-2-style block cheap on a CPU.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

#: Elements of one block's ``[S, T, N, Din]`` tensors: about 1 MiB of float32, so that the
#: decays, states and adjoints of a block stay in the CPU's L2 cache between passes.
BLOCK_ELEMENTS = 2**18


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


def selective_scan(u, delta, A, B, C, D, h0=None, chunk: int | None = None):
    """Exact Mamba-1 selective scan; same arguments and returns as
    :func:`selective_scan_sequential`.

    Parameters
    ----------
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
    block = chunk or max(1, BLOCK_ELEMENTS // max(1, s * n * din))
    block = max(1, min(block, length))
    state = (u.new_zeros(s, n, din) if h0 is None else h0.transpose(1, 2)).contiguous()
    y, last = _SelectiveScan.apply(u, delta, A, B, C, D, state, block)
    return y, last.transpose(1, 2)


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


class _SelectiveScan(torch.autograd.Function):
    """Blocked Mamba-1 scan with its adjoint; internal layout ``[S, L, N, Din]`` (``Din`` last)."""

    @staticmethod
    def forward(ctx, u, delta, A, B, C, D, state, block):
        s, length, din = u.shape
        n = A.shape[1]
        a_t = A.t().contiguous()  # [N, Din]
        x = delta * u
        y = torch.empty_like(u)
        spans = _blocks(length, block)
        entering = u.new_empty(s, len(spans), n, din)
        for k, (t0, t1) in enumerate(spans):
            entering[:, k] = state
            h = _block_states(x[:, t0:t1], B[:, t0:t1], _decays(delta[:, t0:t1], a_t), state)
            y[:, t0:t1] = torch.matmul(C[:, t0:t1].unsqueeze(2), h).squeeze(2)
            state = h[:, -1]
        ctx.save_for_backward(u, delta, A, B, C, D, entering)
        ctx.block = block
        return torch.addcmul(y, D, u), state.clone()

    @staticmethod
    def backward(ctx, gy, g_last):
        u, delta, A, B, C, D, entering = ctx.saved_tensors
        a_t = A.t().contiguous()
        x = delta * u
        gx, g_delta = torch.empty_like(u), torch.empty_like(u)
        gB, gC = torch.empty_like(B), torch.empty_like(C)
        gA = torch.zeros_like(a_t)
        carry = g_last  # [S, N, Din]: d loss / d h_{t1 - 1} from the steps after the block
        spans = _blocks(u.shape[1], ctx.block)
        for k in range(len(spans) - 1, -1, -1):
            t0, t1 = spans[k]
            decay = _decays(delta[:, t0:t1], a_t)
            h = _block_states(x[:, t0:t1], B[:, t0:t1], decay, entering[:, k])
            g = gy[:, t0:t1]
            gC[:, t0:t1] = torch.matmul(g.unsqueeze(2), h.transpose(2, 3)).squeeze(2)
            # Adjoint recurrence: gh_t = C_t gy_t + decay_{t+1} * gh_{t+1}.
            gh = torch.mul(C[:, t0:t1].unsqueeze(3), g.unsqueeze(2))
            gh[:, -1] += carry
            for i in range(t1 - t0 - 2, -1, -1):
                gh[:, i].addcmul_(decay[:, i + 1], gh[:, i + 1])
            grad_log_decay = decay.mul_(gh)  # d loss / d (delta_t A) = gh_t decay_t h_{t-1}
            carry = grad_log_decay[:, 0].clone()
            grad_log_decay[:, 1:].mul_(h[:, :-1])
            grad_log_decay[:, 0].mul_(entering[:, k])
            g_delta[:, t0:t1] = torch.mul(grad_log_decay, a_t).sum(2)
            gA += grad_log_decay.mul_(delta[:, t0:t1].unsqueeze(2)).sum((0, 1))
            gx[:, t0:t1] = torch.matmul(B[:, t0:t1].unsqueeze(2), gh).squeeze(2)
            gB[:, t0:t1] = torch.matmul(x[:, t0:t1].unsqueeze(2), gh.transpose(2, 3)).squeeze(2)
        g_u = torch.addcmul(gy * D, gx, delta)
        g_delta.addcmul_(gx, u)
        gD = (gy * u).sum((0, 1))
        return g_u, g_delta, gA.t(), gB, gC, gD, carry, None


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
    causal = torch.ones(t, t, dtype=torch.bool, device=x.device).tril()
    gaps = (cum.unsqueeze(-1) - cum.unsqueeze(-2)).masked_fill(~causal, float("-inf"))
    scores = torch.matmul(C, B.transpose(-1, -2)).unsqueeze(2) * gaps.exp()  # [S, K, H, T, T]
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
    entering = torch.stack(entering, dim=1)  # [S, K, H, P, N]
    # What the entering state contributes: C_t . h_in, decayed since the chunk start.
    y = y + torch.matmul(C.unsqueeze(2), entering.transpose(-1, -2)) * cum.exp().unsqueeze(-1)
    y = y.transpose(2, 3).reshape(s, n_chunks * t, heads, p)[:, :length]
    if D is not None:
        y = y + x * D[:, None]
    return y, state
