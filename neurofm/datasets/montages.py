"""The channel montages of the clinical benchmarks, and how a recording's channels give them.

A montage is an ordered list of output channels, each one electrode (referential, ``"Fp1"``) or
the difference of two (bipolar, ``("Fp1", "F7")``). :func:`resolve_montage` finds them among a
recording's channel labels after name normalisation (:mod:`neurofm.sensors.names`: ``EEG
FP1-REF`` is ``Fp1``, ``T3`` is ``T7``), so one montage serves TUH's referential files
(``EEG FP1-REF``, ``EEG FP1-LE``) and CHB-MIT's bipolar ones (``FP1-F7``):

* a bipolar output channel is taken as it is recorded when the file holds that pair (CHB-MIT),
  else derived from its two referential channels (TUH: ``FP1-REF`` minus ``F7-REF``);
* a referential output channel is taken as recorded;
* a channel the recording cannot give makes the recording unusable for the montage
  (:class:`MontageError`, which the loaders turn into a skipped recording with its reason, as
  ``neurofm prepare`` skips a file).

The result is a :class:`Derivation`: the file channels to read and the matrix that turns them
into the montage's channels (``+1``/``-1`` rows for bipolar pairs). Positions come from the
sensor layer: a bipolar channel sits at the midpoint of its two electrodes
(:func:`montage_layout`).

=========  ===================================================================================
name       channels
=========  ===================================================================================
``tcp16``  the 16 bipolar channels of the TCP ("double banana") montage without its central
           chain, as BIOT, LaBraM's successors and CBraMod use for TUAB, TUEV and CHB-MIT
           (CBraMod ``preprocessing/preprocessing_tuab.py``): FP1-F7, F7-T3, T3-T5, T5-O1,
           FP2-F8, F8-T4, T4-T6, T6-O2, FP1-F3, F3-C3, C3-P3, P3-O1, FP2-F4, F4-C4, C4-P4, P4-O2
``tcp22``  TUH's full TCP montage (``01_tcp_ar``), whose channel numbers the TUEV ``.rec``
           files use: ``tcp16`` plus A1-T3, T3-C3, C3-CZ, CZ-C4, C4-T4, T4-A2 (order of TUH's
           montage definition)
``ref19``  the 19 referential electrodes of the 10-20 system, TUH order
``ref21``  ``ref19`` plus the ear electrodes A1 and A2 (every electrode the TCP montage uses)
``sleep``  Sleep-EDF's two EEG derivations, Fpz-Cz and Pz-Oz (``sleep_fpz``: Fpz-Cz alone)
``seed60`` SEED-V's 62-channel cap without CB1 and CB2, which have no 10-05 position
=========  ===================================================================================

(LaBraM's 23 TUH channels add T1 and T2, which have no position in the 10-05 system; neurofm
does not offer them.)
"""

from __future__ import annotations

from dataclasses import dataclass

import mne
import numpy as np

from neurofm.sensors import SensorLayout
from neurofm.sensors.names import normalise_channel_name
from neurofm.sensors.positions import resolve_sensors

#: The 16 bipolar channels of the papers (TCP without the central chain), TUH spelling.
TCP16 = ("FP1-F7", "F7-T3", "T3-T5", "T5-O1", "FP2-F8", "F8-T4", "T4-T6", "T6-O2",
         "FP1-F3", "F3-C3", "C3-P3", "P3-O1", "FP2-F4", "F4-C4", "C4-P4", "P4-O2")
#: TUH's 22-channel TCP montage in the order of its definition (the channel numbers of TUEV's
#: ``.rec`` files).
TCP22 = ("FP1-F7", "F7-T3", "T3-T5", "T5-O1", "FP2-F8", "F8-T4", "T4-T6", "T6-O2",
         "A1-T3", "T3-C3", "C3-CZ", "CZ-C4", "C4-T4", "T4-A2",
         "FP1-F3", "F3-C3", "C3-P3", "P3-O1", "FP2-F4", "F4-C4", "C4-P4", "P4-O2")
#: The 19 referential 10-20 electrodes, in the order TUH files list them.
REF19 = ("FP1", "FP2", "F3", "F4", "C3", "C4", "P3", "P4", "O1", "O2", "F7", "F8", "T3", "T4",
         "T5", "T6", "FZ", "CZ", "PZ")
#: SEED-V's 62-channel ESI NeuroScan cap without CB1 and CB2 (cerebellar sites that have no
#: 10-05 position), in the order of its files.
SEED60 = ("FP1", "FPZ", "FP2", "AF3", "AF4", "F7", "F5", "F3", "F1", "FZ", "F2", "F4", "F6", "F8",
          "FT7", "FC5", "FC3", "FC1", "FCZ", "FC2", "FC4", "FC6", "FT8", "T7", "C5", "C3", "C1",
          "CZ", "C2", "C4", "C6", "T8", "TP7", "CP5", "CP3", "CP1", "CPZ", "CP2", "CP4", "CP6",
          "TP8", "P7", "P5", "P3", "P1", "PZ", "P2", "P4", "P6", "P8", "PO7", "PO5", "PO3", "POZ",
          "PO4", "PO6", "PO8", "O1", "OZ", "O2")
#: Montage name -> output channel labels.
MONTAGES = {
    "tcp16": TCP16,
    "tcp22": TCP22,
    "ref19": REF19,
    "ref21": (*REF19, "A1", "A2"),
    "sleep": ("FPZ-CZ", "PZ-OZ"),
    "sleep_fpz": ("FPZ-CZ",),
    "seed60": SEED60,
}


class MontageError(ValueError):
    """A recording lacks channels a montage needs (``missing`` lists them)."""

    def __init__(self, montage: str, missing: list[str], source: str = "the recording"):
        self.montage, self.missing = montage, list(missing)
        super().__init__(f"{source} lacks channel(s) {', '.join(self.missing)} of montage "
                         f"{montage!r}")


@dataclass(frozen=True)
class Derivation:
    """How a recording's channels give a montage's channels: ``out = matrix @ data[picks]``.

    Attributes
    ----------
    montage : str
    names : tuple of str
        Output channel labels (``"Fp1-F7"``), normalised 10-05 spelling.
    picks : tuple of str
        File channel labels to read, in the order of ``matrix``'s columns.
    matrix : ndarray of float64, shape [C_out, len(picks)]
        Rows of ``+1`` (and ``-1`` for a derived bipolar pair).
    """

    montage: str
    names: tuple[str, ...]
    picks: tuple[str, ...]
    matrix: np.ndarray

    def apply(self, data: np.ndarray) -> np.ndarray:
        """``data [..., len(picks), T]`` -> ``[..., C_out, T]`` (float64)."""
        if np.array_equal(self.matrix, np.eye(len(self.picks))):
            return np.asarray(data, dtype=np.float64)
        return np.einsum("op,...pt->...ot", self.matrix, data)

    def key(self) -> dict:
        """Plain-JSON description (for cache keys and provenance)."""
        return {"montage": self.montage, "picks": list(self.picks),
                "matrix": self.matrix.astype(int).tolist()}


def montage_channels(montage: str) -> tuple[str, ...]:
    """Output channel labels of ``montage`` (TUH spelling), checking the name."""
    try:
        return MONTAGES[montage]
    except KeyError:
        raise ValueError(f"Unknown montage {montage!r}; choose one of "
                         f"{', '.join(MONTAGES)}.") from None


def _parts(label: str) -> tuple[str, ...]:
    return normalise_channel_name(label).parts


def resolve_montage(ch_names, montage: str, *, source: str = "the recording") -> Derivation:
    """The file channels and matrix that give ``montage`` from a recording's ``ch_names``.

    Raises
    ------
    MontageError
        A channel of the montage is neither recorded nor derivable (named in the message).
    """
    wanted = montage_channels(montage)
    single: dict[str, str] = {}   # normalised electrode -> file label (first one wins)
    pairs: dict[tuple[str, str], str] = {}
    for label in ch_names:
        name = normalise_channel_name(label)
        if name.bipolar:
            pairs.setdefault(tuple(p.upper() for p in name.parts), label)
        elif name.canonical:
            single.setdefault(name.canonical.upper(), label)
    picks: list[str] = []
    rows: list[dict[int, float]] = []
    missing: list[str] = []

    def column(label: str) -> int:
        if label not in picks:
            picks.append(label)
        return picks.index(label)

    for channel in wanted:
        parts = tuple(p.upper() for p in _parts(channel))
        if len(parts) == 2 and parts in pairs:
            rows.append({column(pairs[parts]): 1.0})
        elif len(parts) == 2 and all(p in single for p in parts):
            rows.append({column(single[parts[0]]): 1.0, column(single[parts[1]]): -1.0})
        elif len(parts) == 1 and parts[0] in single:
            rows.append({column(single[parts[0]]): 1.0})
        else:
            missing.append("-".join(_parts(channel)))
    if missing:
        raise MontageError(montage, missing, source)
    matrix = np.zeros((len(rows), len(picks)))
    for i, row in enumerate(rows):
        for j, weight in row.items():
            matrix[i, j] = weight
    names = tuple("-".join(_parts(c)) for c in wanted)
    return Derivation(montage, names, tuple(picks), matrix)


def montage_layout(montage: str) -> SensorLayout:
    """The sensors of ``montage``'s channels: 10-05 positions, a bipolar pair at its midpoint.

    Raises
    ------
    ValueError
        A channel without a 10-05 position (none of the shipped montages has one).
    """
    names = ["-".join(_parts(c)) for c in montage_channels(montage)]
    info = mne.create_info(names, 100.0, "eeg")
    return resolve_sensors(info)
