"""Build a dataclass from a mapping, refusing keys it does not know (one check for every config).

>>> from_dict(PrepareOptions, {"sfreq": 200.0}, where="corpus.json")

Every settings object that is read from a file or a dict (task configs, corpus options,
tokenizer configs, training settings) goes through :func:`from_dict` (or :func:`check_keys` for a
mapping that is not one dataclass), so an unknown key is always the same clear error: it names
where the mapping came from, the unknown keys and the valid ones. Readers that ignore unknown
keys with a warning (files written by a newer neurofm) find them with :func:`unknown_keys`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping


def field_names(cls) -> list[str]:
    """The init fields of dataclass ``cls``, in declaration order."""
    return [f.name for f in dataclasses.fields(cls) if f.init]


def unknown_keys(values: Mapping, known: Iterable[str]) -> list[str]:
    """The keys of ``values`` that are not in ``known``, sorted (for callers that ignore them
    with a warning, such as readers of files written by a newer neurofm)."""
    return sorted(set(values) - set(known))


def check_keys(values: Mapping, known: Iterable[str], *, where: str, prefix: str = "") -> None:
    """Raise ``ValueError`` naming every key of ``values`` that is not in ``known``.

    Parameters
    ----------
    values : mapping
    known : iterable of str
    where : str
        What the mapping is (a file name, ``"TokenizerConfig"``), put first in the message.
    prefix : str
        Prepended to each key in the message (``"model."`` for a nested section).
    """
    known = list(known)
    unknown = unknown_keys(values, known)
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {', '.join(prefix + str(k) for k in unknown)}; "
                         f"valid keys: {', '.join(sorted(prefix + k for k in known))}.")


def from_dict(cls, values: Mapping | None, *, where: str | None = None):
    """``cls(**values)`` after checking that every key is a field of dataclass ``cls``.

    Parameters
    ----------
    cls : dataclass type
    values : mapping or None
        None builds the defaults.
    where : str, optional
        Source of ``values`` for the error message (default: the class name).
    """
    values = dict(values or {})
    check_keys(values, field_names(cls), where=where or cls.__name__)
    return cls(**values)
