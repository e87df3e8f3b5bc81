"""The fused CPU dropout kernels (``neurofm.nn.dropout_kernels``): masks never stored, the
backward regenerating the forward's, casts, the residual add and GELU fused in."""

import shutil

import pytest
import torch
import torch.nn.functional as F

from neurofm.nn import FeedForward, add_residual, cpu_kernels, dropout, dropout_kernels, keep_mask
from neurofm.nn.layers import drop_path_mask

pytestmark = pytest.mark.skipif(shutil.which(cpu_kernels.compiler_name()) is None,
                                reason="no C compiler: the kernels cannot be built")

BF16, F32, F64 = torch.bfloat16, torch.float32, torch.float64


@pytest.fixture(autouse=True)
def kernels_on():
    with cpu_kernels.enabled(True):
        assert cpu_kernels.library() is not None, "a C compiler is there: the kernels must build"
        yield


def seeded(seed, fn, *args, **kwargs):
    torch.manual_seed(seed)
    return fn(*args, **kwargs)


@pytest.mark.parametrize("dtype_in,dtype_out", [(F32, F32), (F32, BF16), (BF16, BF16), (F64, F64)])
def test_dropout_is_the_input_times_the_mask_cast_once_and_its_gradient_the_same_mask(
        dtype_in, dtype_out):
    x = torch.randn(70, 1000, dtype=dtype_in, requires_grad=True)  # 70,000: several blocks
    out = seeded(3, dropout, x, 0.3, out_dtype=dtype_out)
    mask = seeded(3, keep_mask, x.shape, 0.3, dtype_in)
    assert dropout_kernels.supports(x, dtype_out) and out.dtype == dtype_out
    assert torch.equal(out, (x.detach() * mask).to(dtype_out))
    grad = torch.randn(x.shape, dtype=dtype_out)
    (g_x,) = torch.autograd.grad(out, x, grad)
    assert g_x.dtype == dtype_in
    assert torch.equal(g_x, (grad.to(torch.promote_types(dtype_in, dtype_out)) * mask).to(dtype_in))


def test_bf16_input_to_float32_output_rounds_only_once():
    x = torch.randn(5000).bfloat16()
    out = seeded(1, dropout_kernels.dropout, x, 0.2, F32)
    mask = seeded(1, keep_mask, x.shape, 0.2, BF16)
    assert torch.equal(out, x.float() * mask.float())


def test_nan_and_inf_stay_nan_where_dropped_as_with_a_multiplied_mask():
    x = torch.tensor([float("nan"), float("inf"), -float("inf"), 1.0] * 4000)
    out = seeded(2, dropout, x, 0.5)
    mask = seeded(2, keep_mask, x.shape, 0.5, F32)
    torch.testing.assert_close(out, x * mask, equal_nan=True)
    assert torch.isnan(out[1::4][mask[1::4] == 0]).all()  # inf * 0


def test_float64_gradients_pass_gradcheck():
    x = torch.randn(6, 7, dtype=F64, requires_grad=True)
    base = torch.randn(6, 7, dtype=F64, requires_grad=True)
    path = torch.tensor([2.0, 0.0, 2.0, 2.0, 0.0, 2.0], dtype=F64)
    seed = dropout_kernels.draw_seed()
    assert torch.autograd.gradcheck(lambda t: dropout_kernels.KernelDropout.apply(
        t, 0.3, F64, dropout_kernels.item_factors(1, 0.3, F64), seed), (x,))
    assert torch.autograd.gradcheck(
        lambda b, t: dropout_kernels.dropout_add(b, t, 0.3, path, seed), (base, x))
    assert torch.autograd.gradcheck(lambda t: dropout_kernels.KernelGeluDropout.apply(
        t, 0.3, dropout_kernels.item_factors(1, 0.3, F64), seed), (x,))


@pytest.mark.parametrize("dtypes", [(F32, F32), (F32, BF16), (F64, F64), (BF16, BF16)])
def test_dropout_add_is_the_residual_plus_the_masked_branch_with_drop_path(dtypes):
    """Items of 7,000 elements end inside the kernels' 16,384-element blocks."""
    residual = torch.randn(5, 7, 1000, dtype=dtypes[0])
    branch = torch.randn(5, 7, 1000, dtype=dtypes[1], requires_grad=True)
    torch.manual_seed(4)
    out = add_residual(residual, branch, 0.25, 0.5, training=True)
    torch.manual_seed(4)
    mask = keep_mask(branch.shape, 0.25, torch.promote_types(*dtypes))
    mask = mask.mul_(drop_path_mask(branch, 0.5))
    assert out.dtype == dtypes[0]
    expected = residual.double() + branch.detach().double() * mask.double()  # rounded once
    torch.testing.assert_close(out, expected.to(dtypes[0]))
    dropped = (mask == 0).flatten(1).all(dim=1)
    assert 0 < dropped.sum() < 5  # seed 4: some items dropped, some kept
    assert torch.equal(out[dropped], residual[dropped])
    grad = torch.randn(out.shape, dtype=dtypes[0])
    (g_branch,) = torch.autograd.grad(out, branch, grad)
    assert torch.equal(g_branch, (grad * mask).to(dtypes[1]))


@pytest.mark.parametrize("dtype", [F64, F32, BF16])
def test_gelu_dropout_is_gelu_times_the_mask_with_the_exact_gelu_slope(dtype):
    """float64 uses libm's erfc; float32 an erf within 1.5e-7 (CDF within 7.5e-8, 2e-7 with
    float rounding); bfloat16 rounds the result (and the saved slope) to 8 bits."""
    h = (torch.randn(40, 1000, dtype=F64) * 3).to(dtype)
    h[0, :6] = torch.tensor([-30.0, -9.0, -1e-3, 0.0, 9.0, 30.0], dtype=dtype)
    h.requires_grad_()
    out = seeded(5, dropout_kernels.gelu_dropout, h, 0.2)
    mask = seeded(5, keep_mask, h.shape, 0.2, dtype).double()
    exact = h.detach().double().requires_grad_()
    expected = F.gelu(exact) * mask
    grad = torch.randn(h.shape, dtype=F64)
    (g_h,) = torch.autograd.grad(out, h, grad.to(dtype))
    (g_exact,) = torch.autograd.grad(expected, exact, grad)
    slope = g_exact.abs() / (grad.abs() * mask).clamp_min(1e-30)  # |gelu'(h)| where kept
    cdf_error, rounding = {F64: (1e-15, 1e-15), F32: (2e-7, 3e-7), BF16: (4e-3, 1.6e-2)}[dtype]
    out_bound = mask * exact.detach().abs() * cdf_error + expected.abs() * rounding + 1e-30
    assert ((out.double() - expected).abs() <= out_bound).all()
    grad_bound = grad.abs() * mask * (cdf_error + slope * 2 * rounding) + 1e-30
    assert ((g_h.double() - g_exact).abs() <= grad_bound).all()


def test_feed_forward_runs_gelu_and_dropout_in_the_fused_kernel_only_for_exact_gelu():
    ffn = FeedForward(8, 16, dropout=0.25).train()
    x = torch.randn(10, 8)
    assert type(seeded(0, ffn, x).grad_fn).__name__ == "AddmmBackward0"
    hidden = {}
    ffn.linear2.register_forward_hook(lambda m, args, out: hidden.update(h=args[0]))
    ffn(x)
    assert type(hidden["h"].grad_fn).__name__ == "KernelGeluDropoutBackward"
    ffn.activation = torch.nn.GELU(approximate="tanh")
    torch.manual_seed(6)
    out = ffn(x)
    torch.manual_seed(6)
    mask = keep_mask((10, 16), 0.25, x.dtype)
    torch.testing.assert_close(out, ffn.linear2(F.gelu(ffn.linear1(x), approximate="tanh") * mask))


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_masks_keep_one_minus_p_in_every_lane_and_block_independently(p):
    mask = seeded(7, keep_mask, (1 << 20,), p, F32) > 0  # 64 blocks of 16,384
    assert abs(mask.float().mean().item() - (1 - p)) < 0.003
    for lane in range(16):  # the generator's vector lanes
        assert abs(mask.view(-1, 16)[:, lane].float().mean().item() - (1 - p)) < 0.01, lane
    both = (mask[:-1] & mask[1:]).float().mean().item()
    assert abs(both - (1 - p) ** 2) < 0.004  # neighbours independent
    blocks = mask.view(64, 16384).float()
    agreement = (blocks[1:] == blocks[:-1]).float().mean().item()  # blocks not repeated
    assert abs(agreement - (p * p + (1 - p) ** 2)) < 0.01


def test_masks_are_fresh_per_call_follow_the_seed_and_not_the_threads_or_the_length():
    first, second = seeded(8, keep_mask, (100_000,), 0.3, F32), keep_mask((100_000,), 0.3, F32)
    assert not torch.equal(first, second)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        single = seeded(8, keep_mask, (100_000,), 0.3, F32)
        torch.set_num_threads(2)
        double = seeded(8, keep_mask, (100_000,), 0.3, F32)
    finally:
        torch.set_num_threads(before)
    assert torch.equal(single, first) and torch.equal(double, first)
    assert torch.equal(seeded(8, keep_mask, (40_000,), 0.3, F32), first[:40_000])
    assert torch.equal(keep_mask((1000,), 0.3, BF16).unique().float().sort().values,
                       torch.tensor([0.0, 1 / 0.7]).bfloat16().float())


def test_other_dtypes_and_disabled_kernels_take_the_fallback():
    x16 = torch.randn(1000, dtype=torch.float16)
    assert not dropout_kernels.supports(x16)
    out = seeded(9, dropout, x16, 0.5)
    assert out.dtype == torch.float16 and ((out == 0).float().mean() - 0.5).abs() < 0.06
    x = torch.randn(20_000)
    with cpu_kernels.enabled(False):
        assert not dropout_kernels.supports(x)
        fallback = seeded(9, dropout, x, 0.5)
    kernel = seeded(9, dropout, x, 0.5)
    assert not torch.equal(fallback, kernel)  # another generator, the same distribution
    assert abs((fallback == 0).float().mean() - (kernel == 0).float().mean()) < 0.02


def test_a_second_derivative_through_a_kernel_raises_instead_of_being_wrong():
    """A gradient penalty, say: the kernels' backward is not itself differentiable, and the
    residual add's would otherwise give the residual's part alone, silently."""
    x = torch.randn(100, dtype=F64, requires_grad=True)
    for fn in (lambda t: dropout_kernels.gelu_dropout(t, 0.2), lambda t: dropout(t, 0.2),
               lambda t: dropout_kernels.dropout_add(t, t, 0.2)):
        (g,) = torch.autograd.grad(fn(x).square().sum(), x, create_graph=True)
        with pytest.raises(RuntimeError):
            torch.autograd.grad(g.sum(), x)
