"""The model an evaluation scores: a registry name at random init, or pretrained weights."""

from __future__ import annotations

from pathlib import Path

import torch

from neurofm.hub import from_pretrained
from neurofm.models import create_model, list_models


def load_model(spec: str, overrides: dict, seed: int, revision: str | None = None):
    """``(model, kind)``: ``"random-init"`` for a registry name (seeded), else ``"pretrained"``.

    Anything else goes to :func:`neurofm.hub.from_pretrained`: a model directory, a Hub repo id
    (``org/name``, cache and ``HF_HUB_OFFLINE`` honoured) or ``cbramod:PATH`` /
    ``labram:PATH`` published weights (``revision``: the Hub repo's branch, tag or commit).
    """
    if spec in list_models():
        torch.manual_seed(seed)
        return create_model(spec, **overrides), "random-init"
    if overrides:
        raise ValueError("--model-arg overrides apply to registry names only "
                         f"({', '.join(list_models())}), not to pretrained weights ({spec}).")
    if not (Path(spec).exists() or "/" in spec or ":" in spec):
        raise ValueError(f"Unknown model {spec!r}; pass a model directory, a Hub repo id "
                         f"(org/name) or a registry name: {', '.join(list_models())}.")
    model = from_pretrained(spec, revision=revision)
    if not hasattr(model, "embed"):
        raise ValueError(f"{spec} holds a {type(model).__name__}, not an encoder with embed(); "
                         "probe a model directory instead.")
    return model, "pretrained"


def model_record(spec: str, architecture: str, kind: str, model) -> dict:
    """The ``model`` entry of ``results.json``: what was asked for and what was scored."""
    return {"spec": spec, "architecture": architecture, "kind": kind, "config": model.config,
            "n_parameters": int(sum(p.numel() for p in model.parameters()))}
