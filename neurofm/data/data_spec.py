"""Data spec strings: one syntax that names any data source, ``scheme:NAME?key=value&key=value``.

::

    sim:motor_imagery?modality=meg&subjects=8     a simulated labelled data set
    sim:tiny?recordings=8&seconds=120             a simulated pretraining corpus
    aeon:FingerMovements                          a data set shipped by a package
    ~/bids-root?events=left,right&tmin=0          a path (no scheme), with options

:func:`parse_data_spec` splits a spec into its scheme, its name and its options (the query, as
strings in the order given); :func:`typed_options` reads the option values as numbers, lists or
booleans. The loaders (:func:`neurofm.datasets.load_dataset` for labelled data sets,
:func:`neurofm.train.sim_corpus.simulated_corpus` for pretraining corpora) decide which schemes
and options they take. (Not to be confused with :class:`neurofm.data.spec.PreprocessSpec`, the
preprocessing recipe.)

neurofm 0.1 wrote simulated corpora as ``sim:tiny,recordings=8``; that spelling is still read,
with a ``DeprecationWarning``, until neurofm 0.3.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

#: A scheme: a lower-case word of two or more characters (letters, digits, ``_``, ``-``:
#: ``sleep-edf``) before the first colon (so that a Windows drive letter, ``C:``, is a path).
_SCHEME = re.compile(r"^(?P<scheme>[a-z][a-z0-9_-]+):(?P<rest>.*)$", re.DOTALL)


@dataclass(frozen=True)
class DataSpec:
    """A parsed data spec.

    Attributes
    ----------
    text : str
        The spec as given (for messages).
    scheme : str or None
        ``"sim"``, ``"aeon"`` ...; None for a path.
    name : str
        What follows the scheme up to ``?`` (a task, a recipe, a data set name, a path).
    options : dict of str -> str
        The query's ``key=value`` pairs as strings, in the order given.
    """

    text: str
    scheme: str | None
    name: str
    options: dict = field(default_factory=dict)

    def key(self) -> str:
        """A file-name-safe key of name and options (``tiny_recordings-8``), in the order given."""
        return self.name + "".join(f"_{k}-{v}" for k, v in self.options.items())


def parse_data_spec(text: str) -> DataSpec:
    """Split ``scheme:NAME?key=value&key=value`` (the scheme and the query are optional).

    Raises
    ------
    ValueError
        An empty spec, a query item without ``=``, or a key given twice.
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError("A data spec must be a non-empty string such as 'sim:motor_imagery', "
                         "'aeon:FingerMovements' or a path.")
    text = text.strip()
    match = _SCHEME.match(text)
    scheme, rest = (match["scheme"], match["rest"]) if match else (None, text)
    name, _, query = rest.partition("?")
    if scheme == "sim" and not query and "," in name:
        name, query = _old_sim_spelling(text, name)
    for item in query.split("&"):
        if item and "=" not in item:
            raise ValueError(f"In data spec {text!r}: {item!r} is not key=value.")
    options: dict[str, str] = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key in options:
            raise ValueError(f"In data spec {text!r}: {key} is given twice.")
        options[key] = value
    return DataSpec(text, scheme, name, options)


def typed_options(spec: DataSpec, *, ints: Iterable[str] = (), floats: Iterable[str] = (),
                  lists: Iterable[str] = ()) -> dict:
    """The options of ``spec`` with their values read by key.

    Keys in ``ints`` / ``floats`` become numbers, keys in ``lists`` comma-separated lists of
    strings (empty items dropped); other values ``"true"`` / ``"false"`` become booleans and the
    rest stay strings.

    Raises
    ------
    ValueError
        A value that should be a number is not (the spec and the key are named).
    """
    ints, floats, lists = set(ints), set(floats), set(lists)
    values = {}
    for key, value in spec.options.items():
        try:
            if key in ints:
                values[key] = int(value)
            elif key in floats:
                values[key] = float(value)
            elif key in lists:
                values[key] = [v for v in value.split(",") if v]
            elif value.lower() in ("true", "false"):
                values[key] = value.lower() == "true"
            else:
                values[key] = value
        except ValueError:
            raise ValueError(f"In data spec {spec.text!r}: {key}={value!r} is not a "
                             "number.") from None
    return values


def _old_sim_spelling(text: str, body: str) -> tuple[str, str]:
    """``tiny,recordings=8`` (neurofm 0.1) -> ``("tiny", "recordings=8")``, with a warning."""
    name, *items = [part.strip() for part in body.split(",")]
    query = "&".join(items)
    warnings.warn(f"The data spec {text!r} uses the deprecated comma spelling; write "
                  f"'sim:{name}?{query}' (removed in neurofm 0.3).", DeprecationWarning,
                  stacklevel=3)
    return name, query
