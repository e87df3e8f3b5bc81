"""Reconstruction and code-prediction losses, and their combination."""

import pytest
import torch
from torch import nn

from neurofm.objectives import (
    MaskedCodePrediction,
    MaskedReconstruction,
    TokenCounts,
    build_objective,
    token_errors,
)


def _masks(b=2, c=3, n=4, seed=0):
    gen = torch.Generator().manual_seed(seed)
    real = torch.ones(b, c, n, dtype=torch.bool)
    real[0, 2] = False  # a padding channel
    mask = (torch.rand(b, c, n, generator=gen) < 0.5) & real
    return mask, real


def test_reconstruction_scores_masked_real_tokens_only():
    mask, real = _masks()
    target = torch.randn(2, 3, 4, 5)
    pred = target.clone()
    pred[mask] += 1.0  # error 1 on every masked token
    counts = TokenCounts(masked=float(mask.sum()), visible=float((real & ~mask).sum()))
    loss = MaskedReconstruction("mse")(pred, target, mask, real, counts)
    assert loss.item() == pytest.approx(1.0)
    # what the model predicts on visible or padded tokens does not matter
    pred[~mask] = 100.0
    assert MaskedReconstruction("mse")(pred, target, mask, real, counts).item() == \
        pytest.approx(1.0)


def test_visible_weight_adds_the_visible_error():
    mask, real = _masks()
    target = torch.zeros(2, 3, 4, 5)
    pred = torch.full_like(target, 2.0)  # error 4 everywhere
    counts = TokenCounts(masked=float(mask.sum()), visible=float((real & ~mask).sum()))
    loss = MaskedReconstruction("mse", visible_weight=0.1)(pred, target, mask, real, counts)
    assert loss.item() == pytest.approx(4.0 + 0.1 * 4.0)


def test_smooth_l1_is_linear_for_large_errors():
    err = token_errors(torch.full((1, 1, 1, 4), 3.0), torch.zeros(1, 1, 1, 4), "smooth_l1", 1.0)
    assert err.item() == pytest.approx(3.0 - 0.5)


def test_shares_of_micro_batches_add_up_to_the_full_batch_loss():
    mask, real = _masks(b=4, seed=3)
    pred, target = torch.randn(4, 3, 4, 5), torch.randn(4, 3, 4, 5)
    counts = TokenCounts(masked=float(mask.sum()), visible=float((real & ~mask).sum()))
    objective = MaskedReconstruction("mse", visible_weight=0.2)
    full = objective(pred, target, mask, real, counts)
    halves = sum(objective(pred[i:i + 2], target[i:i + 2], mask[i:i + 2], real[i:i + 2], counts)
                 for i in (0, 2))
    assert halves.item() == pytest.approx(full.item(), rel=1e-6)


def test_bad_reconstruction_loss_is_named():
    with pytest.raises(ValueError, match="reconstruction_loss"):
        MaskedReconstruction("l1")


class _CodeTokenizer(nn.Module):
    """Codes from the sign pattern of the first samples of each patch (two levels)."""

    def __init__(self, codebook_size=4):
        super().__init__()
        self.proj = nn.Linear(2, 2)
        self.config = type("Cfg", (), {"codebook_size": codebook_size, "n_levels": 2})()

    def encode(self, x, sensors):
        level0 = (x[..., 0] > 0).long() * 2 + (x[..., 1] > 0).long()
        return torch.stack([level0, (x[..., 2] > 0).long()], dim=-1)


def test_code_prediction_is_cross_entropy_on_masked_tokens_with_a_frozen_tokenizer():
    torch.manual_seed(0)
    tokenizer = _CodeTokenizer()
    objective = build_objective(nn.Identity(), reconstruction_weight=0.0,
                                code_prediction_weight=1.0, tokenizer=tokenizer, dim=6)
    code_pred = objective.code_prediction
    assert isinstance(code_pred, MaskedCodePrediction)
    assert not any(p.requires_grad for p in code_pred.tokenizer.parameters())
    code_pred.train()
    assert not code_pred.tokenizer.training

    x = torch.randn(2, 3, 4, 6)
    mask, _ = _masks()
    codes = code_pred.targets(x, None)
    assert codes.shape == (2, 3, 4, 2)
    features = torch.randn(2, 3, 4, 6)
    counts = TokenCounts(masked=float(mask.sum()), visible=0.0)
    loss = code_pred(features, codes, mask, counts)
    logits = code_pred.head(features[mask]).reshape(-1, 2, 4)
    expected = torch.stack([nn.functional.cross_entropy(logits[:, lv], codes[mask][:, lv])
                            for lv in range(2)]).mean()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)


def test_code_prediction_refuses_latent_features():
    code_pred = MaskedCodePrediction(_CodeTokenizer(), dim=6, codebook_size=4, n_levels=2)
    codes = torch.zeros(1, 3, 4, 2, dtype=torch.long)
    with pytest.raises(ValueError, match="channel unification"):
        code_pred(torch.randn(1, 2, 4, 6), codes, torch.ones(1, 3, 4, dtype=torch.bool),
                  TokenCounts(1.0, 0.0))


class _TinyEncoder(nn.Module):
    """Encoder API on [B, C, N, P]: features and a reconstruction from them."""

    def __init__(self, p=6, d=8):
        super().__init__()
        self.embed, self.head = nn.Linear(p, d), nn.Linear(d, p)

    def forward(self, x, sensors, patch_mask=None, patch_valid=None):
        return self.embed(x.masked_fill(patch_mask[..., None], 0.0))

    def reconstruct(self, x, sensors, patch_mask=None, patch_valid=None):
        return self.head(self(x, sensors, patch_mask))


def test_combined_objective_is_the_weighted_sum_of_its_terms():
    torch.manual_seed(1)
    objective = build_objective(_TinyEncoder(), reconstruction_weight=1.0,
                                code_prediction_weight=0.5, tokenizer=_CodeTokenizer(), dim=8)
    x = torch.randn(2, 3, 4, 6)
    mask, real = _masks()
    counts = TokenCounts(masked=float(mask.sum()), visible=float((real & ~mask).sum()))
    out = objective(x, None, mask, real.any(1), real, counts)
    assert set(out.terms) == {"reconstruction", "code_prediction"}
    expected = out.terms["reconstruction"] + 0.5 * out.terms["code_prediction"]
    assert out.loss.item() == pytest.approx(expected.item(), rel=1e-6)
    assert out.code_histogram.shape == (2, 4) and out.code_histogram.sum() == 2 * mask.sum()
    out.loss.backward()
    assert objective.code_prediction.head.weight.grad is not None
    assert objective.model.embed.weight.grad is not None


def test_an_objective_needs_a_term_and_code_prediction_needs_a_tokenizer():
    with pytest.raises(ValueError, match="no term"):
        build_objective(_TinyEncoder(), reconstruction_weight=0.0)
    with pytest.raises(ValueError, match="objective.tokenizer"):
        build_objective(_TinyEncoder(), code_prediction_weight=1.0, dim=8)
