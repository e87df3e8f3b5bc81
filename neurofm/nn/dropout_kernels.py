"""Dropout on CPU through the fused C kernels (``dropout_kernels.c``): no mask tensor.

Whether an element is kept is a hash of the call's seed and the element's index (SplitMix64), so
the backward regenerates the forward's mask instead of storing it: dropout costs one pass over
the data each way, with the cast to the next operation's dtype (attention weights: float32 ->
bfloat16) or the residual addition fused in. PyTorch's CPU dropout draws a Bernoulli sample per
element; neurofm's fallback (:func:`neurofm.nn.layers.keep_mask` without the kernels) still
writes a mask and reads it twice.

Each call draws its seed from torch's default CPU generator, so ``torch.manual_seed`` makes runs
repeat; the kernels and the fallback draw different masks (same distribution). ``p`` is
realised to within ``2**-32``. Used by :mod:`neurofm.nn.layers` and :mod:`neurofm.nn.attention`
wherever :func:`supports` says so; built and loaded by :mod:`neurofm.nn.cpu_kernels`.

Shapes: any; the optional ``path`` factors ``[B]`` scale the items along the first axis
(drop-path: 0 for a dropped item).
"""

from __future__ import annotations

import torch
from torch.autograd.function import once_differentiable

from neurofm.nn.cpu_kernels import SUFFIX, library, threads, usable

#: The dtypes the kernels take: float32, bfloat16 (autocast) and float64 (gradient checks).
DTYPES = (torch.float32, torch.bfloat16, torch.float64)

#: ``(input, output)`` dtype pairs of ``dropout_<in>_<out>`` (each one's backward is another).
DROPOUT_PAIRS = {("f32", "f32"), ("f32", "bf16"), ("bf16", "bf16"), ("bf16", "f32"),
                 ("f64", "f64")}

#: ``(residual, branch)`` dtype pairs of ``dropout_add_<residual>_<branch>``.
ADD_PAIRS = {("f32", "f32"), ("f32", "bf16"), ("bf16", "bf16"), ("f64", "f64")}


def supports(x: torch.Tensor, out_dtype: torch.dtype | None = None) -> bool:
    """Whether ``dropout(x)`` (cast to ``out_dtype``) runs through the kernels."""
    out_dtype = x.dtype if out_dtype is None else out_dtype
    return (out_dtype in SUFFIX and (SUFFIX.get(x.dtype), SUFFIX[out_dtype]) in DROPOUT_PAIRS
            and usable(x, DTYPES))


def supports_add(residual: torch.Tensor, branch: torch.Tensor) -> bool:
    """Whether ``residual + dropout(branch)`` runs through the kernels."""
    pair = (SUFFIX.get(residual.dtype), SUFFIX.get(branch.dtype))
    return (pair in ADD_PAIRS and residual.shape == branch.shape and usable(residual, DTYPES)
            and usable(branch, DTYPES))


def draw_seed() -> int:
    """One 64-bit seed from torch's default CPU generator (as one ``random_`` draw)."""
    return int(torch.empty((), dtype=torch.int64).random_(0, None)) % 2**64


def threshold(p: float) -> int:
    """Random 32-bit values below this are dropped: ``round(p * 2**32)``."""
    return min(round(p * 2**32), 2**32 - 1)


def item_factors(items: int, p: float, mask_dtype: torch.dtype,
                 path: torch.Tensor | None = None) -> torch.Tensor:
    """What a kept element is multiplied by, per item ``[items]``: ``1 / (1 - p)`` rounded to
    ``mask_dtype`` (as a mask of that dtype holds it), times the drop-path factor if any; in
    float64 for float64 masks, else float32 (the kernels' arithmetic)."""
    factors = torch.full((items,), 1.0 / (1.0 - p), dtype=mask_dtype)
    if path is not None:
        factors = factors.mul_(path.reshape(items))
    return factors.to(torch.float64 if mask_dtype == torch.float64 else torch.float32)


def _run(name: str, tensors: tuple[torch.Tensor, ...], factors: torch.Tensor, seed: int,
         thr: int) -> None:
    """Call kernel ``name`` on ``tensors`` (contiguous, all of one shape), then the arguments
    every dropout kernel takes: elements, elements per item, factors, seed, threshold, threads."""
    n = tensors[0].numel()
    getattr(library(), name)(*(t.data_ptr() for t in tensors), n, max(1, n // factors.numel()),
                             factors.data_ptr(), seed, thr, threads())


def _apply_mask(x, out, factors, seed, thr) -> torch.Tensor:
    """``out = x * mask`` through ``dropout_<x>_<out>`` (both contiguous, same shape)."""
    _run(f"dropout_{SUFFIX[x.dtype]}_{SUFFIX[out.dtype]}", (x, out), factors, seed, thr)
    return out


class KernelDropout(torch.autograd.Function):
    """``(x * mask).to(out_dtype)`` and its backward ``(grad * mask).to(x.dtype)``, the mask
    regenerated from ``seed``. ``factors [items]`` as :func:`item_factors` gives them."""

    @staticmethod
    def forward(ctx, x, p, out_dtype, factors, seed):
        x = x.contiguous()
        ctx.save_for_backward(factors)
        ctx.seed, ctx.thr, ctx.in_dtype = seed, threshold(p), x.dtype
        return _apply_mask(x, torch.empty(x.shape, dtype=out_dtype), factors, seed, ctx.thr)

    @staticmethod
    @once_differentiable  # C kernels: no second derivative (an error, not a wrong value)
    def backward(ctx, grad):
        (factors,) = ctx.saved_tensors
        grad = grad.contiguous()
        g_x = torch.empty(grad.shape, dtype=ctx.in_dtype)
        return _apply_mask(grad, g_x, factors, ctx.seed, ctx.thr), None, None, None, None


class KernelDropoutAdd(torch.autograd.Function):
    """``residual + branch * mask`` in the residual's dtype; the backward passes the gradient
    to ``residual`` and ``(grad * mask).to(branch.dtype)`` to ``branch``."""

    @staticmethod
    def forward(ctx, residual, branch, p, factors, seed):
        residual, branch = residual.contiguous(), branch.contiguous()
        out = torch.empty_like(residual)
        thr = threshold(p)
        _run(f"dropout_add_{SUFFIX[residual.dtype]}_{SUFFIX[branch.dtype]}",
             (residual, branch, out), factors, seed, thr)
        ctx.save_for_backward(factors)
        ctx.seed, ctx.thr, ctx.branch_dtype = seed, thr, branch.dtype
        return out

    @staticmethod
    @once_differentiable  # C kernels: no second derivative (an error, not a wrong value)
    def backward(ctx, grad):
        (factors,) = ctx.saved_tensors
        grad = grad.contiguous()
        g_branch = torch.empty(grad.shape, dtype=ctx.branch_dtype)
        return grad, _apply_mask(grad, g_branch, factors, ctx.seed, ctx.thr), None, None, None


class KernelGeluDropout(torch.autograd.Function):
    """``gelu(h) * mask`` (exact GELU, ``h``'s dtype) and its backward
    ``grad * mask * gelu'(h)``: the feed-forward network's activation and dropout in one pass
    each way. The forward keeps ``gelu'(h)`` (in ``h``'s dtype) instead of ``h``: the same
    memory, and the backward is a plain product. float32 GELU is within about 1e-7 of
    PyTorch's (its erf to 1.5e-7)."""

    @staticmethod
    def forward(ctx, h, p, factors, seed):
        h = h.contiguous()
        out, slope = torch.empty_like(h), torch.empty_like(h)
        thr = threshold(p)
        _run(f"gelu_dropout_{SUFFIX[h.dtype]}", (h, out, slope), factors, seed, thr)
        ctx.save_for_backward(slope, factors)
        ctx.seed, ctx.thr = seed, thr
        return out

    @staticmethod
    @once_differentiable  # C kernels: no second derivative (an error, not a wrong value)
    def backward(ctx, grad):
        slope, factors = ctx.saved_tensors
        grad = grad.contiguous().to(slope.dtype)
        g_h = torch.empty_like(slope)
        _run(f"gelu_dropout_backward_{SUFFIX[slope.dtype]}", (grad, slope, g_h), factors,
             ctx.seed, ctx.thr)
        return g_h, None, None, None


def gelu_dropout(h: torch.Tensor, p: float) -> torch.Tensor:
    """``dropout(gelu(h), p)`` in ``h``'s dtype (any shape; float32, bfloat16 or float64).

    The mask equals ``keep_mask(h.shape, p, h.dtype)`` drawn with the same seed; GELU is
    computed in float32 (float64) and the product rounded once."""
    seed = draw_seed()
    return KernelGeluDropout.apply(h, p, item_factors(1, p, h.dtype), seed)


def dropout(x: torch.Tensor, p: float, out_dtype: torch.dtype | None = None) -> torch.Tensor:
    """Inverted dropout of ``x`` (any shape), the result in ``out_dtype`` (default ``x``'s).

    Equals ``(x * keep_mask(x.shape, p, x.dtype)).to(out_dtype)`` drawn with the same seed
    (the product is computed in float32, or float64, and rounded once, to ``out_dtype``)."""
    out_dtype = x.dtype if out_dtype is None else out_dtype
    seed = draw_seed()
    return KernelDropout.apply(x, p, out_dtype, item_factors(1, p, x.dtype), seed)


def dropout_add(residual: torch.Tensor, branch: torch.Tensor, p: float,
                path: torch.Tensor | None = None, seed: int | None = None) -> torch.Tensor:
    """``residual + branch * mask * path`` in the residual's dtype, the mask in the promoted
    dtype of the two (shapes ``[B, ...]``; ``path``: ``B`` drop-path factors, or None).

    ``seed``: from :func:`draw_seed` (drawn here when None); a caller that draws the drop-path
    factors too draws the seed first, as :func:`neurofm.nn.layers.add_residual` does."""
    seed = draw_seed() if seed is None else seed
    items = 1 if path is None else path.numel()
    factors = item_factors(items, p, torch.promote_types(residual.dtype, branch.dtype), path)
    return KernelDropoutAdd.apply(residual, branch, p, factors, seed)


def keep_mask(shape: torch.Size, p: float, dtype: torch.dtype) -> torch.Tensor:
    """The mask a kernel call with the next seed applies: ``1 / (1 - p)`` kept, else 0."""
    seed = draw_seed()
    mask = torch.empty(shape, dtype=dtype)
    _run(f"keep_mask_{SUFFIX[dtype]}", (mask,), item_factors(1, p, dtype), seed, threshold(p))
    return mask
