"""Standard montages shipped with MNE, by name, with electrode positions in MNE's head frame.

MNE 1.13 renamed ``standard_1005``/``standard_1020`` (and the other ``standard_*`` montages) to
``colin27_*``; the old names warn and are removed in MNE 1.14. :func:`get_montage` accepts both
spellings on every MNE version and never lets MNE's ``FutureWarning`` reach the user: the name is
translated to the one the installed MNE knows before MNE sees it.

Positions are computed exactly as MNE computes them for a recording: the montage is applied to a
temporary ``Info`` holding its electrodes and ``info["chs"][i]["loc"][:3]`` is read back, so they
equal what ``raw.set_montage(name)`` gives (head frame defined by the montage's fiducials). A
DigMontage in MNI/fsaverage space without fiducials (``mni_tal`` or ``mri`` frame) is mapped into
the head frame with :func:`neurofm.sensors.frames.mni_to_head`.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from neurofm.sensors.frames import file_positions_in_mni, mni_to_head

#: Montage used to look EEG channels up by name when the recording has no positions.
DEFAULT_EEG_MONTAGE = "colin27_1005"

#: Pre-1.13 montage names and their MNE 1.13 names (same positions).
RENAMED_MONTAGES = {
    "standard_1005": "colin27_1005",
    "standard_1020": "colin27_1020",
    "standard_alphabetic": "colin27_alphabetic",
    "standard_postfixed": "colin27_postfixed",
    "standard_prefixed": "colin27_prefixed",
    "standard_primed": "colin27_primed",
}


def available_montages() -> list[str]:
    """Names of the montages the installed MNE ships (current spelling)."""
    import mne

    return list(mne.channels.get_builtin_montages())


def montage_name(name: str) -> str:
    """Name under which the installed MNE knows montage ``name`` (old/new spelling, any case).

    Raises
    ------
    ValueError
        If MNE ships no such montage; the message lists the available names.
    """
    if not isinstance(name, str):
        raise TypeError(f"A montage name must be a str, got {type(name).__name__}.")
    builtin = available_montages()
    by_upper = {m.upper(): m for m in builtin}
    renamed = {old.upper(): new for old, new in RENAMED_MONTAGES.items()}
    key = name.strip().upper()
    if key in by_upper:
        return by_upper[key]
    if key in renamed and renamed[key].upper() in by_upper:
        return by_upper[renamed[key].upper()]
    old_for_new = {new.upper(): old for old, new in RENAMED_MONTAGES.items()}
    if key in old_for_new and old_for_new[key].upper() in by_upper:  # MNE older than 1.13
        return by_upper[old_for_new[key].upper()]
    raise ValueError(
        f"Unknown montage {name!r}. Use one of MNE's montages: {', '.join(builtin)} "
        f"(old names {', '.join(RENAMED_MONTAGES)} are accepted too), or pass an "
        f"mne.channels.DigMontage."
    )


def get_montage(montage):
    """An MNE ``DigMontage`` from a montage name (current or pre-1.13 spelling) or a DigMontage.

    Parameters
    ----------
    montage : str or mne.channels.DigMontage
        ``"colin27_1005"``, ``"standard_1020"``, ``"biosemi64"``, ``"GSN-HydroCel-129"`` … or a
        montage object, returned unchanged.

    Returns
    -------
    mne.channels.DigMontage
        A fresh copy for names (callers may modify it).
    """
    import mne

    if isinstance(montage, mne.channels.DigMontage):
        return montage
    return mne.channels.make_standard_montage(montage_name(montage))


def montage_label(montage) -> str:
    """Short label used in ``pos_source``: the montage's MNE name, or ``"custom"`` for objects."""
    return montage_name(montage) if isinstance(montage, str) else "custom"


def montage_positions_head(montage, names=None) -> dict[str, np.ndarray]:
    """Electrode positions of a montage in MNE's head frame.

    Parameters
    ----------
    montage : str or mne.channels.DigMontage
        Montage name (see :func:`get_montage`) or object.
    names : iterable of str, optional
        Electrode names to return (exact montage spelling); names the montage lacks are left out.
        Default: all electrodes.

    Returns
    -------
    dict of str -> ndarray, shape [3]
        Position in metres, head frame, as ``raw.set_montage(montage)`` would set it.
    """
    table = (_named_montage_positions(montage_name(montage)) if isinstance(montage, str)
             else _positions_in_head(montage))
    wanted = table.keys() if names is None else [n for n in names if n in table]
    return {n: table[n].copy() for n in wanted}


@lru_cache(maxsize=16)
def _named_montage_positions(name: str) -> dict[str, np.ndarray]:
    return _positions_in_head(get_montage(name))


def _positions_in_head(montage) -> dict[str, np.ndarray]:
    import mne

    names = list(montage.ch_names)
    if not names:
        return {}
    info = mne.create_info(names, sfreq=100.0, ch_types="eeg")
    info.set_montage(montage, on_missing="ignore", verbose="error")
    out = {}
    for ch in info["chs"]:
        xyz = np.asarray(ch["loc"][:3], dtype=float)
        if np.all(np.isfinite(xyz)) and np.any(xyz != 0):
            out[ch["ch_name"]] = xyz
    if out and file_positions_in_mni(info):  # template-space montage without fiducials
        out = dict(zip(out, mni_to_head(np.stack(list(out.values())))))
    return out
