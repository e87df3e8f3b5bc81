"""The fused CPU attention kernels (``neurofm.nn.attention_kernels``): softmax attention with
dropout read from and written to the projections' layouts, nothing of size [L, L] stored."""

import math
import shutil

import pytest
import torch

from neurofm.models.criss_cross import CrissCrossLayer
from neurofm.nn import SelfAttention, attention_kernels, cpu_kernels

pytestmark = pytest.mark.skipif(shutil.which(cpu_kernels.compiler_name()) is None,
                                reason="no C compiler: the kernels cannot be built")

BF16, F32, F64 = torch.bfloat16, torch.float32, torch.float64
B, X, Y, H, E = 2, 5, 7, 3, 20  # a grid [B, X, Y] of tokens, H heads of width E


@pytest.fixture(autouse=True)
def kernels_on():
    with cpu_kernels.enabled(True):
        assert cpu_kernels.library() is not None, "a C compiler is there: the kernels must build"
        yield


def reference(qkv, key_valid, axis, mask):
    """Float64 attention written out: softmax(q k^T / sqrt(e)) * mask @ v along ``axis``."""
    qkv = qkv.double()
    seq = qkv if axis == 2 else qkv.transpose(1, 2)  # [B, other, L, 3, H, e]
    b, other, length, _, heads, dim = seq.shape
    q, k, v = (t.permute(0, 1, 3, 2, 4) for t in seq.unbind(3))  # [B, other, H, L, e]
    scores = q @ k.transpose(-1, -2) / math.sqrt(dim)
    if key_valid is not None:
        scores = scores.masked_fill(~key_valid[:, None, None, None, :], float("-inf"))
    weights = torch.softmax(scores, -1) * mask.double().view(b, other, heads, length, length)
    out = (weights @ v).permute(0, 1, 3, 2, 4).reshape(b, other, length, heads * dim)
    return out if axis == 2 else out.transpose(1, 2)


def run_with_mask(qkv, key_valid, p, axis, seed=0):
    """The kernel's output and the mask it applied (drawn with the same seed)."""
    length, other = (X, Y) if axis == 1 else (Y, X)
    torch.manual_seed(seed)
    mask = attention_kernels.keep_mask(B * other * H, length, p, torch.float64)
    torch.manual_seed(seed)
    return attention_kernels.attention(qkv, key_valid, p, axis), mask


def random_valid(length, seed=0):
    valid = torch.rand(B, length, generator=torch.Generator().manual_seed(seed)) > 0.4
    valid[:, 0] = True
    return valid


TOLERANCE = {F64: 1e-12, F32: 2e-6, BF16: 2e-2}


@pytest.mark.parametrize("dtype", [F64, F32, BF16])
@pytest.mark.parametrize("axis", [1, 2])
@pytest.mark.parametrize("p", [0.0, 0.3])
@pytest.mark.parametrize("masked", [False, True])
def test_output_and_gradients_equal_the_written_out_attention_with_the_same_mask(
        dtype, axis, p, masked):
    qkv = torch.randn(B, X, Y, 3, H, E, dtype=dtype, requires_grad=True)
    valid = random_valid(X if axis == 1 else Y) if masked else None
    out, mask = run_with_mask(qkv, valid, p, axis)
    assert out.shape == (B, X, Y, H * E) and out.dtype == dtype
    qkv64 = qkv.detach().double().requires_grad_()
    expected = reference(qkv64, valid, axis, mask)
    tol = TOLERANCE[dtype]
    torch.testing.assert_close(out.double(), expected, atol=tol, rtol=tol)
    grad = torch.randn(out.shape, dtype=dtype)
    (g_kernel,) = torch.autograd.grad(out, qkv, grad)
    (g_ref,) = torch.autograd.grad(expected, qkv64, grad.double())
    assert g_kernel.dtype == dtype
    torch.testing.assert_close(g_kernel.double(), g_ref, atol=4 * tol, rtol=4 * tol)


def test_the_mask_keeps_one_minus_p_and_differs_between_rows_pairs_and_calls():
    first = attention_kernels.keep_mask(400, 30, 0.25, F32)
    second = attention_kernels.keep_mask(400, 30, 0.25, F32)
    kept = first != 0
    assert abs(kept.float().mean().item() - 0.75) < 0.005
    assert torch.all((first == 0) | (first == torch.tensor(1 / 0.75, dtype=F32)))
    assert not torch.equal(first, second)  # fresh per call
    assert not torch.equal(kept[0, 0], kept[0, 1])  # rows
    assert not torch.equal(kept[0], kept[1])  # pairs
    # Neighbouring elements independent: P(both kept) = 0.75 ** 2.
    both = (kept[..., 1:] & kept[..., :-1]).float().mean().item()
    assert abs(both - 0.5625) < 0.01


def test_float64_gradients_pass_gradcheck_with_a_fixed_mask():
    qkv = torch.randn(2, 3, 4, 3, 2, 5, dtype=F64, requires_grad=True)
    valid = torch.tensor([[True, False, True, True], [True, True, True, False]])
    factors = attention_kernels._factors(0.3, F64)
    valid_u8 = valid.view(torch.uint8)

    def fn(t):
        return attention_kernels.KernelAttention.apply(t, valid_u8, 2, 0.3, factors, 1234)

    assert torch.autograd.gradcheck(fn, (qkv,))


def test_masked_keys_have_no_influence_and_get_zero_gradient():
    qkv = torch.randn(B, X, Y, 3, H, E, requires_grad=True)
    valid = random_valid(Y)
    out, _ = run_with_mask(qkv, valid, 0.2, axis=2)
    changed = qkv.detach().clone()
    changed[..., 1:, :, :][~valid[:, None, :].expand(B, X, Y)] = 1e3  # keys and values
    out_changed, _ = run_with_mask(changed, valid, 0.2, axis=2)
    assert torch.equal(out, out_changed)
    (grad,) = torch.autograd.grad(out, qkv, torch.randn(out.shape))
    padded = ~valid[:, None, :].expand(B, X, Y)
    assert torch.all(grad[..., 1:, :, :][padded] == 0)


def test_a_row_without_valid_keys_is_nan_as_softmax_over_nothing():
    qkv = torch.randn(B, X, Y, 3, H, E)
    valid = torch.ones(B, Y, dtype=torch.bool)
    valid[1] = False
    out, mask = run_with_mask(qkv, valid, 0.0, axis=2)
    assert torch.isnan(out[1]).all() and not torch.isnan(out[0]).any()
    assert torch.isnan(reference(qkv, valid, 2, mask)[1]).all()


def test_results_do_not_depend_on_the_thread_count_or_the_input_layout():
    qkv = torch.randn(4, 19, 30, 3, 4, 25)  # enough work for several threads
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one, _ = run_with_mask(qkv, None, 0.1, axis=1)
        torch.set_num_threads(2)
        two, _ = run_with_mask(qkv, None, 0.1, axis=1)
    finally:
        torch.set_num_threads(before)
    assert torch.equal(one, two)
    wider = torch.randn(4, 19, 30, 3, 4, 30)[..., :25]  # a strided view
    wider.copy_(qkv)
    strided, _ = run_with_mask(wider, None, 0.1, axis=1)
    assert torch.equal(strided, one)


def test_no_second_derivative_and_bad_shapes_are_errors():
    qkv = torch.randn(B, X, Y, 3, H, E, dtype=F64, requires_grad=True)
    out = attention_kernels.attention(qkv, None, 0.1, 2)
    (grad,) = torch.autograd.grad(out.sum(), qkv, create_graph=True)
    with pytest.raises(RuntimeError):
        grad.sum().backward()
    with pytest.raises(ValueError, match="axis 1 or 2"):
        attention_kernels.attention(qkv, None, 0.1, 3)
    with pytest.raises(ValueError, match=r"key_valid must be \[B, L\] = \[2, 7\]"):
        attention_kernels.attention(qkv, torch.ones(B, X, dtype=torch.bool), 0.1, 2)
    with pytest.raises(ValueError, match=r"qkv \[B, X, Y, 3, H, e\]"):
        attention_kernels.attention(qkv[..., 0, :], None, 0.1, 2)


@pytest.mark.parametrize("axis", [1, 2])
def test_self_attention_grid_takes_the_kernel_in_bf16_training_and_matches_the_fallback(axis):
    torch.manual_seed(0)
    attn = SelfAttention(H * E, H).train()
    x = torch.randn(B, X, Y, H * E)
    valid = random_valid(X if axis == 1 else Y)
    outs, grads = [], []
    for on in (True, False):
        with cpu_kernels.enabled(on), torch.autocast("cpu", dtype=BF16):
            attn.zero_grad()
            qkv = attn.project_qkv(x)
            assert attention_kernels.supports(qkv) == on
            out = attn.attend_grid(qkv, valid, axis)
            out.float().square().sum().backward()
        outs.append(out.float())
        grads.append(attn.in_proj_weight.grad.clone())
    assert outs[0].shape == (B, X, Y, H * E)
    torch.testing.assert_close(outs[0], outs[1], atol=3e-2, rtol=3e-2)
    torch.testing.assert_close(grads[0], grads[1], atol=0.5, rtol=5e-2)


def test_criss_cross_layer_trains_the_same_through_the_kernel_and_without_it():
    torch.manual_seed(0)
    layer = CrissCrossLayer(dim=32, n_heads=4, ffn_dim=64, dropout=0.0).train()
    x = torch.randn(2, 6, 9, 32)
    chan_valid = torch.tensor([[True] * 6, [True] * 4 + [False] * 2])
    results = []
    for on in (True, False):
        with cpu_kernels.enabled(on), torch.autocast("cpu", dtype=BF16):
            layer.zero_grad()
            out = layer(x, chan_valid, None)
            out.float().square().mean().backward()
        results.append((out.float(), [p.grad.clone() for p in layer.parameters()]))
    torch.testing.assert_close(results[0][0], results[1][0], atol=3e-2, rtol=3e-2)
    for kernel_grad, fallback_grad in zip(results[0][1], results[1][1]):
        torch.testing.assert_close(kernel_grad, fallback_grad, atol=2e-2, rtol=5e-2)
