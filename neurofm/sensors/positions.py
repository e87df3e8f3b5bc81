"""Resolve the sensors of an MNE ``Info``: kind, position (head frame, metres), orientation.

Where each channel's position comes from, first match wins:

1. ``positions=`` given by the user (keyed by the recording's label or its normalised name),
   ``pos_source="user"``.
2. The recording itself (``info["chs"][i]["loc"][:3]`` finite and non-zero), ``"file"``; for a
   bipolar channel that also stores its second electrode (``loc[3:6]``), their midpoint. EEG,
   sEEG and ECoG positions stored in MNI/fsaverage space (digitisation points in the ``mni_tal``
   or ``mri`` frame, as mne-bids sets for ``electrodes.tsv`` in MNI space) are mapped into the
   head frame with :func:`~neurofm.sensors.frames.mni_to_head`, ``"mni:fsaverage"``. MEG sensors are moved from the
   device to the head frame with ``info["dev_head_t"]``; their orientation is the coil normal
   (``loc[9:12]``), rotated the same way.
3. A montage, looked up after name normalisation (:mod:`neurofm.sensors.names`):
   ``montage=`` when given (any channel kind except MEG), else MNE's 10-05 montage for EEG
   channels; ``"montage:<name>"``, or ``"bipolar:<name>"`` for a pair at its midpoint.
   MEG channels without coil geometry take it from MNE's canonical layout of ``meg_system``
   (``"meg:<system>"``) when one is named.

A scalp EEG or MEG channel found nowhere raises :class:`UnknownChannelError`, or is dropped and
listed in ``layout.dropped`` with ``on_unknown="drop"``; it never gets a silent zero. An iEEG
contact (sEEG, ECoG) found nowhere follows the position-unknown policy instead
(``on_unknown_ieeg="mark"``, the default): it is kept with a NaN position and
``pos_source="unknown"``, and the sensor encoding describes it by its kind, a learned
"position unknown" code and its shaft and index read from its name
(:mod:`neurofm.sensors.shafts`; docs/sensors.md, "Contacts without coordinates").
"""

from __future__ import annotations

import re
from collections import defaultdict
from functools import lru_cache

import numpy as np

from neurofm.sensors.frames import file_positions_in_mni, mni_to_head
from neurofm.sensors.kinds import BRAIN_KINDS, ChannelKind, kind_from_mne
from neurofm.sensors.layout import SensorLayout
from neurofm.sensors.montages import (
    DEFAULT_EEG_MONTAGE,
    montage_label,
    montage_positions_head,
)
from neurofm.sensors.names import NormalisedName, normalise_channel_name

_MEG_KINDS = (ChannelKind.MEG_MAG, ChannelKind.MEG_GRAD)
#: Kinds whose channels may have no known position (the position-unknown policy).
IEEG_KINDS = (ChannelKind.SEEG, ChannelKind.ECOG)
#: ``pos_source`` of a contact kept without a position (its ``pos`` row is NaN).
UNKNOWN_SOURCE = "unknown"
#: What :func:`resolve_sensors` may do with channels without a known position.
ON_UNKNOWN = ("raise", "drop")
#: What it may do with iEEG contacts without a known position.
ON_UNKNOWN_IEEG = ("mark", "raise", "drop")


class UnknownChannelError(ValueError):
    """Channels whose position is unknown. ``.names`` lists them in recording order."""

    def __init__(self, names: list[str], montage: str):
        self.names = list(names)
        self.montage = montage
        shown = ", ".join(repr(n) for n in self.names[:30])
        more = f" and {len(self.names) - 30} more" if len(self.names) > 30 else ""
        super().__init__(
            f"No position known for {len(self.names)} channel(s): {shown}{more}. The recording "
            f"stores no position for them and they are not in montage {montage!r} after "
            f"name normalisation. Pass montage=<MNE montage name or DigMontage> or "
            f"positions={{name: (x, y, z) metres, head frame}}, or on_unknown='drop' to leave "
            f"them out (CLI: --montage NAME or --on-unknown drop). For MEG channels without "
            f"coil geometry pass meg_system='neuromag', 'ctf151' or 'ctf275'. iEEG contacts "
            f"(seeg, ecog) may be kept without a position: on_unknown_ieeg='mark'."
        )

    def __reduce__(self):  # picklable across worker processes
        return type(self), (self.names, self.montage)


class DuplicateChannelError(ValueError):
    """Several channels are the same electrode after normalisation (``EEG T3-REF``/``EEG T7-REF``)."""

    def __init__(self, groups: dict[str, list[str]]):
        self.groups = {k: list(v) for k, v in groups.items()}
        described = "; ".join(f"{' and '.join(repr(n) for n in v)} are all {k!r}"
                              for k, v in self.groups.items())
        super().__init__(
            f"Duplicate channels: {described}. Their positions would coincide. Drop or rename "
            f"the extra channel(s) before resolving sensors (raw.drop_channels([...]) or "
            f"raw.rename_channels({{...}}))."
        )

    def __reduce__(self):
        return type(self), (self.groups,)


def resolve_sensors(info, *, montage=None, positions=None, on_unknown: str = "raise",
                    kinds=BRAIN_KINDS, meg_system: str | None = None,
                    on_unknown_ieeg: str = "mark") -> SensorLayout:
    """Kind, position and orientation of every channel of ``info`` whose kind is in ``kinds``.

    Parameters
    ----------
    info : mne.Info
        Measurement info of a recording.
    montage : str or mne.channels.DigMontage, optional
        Montage for channels the recording has no position for (any MNE montage name, old or
        new spelling, or a DigMontage). Default: MNE's 10-05 montage, for EEG channels only.
    positions : dict of str -> array-like [3], optional
        Positions in metres, head frame, keyed by channel label or normalised name (any case).
        They take precedence over everything else for non-MEG channels (MEG positions always
        come from the coil definitions in the file).
    on_unknown : {"raise", "drop"}
        What to do with scalp EEG and MEG channels whose position cannot be found.
    kinds : iterable of ChannelKind or str
        Channel kinds to keep (default: the brain kinds), in ``info`` order.
    meg_system : {"neuromag", "ctf151", "ctf275"}, optional
        For MEG channels the file stores no coil geometry for: take it from MNE's canonical
        layout of this system (matched by name, ignoring spaces and CTF's ``-NNNN`` suffix),
        moved to the head frame with ``info["dev_head_t"]``; ``pos_source="meg:<system>"``.
    on_unknown_ieeg : {"mark", "raise", "drop"}
        What to do with sEEG and ECoG contacts whose position cannot be found: ``"mark"`` keeps
        them with a NaN position and ``pos_source="unknown"`` (the position-unknown policy of
        docs/sensors.md); ``"raise"`` and ``"drop"`` treat them as ``on_unknown`` treats scalp
        channels.

    Returns
    -------
    SensorLayout
        One row per kept channel, in ``info`` order; ``layout.dropped`` names the channels
        left out by ``on_unknown="drop"`` (or ``on_unknown_ieeg="drop"``).

    Raises
    ------
    UnknownChannelError
        Channels without a known position (``on_unknown="raise"``).
    DuplicateChannelError
        Two channels that are the same electrode after name normalisation.
    """
    if on_unknown not in ON_UNKNOWN:
        raise ValueError(f"on_unknown must be 'raise' or 'drop', got {on_unknown!r}.")
    if on_unknown_ieeg not in ON_UNKNOWN_IEEG:
        raise ValueError(f"on_unknown_ieeg must be one of {ON_UNKNOWN_IEEG}, got "
                         f"{on_unknown_ieeg!r}.")
    wanted = _kinds(kinds)
    user = _user_positions(positions)
    lookups = _Lookups(montage)
    file_in_mni = file_positions_in_mni(info)
    dev_head = _dev_head(info)
    canonical_meg = _canonical_meg(meg_system) if meg_system is not None else {}

    rows, unknown, by_name = [], {"raise": [], "drop": []}, defaultdict(list)
    for ch in info["chs"]:
        kind = kind_from_mne(ch)
        if kind not in wanted:
            continue
        name = ch["ch_name"]
        if kind in _MEG_KINDS:
            found = _meg_sensor(ch, dev_head)
            if found is None and _meg_key(name) in canonical_meg:
                pos, ori, _ = _meg_sensor(canonical_meg[_meg_key(name)], dev_head)
                found = pos, ori, f"meg:{meg_system}"
            norm = NormalisedName(name, name, (name,), False, False)
        else:
            norm = normalise_channel_name(name)
            found = _user_position(user, norm)
            if found is None:
                found = _file_position(ch, file_in_mni, norm.bipolar)
            if found is None:
                lookup = lookups.for_kind(kind)
                found = lookup.find(norm) if lookup is not None else None
                if found is not None or norm.renamed_duplicate:
                    by_name[norm.label].append(name)
        if found is None:
            policy = on_unknown_ieeg if kind in IEEG_KINDS else on_unknown
            if policy != "mark":
                unknown[policy].append(name)
                continue
            found = np.full(3, np.nan), np.zeros(3), UNKNOWN_SOURCE
        pos, ori, source = found
        rows.append((name, int(kind), pos, ori, source, norm.bipolar, norm.label))

    duplicates = {label: names for label, names in by_name.items() if len(names) > 1}
    if duplicates:
        raise DuplicateChannelError(duplicates)
    if unknown["raise"]:
        label = montage_label(montage) if montage is not None else DEFAULT_EEG_MONTAGE
        raise UnknownChannelError(unknown["raise"], label)

    columns = list(zip(*rows)) if rows else [[]] * 7
    n = len(rows)
    return SensorLayout(
        names=list(columns[0]),
        kinds=np.asarray(columns[1], dtype=np.int64).reshape(n),
        pos=np.asarray(columns[2], dtype=np.float32).reshape(n, 3),
        ori=np.asarray(columns[3], dtype=np.float32).reshape(n, 3),
        pos_source=list(columns[4]),
        bipolar=np.asarray(columns[5], dtype=bool).reshape(n),
        canonical=list(columns[6]),
        dropped=list(unknown["drop"]),
    )


_DEFAULT_EEG_EXTRA = "colin27_1020"


class _Lookups:
    """The user's montage for every non-MEG kind, else the 10-05 montage for EEG (built lazily)."""

    def __init__(self, montage):
        self.user = _MontageLookup(montage) if montage is not None else None
        self.default = None

    def for_kind(self, kind: ChannelKind):
        if self.user is not None:
            return self.user
        if kind != ChannelKind.EEG:
            return None
        if self.default is None:
            self.default = _MontageLookup(DEFAULT_EEG_MONTAGE)
            # MNE's 10-05 montage lacks O9/O10; its 10-20 montage (same head, identical positions
            # for the shared names) has them.
            extra = montage_positions_head(_DEFAULT_EEG_EXTRA)
            for name, xyz in extra.items():
                if name not in self.default.table:
                    self.default.table[name] = xyz
                    self.default.by_upper[name.upper()] = name
        return self.default


class _MontageLookup:
    """Name -> head-frame position in one montage, tolerant to case and to normalisation."""

    def __init__(self, montage):
        self.label = montage_label(montage)
        self.table = montage_positions_head(montage)
        self.by_upper = {name.upper(): name for name in self.table}

    def _position(self, candidates) -> np.ndarray | None:
        for cand in candidates:
            if cand in self.table:
                return self.table[cand]
            key = self.by_upper.get(cand.upper())
            if key is not None:
                return self.table[key]
        return None

    def find(self, norm: NormalisedName):
        zero = np.zeros(3)
        if norm.bipolar:
            ends = [self._position([part]) for part in norm.parts]
            whole = self._position([norm.original])
            if whole is not None:
                return whole, zero, f"montage:{self.label}"
            if any(e is None for e in ends):
                return None
            return (ends[0] + ends[1]) / 2.0, zero, f"bipolar:{self.label}"
        pos = self._position([norm.original, norm.canonical])
        return None if pos is None else (pos, zero, f"montage:{self.label}")


def _kinds(kinds) -> frozenset:
    out = set()
    for k in kinds:
        out.add(ChannelKind.from_label(k) if isinstance(k, str) else ChannelKind(int(k)))
    return frozenset(out)


def _user_positions(positions) -> dict[str, np.ndarray]:
    if positions is None:
        return {}
    if not isinstance(positions, dict):
        raise TypeError("positions must be a dict mapping channel name -> (x, y, z) in metres.")
    out = {}
    for name, xyz in positions.items():
        arr = np.asarray(xyz, dtype=float)
        if arr.shape != (3,) or not np.all(np.isfinite(arr)):
            raise ValueError(f"positions[{name!r}] must be three finite numbers (x, y, z) in "
                             f"metres, head frame; got {xyz!r}.")
        if np.abs(arr).max() > 1.0:
            raise ValueError(f"positions[{name!r}] = {xyz!r} is more than 1 m from the origin: "
                             f"positions are in metres (divide millimetres by 1000).")
        out[str(name)] = arr
    return out


def _user_position(user: dict, norm: NormalisedName):
    for key in (norm.original, norm.label):
        if key in user:
            return user[key], np.zeros(3), "user"
    by_upper = {k.upper(): v for k, v in user.items()}
    for key in (norm.original, norm.label):
        if key.upper() in by_upper:
            return by_upper[key.upper()], np.zeros(3), "user"
    return None


def _valid(xyz) -> bool:
    return bool(np.all(np.isfinite(xyz)) and np.any(xyz != 0))


def _file_position(ch, in_mni: bool, bipolar: bool):
    """Stored position; for a bipolar channel storing its second electrode in ``loc[3:6]``, the
    midpoint (MNE's ``set_bipolar_reference`` stores only the first, which is then used)."""
    xyz = np.asarray(ch["loc"][:3], dtype=float)
    if not _valid(xyz):
        return None
    second = np.asarray(ch["loc"][3:6], dtype=float)
    if bipolar and _valid(second):
        xyz = (xyz + second) / 2.0
    if in_mni:
        return mni_to_head(xyz), np.zeros(3), "mni:fsaverage"
    return xyz, np.zeros(3), "file"


def _dev_head(info) -> np.ndarray:
    trans = info.get("dev_head_t")
    return np.eye(4) if trans is None else np.asarray(trans["trans"], dtype=float)


def _meg_key(name: str) -> str:
    """``"MEG 0113"``/``"MEG0113"`` -> ``"MEG0113"``; ``"MLC11-2908"`` -> ``"MLC11"``."""
    return re.sub(r"-\d+$", "", name.replace(" ", "").upper())


@lru_cache(maxsize=4)
def _canonical_meg(system: str) -> dict:
    import mne

    systems = ("neuromag", "ctf151", "ctf275")
    if system not in systems:
        raise ValueError(f"Unknown meg_system {system!r}; MNE ships canonical MEG layouts for "
                         f"{', '.join(systems)}.")
    info = mne.channels.read_meg_canonical_info(system, verbose="error")
    return {_meg_key(ch["ch_name"]): ch for ch in info["chs"]}


def _meg_sensor(ch, dev_head: np.ndarray):
    """Head-frame position and unit coil normal of one MEG channel, or None without a valid loc."""
    from mne.io.constants import FIFF

    loc = np.asarray(ch["loc"], dtype=float)
    normal = loc[9:12]
    if not _valid(loc[:3]) or not _valid(normal):
        return None
    if int(ch["coord_frame"]) == FIFF.FIFFV_COORD_HEAD:
        dev_head = np.eye(4)
    pos = dev_head[:3, :3] @ loc[:3] + dev_head[:3, 3]
    ori = dev_head[:3, :3] @ normal
    return pos, ori / np.linalg.norm(ori), "file"
