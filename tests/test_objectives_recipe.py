"""Adding an objective term by the recipe of docs/contributing.md ("Add an objective"): a toy
term defined here, registered, trained through the loop, logged, checkpointed and described."""

from dataclasses import dataclass

import pytest
import torch
from test_train_loop import in_memory, tiny_config

from neurofm.objectives import ObjectiveTerm, TermConfig, list_terms, register_term
from neurofm.train import CheckpointManager, train
from neurofm.train.metrics import read_metrics


@dataclass
class FeatureNormConfig(TermConfig):
    """Section ``objective.terms.feature_norm``."""

    target_norm: float = 1.0


@register_term("feature_norm")
class FeatureNorm(ObjectiveTerm):
    """Squared distance of each masked token's feature norm, times a learned scale, from
    ``target_norm``; logs how many masked tokens it scored."""

    Config = FeatureNormConfig

    def __init__(self, target_norm: float = 1.0):
        super().__init__()
        self.target_norm = target_norm
        self.scale = torch.nn.Parameter(torch.ones(()))

    def forward(self, model, batch):
        features = model(batch.x, batch.sensors, batch.patch_mask, patch_valid=batch.patch_valid)
        norms = self.scale * features.float().norm(dim=-1)  # [B, C, N]
        error = (norms - self.target_norm).square() * batch.patch_mask
        return error.sum() / max(batch.counts.masked, 1.0), {"scored": batch.patch_mask.sum()}

    def summarize(self, logs):
        return {"feature_norm_tokens": int(logs["scored"])}

    def describe(self):
        return f"feature norm toward {self.target_norm:g}"


TERMS = ("objective.terms={reconstruction: {}, feature_norm: {weight: 0.1, target_norm: 2.0}}")


def test_a_registered_term_is_listed():
    assert "feature_norm" in list_terms()


@pytest.mark.parametrize("grad_accum", [1, 2])
def test_a_new_term_trains_and_shows_up_in_the_log(tmp_path, grad_accum):
    result = train(tiny_config(tmp_path / "run", "run.steps=2", TERMS,
                               f"run.grad_accum={grad_accum}"), data=in_memory())
    records = read_metrics(result.out_dir / "metrics.jsonl")
    first = records[0]
    assert {"reconstruction", "feature_norm", "feature_norm_tokens"} <= set(first)
    assert first["loss"] == pytest.approx(first["reconstruction"] + 0.1 * first["feature_norm"],
                                          rel=1e-5)
    # 4 windows x 4 channels x 4 patches, half of them masked on average
    assert 0 < first["feature_norm_tokens"] < 64

    state = CheckpointManager.load(result.out_dir / "checkpoints" / "step-00000002.pt")
    assert state["objective"]["feature_norm.scale"] != 1.0  # the term's parameter is trained
    assert state["config"]["objective"]["terms"]["feature_norm"] == {"weight": 0.1,
                                                                    "target_norm": 2.0}
    card = (result.model_dir / "README.md").read_text()
    assert "+ 0.1 x feature norm toward 2" in card


def test_micro_batches_add_up_to_the_global_batch_logs(tmp_path):
    # eps=1: the update is proportional to the gradient (see test_train_loop), so step 2 compares
    # the same weights; the masks of a global batch do not depend on how it is split.
    runs = [read_metrics(train(tiny_config(tmp_path / f"accum{k}", "run.steps=2", TERMS,
                                           "optim.eps=1.0", f"run.grad_accum={k}"),
                               data=in_memory()).out_dir / "metrics.jsonl") for k in (1, 2)]
    for one, two in zip(*runs):
        assert one["feature_norm_tokens"] == two["feature_norm_tokens"]
        for key in ("loss", "reconstruction", "feature_norm"):
            assert one[key] == pytest.approx(two[key], rel=1e-5), key
