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


def upgrade_optimizer_state(module: nn.Module, optimizer, optim_state: dict,
                            saved_names) -> dict:
    """An optimizer state dict saved before ``module`` gained parameters, fitted to today's.

    Parameters added since (today's parameters whose names are not in ``saved_names``; e.g. the
    position-unknown code of the sensor encoding) start with an empty optimizer state, as a
    fresh parameter does; every other parameter keeps its saved state (AdamW moments, step).

    Parameters
    ----------
    module : nn.Module
        The module the optimizer trains (names come from ``module.named_parameters()``).
    optimizer : torch.optim.Optimizer
        Built on today's parameters.
    optim_state : dict
        ``optimizer.state_dict()`` as saved: groups index the parameters of that time.
    saved_names : iterable of str
        The parameter (and buffer) names of the saved module state.

    Returns
    -------
    dict
        ``optim_state`` itself when nothing was added, else a state whose groups and entries
        index today's parameters.
    """
    saved = set(saved_names)
    name_of = {id(p): n for n, p in module.named_parameters()}
    groups = [[name_of.get(id(p)) for p in group["params"]] for group in optimizer.param_groups]
    if all(name in saved for names in groups for name in names):
        return optim_state
    old_groups = optim_state["param_groups"]
    if len(old_groups) != len(groups):
        return optim_state  # another optimizer: the load reports the mismatch
    new_groups, new_state, index = [], {}, 0
    for names, old in zip(groups, old_groups):
        kept = [i for i, name in enumerate(names) if name in saved]
        if len(kept) != len(old["params"]):
            return optim_state
        new_params = list(range(index, index + len(names)))
        for position, old_index in zip(kept, old["params"]):
            if old_index in optim_state["state"]:
                new_state[new_params[position]] = optim_state["state"][old_index]
        new_groups.append({**old, "params": new_params})
        index += len(names)
    return {**optim_state, "state": new_state, "param_groups": new_groups}
