"""Shared network parts (``neurofm.nn``): attention kernels, CPU dropout, residual adds, the one
feed-forward network, and state-dict key migration."""

import shutil

import pytest
import torch

from neurofm.nn import (
    FeedForward,
    MaskedAttention,
    SelfAttention,
    add_residual,
    attend,
    cpu_kernels,
    dropout,
    keep_mask,
    reference_attention,
    rename_keys,
    upgrade_nested_state,
)
from neurofm.nn.layers import drop_path_mask


@pytest.fixture(params=["kernel", "fallback"])
def dropout_path(request):
    """Run the test with the fused dropout kernels, then with the PyTorch fallback (masks from
    keep_mask's SFC64 words): both must follow the same formulas."""
    if request.param == "kernel":
        if shutil.which(cpu_kernels.compiler_name()) is None:
            pytest.skip("no C compiler")
        assert cpu_kernels.library() is not None, "a C compiler is there: the kernels must build"
    with cpu_kernels.enabled(request.param == "kernel"):
        yield request.param


@pytest.mark.parametrize("masked", [False, True])
def test_sdpa_matches_plain_softmax_reference(masked):
    torch.manual_seed(0)
    qkv = torch.randn(6, 11, 3, 2, 8)  # strided views, as the layers pass them
    q, k, v = (t.transpose(1, 2) for t in qkv.unbind(2))
    valid = torch.rand(6, 11) > 0.3 if masked else None
    if masked:
        valid[:, 0] = True
    torch.testing.assert_close(
        attend(q, k, v, valid), reference_attention(q, k, v, valid), atol=1e-5, rtol=1e-5
    )


def test_bf16_training_attention_is_softmax_attention_with_its_gradients():
    """On CPU, bf16 attention under autograd is computed explicitly (float32 softmax): the same
    values and gradients as the float32 reference, to bf16 rounding."""
    torch.manual_seed(0)
    q, k, v = (torch.randn(6, 2, 11, 8, requires_grad=True) for _ in range(3))
    valid = torch.rand(6, 11) > 0.3
    valid[:, 0] = True
    ref = reference_attention(q, k, v, valid)
    grads_ref = torch.autograd.grad(ref.square().sum(), [q, k, v])
    low = [t.detach().bfloat16().requires_grad_() for t in (q, k, v)]
    out = attend(*low, valid)
    grads = torch.autograd.grad(out.float().square().sum(), low)
    torch.testing.assert_close(out.float(), ref.detach(), atol=0.05, rtol=0.05)
    for g, g_ref in zip(grads, grads_ref):
        torch.testing.assert_close(g.float(), g_ref, atol=0.1, rtol=0.05)


def test_self_attention_matches_torch_multihead_attention():
    torch.manual_seed(0)
    ours = SelfAttention(16, 4)
    ref = torch.nn.MultiheadAttention(16, 4, batch_first=True)
    ref.load_state_dict(ours.state_dict())
    x = torch.randn(3, 7, 16)
    valid = torch.ones(3, 7, dtype=torch.bool)
    valid[1, 4:] = False
    expected = ref(x, x, x, key_padding_mask=~valid, need_weights=False)[0]
    torch.testing.assert_close(ours(x, valid), expected, atol=1e-5, rtol=1e-5)


def test_cpu_dropout_drops_the_requested_fraction_and_keeps_the_mean(dropout_path):
    torch.manual_seed(0)
    x = torch.ones(400, 500)
    y = dropout(x, 0.25)
    assert abs((y == 0).float().mean().item() - 0.25) < 0.005
    assert abs(y.mean().item() - 1.0) < 0.01
    assert torch.equal(y[y != 0], torch.full_like(y[y != 0], 1 / 0.75))
    assert dropout(x, 0.25, training=False) is x
    torch.manual_seed(1)
    first = dropout(x, 0.5)
    torch.manual_seed(1)
    assert torch.equal(dropout(x, 0.5), first)  # follows torch.manual_seed


def test_fallback_keep_masks_are_fresh_and_uniform_in_every_16_bit_lane():
    """Without the kernels each 64-bit word feeds four elements: every lane must keep 1 - p,
    calls must differ."""
    with cpu_kernels.enabled(False):
        torch.manual_seed(4)
        first = keep_mask((200_000,), 0.3, torch.float32)
        second = keep_mask((200_000,), 0.3, torch.float32)
        assert not torch.equal(first, second)
        for lane in range(4):
            kept = (first.view(-1, 4)[:, lane] > 0).float().mean().item()
            assert abs(kept - 0.7) < 0.01, (lane, kept)
        # neighbouring elements are independent: P(both kept) = 0.49
        both = ((first[:-1] > 0) & (first[1:] > 0)).float().mean().item()
        assert abs(both - 0.49) < 0.01
        assert torch.equal(keep_mask((1000,), 0.3, torch.bfloat16).unique().float().sort().values,
                           torch.tensor([0.0, 1 / 0.7]).bfloat16().float())


def test_training_attention_with_dropout_is_softmax_attention_with_the_cpu_mask(dropout_path):
    torch.manual_seed(0)
    q, k, v = (torch.randn(3, 2, 5, 4, dtype=torch.float64) for _ in range(3))
    valid = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 1, 1, 1]], dtype=torch.bool)
    torch.manual_seed(7)
    out = attend(q, k, v, valid, dropout_p=0.2)
    torch.manual_seed(7)
    mask = keep_mask((3, 2, 5, 5), 0.2, torch.float64)
    scores = q @ k.transpose(-2, -1) / 2.0
    weights = torch.softmax(scores.masked_fill(~valid[:, None, None, :], float("-inf")), -1)
    torch.testing.assert_close(out, (weights * mask) @ v)
    assert not torch.equal(out, reference_attention(q, k, v, valid))  # dropout did act


def test_add_residual_applies_dropout_and_drop_path_in_one_mask(dropout_path):
    x, branch = torch.randn(6, 3, 4), torch.randn(6, 3, 4, requires_grad=True)
    assert torch.equal(add_residual(x, branch, 0.3, 0.5, training=False), x + branch)
    torch.manual_seed(3)
    out = add_residual(x, branch, 0.3, 0.5, training=True)
    torch.manual_seed(3)
    mask = keep_mask(branch.shape, 0.3, branch.dtype) * drop_path_mask(branch, 0.5)
    torch.testing.assert_close(out, x + branch * mask)
    out.sum().backward()
    torch.testing.assert_close(branch.grad, mask)
    dropped = (mask == 0).flatten(1).all(dim=1)  # whole items removed by drop-path
    assert torch.equal(out.detach()[dropped], x[dropped])


def test_feed_forward_dropout_matches_the_plain_formula(dropout_path):
    ffn = FeedForward(8, 16, dropout=0.25).train()
    x = torch.randn(10, 8, requires_grad=True)
    torch.manual_seed(5)
    out = ffn(x)
    (grad,) = torch.autograd.grad(out.square().sum(), x)
    torch.manual_seed(5)
    mask = keep_mask((10, 16), 0.25, x.dtype)
    x2 = x.detach().requires_grad_()
    ref = ffn.linear2(torch.nn.functional.gelu(ffn.linear1(x2)) * mask)
    (grad_ref,) = torch.autograd.grad(ref.square().sum(), x2)
    torch.testing.assert_close(out, ref)
    torch.testing.assert_close(grad, grad_ref)


def test_masked_attention_is_softmax_attention_over_the_real_keys():
    torch.manual_seed(0)
    attn = MaskedAttention(16, 4).eval()
    query, kv = torch.randn(3, 2, 16), torch.randn(3, 5, 16)
    valid = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [0, 1, 0, 1, 1]], dtype=torch.bool)
    q = attn.q_proj(query).view(3, 2, 4, 4).transpose(1, 2)
    k, v = attn.kv_proj(kv).view(3, 5, 2, 4, 4).permute(2, 0, 3, 1, 4)
    expected = attn.out_proj(reference_attention(q, k, v, valid).transpose(1, 2).reshape(3, 2, 16))
    with torch.no_grad():
        torch.testing.assert_close(attn(query, kv, valid), expected, atol=1e-5, rtol=1e-5)
        # Padded keys get zero weight: changing them changes nothing.
        other = kv.clone()
        other[~valid] = 100 * torch.randn(int((~valid).sum()), 16)
        torch.testing.assert_close(attn(query, other, valid), attn(query, kv, valid))


def test_feed_forward_output_dropout_follows_the_cpu_mask(dropout_path):
    ffn = FeedForward(8, 16, output_dropout=0.5).train()
    x = torch.randn(10, 8)
    torch.manual_seed(2)
    out = ffn(x)
    torch.manual_seed(2)
    mask = keep_mask((10, 8), 0.5, x.dtype)
    torch.testing.assert_close(out, ffn.linear2(torch.nn.functional.gelu(ffn.linear1(x))) * mask)
    ffn.eval()
    torch.testing.assert_close(ffn(x), ffn.linear2(torch.nn.functional.gelu(ffn.linear1(x))))


def test_rename_keys_applies_every_pattern_and_keeps_new_names():
    renames = ((r"^(unify|mask_token)\b", r"stem.\1"), (r"\.ffn\.0\.", ".ffn.linear1."))
    state = {"unify.ffn.0.weight": 1, "mask_token": 2, "stem.unify.ffn.linear1.bias": 3,
             "unifyx": 4}
    assert rename_keys(state, renames) == {"stem.unify.ffn.linear1.weight": 1,
                                           "stem.mask_token": 2,
                                           "stem.unify.ffn.linear1.bias": 3, "unifyx": 4}


class _Upgrading(torch.nn.Module):
    def __init__(self, tag):
        super().__init__()
        self.tag = tag
        self.inner = torch.nn.Linear(1, 1)

    def upgrade_state_dict(self, state, format_version):
        return {f"{k}.{self.tag}{format_version}": v for k, v in state.items()}


def test_upgrade_nested_state_hands_each_prefix_to_its_outermost_upgrader():
    outer = torch.nn.Module()
    outer.model = _Upgrading("m")
    outer.model.nested = _Upgrading("never")  # inside model.: the model upgrades its keys
    outer.head = torch.nn.Linear(1, 1)
    outer.tokenizer = _Upgrading("t")
    state = {"model.a": 1, "model.nested.b": 2, "head.weight": 3, "tokenizer.c": 4}
    assert upgrade_nested_state(outer, state, 1) == {
        "model.a.m1": 1, "model.nested.b.m1": 2, "head.weight": 3, "tokenizer.c.t1": 4}


def test_old_tokenizer_names_still_work_with_a_deprecation_warning():
    import neurofm.tokenizer

    for name, moved in (("FeedForward", FeedForward), ("MaskedAttention", MaskedAttention)):
        with pytest.warns(DeprecationWarning, match=f"neurofm.nn.{name}"):
            assert getattr(neurofm.tokenizer, name) is moved
    with pytest.raises(AttributeError):
        neurofm.tokenizer.NoSuchThing  # noqa: B018
