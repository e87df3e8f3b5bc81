"""Named model configurations, built by name (the way timm does it).

>>> from neurofm.models import create_model, list_models
>>> model = create_model("criss_cross_small", depth=2)   # overrides change any hyperparameter

Parameter counts and FLOPs per 30-s, 19-channel window of every configuration are listed in
``docs/models.md`` (measured by ``benchmarks/backbones.py``).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field

from neurofm.models.base import BrainEncoder
from neurofm.models.code_input import CodeEmbedding
from neurofm.models.criss_cross import CrissCrossTransformer
from neurofm.models.mamba import BidirectionalMamba


@dataclass(frozen=True)
class ModelSpec:
    """A registered configuration: the class, its default hyperparameters and a description."""

    cls: type
    defaults: dict = field(default_factory=dict)
    description: str = ""
    sfreq: float = 200.0


_REGISTRY: dict[str, ModelSpec] = {}


def register_model(
    name: str, cls: type, description: str = "", *, sfreq: float = 200.0, **defaults
) -> None:
    """Register a configuration ``name`` = ``cls(**defaults)``.

    Parameters
    ----------
    name : str
        Registry name (lower-case, unique).
    cls : type
        A :class:`~neurofm.models.base.BrainEncoder` subclass.
    description : str
        One line shown by ``list_models(details=True)``.
    sfreq : float
        Sampling rate (Hz) the configuration expects; recorded in ``config.json``.
    **defaults
        Constructor arguments; each must be a parameter of ``cls``.
    """
    if name in _REGISTRY:
        raise ValueError(f"A model named {name!r} is already registered; pick another name.")
    if not (isinstance(cls, type) and issubclass(cls, BrainEncoder)):
        raise TypeError(f"register_model({name!r}): {cls!r} is not a BrainEncoder subclass.")
    _check_arguments(name, cls, defaults)
    _REGISTRY[name] = ModelSpec(cls, dict(defaults), description, sfreq)


def _check_arguments(name: str, cls: type, kwargs: dict) -> None:
    accepted = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise ValueError(
            f"{name}: unknown hyperparameter(s) {unknown}; {cls.__name__} accepts {accepted}."
        )


def list_models(details: bool = False):
    """Registered names (sorted), or ``{name: description}`` with ``details=True``."""
    names = sorted(_REGISTRY)
    return {n: _REGISTRY[n].description for n in names} if details else names


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
        With ``model_name``, ``config`` (all hyperparameters) and ``preprocessing`` set.
    """
    spec = model_spec(name)
    _check_arguments(name, spec.cls, overrides)
    model = spec.cls(**{**spec.defaults, **overrides})
    model.model_name = name
    model.preprocessing = {
        "sfreq": spec.sfreq,
        "patch_size": model.patch_size,
        "patch_seconds": model.patch_size / spec.sfreq,
    }
    if isinstance(getattr(model, "patch_embed", None), CodeEmbedding):
        model.preprocessing = _with_tokenizer_preprocessing(name, spec, model)
    return model


def _with_tokenizer_preprocessing(name: str, spec: ModelSpec, model: BrainEncoder) -> dict:
    """The model's preprocessing plus its code-input tokenizer's (band, notch, scales...)."""
    tok = model.patch_embed.tokenizer.config
    if abs(float(tok.sfreq) - spec.sfreq) > 1e-6:
        raise ValueError(
            f"{name} expects {spec.sfreq:g} Hz input but its tokenizer was trained at "
            f"{tok.sfreq:g} Hz; use a tokenizer trained at {spec.sfreq:g} Hz."
        )
    return {**tok.preprocessing, **model.preprocessing}


register_model(
    "criss_cross_small",
    CrissCrossTransformer,
    "Criss-cross transformer, sensor encoding, D=128, 6 layers, 8 heads.",
    dim=128,
    depth=6,
    n_heads=8,
    ffn_dim=512,
    dropout=0.1,
    drop_path=0.05,
)
register_model(
    "criss_cross_base",
    CrissCrossTransformer,
    "Criss-cross transformer, sensor encoding, CBraMod's size: D=200, 12 layers, 8 heads.",
    dim=200,
    depth=12,
    n_heads=8,
    ffn_dim=800,
    dropout=0.1,
    drop_path=0.1,
)
register_model(
    "cbramod_base",
    CrissCrossTransformer,
    "CBraMod's exact architecture (ACPE, spectral patch embedding); loads CBraMod weights.",
    dim=200,
    depth=12,
    n_heads=8,
    ffn_dim=800,
    dropout=0.1,
    drop_path=0.0,
    patch_embedding="cbramod",
    position="acpe",
)
register_model(
    "mamba_small",
    BidirectionalMamba,
    "Bidirectional Mamba, 8 latent channels (channel unification), D=128, 6 blocks.",
    dim=128,
    depth=6,
    d_state=8,
    expand=2,
    n_heads=4,
    n_latent=8,
    spatial_every=2,
    drop_path=0.05,
)
register_model(
    "mamba_base",
    BidirectionalMamba,
    "Bidirectional Mamba, 32 latent channels (channel unification), D=256, 12 blocks.",
    dim=256,
    depth=12,
    d_state=16,
    expand=2,
    n_heads=8,
    n_latent=32,
    spatial_every=3,
    drop_path=0.1,
)
