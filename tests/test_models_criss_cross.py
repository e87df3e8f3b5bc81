"""Criss-cross transformer: AMP, gradient layouts under DDP, the position convolution.

The encoder contract (shapes, padding, channel order, masks, errors) is checked for every
registered model in ``tests/test_encoder_contract.py``; attention and dropout kernels in
``tests/test_nn.py``."""

import json
import socket
import warnings

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from neurofm.models import create_model
from neurofm.sensors import SensorBatch

TINY = {
    "dim": 32,
    "depth": 2,
    "n_heads": 4,
    "ffn_dim": 64,
    "patch_size": 20,
    "dropout": 0.0,
    "drop_path": 0.0,
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


def test_bf16_autocast_and_training_step():
    torch.manual_seed(0)
    model = create_model("criss_cross_small", **{**TINY, "dropout": 0.1, "drop_path": 0.1})
    x, sensors = torch.randn(2, 4, 3, 20), eeg_sensors(4, 8)
    sensors = SensorBatch.collate([sensors, sensors])
    model.eval()
    with torch.no_grad():
        ref = model(x, sensors)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = model(x, sensors)
    assert low.dtype == torch.bfloat16
    assert (low.float() - ref).abs().max() < 0.1 * ref.abs().max()
    model.train()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = model.reconstruct(x, sensors).float().square().mean()
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert missing == ["stem.mask_token"]  # only unused because nothing was masked


@pytest.mark.parametrize("position", ["sensor", "acpe"])
def test_gradients_have_the_strides_of_their_parameters(position):
    """DDP copies each gradient into a bucket laid out like its parameter and warns ("Grad strides
    do not match bucket view strides") when the strides differ, e.g. the depthwise position
    convolution run channels-last with a contiguous weight. Its output is the plain convolution."""
    torch.manual_seed(0)
    model = create_model("criss_cross_small", position=position, **TINY)
    x, sensors = torch.randn(2, 21, 5, 20), eeg_sensors(21, 3)
    model(x, SensorBatch.collate([sensors, sensors])).square().mean().backward()
    wrong = [(n, tuple(p.grad.stride()), tuple(p.stride()))
             for n, p in model.named_parameters() if p.grad is not None
             and p.grad.stride() != p.stride()]
    assert wrong == []

    conv = model.stem.position.conv
    tokens = torch.randn(2, 21, 5, TINY["dim"])
    plain = torch.nn.functional.conv2d(
        tokens.permute(0, 3, 1, 2).contiguous(), conv.weight.clone(
            memory_format=torch.contiguous_format), conv.bias, padding=conv.padding,
        groups=conv.groups).permute(0, 2, 3, 1)
    with torch.no_grad():
        torch.testing.assert_close(model.stem.position(tokens), tokens + plain, atol=1e-6,
                                   rtol=0)


class _Reconstruct(torch.nn.Module):
    """Masked reconstruction as one forward, so DDP sees every parameter used."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x, patch_mask):
        return self.model.reconstruct(x, patch_mask=patch_mask)


def _ddp_steps(rank, port, out_dir):
    """One of two gloo ranks: three DDP steps of a tiny model; writes the warnings it saw."""
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=2)
    try:
        torch.manual_seed(0)
        model = create_model("criss_cross_small", position="acpe", **TINY)
        ddp = torch.nn.parallel.DistributedDataParallel(_Reconstruct(model))
        optimizer = torch.optim.SGD(ddp.parameters(), lr=0.1)
        x = torch.randn(2, 4, 3, 20, generator=torch.Generator().manual_seed(rank))
        mask = torch.zeros(2, 4, 3, dtype=torch.bool)
        mask[:, 0, 1] = True
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for _ in range(3):
                optimizer.zero_grad()
                ddp(x, mask).square().mean().backward()
                optimizer.step()
        with open(f"{out_dir}/rank{rank}.json", "w") as fh:
            json.dump([str(w.message) for w in caught], fh)
    finally:
        dist.destroy_process_group()


def test_ddp_training_raises_no_gradient_layout_warning(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    mp.spawn(_ddp_steps, args=(port, str(tmp_path)), nprocs=2)
    for rank in (0, 1):
        seen = json.loads((tmp_path / f"rank{rank}.json").read_text())
        assert not [m for m in seen if "strides" in m], seen
