"""``SegmentSet``: labelled segments of recordings that each keep their own contacts.

A :class:`~neurofm.datasets.trials.TrialSet` has one sensor layout for all its trials. Intracranial
releases do not: every patient has their own electrodes (Omni-iEEG, iEEG-BIDS sets), and their
tasks label contacts (is this contact in the seizure-onset zone?) or whole recordings (ictal or
interictal, asleep or awake). A :class:`SegmentSet` holds

* the **recordings** (:class:`LabelledRecording`: file, rate, length, the contacts kept as a
  :class:`~neurofm.sensors.SensorLayout`, the participant and the recording's attributes),
  their signals left on disk;
* the **units** a label belongs to, one row each (:attr:`SegmentSet.units`): contacts
  (``target="channel"``: recording, contact row in its layout, name, participant, label and the
  clinical columns) or recordings (``target="recording"``);
* the **segment rule**: segments of ``segment_seconds`` on a grid that starts ``skip_seconds``
  into each recording and ends ``skip_seconds`` before its end, non-overlapping
  (:meth:`SegmentSet.grid_onsets`); a unit on the training side of a fold uses up to
  ``train_segments`` of them drawn at random (:meth:`SegmentSet.training_onsets`), a unit on the
  test side all of them, and its score is the mean over its segments.

Evaluation (:mod:`neurofm.eval.segment_eval`) embeds each segment with its recording's own
sensors and fits the probe or fine-tunes on the units' labels, folds over participants.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from neurofm.sensors import SensorLayout

#: What a label belongs to.
TARGETS = ("channel", "recording")
#: Columns every :attr:`SegmentSet.units` table has (``label``: class index, -1 = no label).
UNIT_COLUMNS = ("rec", "participant", "session", "label", "split")
#: Further columns of a contact table (``target="channel"``).
CONTACT_COLUMNS = ("contact", "name")


@dataclass(frozen=True, eq=False)
class LabelledRecording:
    """One recording of a :class:`SegmentSet`, its signals on disk.

    Attributes
    ----------
    path : str
        The signal file.
    name : str
        Its path relative to the release root (how split files name it).
    participant, session, run : str
    sfreq : float
        The file's rate (Hz).
    n_times : int
        Samples in the file.
    layout : SensorLayout
        The contacts kept (good contacts of the brain kinds), in file order; ``layout.names``
        are the file's channel names.
    line_freq : float or None
        The file's mains frequency, when it records one.
    attributes : dict
        What the release says about the recording (split-file columns: ``split``,
        ``frequency``, ``interictal``, ``length``, ``outcome``, ``dataset`` …).
    """

    path: str
    name: str
    participant: str
    session: str
    run: str
    sfreq: float
    n_times: int
    layout: SensorLayout
    line_freq: float | None = None
    attributes: dict = field(default_factory=dict)

    @property
    def seconds(self) -> float:
        return self.n_times / self.sfreq

    def signature(self) -> dict:
        """What identifies the samples this recording gives (for cache keys): the file's path,
        size and modification time, rate, length and the contacts read."""
        stat = os.stat(self.path)
        return {"path": self.path, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns,
                "sfreq": self.sfreq, "n_times": self.n_times, "contacts": list(self.layout.names)}


def grid_onsets(seconds: float, segment: float, skip: float) -> np.ndarray:
    """Starts (s) of the non-overlapping ``segment``-s segments of a ``seconds``-long recording
    that skip its first and last ``skip`` seconds (empty when none fits)."""
    usable = seconds - 2 * skip
    count = int(np.floor(usable / segment + 1e-9)) if usable >= segment else 0
    return skip + segment * np.arange(count, dtype=np.float64)


class SegmentSet:
    """Labelled units (contacts or recordings) of recordings with their own sensors.

    Parameters
    ----------
    name : str
        The spec it came from.
    recordings : sequence of LabelledRecording
    units : pandas.DataFrame
        One row per unit: :data:`UNIT_COLUMNS` (``rec``: index into ``recordings``; ``label``:
        class index or -1 for a unit scored but not labelled, such as a contact the task
        excludes), plus :data:`CONTACT_COLUMNS` for ``target="channel"`` and any clinical
        column (``soz``, ``resection``, ``outcome``, ``fold``).
    target : {"channel", "recording"}
    class_names : list of str
        Two classes; index 1 is the positive class of the metrics.
    segment_seconds, skip_seconds : float
        The segment rule (module docstring).
    train_segments : int
        Segments per recording on the training side (at most; drawn from the grid).
    provenance : dict
        How the set was made (loader, options, sources of columns), for ``results.json``.
    dropped : pandas.DataFrame, optional
        Contacts left out, with ``participant``, ``recording``, ``name`` and ``reason``.

    Raises
    ------
    ValueError
        An inconsistent table (unknown target, a recording index out of range, a contact row
        outside its recording's layout, labels outside the classes) or a unit whose recording
        is shorter than one segment.
    """

    def __init__(self, name: str, recordings, units: pd.DataFrame, *, target: str,
                 class_names: list[str], segment_seconds: float, skip_seconds: float = 1.0,
                 train_segments: int = 5, provenance: dict | None = None,
                 dropped: pd.DataFrame | None = None):
        if target not in TARGETS:
            raise ValueError(f"SegmentSet {name!r}: target must be one of {TARGETS}; got "
                             f"{target!r}.")
        self.name = name
        self.recordings = tuple(recordings)
        self.target = target
        self.class_names = list(class_names)
        self.segment_seconds = float(segment_seconds)
        self.skip_seconds = float(skip_seconds)
        self.train_segments = int(train_segments)
        self.provenance = dict(provenance or {})
        self.dropped = (pd.DataFrame(columns=["participant", "recording", "name", "reason"])
                        if dropped is None else dropped.reset_index(drop=True))
        wanted = UNIT_COLUMNS + (CONTACT_COLUMNS if target == "channel" else ())
        missing = [c for c in wanted if c not in units]
        if missing:
            raise ValueError(f"SegmentSet {name!r}: the units table lacks {missing}.")
        self.units = units.reset_index(drop=True)
        self._check()

    def _check(self) -> None:
        rec = self.units["rec"].to_numpy(dtype=int)
        if rec.size and (rec.min() < 0 or rec.max() >= len(self.recordings)):
            raise ValueError(f"SegmentSet {self.name!r}: unit recording index out of range.")
        if self.target == "channel":
            sizes = np.array([len(r.layout) for r in self.recordings])[rec]
            contact = self.units["contact"].to_numpy(dtype=int)
            if ((contact < 0) | (contact >= sizes)).any():
                raise ValueError(f"SegmentSet {self.name!r}: a contact row lies outside its "
                                 "recording's layout.")
        label = self.units["label"].to_numpy(dtype=int)
        if ((label < -1) | (label >= len(self.class_names))).any():
            raise ValueError(f"SegmentSet {self.name!r}: labels must be -1 or class indices "
                             f"below {len(self.class_names)}.")
        short = [self.recordings[r].name for r in np.unique(rec)
                 if not self.grid_onsets(int(r)).size]
        if short:
            raise ValueError(f"SegmentSet {self.name!r}: {len(short)} recording(s) hold no "
                             f"{self.segment_seconds:g}-s segment after skipping "
                             f"{self.skip_seconds:g} s at each end (first: {short[0]}); leave "
                             "them out.")

    def __len__(self) -> int:
        return len(self.units)

    @property
    def labelled(self) -> np.ndarray:
        """``[n_units]`` bool: units with a class label."""
        return self.units["label"].to_numpy(dtype=int) >= 0

    @property
    def participants(self) -> np.ndarray:
        """Participant of each unit, str ``[n_units]``."""
        return self.units["participant"].to_numpy(dtype=str)

    @property
    def split(self) -> np.ndarray | None:
        """Published split of each unit (``"train"``/``"val"``/``"test"``/``""``), or None."""
        split = self.units["split"].to_numpy(dtype=str)
        return split if (split != "").any() else None

    @property
    def used_recordings(self) -> np.ndarray:
        """Indices of the recordings some unit belongs to, sorted."""
        return np.unique(self.units["rec"].to_numpy(dtype=int))

    def grid_onsets(self, r: int) -> np.ndarray:
        """Starts (s) of every segment of recording ``r`` (:func:`grid_onsets`)."""
        return grid_onsets(self.recordings[r].seconds, self.segment_seconds, self.skip_seconds)

    def training_onsets(self, r: int, rng: np.random.Generator) -> np.ndarray:
        """Up to ``train_segments`` random segment starts (s, millisecond grid, sorted) of
        recording ``r``, as the authors' ``extract_random_samples`` draws them: anywhere in the
        recording less ``skip_seconds`` at each end (segments may overlap), as many as
        ``min(train_segments, max(1, usable // (segment / 2)))``; evenly spaced when there is
        no room to draw. Unlike the authors' (per contact), one draw serves every contact of
        the recording: its contacts are embedded together."""
        usable = self.recordings[r].seconds - 2 * self.skip_seconds
        if usable < self.segment_seconds:
            return np.zeros(0)
        count = min(self.train_segments,
                    max(1, int(np.floor(usable / (self.segment_seconds / 2) + 1e-9))))
        room_ms = int(np.floor((usable - self.segment_seconds) * 1000 + 1e-6))
        if room_ms > count:
            starts = np.sort(rng.choice(room_ms, count, replace=False)) / 1000.0
        else:
            starts = np.array([i * room_ms // max(1, count - 1) for i in range(count)]) / 1000.0
        return self.skip_seconds + starts

    def summary(self) -> str:
        """One line: units, labels per class, recordings, participants, split counts."""
        label = self.units["label"].to_numpy(dtype=int)
        counts = ", ".join(f"{c}={int((label == i).sum())}" for i, c in
                           enumerate(self.class_names))
        what = "contacts" if self.target == "channel" else "recordings"
        unlabelled = int((label < 0).sum())
        parts = [f"{self.name}: {len(self)} {what} ({counts}, unlabelled={unlabelled})",
                 f"{self.used_recordings.size} recording(s)",
                 f"{np.unique(self.participants).size} participant(s)",
                 f"{self.segment_seconds:g}-s segments"]
        if self.split is not None:
            values = self.units["split"].value_counts()
            parts.append(" ".join(f"{s}={int(values.get(s, 0))}" for s in ("train", "val",
                                                                            "test")))
        if len(self.dropped):
            parts.append(f"{len(self.dropped)} contact(s) dropped")
        return "; ".join(parts)
