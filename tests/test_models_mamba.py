"""Bidirectional Mamba: mixers, causal convolution, trailing padding, precision.

The scans themselves are tested in ``tests/test_nn_scan.py``; the encoder contract (shapes,
padding, channel order, masks, errors) for every registered model, ``mamba2_small`` included, in
``tests/test_encoder_contract.py``."""

import shutil

import pytest
import torch
import torch.nn.functional as F

from neurofm.models import create_model
from neurofm.models.mamba import (
    BidirectionalMambaBlock,
    Mamba2Mixer,
    MambaMixer,
    causal_conv_silu,
    causal_depthwise_conv,
    reverse_valid,
)
from neurofm.nn import cpu_kernels
from neurofm.sensors import SensorBatch

TINY = {
    "dim": 16,
    "depth": 2,
    "d_state": 4,
    "n_heads": 2,
    "patch_size": 20,
    "spatial_every": 1,
    "n_latent": None,
}


def eeg_sensors(n_channels, seed):
    gen = torch.Generator().manual_seed(seed)
    pos = torch.nn.functional.normalize(torch.randn(1, n_channels, 3, generator=gen), dim=-1)
    return SensorBatch(
        pos=pos * 0.09,
        ori=torch.zeros(1, n_channels, 3),
        kind=torch.zeros(1, n_channels, dtype=torch.long),
        chan_mask=torch.ones(1, n_channels, dtype=torch.bool),
    )


def test_reverse_valid_keeps_padding_at_the_end():
    x = torch.arange(10.0).view(2, 5, 1)
    out = reverse_valid(x, torch.tensor([3, 5]))
    assert out[0, :, 0].tolist() == [2.0, 1.0, 0.0, 3.0, 4.0]
    assert out[1, :, 0].tolist() == [9.0, 8.0, 7.0, 6.0, 5.0]
    torch.testing.assert_close(reverse_valid(out, torch.tensor([3, 5])), x)


@pytest.mark.parametrize("length", [2, 11])
def test_causal_depthwise_conv_is_the_cut_conv1d(length):
    torch.manual_seed(0)
    conv = torch.nn.Conv1d(6, 6, 4, groups=6, padding=3).double()
    x = torch.randn(3, length, 6, dtype=torch.float64, requires_grad=True)
    ref = conv(x.transpose(1, 2))[..., :length].transpose(1, 2)
    out = causal_depthwise_conv(x, conv.weight, conv.bias)
    torch.testing.assert_close(out, ref, atol=1e-12, rtol=0)
    weights = torch.randn_like(out)
    params = [x, conv.weight, conv.bias]
    for g, g_ref in zip(torch.autograd.grad((out * weights).sum(), params),
                        torch.autograd.grad((ref * weights).sum(), params)):
        torch.testing.assert_close(g, g_ref, atol=1e-12, rtol=0)


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("length, channels, threads", [(1, 6, 1), (2, 6, 2), (11, 37, 2)])
def test_causal_conv_silu_is_silu_of_the_cut_conv1d(length, channels, threads, fused):
    """The fused C kernel (and its PyTorch fallback): values and the gradients of x, weight
    and bias, sequences shorter than the kernel, channels not a multiple of the vector width,
    split between threads."""
    if fused and shutil.which(cpu_kernels.compiler_name()) is None:
        pytest.skip("no C compiler")
    torch.manual_seed(0)
    conv = torch.nn.Conv1d(channels, channels, 4, groups=channels, padding=3).double()
    x = torch.randn(3, length, channels, dtype=torch.float64, requires_grad=True)
    ref = F.silu(conv(x.transpose(1, 2))[..., :length].transpose(1, 2))
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with cpu_kernels.enabled(fused):
            out = causal_conv_silu(x, conv.weight, conv.bias)
            assert (type(out.grad_fn).__name__ == "FusedCausalConvSiLUBackward") is fused
            torch.testing.assert_close(out, ref, atol=1e-12, rtol=0)
            weights = torch.randn_like(out)
            params = [x, conv.weight, conv.bias]
            grads = torch.autograd.grad((out * weights).sum(), params)
    finally:
        torch.set_num_threads(before)
    for name, g, g_ref in zip(["x", "weight", "bias"], grads,
                              torch.autograd.grad((ref * weights).sum(), params)):
        torch.testing.assert_close(g, g_ref, atol=1e-12, rtol=0, msg=f"gradient of {name}")


@pytest.mark.parametrize("fused", [True, False])
def test_causal_conv_silu_reads_a_bf16_input_as_its_float32_copy(fused):
    """Under bf16 autocast the in-projection hands the convolution bfloat16: the float32 result
    and weight gradients of its float32 copy, and the input gradient rounded once to bf16."""
    if fused and shutil.which(cpu_kernels.compiler_name()) is None:
        pytest.skip("no C compiler")
    torch.manual_seed(0)
    x = torch.randn(3, 11, 37).bfloat16()
    weight, bias = torch.randn(37, 1, 4), torch.randn(37)
    grads, outs = [], []
    with cpu_kernels.enabled(fused):
        for inp in (x, x.float()):
            leaves = [inp.clone().requires_grad_(), weight.clone().requires_grad_(),
                      bias.clone().requires_grad_()]
            out = causal_conv_silu(*leaves)
            outs.append(out)
            grads.append(torch.autograd.grad(out, leaves, torch.ones_like(out)))
    assert outs[0].dtype == torch.float32 and torch.equal(outs[0], outs[1])
    assert grads[0][0].dtype == torch.bfloat16 and torch.equal(grads[0][0], grads[1][0].bfloat16())
    assert torch.equal(grads[0][1], grads[1][1]) and torch.equal(grads[0][2], grads[1][2])


@pytest.mark.parametrize("mixer", ["mamba1", "mamba2"])
def test_a_padded_sequence_gives_what_it_gives_alone(mixer):
    """Trailing padding (``lengths``) never reaches the real steps, in either direction."""
    torch.manual_seed(0)
    block = BidirectionalMambaBlock(16, d_state=4, mixer=mixer, headdim=8).double().eval()
    x = torch.randn(2, 9, 16, dtype=torch.float64)
    out = block(x, torch.tensor([6, 9]))
    torch.testing.assert_close(out[0, :6], block(x[:1, :6])[0], atol=1e-10, rtol=0)
    torch.testing.assert_close(out[1], block(x[1:])[0], atol=1e-10, rtol=0)


def test_mamba2_heads_must_divide_the_inner_width():
    with pytest.raises(ValueError, match="headdim"):
        Mamba2Mixer(16, expand=2, headdim=12)
    with pytest.raises(ValueError, match="mixer must be one of"):
        create_model("mamba_small", mixer="mamba3")


@pytest.mark.parametrize("mixer_class", [MambaMixer, Mamba2Mixer])
def test_mixer_runs_under_bf16_autocast(mixer_class):
    torch.manual_seed(0)
    mixer = mixer_class(16, d_state=4, **({"headdim": 8} if mixer_class is Mamba2Mixer else {}))
    x = torch.randn(3, 9, 16)
    ref = mixer(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = mixer(x)
    assert torch.isfinite(low).all()
    assert (low.float() - ref).abs().max() < 0.1 * ref.abs().max()


def test_padding_patches_must_be_at_the_end():
    torch.manual_seed(0)
    model = create_model("mamba_small", **TINY).eval()
    x, sensors = torch.randn(1, 3, 7, 20), eeg_sensors(3, 3)
    with pytest.raises(ValueError, match="at the end"):
        model(x, sensors, patch_valid=torch.tensor([[False] + [True] * 6]))
