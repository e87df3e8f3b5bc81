"""State-dict migration: old parameter names -> today's, for weights written by older versions.

A model or tokenizer whose modules moved implements ``upgrade_state_dict(state,
format_version) -> state`` (contract of :class:`~neurofm.models.BrainEncoder` and
:class:`~neurofm.tokenizer.NeuralTokenizer`); the loaders call it before
``load_state_dict(strict=True)``. :func:`rename_keys` applies a table of regular-expression
renames; :func:`upgrade_nested_state` applies the ``upgrade_state_dict`` of every such module
inside a larger one (a training objective holding the backbone and a frozen tokenizer).
"""

from __future__ import annotations

import re

from torch import nn


def rename_keys(state: dict, renames) -> dict:
    """``state`` with every key passed through each ``(pattern, replacement)`` of ``renames``.

    Patterns are applied in order with :func:`re.sub`, so one key may be renamed by several
    (a prefix move and a feed-forward rename). Anchor patterns (``^layers\\.``) so that names
    already in the new layout pass through unchanged.
    """
    out = {}
    for key, value in state.items():
        for pattern, repl in renames:
            key = re.sub(pattern, repl, key)
        out[key] = value
    return out


def upgrade_nested_state(module: nn.Module, state: dict, format_version: int) -> dict:
    """Upgrade ``state`` of ``module`` by each submodule that has ``upgrade_state_dict``.

    The outermost such module handles everything under its prefix (``model.`` for a training
    objective's backbone, which also upgrades a tokenizer inside it); keys of no such module pass
    through unchanged.

    Parameters
    ----------
    module : nn.Module
        The module ``state`` belongs to (its keys are ``module.state_dict()``'s).
    state : dict
        Weights written in format ``format_version``.
    format_version : int
        Format of ``state`` (1 = neurofm 0.1.0).
    """
    handled: list[str] = []
    out = dict(state)
    for name, sub in module.named_modules():
        if not hasattr(sub, "upgrade_state_dict"):
            continue
        prefix = f"{name}." if name else ""
        if any(prefix.startswith(done) for done in handled):
            continue
        handled.append(prefix)
        inner = {k[len(prefix):]: v for k, v in out.items() if k.startswith(prefix)}
        out = {k: v for k, v in out.items() if not k.startswith(prefix)}
        out.update({prefix + k: v for k, v in sub.upgrade_state_dict(inner, format_version).items()})
    return out
