"""Fused C kernels of the Mamba-1 mixer on CPU (``mamba_kernels.c``), built at first use.

Two kernels, each with its backward, as :class:`torch.autograd.Function`:

- :class:`FusedSelectiveScan`, the selective scan with Mamba's ``D`` skip and ``silu(z)`` gate.
  The PyTorch scan (:func:`neurofm.nn.scan.selective_scan`'s blocks) is memory-bound: about 35
  passes over ``[S, L, N, Din]`` tensors per mixer, forward and backward. The kernel keeps the
  state of 16 features in the L1 cache while they go through time, so each input is read once
  and no such tensor is written; the adjoint recomputes each segment of :data:`SEGMENT` steps
  from the state saved where it starts (training memory: the inputs plus
  ``[S, L / SEGMENT, N, Din]``).
- :class:`FusedCausalConvSiLU`, the causal depthwise convolution and its SiLU in one pass
  (instead of ``K`` multiply-adds of shifted copies and the activation).

The library is built, cached and loaded by :mod:`neurofm.nn.cpu_kernels` (a C compiler, no torch
headers; its switch ``NEUROFM_CPU_KERNEL=0`` turns these kernels off too). The kernels cut the
sequences into slices that ``torch.get_num_threads()`` OpenMP threads take in turn. Where the
library cannot be built, PyTorch runs the same computation: the same results up to float
rounding. float32 and float64 on CPU only (``cpu_kernels.usable(u)``); other dtypes and devices
take the other paths. Under bf16 autocast the tensors at the mixer's projections may be
bfloat16 with float32 arithmetic (:func:`io_suffix`): the convolution's input, the scan's gate
``z`` and output ``y`` and their gradients are converted as the kernels read and write them,
instead of by separate casts (the same numbers).
"""

from __future__ import annotations

import torch
from torch.autograd.function import once_differentiable

from neurofm.nn import cpu_kernels
from neurofm.nn.cpu_kernels import SUFFIX, library

#: Steps between the states saved for the adjoint (which recomputes the steps in between).
SEGMENT = 16


def _pointer(tensor: torch.Tensor | None) -> int | None:
    return None if tensor is None else tensor.data_ptr()


#: Slices of the sequences per thread: each thread takes the next slice when done, so a thread
#: slowed down by the machine holds none up.
PIECES_PER_THREAD = 4


def _plan(sequences: int) -> tuple[int, int]:
    """``(pieces, threads)``: the slices the sequences are cut into (one set of accumulators
    each) and the OpenMP threads that take them (``torch.get_num_threads()``; one where the
    library was built without OpenMP)."""
    threads = max(1, min(cpu_kernels.threads(), sequences))
    return (1 if threads == 1 else min(sequences, PIECES_PER_THREAD * threads)), threads


def io_suffix(dtype: torch.dtype, io_dtype: torch.dtype) -> str | None:
    """The kernels' suffix for arithmetic in ``dtype`` with ``io_dtype`` at the projections
    (``f32``, ``f64``, or ``f32_bf16`` for bfloat16 there); None where there is no such kernel."""
    if io_dtype == dtype:
        return SUFFIX.get(dtype)
    return "f32_bf16" if (dtype, io_dtype) == (torch.float32, torch.bfloat16) else None


def _run(name: str, suffix: str, pointers: list, sizes: tuple, plan: tuple[int, int]):
    """Call kernel ``name_suffix`` (``pointers``, then ``sizes``, then ``plan``)."""
    if getattr(library(), f"{name}_{suffix}")(*pointers, *sizes, *plan):
        raise MemoryError(f"{name}: out of memory for the kernel's work buffers")


class FusedSelectiveScan(torch.autograd.Function):
    """Mamba-1 scan through the C kernel: ``(u, delta, A, B, C, D, z, state) -> (y, last)``.

    ``u, delta [S, L, Din]``, ``A [Din, N]``, ``B, C [S, L, N]``, ``D [Din]``, ``z [S, L, Din]``
    or None, ``state [S, N, Din]`` (the initial state, features last). Returns
    ``y = (C . h + D u) * silu(z)`` ``[S, L, Din]`` (no gate when ``z`` is None) in ``z``'s dtype
    and the final state ``[S, N, Din]``. One dtype (float32 or float64), on CPU, except that
    ``z`` may be bfloat16 with float32 (:func:`io_suffix`).
    """

    @staticmethod
    def forward(ctx, u, delta, A, B, C, D, z, state):
        s, length, din = u.shape
        n = A.shape[1]
        u, delta, B, C, D, state = (v.contiguous() for v in (u, delta, B, C, D, state))
        z = None if z is None else z.contiguous()
        a_t = A.t().contiguous()
        io_dtype = u.dtype if z is None else z.dtype
        y, last = torch.empty_like(u, dtype=io_dtype), torch.empty_like(state)
        saved = u.new_empty(s, -(-length // SEGMENT), n, din)
        ptrs = [_pointer(v) for v in (u, delta, a_t, B, C, D, z, state, y, last, saved)]
        suffix = io_suffix(u.dtype, io_dtype)
        _run("scan_forward", suffix, ptrs, (s, length, din, n, SEGMENT), _plan(s))
        ctx.save_for_backward(u, delta, a_t, B, C, D, z, saved)
        ctx.suffix, ctx.io_dtype = suffix, io_dtype
        return y, last

    @staticmethod
    @once_differentiable  # C kernels: no second derivative (an error, not a wrong value)
    def backward(ctx, gy, g_last):
        u, delta, a_t, B, C, D, z, saved = ctx.saved_tensors
        s, length, din = u.shape
        n = a_t.shape[0]
        gy, g_last = gy.contiguous().to(ctx.io_dtype), g_last.contiguous()
        gu, g_delta = torch.empty_like(u), torch.empty_like(u)
        gz = None if z is None else torch.empty_like(z)
        gB, gC = torch.empty_like(B), torch.empty_like(C)
        g_state = torch.empty_like(g_last)
        plan = _plan(s)
        g_a, g_d = a_t.new_zeros(plan[0], n, din), D.new_zeros(plan[0], din)  # one per slice
        ptrs = [_pointer(v) for v in (u, delta, a_t, B, C, D, z, saved, gy, g_last, gu, g_delta,
                                      gB, gC, gz, g_state, g_a, g_d)]
        _run("scan_backward", ctx.suffix, ptrs, (s, length, din, n, SEGMENT), plan)
        return gu, g_delta, g_a.sum(0).t(), gB, gC, g_d.sum(0), gz, g_state


class FusedCausalConvSiLU(torch.autograd.Function):
    """``silu(causal depthwise convolution)`` through the C kernel, channels last:
    ``(x [S, L, C], weight [C, 1, K], bias [C]) -> [S, L, C]``, as
    :func:`neurofm.models.mamba.causal_depthwise_conv` followed by ``F.silu``, in the weight's
    dtype (float32 or float64), on CPU; ``x`` of that dtype or, with float32 weights, bfloat16
    (:func:`io_suffix`)."""

    @staticmethod
    def forward(ctx, x, weight, bias):
        s, length, channels = x.shape
        x, bias = x.contiguous(), bias.contiguous()
        taps_t = weight[:, 0].t().contiguous()  # [K, C]
        out = torch.empty_like(x, dtype=weight.dtype)
        ctx.suffix = io_suffix(weight.dtype, x.dtype)
        _run("conv_silu_forward", ctx.suffix, [v.data_ptr() for v in (x, taps_t, bias, out)],
             (s, length, channels, taps_t.shape[0]), _plan(s))
        ctx.save_for_backward(x, taps_t, bias)
        return out

    @staticmethod
    @once_differentiable  # C kernels: no second derivative (an error, not a wrong value)
    def backward(ctx, g_out):
        x, taps_t, bias = ctx.saved_tensors
        s, length, channels = x.shape
        k = taps_t.shape[0]
        g_out = g_out.contiguous().to(taps_t.dtype)
        g_x = torch.empty_like(x, dtype=taps_t.dtype)  # summed over K steps: in the arithmetic's dtype
        plan = _plan(s)
        g_taps, g_bias = taps_t.new_zeros(plan[0], k, channels), taps_t.new_zeros(plan[0], channels)
        ptrs = [v.data_ptr() for v in (x, taps_t, bias, g_out, g_x, g_taps, g_bias)]
        _run("conv_silu_backward", ctx.suffix, ptrs, (s, length, channels, k), plan)
        return g_x.to(x.dtype), g_taps.sum(0).t().unsqueeze(1), g_bias.sum(0)
