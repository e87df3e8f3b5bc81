"""Channel-name normalisation: recording labels -> canonical 10-05 electrode names.

Recordings name the same electrode in many ways: ``EEG FP1-REF`` (TUH), ``Fp1``, ``FP1-LE``,
``EEG Fp1-AVG``, and the old 10-20 names ``T3/T4/T5/T6`` for what the 10-05 system calls
``T7/T8/P7/P8``. :func:`normalise_channel_name` maps such a label to the spelling of MNE's 10-05
montage (``colin27_1005``), so that a standard montage can give its position. Rules, in order:

1. Surrounding spaces and a leading ``EEG`` / ``POL`` prefix are removed (``EEG FP1-REF``).
2. A trailing reference tag is removed: ``-REF``, ``-LE``, ``-RE``, ``-AVG``, ``-AV``, ``-AR``,
   ``-CAR`` and ear/mastoid references ``-A1``, ``-A2``, ``-M1``, ``-M2``, ``-A1A2``, ``-M1M2``
   (a channel recorded against an ear or mastoid sits at its active electrode).
3. What remains, if it has the form ``X-Y`` with two electrode names, is a bipolar pair
   (``FP1-F7``, ``Fpz-Cz``); each side is normalised on its own.
4. Case is fixed to the 10-05 spelling (``FP1`` -> ``Fp1``, ``CZ`` -> ``Cz``, ``AFF1H`` ->
   ``AFF1h``) and old aliases are replaced (``T3`` -> ``T7``, ``T4`` -> ``T8``, ``T5`` -> ``P7``,
   ``T6`` -> ``P8``).

MNE renames repeated labels to ``NAME-0``, ``NAME-1`` …; such a label is recognised and flagged
(:attr:`NormalisedName.renamed_duplicate`) so that callers can report the duplicate.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from neurofm.sensors.montages import DEFAULT_EEG_MONTAGE, get_montage

#: Old 10-20 names and their 10-05 equivalents (same scalp site).
OLD_1020_ALIASES = {"T3": "T7", "T4": "T8", "T5": "P7", "T6": "P8"}

#: Reference tags removed from the end of a label (upper case).
REFERENCE_SUFFIXES = frozenset(
    {"REF", "LE", "RE", "AVG", "AV", "AR", "CAR", "A1", "A2", "M1", "M2", "A1A2", "M1M2"}
)

_PREFIX = re.compile(r"^(?:EEG|POL)(?:[\s:_]+|-(?=[A-Za-z]))", re.IGNORECASE)
_MNE_DUPLICATE = re.compile(r"^(?P<stem>.*\S)-(?P<number>\d+)$")


@dataclass(frozen=True)
class NormalisedName:
    """A channel label after normalisation.

    Attributes
    ----------
    original : str
        The label as given.
    canonical : str or None
        10-05 spelling of a single electrode (``"Fp1"``), the cleaned label when it is not a 10-05
        name (``"EEG T1-REF"`` -> ``"T1"``, ``"LA3"``), or None for a bipolar pair.
    parts : tuple of str
        ``(canonical,)`` for one electrode, ``(first, second)`` for a bipolar pair.
    bipolar : bool
        True when the label is a difference of two electrodes (position = their midpoint).
    known : bool
        True when every part is a name of MNE's 10-05 montage.
    renamed_duplicate : bool
        True when the label is an MNE-renamed repeat (``"Fp1-0"``).
    """

    original: str
    canonical: str | None
    parts: tuple[str, ...]
    bipolar: bool
    known: bool
    renamed_duplicate: bool = False

    @property
    def label(self) -> str:
        """``canonical``, or ``"first-second"`` for a bipolar pair."""
        return "-".join(self.parts)


@lru_cache(maxsize=1)
def canonical_1005_names() -> dict[str, str]:
    """Map UPPER-CASE spelling -> 10-05 spelling for every electrode of MNE's 10-05 montage.

    The old names T3/T4/T5/T6 map to T7/T8/P7/P8.
    """
    table = {name.upper(): name for name in get_montage(DEFAULT_EEG_MONTAGE).ch_names}
    for old, new in OLD_1020_ALIASES.items():
        table[old] = new
    return table


def normalise_channel_name(name: str) -> NormalisedName:
    """Normalise one EEG channel label (see the module docstring for the rules).

    Parameters
    ----------
    name : str
        Label as found in the recording, e.g. ``"EEG FP1-REF"``, ``"T3"``, ``"FP1-F7"``.

    Returns
    -------
    NormalisedName
        E.g. ``"EEG T3-LE"`` -> ``canonical="T7", parts=("T7",), bipolar=False, known=True``;
        ``"EEG FP1-F7"`` -> ``canonical=None, parts=("Fp1", "F7"), bipolar=True``.
    """
    if not isinstance(name, str):
        raise TypeError(f"Channel name must be a str, got {type(name).__name__}: {name!r}.")
    match = _MNE_DUPLICATE.match(name.strip())
    if match:
        stem = _normalise(match["stem"], name)
        if stem.known:
            return NormalisedName(name, stem.canonical, stem.parts, stem.bipolar, True, True)
    return _normalise(name, name)


def _normalise(text: str, original: str) -> NormalisedName:
    table = canonical_1005_names()
    body = _PREFIX.sub("", text.strip()).strip()
    pieces = [p.strip() for p in body.split("-")]
    if len(pieces) >= 2 and pieces[-1].upper() in REFERENCE_SUFFIXES and all(pieces[:-1]):
        pieces = pieces[:-1]
    if len(pieces) == 2 and all(pieces):
        first, second = (table.get(p.upper(), p) for p in pieces)
        known = first.upper() in table and second.upper() in table
        if known or not (pieces[0].isdigit() or pieces[1].isdigit()):
            return NormalisedName(original, None, (first, second), True, known)
    cleaned = "-".join(pieces)
    canonical = table.get(cleaned.upper(), cleaned)
    return NormalisedName(original, canonical, (canonical,), False, cleaned.upper() in table)
