"""Reconstruction and code-prediction losses, and their combination."""

import pytest
import torch
from torch import nn

from neurofm.objectives import (
    MaskedCodePrediction,
    MaskedReconstruction,
    ObjectiveConfig,
    PretrainingObjective,
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
    loss = MaskedReconstruction("mse").score(pred, target, mask, real, counts)
    assert loss.item() == pytest.approx(1.0)
    # what the model predicts on visible or padded tokens does not matter
    pred[~mask] = 100.0
    assert MaskedReconstruction("mse").score(pred, target, mask, real, counts).item() == \
        pytest.approx(1.0)


def test_visible_weight_adds_the_visible_error():
    mask, real = _masks()
    target = torch.zeros(2, 3, 4, 5)
    pred = torch.full_like(target, 2.0)  # error 4 everywhere
    counts = TokenCounts(masked=float(mask.sum()), visible=float((real & ~mask).sum()))
    loss = MaskedReconstruction("mse", visible_weight=0.1).score(pred, target, mask, real, counts)
    assert loss.item() == pytest.approx(4.0 + 0.1 * 4.0)


def test_smooth_l1_is_linear_for_large_errors():
    err = token_errors(torch.full((1, 1, 1, 4), 3.0), torch.zeros(1, 1, 1, 4), "smooth_l1", 1.0)
    assert err.item() == pytest.approx(3.0 - 0.5)


def test_shares_of_micro_batches_add_up_to_the_full_batch_loss():
    mask, real = _masks(b=4, seed=3)
    pred, target = torch.randn(4, 3, 4, 5), torch.randn(4, 3, 4, 5)
    counts = TokenCounts(masked=float(mask.sum()), visible=float((real & ~mask).sum()))
    objective = MaskedReconstruction("mse", visible_weight=0.2)
    full = objective.score(pred, target, mask, real, counts)
    halves = sum(objective.score(pred[i:i + 2], target[i:i + 2], mask[i:i + 2],
                                 real[i:i + 2], counts) for i in (0, 2))
    assert halves.item() == pytest.approx(full.item(), rel=1e-6)


def test_bad_reconstruction_loss_is_named():
    with pytest.raises(ValueError, match="objective.terms.reconstruction.loss"):
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
    code_pred = MaskedCodePrediction(tokenizer, dim=6, codebook_size=4, n_levels=2)
    assert not any(p.requires_grad for p in code_pred.tokenizer.parameters())
    code_pred.train()
    assert not code_pred.tokenizer.training

    x = torch.randn(2, 3, 4, 6)
    mask, _ = _masks()
    codes = code_pred.targets(x, None)
    assert codes.shape == (2, 3, 4, 2)
    features = torch.randn(2, 3, 4, 6)
    counts = TokenCounts(masked=float(mask.sum()), visible=0.0)
    loss = code_pred.score(features, codes, mask, counts)
    logits = code_pred.head(features[mask]).reshape(-1, 2, 4)
    expected = torch.stack([nn.functional.cross_entropy(logits[:, lv], codes[mask][:, lv])
                            for lv in range(2)]).mean()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)


def test_code_prediction_refuses_latent_features():
    code_pred = MaskedCodePrediction(_CodeTokenizer(), dim=6, codebook_size=4, n_levels=2)
    codes = torch.zeros(1, 3, 4, 2, dtype=torch.long)
    with pytest.raises(ValueError, match="channel unification"):
        code_pred.score(torch.randn(1, 2, 4, 6), codes, torch.ones(1, 3, 4, dtype=torch.bool),
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


def _combined(encoder, weight=0.5):
    return PretrainingObjective(
        encoder, {"reconstruction": MaskedReconstruction(),
                  "code_prediction": MaskedCodePrediction(_CodeTokenizer(), 8, 4, 2)},
        {"reconstruction": 1.0, "code_prediction": weight})


def test_combined_objective_is_the_weighted_sum_of_its_terms():
    torch.manual_seed(1)
    objective = _combined(_TinyEncoder())
    x = torch.randn(2, 3, 4, 6)
    mask, real = _masks()
    counts = TokenCounts(masked=float(mask.sum()), visible=float((real & ~mask).sum()))
    out = objective(x, None, mask, real.any(1), real, counts)
    assert set(out.logs) == {"reconstruction", "code_prediction"}
    rec = out.logs["reconstruction"]["reconstruction"]
    code = out.logs["code_prediction"]["code_prediction"]
    assert out.loss.item() == pytest.approx((rec + 0.5 * code).item(), rel=1e-6)
    histogram = out.logs["code_prediction"]["code_histogram"]
    assert histogram.shape == (2, 4) and histogram.sum() == 2 * mask.sum()
    summary = objective.summarize(out.logs)
    assert summary == {"reconstruction": pytest.approx(rec.item()),
                       "code_prediction": pytest.approx(code.item()),
                       "codebook_usage": pytest.approx(float((histogram > 0).float().mean()))}
    out.loss.backward()
    assert objective.code_prediction.head.weight.grad is not None
    assert objective.model.embed.weight.grad is not None


def test_objective_losses_equal_the_0_1_formulas():
    """Fixed inputs, every term on: the objective's loss and terms are 0.1's expressions."""
    torch.manual_seed(2)
    encoder = _TinyEncoder()
    objective = PretrainingObjective(
        encoder, {"reconstruction": MaskedReconstruction("smooth_l1", visible_weight=0.2,
                                                         smooth_l1_beta=0.5),
                  "code_prediction": MaskedCodePrediction(_CodeTokenizer(), 8, 4, 2)},
        {"reconstruction": 0.7, "code_prediction": 0.3})
    x = torch.randn(2, 3, 4, 6)
    mask, real = _masks(seed=5)
    counts = TokenCounts(masked=float(mask.sum()) + 3.0, visible=float((real & ~mask).sum()))
    out = objective(x, None, mask, real.any(1), real, counts)

    err = nn.functional.smooth_l1_loss(encoder.reconstruct(x, None, mask), x, reduction="none",
                                       beta=0.5).mean(-1)
    rec = ((err * mask).sum() / counts.masked
           + 0.2 * (err * (real & ~mask)).sum() / counts.visible)
    logits = objective.code_prediction.head(encoder(x, None, mask)[mask]).reshape(-1, 4)
    codes = _CodeTokenizer().encode(x, None)[mask].reshape(-1)
    code = nn.functional.cross_entropy(logits, codes, reduction="sum") / (2 * counts.masked)
    assert out.logs["reconstruction"]["reconstruction"].item() == pytest.approx(rec.item(),
                                                                                rel=1e-6)
    assert out.logs["code_prediction"]["code_prediction"].item() == pytest.approx(code.item(),
                                                                                  rel=1e-6)
    assert out.loss.item() == pytest.approx((0.7 * rec + 0.3 * code).item(), rel=1e-6)


def test_build_objective_reads_the_config_and_leaves_out_weight_0():
    encoder = _TinyEncoder()
    encoder.dim = 8
    config = ObjectiveConfig(mask_ratio=0.3, mask_mode="block", mask_block_size=2, terms={
        "reconstruction": {"loss": "smooth_l1", "visible_weight": 0.1},
        "code_prediction": {"weight": 0.0}})
    objective = build_objective(config, model=encoder)
    assert objective.term_names == ("reconstruction",) and objective.weights == {
        "reconstruction": 1.0}
    assert (objective.reconstruction.loss, objective.reconstruction.visible_weight) == \
        ("smooth_l1", 0.1)
    assert (objective.masking.ratio, objective.masking.mode, objective.masking.block_size) == \
        (0.3, "block", 2)
    assert objective.describe() == (
        "Masked modelling: block masking of 30% of the (channel, patch) tokens in blocks of 2 "
        "patches; loss = 1 x masked patch reconstruction (smooth_l1 of the waveform, "
        "visible-token weight 0.1).")
    assert list(objective.state_dict()) == [f"model.{k}" for k in encoder.state_dict()]


def test_an_objective_needs_a_term_and_code_prediction_needs_a_tokenizer():
    with pytest.raises(ValueError, match="no term"):
        build_objective(ObjectiveConfig(terms={"reconstruction": {"weight": 0.0}}),
                        model=_TinyEncoder())
    with pytest.raises(ValueError, match="objective.terms.code_prediction needs tokenizer"):
        build_objective(ObjectiveConfig(terms={"code_prediction": {}}), model=_TinyEncoder())
    with pytest.raises(ValueError, match="objective.terms.reconstruction: unknown key"):
        build_objective(ObjectiveConfig(terms={"reconstruction": {"lss": "mse"}}),
                        model=_TinyEncoder())
    with pytest.raises(ValueError, match="term 'contrastive'; registered terms: code_prediction"):
        build_objective(ObjectiveConfig(terms={"contrastive": {}}), model=_TinyEncoder())
    with pytest.raises(ValueError, match="weight is -1"):
        build_objective(ObjectiveConfig(terms={"reconstruction": {"weight": -1.0}}),
                        model=_TinyEncoder())
