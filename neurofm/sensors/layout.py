"""``SensorLayout``: the resolved sensors of one recording, as numpy arrays.

A layout is what :func:`neurofm.sensors.resolve_sensors` returns for an MNE ``Info``: one row per
channel with its name, kind, 3-D position in metres in MNE's head frame, unit orientation (MEG;
zeros otherwise), where the position came from and whether the channel is a bipolar derivation.
``SensorBatch.from_layout(layout)`` turns it into the tensors models read (batch size 1).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from neurofm.sensors.kinds import ChannelKind


@dataclass
class SensorLayout:
    """Sensors of one recording.

    Attributes
    ----------
    names : list of str, length C
        Channel names as they appear in the recording.
    kinds : ndarray of int64, shape [C]
        :class:`ChannelKind` codes.
    pos : ndarray of float32, shape [C, 3]
        Positions in metres, MNE head coordinate frame; a NaN row for an iEEG contact kept
        without a known position (``pos_source == "unknown"``, :attr:`position_unknown`).
    ori : ndarray of float32, shape [C, 3]
        Unit orientation for MEG sensors, zeros for other kinds.
    pos_source : list of str, length C
        ``"file"``, ``"mni:fsaverage"``, ``"montage:<name>"``, ``"bipolar:<name>"``,
        ``"meg:<system>"``, ``"user"`` or ``"unknown"`` (see
        :func:`neurofm.sensors.resolve_sensors`).
    bipolar : ndarray of bool, shape [C]
        True for bipolar derivations (position = midpoint of the pair).
    canonical : list of str, length C
        Normalised names (``"EEG FP1-REF"`` -> ``"Fp1"``, bipolar ``"Fp1-F7"``); equal to
        ``names`` when no normalisation applied.
    dropped : list of str
        Channels of the recording left out because no position was known
        (``resolve_sensors(..., on_unknown="drop")``); not rows of the layout.
    """

    names: list[str]
    kinds: np.ndarray
    pos: np.ndarray
    ori: np.ndarray
    pos_source: list[str]
    bipolar: np.ndarray = None
    canonical: list[str] = field(default=None)
    dropped: list[str] = field(default_factory=list)

    def __post_init__(self):
        n = len(self.names)
        self.kinds = np.asarray(self.kinds, dtype=np.int64).reshape(n)
        self.pos = np.asarray(self.pos, dtype=np.float32).reshape(n, 3)
        self.ori = np.asarray(self.ori, dtype=np.float32).reshape(n, 3)
        self.bipolar = (np.zeros(n, bool) if self.bipolar is None
                        else np.asarray(self.bipolar, dtype=bool).reshape(n))
        self.canonical = list(self.names) if self.canonical is None else list(self.canonical)
        if len(self.pos_source) != n or len(self.canonical) != n:
            raise ValueError("SensorLayout fields must all have one entry per channel.")

    def __len__(self) -> int:
        return len(self.names)

    def subset(self, index) -> SensorLayout:
        """Layout of the channels at ``index`` (ints or a boolean mask), in that order."""
        idx = np.arange(len(self))[np.asarray(index)] if np.asarray(index).dtype == bool \
            else np.asarray(index, dtype=int)
        return SensorLayout(
            names=[self.names[i] for i in idx],
            kinds=self.kinds[idx],
            pos=self.pos[idx],
            ori=self.ori[idx],
            pos_source=[self.pos_source[i] for i in idx],
            bipolar=self.bipolar[idx],
            canonical=[self.canonical[i] for i in idx],
            dropped=list(self.dropped),
        )

    @property
    def position_unknown(self) -> np.ndarray:
        """``[C]`` bool: True for contacts without a known position (NaN rows of ``pos``)."""
        return np.isnan(self.pos).any(axis=1)

    def kind_labels(self) -> list[str]:
        return [ChannelKind(int(k)).label for k in self.kinds]
