"""Offline stand-ins of MOABB datasets: ``FakeDataset`` shaped like a real one.

The shipped BCI configs name real MOABB datasets, which cannot be downloaded in tests or on a
machine without the data. A stand-in has the real dataset's channels, sampling rate, events,
sessions, subject ids and trial interval, with random signals (MOABB's ``FakeDataset``), so the
same loader (:func:`neurofm.datasets.from_moabb`), split and evaluation code runs on it::

    from neurofm.datasets.moabb_standins import standin_dataset
    fake = standin_dataset("BNCI2014_001", events_per_run=8)           # in memory
    fake = standin_dataset("BNCI2014_001", folder="/tmp/bnci")         # FIF files on disk

With ``folder`` the recordings are written once as FIF files (one per subject, session and
run) and every load reads them back from disk, as a downloaded dataset is read: for tests of
source-file provenance and for the load-time benchmark (``benchmarks/bci_load.py``). Importing
this module imports MOABB.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import mne
from moabb.datasets.fake import FakeDataset

_BNCI2014_001_CHANNELS = (
    "Fz", "FC3", "FC1", "FCz", "FC2", "FC4", "C5", "C3", "C1", "Cz", "C2", "C4", "C6", "CP3",
    "CP1", "CPz", "CP2", "CP4", "P1", "Pz", "P2", "POz")
_PHYSIONET_MI_CHANNELS = (
    "FC5", "FC3", "FC1", "FCz", "FC2", "FC4", "FC6", "C5", "C3", "C1", "Cz", "C2", "C4", "C6",
    "CP5", "CP3", "CP1", "CPz", "CP2", "CP4", "CP6", "Fp1", "Fpz", "Fp2", "AF7", "AF3", "AFz",
    "AF4", "AF8", "F7", "F5", "F3", "F1", "Fz", "F2", "F4", "F6", "F8", "FT7", "FT8", "T7", "T8",
    "T9", "T10", "TP7", "TP8", "P7", "P5", "P3", "P1", "Pz", "P2", "P4", "P6", "P8", "PO7",
    "PO3", "POz", "PO4", "PO8", "O1", "Oz", "O2", "Iz")


@dataclass(frozen=True)
class DatasetShape:
    """What a stand-in copies of a real MOABB dataset.

    Attributes
    ----------
    channels : tuple of str
        EEG channel names, in the dataset's order.
    sfreq : float
    events : tuple of str
        Event names (MOABB's ``event_id`` keys).
    subjects, sessions, runs : int
        Subjects (ids 1..subjects), sessions per subject and runs per session.
    events_per_run : int
        Trials per run of the real dataset.
    interval : (float, float)
        The trial interval MOABB epochs by default (seconds from each event).
    """

    channels: tuple
    sfreq: float
    events: tuple
    subjects: int
    sessions: int
    runs: int
    events_per_run: int
    interval: tuple


#: Shapes of the datasets the shipped configs name.
SHAPES = {
    # 2 sessions x 6 runs x 48 trials = 288 per session (Tangermann et al., 2012).
    "BNCI2014_001": DatasetShape(_BNCI2014_001_CHANNELS, 250.0,
                                 ("left_hand", "right_hand", "feet", "tongue"), 9, 2, 6, 48,
                                 (2.0, 6.0)),
    # 6 imagery runs of ~15 cues (rest between them is MOABB's "rest" event).
    "PhysionetMI": DatasetShape(_PHYSIONET_MI_CHANNELS, 160.0,
                                ("left_hand", "right_hand", "feet", "hands", "rest"), 109, 1, 6,
                                30, (0.0, 3.0)),
}


def standin_dataset(name: str, *, subjects: int | None = None, runs: int | None = None,
                    events_per_run: int | None = None, seed: int = 0,
                    folder=None) -> FakeDataset:
    """A ``FakeDataset`` with the shape of MOABB's ``name`` (a key of :data:`SHAPES`).

    Parameters
    ----------
    name : str
        ``"BNCI2014_001"`` or ``"PhysionetMI"``.
    subjects, runs, events_per_run : int, optional
        Smaller than the real dataset for quick tests (default: the real numbers).
    seed : int
        Seed of the random signals (each subject's recordings are reproducible).
    folder : path-like, optional
        Write the recordings there as FIF files (once) and read them from disk on every load.

    Raises
    ------
    ValueError
        A dataset without a known shape.
    """
    if name not in SHAPES:
        raise ValueError(f"No stand-in shape for {name!r}; known: {', '.join(SHAPES)}.")
    shape = SHAPES[name]
    runs = runs or shape.runs
    n_events = events_per_run or shape.events_per_run
    # Each event has its interval and a gap of StandinDataset.margin after it.
    duration = n_events * (shape.interval[1] + 2 * StandinDataset.margin) + 1.0
    options = {"event_list": shape.events, "n_sessions": shape.sessions, "n_runs": runs,
               "n_subjects": subjects or shape.subjects, "channels": shape.channels,
               "sfreq": shape.sfreq, "duration": duration, "n_events": n_events, "seed": seed}
    dataset = StandinDataset(code="StandinDataset", **options) if folder is None else \
        FileFakeDataset(folder, code="FileFakeDataset", **options)
    dataset.interval = list(shape.interval)
    return dataset


class StandinDataset(FakeDataset):
    """``FakeDataset`` whose last event leaves :attr:`margin` seconds after its interval, so a
    trial window a little longer than the interval (``tmax``) still fits the recording."""

    #: Seconds kept free after each event's interval.
    margin = 2.0

    def _generate_events(self, n_events, duration):
        interval = self.interval
        self.interval = [interval[0], interval[1] + self.margin]
        try:
            return super()._generate_events(n_events, duration)
        finally:
            self.interval = interval


class FileFakeDataset(StandinDataset):
    """A stand-in read from FIF files in ``folder`` (written on first use).

    ``data_path(subject)`` writes the subject's files if needed and lists them (one per session
    and run, in order), as a downloaded dataset's would.
    """

    def __init__(self, folder, **options):
        super().__init__(**options)
        self.folder = Path(folder)

    def _file(self, subject, session, run) -> Path:
        return self.folder / f"sub-{subject}_ses-{session}_run-{run}_raw.fif"

    def write(self, subjects=None) -> list[Path]:
        """Write the recordings of ``subjects`` (default all) that are not on disk yet."""
        written = []
        self.folder.mkdir(parents=True, exist_ok=True)
        for subject in subjects or self.subject_list:
            if all(self._file(subject, s, r).is_file() for s in range(self.n_sessions)
                   for r in range(self.n_runs)):
                continue
            for session, runs in super()._get_single_subject_data(subject).items():
                for run, raw in runs.items():
                    path = self._file(subject, session, run)
                    raw.save(path, overwrite=True, verbose="error")
                    written.append(path)
        return written

    def _get_single_subject_data(self, subject):
        self.write([subject])
        return {str(s): {str(r): mne.io.read_raw_fif(self._file(subject, s, r), preload=True,
                                                     verbose="error")
                         for r in range(self.n_runs)}
                for s in range(self.n_sessions)}

    def data_path(self, subject, path=None, force_update=False, update_path=None, verbose=None):
        self.write([subject])
        return [self._file(subject, s, r) for s in range(self.n_sessions)
                for r in range(self.n_runs)]
