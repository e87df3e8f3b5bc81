"""LoRA adapters: exact at init, only adapters and head train, base weights untouched."""

import pytest
import torch
from torch import nn

from neurofm.eval.lora import LoRALinear, add_lora


def _tiny_model():
    from neurofm.models import create_model

    torch.manual_seed(0)
    return create_model("criss_cross_small", dim=32, depth=2, n_heads=4, ffn_dim=64).eval()


def test_lora_linear_starts_equal_and_learns_a_low_rank_update():
    torch.manual_seed(0)
    base = nn.Linear(6, 4)
    ref = base.weight.detach().clone()
    layer = LoRALinear(base, rank=2)
    x = torch.randn(5, 6)
    torch.testing.assert_close(layer(x), base(x))
    opt = torch.optim.SGD([p for p in layer.parameters() if p.requires_grad], lr=0.1)
    for _ in range(5):
        opt.zero_grad()
        (layer(x) - 1.0).pow(2).mean().backward()
        opt.step()
    assert torch.equal(base.weight, ref) and base.weight.grad is None
    delta = layer.lora_b @ layer.lora_a
    assert delta.abs().max() > 0 and torch.linalg.matrix_rank(delta) <= 2


def test_add_lora_freezes_backbone_and_keeps_outputs():
    from neurofm.sensors import SensorBatch

    model = _tiny_model()
    x = torch.randn(2, 3, 2, 200) * 0.2
    sensors = SensorBatch(pos=torch.randn(2, 3, 3) * 0.05, ori=torch.zeros(2, 3, 3),
                          kind=torch.zeros(2, 3, dtype=torch.long),
                          chan_mask=torch.ones(2, 3, dtype=torch.bool))
    before = model.embed(x, sensors)
    adapted = add_lora(model, rank=4)
    assert any(name.endswith("out_proj") for name in adapted)
    assert any(name.endswith("linear1") for name in adapted)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)
    torch.testing.assert_close(model.embed(x, sensors), before)
    with pytest.raises(ValueError, match="No linear layer"):
        add_lora(nn.Sequential(nn.ReLU()), rank=2)
