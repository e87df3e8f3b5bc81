"""Named model configurations, built by name (the way timm does it).

>>> from neurofm.models import create_model, list_models
>>> model = create_model("criss_cross_small", depth=2)   # overrides change any hyperparameter

Each model file registers its configurations with :func:`register_model`; importing
:mod:`neurofm.models` imports every model file, so :func:`list_models` is complete in a fresh
process. Parameter counts and FLOPs per 30-s, 19-channel window of every configuration are listed
in ``docs/models.md`` (measured by ``benchmarks/backbones.py``).
"""

from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from torch import nn

from neurofm.data.spec import PreprocessSpec
from neurofm.model_folder import ModelFolderMixin
from neurofm.strict import check_keys

if TYPE_CHECKING:
    from neurofm.models.base import BrainEncoder


@dataclass(frozen=True)
class ModelSpec:
    """A registered configuration: the class, its default hyperparameters and a description."""

    cls: type
    defaults: dict = field(default_factory=dict)
    description: str = ""
    sfreq: float = 200.0


_REGISTRY: dict[str, ModelSpec] = {}


def register_model(cls: type, *, sfreq: float = 200.0):
    """Decorator: register a configuration of ``cls`` named after the decorated function.

    The decorated function returns the configuration's hyperparameters (a dict of ``cls``
    constructor arguments); its docstring's first paragraph is the description that
    ``list_models(details=True)`` shows. The name it leaves behind builds the model:
    ``criss_cross_small(depth=2)`` is ``create_model("criss_cross_small", depth=2)``.

    >>> @register_model(CrissCrossTransformer)
    ... def criss_cross_small():
    ...     '''Criss-cross transformer, sensor encoding, D=128, 6 layers, 8 heads.'''
    ...     return dict(dim=128, depth=6, n_heads=8, ffn_dim=512)

    Parameters
    ----------
    cls : type
        A :class:`~neurofm.models.base.BrainEncoder` subclass.
    sfreq : float
        Sampling rate (Hz) the configuration expects; recorded in its preprocessing.
    """
    # Any nn.Module that saves as a model folder (a BrainEncoder; the registry sits below
    # models/base.py, which builds folders' models through it).
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)
            and issubclass(cls, ModelFolderMixin)):
        raise TypeError(f"register_model: {cls!r} is not a BrainEncoder subclass.")

    def decorator(configuration):
        name = configuration.__name__
        if name in _REGISTRY:
            raise ValueError(f"A model named {name!r} is already registered; pick another name.")
        defaults = dict(configuration())
        _check_arguments(name, cls, defaults)
        doc = inspect.getdoc(configuration) or ""
        description = " ".join(doc.split("\n\n")[0].split())
        _REGISTRY[name] = ModelSpec(cls, defaults, description, float(sfreq))

        @functools.wraps(configuration)
        def build(**overrides) -> BrainEncoder:
            return create_model(name, **overrides)

        return build

    return decorator


def _check_arguments(name: str, cls: type, kwargs: dict) -> None:
    check_keys(kwargs, inspect.signature(cls).parameters,
               where=f"{name}: hyperparameters of {cls.__name__}")


def list_models(details: bool = False):
    """Registered names (sorted), or ``{name: ModelSpec}`` with ``details=True``.

    A :class:`ModelSpec` holds the class, the default hyperparameters, the description and the
    sampling rate of the configuration.
    """
    names = sorted(_REGISTRY)
    return {n: _REGISTRY[n] for n in names} if details else names


def model_spec(name: str) -> ModelSpec:
    """The :class:`ModelSpec` of ``name``; ``ValueError`` listing the known names otherwise."""
    if name not in _REGISTRY:
        raise ValueError(f"Unknown model {name!r}; available: {', '.join(list_models())}.")
    return _REGISTRY[name]


def create_model(name: str, **overrides) -> BrainEncoder:
    """Build the registered configuration ``name``, with hyperparameters changed by ``overrides``.

    Returns
    -------
    BrainEncoder
        With ``model_name``, ``config`` (every constructor argument; a code input's tokenizer as
        its configuration dict) and ``preprocessing`` (a ``PreprocessSpec``: the configuration's
        sampling rate and the model's patch length, plus a code input's tokenizer's recorded
        preprocessing) set.
    """
    spec = model_spec(name)
    _check_arguments(name, spec.cls, overrides)
    arguments = inspect.signature(spec.cls).bind(**{**spec.defaults, **overrides})
    arguments.apply_defaults()
    model = spec.cls(**arguments.arguments)
    model.model_name = name
    model.config = dict(arguments.arguments)
    tokenizer = model.stem.code_tokenizer
    if tokenizer is not None:
        model.config["tokenizer"] = tokenizer.config.to_dict()
    model.preprocessing = _preprocessing(name, spec, model)
    return model


def _preprocessing(name: str, spec: ModelSpec, model: BrainEncoder):
    """The model's ``PreprocessSpec``, with a code input's tokenizer's band, notch, scales..."""
    tokenizer = model.stem.code_tokenizer
    if tokenizer is None:
        return PreprocessSpec(sfreq=spec.sfreq, patch_samples=model.patch_size)
    tok = tokenizer.config
    if abs(float(tok.sfreq) - spec.sfreq) > 1e-6:
        raise ValueError(
            f"{name} expects {spec.sfreq:g} Hz input but its tokenizer was trained at "
            f"{tok.sfreq:g} Hz; use a tokenizer trained at {spec.sfreq:g} Hz."
        )
    values = {**tok.preprocessing, "sfreq": float(tok.sfreq), "patch_samples": model.patch_size}
    return PreprocessSpec.from_dict(values, where=f"the preprocessing of {name}'s tokenizer")
