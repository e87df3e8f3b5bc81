"""Intracranial contacts by name: the shaft (or grid) a contact is on and its index along it.

Many iEEG releases carry no electrode coordinates (no ``electrodes.tsv``). Their contacts are
still related: sEEG contacts are named after their shaft and numbered along it (``LA1``,
``LA2`` … ``LA8``; ``A'1``, ``A'2`` in the French convention), ECoG contacts after their grid or
strip (``G1`` … ``G64``). :func:`parse_contact` reads that structure from a label;
:func:`shaft_code` turns a shaft name into a fixed integer code, the same in every process and
every recording. :class:`~neurofm.sensors.SensorBatch` carries both for contacts whose position
is unknown, and :class:`~neurofm.tokenizer.SensorEncoding` encodes them (docs/sensors.md,
"Contacts without coordinates").

Rules of :func:`parse_contact`:

1. The label is normalised as every channel label is (:func:`~neurofm.sensors.names.
   normalise_channel_name`: ``EEG``/``POL`` prefix and reference tags removed).
2. A single contact is ``<shaft><number>``: the trailing digits are the index, what precedes
   them (without trailing spaces, ``-`` or ``_``) is the shaft, compared in upper case
   (``la1`` and ``LA1`` are one contact). A label without a trailing number, or with nothing
   before it, has no shaft.
3. A bipolar pair of two contacts of one shaft (``LA1-LA2``) sits between them: index 1.5.
   A pair across shafts has no shaft.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass

import numpy as np

from neurofm.sensors.names import normalise_channel_name

#: Bits of :func:`shaft_code` the sensor encoding reads (two shafts share them with probability
#: 1 / 65,536).
SHAFT_CODE_BITS = 16
#: Contact index of a channel that has none (no shaft parsed from its name).
NO_CONTACT_INDEX = -1.0

_CONTACT = re.compile(r"^(?P<shaft>.*?)(?P<index>\d+)$")


@dataclass(frozen=True)
class Contact:
    """Where a contact sits by its name.

    Attributes
    ----------
    shaft : str
        Shaft, strip or grid name in upper case (``"LA"``, ``"A'"``, ``"G"``).
    index : float
        Number along it (``LA3`` -> 3.0; a same-shaft bipolar pair -> the midpoint).
    """

    shaft: str
    index: float


def parse_contact(label: str) -> Contact | None:
    """The shaft and index of a contact label, or None when the label has no such structure.

    Examples: ``"LA3"`` -> ``Contact("LA", 3.0)``; ``"POL A'12"`` -> ``Contact("A'", 12.0)``;
    ``"LA1-LA2"`` -> ``Contact("LA", 1.5)``; ``"LA1-LB1"``, ``"Ref"``, ``"12"`` -> None.
    """
    norm = normalise_channel_name(label)
    parts = [_single(part) for part in norm.parts]
    if any(p is None for p in parts):
        return None
    if len(parts) == 1:
        return parts[0]
    first, second = parts
    if first.shaft != second.shaft:
        return None
    return Contact(first.shaft, (first.index + second.index) / 2.0)


def _single(text: str) -> Contact | None:
    match = _CONTACT.match(text.strip())
    if match is None:
        return None
    shaft = match["shaft"].rstrip(" -_").upper()
    if not shaft:
        return None
    return Contact(shaft, float(int(match["index"])))


def shaft_code(shaft: str | None) -> int:
    """A fixed code in ``1 .. 2**31 - 1`` for a shaft name (0 for None or ``""``).

    CRC-32 of the upper-case name (not Python's ``hash``, which changes between processes), so
    the same shaft name gives the same code in every recording and every run.
    """
    if not shaft:
        return 0
    code = zlib.crc32(shaft.upper().encode("utf-8")) & 0x7FFFFFFF
    return code or 1


def contact_arrays(labels) -> tuple[np.ndarray, np.ndarray]:
    """Shaft codes ``[C]`` int64 (0: none) and contact indices ``[C]`` float32
    (:data:`NO_CONTACT_INDEX`: none) of ``labels``."""
    contacts = [parse_contact(str(label)) for label in labels]
    codes = np.array([0 if c is None else shaft_code(c.shaft) for c in contacts], np.int64)
    index = np.array([NO_CONTACT_INDEX if c is None else c.index for c in contacts], np.float32)
    return codes, index
