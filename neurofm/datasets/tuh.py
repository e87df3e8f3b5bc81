"""TUAB and TUEV, read from their published folders (``tuab:PATH``, ``tuev:PATH``).

Neither needs braindecode (whose ``braindecode.datasets`` imports torchaudio, which loads only
beside one torch version); the folders and label files are parsed here and the EDF files read
with MNE, window by window (:mod:`neurofm.datasets.recordings`).

**Where.** ``PATH`` is the release root: the folder holding ``edf/``, or the folder holding the
version folder (``v3.0.1/edf/...``, what braindecode's ``path`` is), or the version folder.

**TUAB** (TUH Abnormal EEG Corpus): ``edf/{train,eval}/{normal,abnormal}/01_tcp_ar/*.edf``
(v2.0.0 nests ``NNN/SUBJECT/sNNN_DATE/`` below ``01_tcp_ar``). A recording's class is its
folder (``abnormal`` is class 1, the positive class of AUROC/AUC-PR); it is cut into
non-overlapping 10-s windows from its start (the samples after the last whole window are
unused), as CBraMod's ``preprocessing/preprocessing_tuab.py`` does.

**TUEV** (TUH EEG Events Corpus): ``edf/{train,eval}/**/*.edf``, each with a ``.rec`` file of
the same stem: one line per annotation, ``channel,start,stop,code`` (channel: a number of TUH's
22-channel TCP montage; start/stop in seconds; code 1–6: spsw, gped, pled, eyem, artf, bckg).
Each line is one trial: the 5 s from 2 s before the annotation's start (the 1-s annotation with
2 s on each side, CBraMod's ``preprocessing_tuev.py`` after BIOT). An event annotated on several
channels is several trials, as in that script. A trial whose window reaches past the recording
is left out (``TrialSet.dropped`` names it); the script instead wraps the recording around.

**Subjects and sessions** are the TUH codes of the file names: ``aaaaaaav_s004_t000.edf`` is
subject ``aaaaaaav``, session ``s004``, run (token) ``t000``. TUEV's training files are
``SUBJECT_NNNNNNNN.edf`` (subject, session ``str(int(N))``), its evaluation files
``PREFIX_NNN_a_R.edf`` (subject ``NNN``, session ``1``, run ``R``), as braindecode reads them.

**Split** (``TrialSet.split``): ``eval`` is the test set. The ``train`` subjects are split 80/20
into training and validation as CBraMod's scripts do: subjects sorted by name, the first
``int(0.8 * n)`` train, the rest validation — for TUAB separately within the normal and the
abnormal folder (every file listed there counts, as the script lists the folder), for TUEV over
the subjects of the training recordings that could be read (the script lists its processed
files) (``val_fraction`` changes the share; 0 keeps every training subject in ``train``). A TUAB subject that lands in ``train`` in one class
folder and in ``val`` in the other is put in ``train`` (the scripts would split it).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from neurofm.datasets.missing import missing_data
from neurofm.datasets.recordings import (
    SkippedRecordings,
    describe_recordings,
    dropped_rows,
    recording_windows,
)
from neurofm.datasets.trials import TrialSet

#: TUAB classes (index = label); ``abnormal`` is the positive class.
TUAB_CLASSES = ["normal", "abnormal"]
#: TUEV annotation codes of the ``.rec`` files -> class names (index = code - 1).
TUEV_CODES = {1: "spsw", 2: "gped", 3: "pled", 4: "eyem", 5: "artf", 6: "bckg"}
TUEV_CLASSES = list(TUEV_CODES.values())
#: Seconds before an annotation's start and after its end that a TUEV trial adds.
TUEV_CONTEXT = 2.0
#: Length of a TUEV annotation (s) and so of its trial: 1 s + 2 x 2 s.
TUEV_SECONDS = 5.0
#: Share of the training subjects CBraMod's scripts keep for validation.
VAL_FRACTION = 0.2
#: Where the corpora are obtained (both need a registration with the TUH EEG project).
TUH_SOURCE = ("https://isip.piconepress.com/projects/nedc/html/tuh_eeg/ (registration needed; "
              "the download is an rsync of the release folder)")

_TUH_CODE = re.compile(r"^(?P<subject>[a-z0-9]+)_(?P<session>s\d+)_(?P<run>t\d+)$")
_TUEV_TRAIN = re.compile(r"^(?P<subject>[a-z0-9]+)_(?P<number>\d+)$")
_TUEV_EVAL = re.compile(r"^(?P<prefix>[a-z]+)_(?P<subject>\d+)_a_(?P<run>\d*)$")


def tuh_codes(path) -> tuple[str, str, str]:
    """``(subject, session, run)`` from a TUH file name (see the module docstring); a name of
    no known form gives its folder as subject, session ``"0"``, run ``"0"``."""
    path = Path(path)
    stem = path.stem
    if match := _TUH_CODE.match(stem):
        return match["subject"], match["session"], match["run"]
    if match := _TUEV_EVAL.match(stem):
        return match["subject"], "1", match["run"] or "0"
    if match := _TUEV_TRAIN.match(stem):
        return match["subject"], str(int(match["number"])), "0"
    return path.parent.name, "0", "0"


def release_root(path, name: str, expected: str, version: str | None = None) -> Path:
    """The ``edf`` folder of a TUH release under ``path`` (see the module docstring).

    Raises
    ------
    MissingDataError
        No ``edf`` folder there (the message says where the files go).
    """
    path = Path(path).expanduser()
    candidates = [path / "edf", path]
    versions = sorted(path.glob("v*/edf")) if path.is_dir() else []
    if version is not None:
        versions = [v for v in versions if v.parent.name == version]
    candidates[1:1] = versions[-1:]
    for candidate in candidates:
        if candidate.name == "edf" and candidate.is_dir():
            return candidate
    raise missing_data(dataset=name, folder=path, layout=expected, source=TUH_SOURCE)


def _subject_split(subjects, val_fraction: float) -> dict[str, str]:
    """CBraMod's split of training subjects: sorted, first ``int((1 - f) n)`` train, rest val."""
    ordered = sorted(set(subjects))
    n_train = int(len(ordered) * (1 - val_fraction)) if val_fraction else len(ordered)
    return {s: "train" if i < n_train else "val" for i, s in enumerate(ordered)}


def official_split(parts, subjects, labels=None, *, val_fraction: float = VAL_FRACTION
                   ) -> np.ndarray:
    """The papers' split of TUH recordings (see the module docstring).

    Parameters
    ----------
    parts : array of str, shape [n]
        ``"train"`` or ``"eval"``: the release's part of each recording.
    subjects : array of str, shape [n]
    labels : array, shape [n], optional
        Class of each recording: the training subjects are split within each class (TUAB's
        class folders); None splits them all at once (TUEV).
    val_fraction : float

    Returns
    -------
    ndarray of str, shape [n]
        ``"train"``, ``"val"`` or ``"test"`` per recording.
    """
    parts = np.asarray(parts, dtype=str)
    subjects = np.asarray(subjects, dtype=str)
    train = parts == "train"
    groups = [train] if labels is None else         [train & (np.asarray(labels) == c) for c in np.unique(labels)]
    split_of: dict[str, str] = {}
    for mask in groups:
        for subject, part in _subject_split(subjects[mask], val_fraction).items():
            split_of[subject] = "train" if split_of.get(subject) == "train" else part
    return np.array([split_of[s] if t else "test" for s, t in zip(subjects, train)],
                    dtype=object)


def _windows(duration: float, window: float, stride: float) -> np.ndarray:
    """Onsets (s) of the whole windows of ``window`` s every ``stride`` s in ``duration`` s."""
    n = int(np.floor((duration - window) / stride + 1e-9)) + 1 if duration >= window else 0
    return np.arange(n) * stride


def load_tuab(path, *, window: float = 10.0, stride: float | None = None,
              montage: str = "tcp16", val_fraction: float = VAL_FRACTION,
              version: str | None = None, lazy: bool | None = None,
              spec: str | None = None) -> TrialSet:
    """TUAB as a trial set of windows left on disk (see the module docstring).

    Parameters
    ----------
    path : path-like
        The release root (holding ``edf/`` or ``v3.0.1/edf/``).
    window, stride : float
        Window length and step in seconds (default: 10-s windows, no overlap).
    montage : str
        A montage of :mod:`neurofm.datasets.montages` (default: the papers' 16 bipolar
        channels); a recording lacking one of its channels is skipped with the reason.
    val_fraction : float
        Share of the training subjects (per class folder) put in the validation part.
    version : str, optional
        The version folder to use when ``path`` holds several.
    lazy : bool, optional
        Keep the signals on disk in evaluation (default: when they would not fit in 1 GiB).
    spec : str, optional
        The spec string, the trial set's name.

    Returns
    -------
    TrialSet
        Class ``abnormal`` (1) vs ``normal`` (0); split ``train`` / ``val`` / ``test``.
    """
    name = spec or f"tuab:{path}"
    layout = "edf/{train,eval}/{normal,abnormal}/01_tcp_ar/*.edf"
    edf = release_root(path, "TUAB", layout, version)
    stride = window if stride is None else stride
    skipped = SkippedRecordings()
    files = []
    for part in ("train", "eval"):
        for label, folder in enumerate(TUAB_CLASSES):
            for file in sorted((edf / part / folder).rglob("*.edf")):
                files.append((file, part, label))
    if not files:
        raise missing_data(dataset="TUAB", folder=edf, layout=layout, source=TUH_SOURCE)
    recordings = describe_recordings([f for f, _, _ in files], montage, skipped)
    by_path = {r.path: i for i, r in enumerate(recordings)}
    splits = official_split([part for _, part, _ in files], [tuh_codes(f)[0] for f, _, _ in files],
                            [label for _, _, label in files], val_fraction=val_fraction)
    rows = []
    for (file, part, label), split in zip(files, splits):
        r = by_path.get(str(file))
        if r is None:
            continue
        subject, session, run = tuh_codes(file)
        onsets = _windows(recordings[r].seconds, window, stride)
        if not onsets.size:
            skipped.add(file, f"lasts {recordings[r].seconds:.1f} s, shorter than one "
                              f"{window:g}-s window")
        rows.append(pd.DataFrame({"rec": r, "onset": onsets, "label": label, "subject": subject,
                                  "session": session, "run": run, "split": split}))
    provenance = {"loader": "neurofm.datasets.tuh.load_tuab", "dataset": "TUAB",
                  "root": str(edf), "window_stride_seconds": stride,
                  "split": ("eval = test; train subjects sorted per class folder, first "
                            f"{1 - val_fraction:.0%} train, rest val (CBraMod "
                            "preprocessing/preprocessing_tuab.py)")}
    return recording_windows(name, recordings, _concat(rows), window_seconds=window,
                             montage=montage, class_names=TUAB_CLASSES, skipped=skipped,
                             provenance=provenance, lazy=lazy)


def read_rec(path) -> pd.DataFrame:
    """A TUEV ``.rec`` file: columns ``channel`` (int), ``start``, ``stop`` (s), ``code`` (int).

    Raises
    ------
    ValueError
        A line that is not four comma-separated numbers (file and line named).
    """
    rows = []
    for number, line in enumerate(Path(path).read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = line.strip().split(",")
        try:
            channel, start, stop, code = (float(p) for p in parts)
        except ValueError:
            raise ValueError(f"{path}, line {number}: {line.strip()!r} is not "
                             "'channel,start,stop,code'.") from None
        rows.append((int(channel), start, stop, int(code)))
    return pd.DataFrame(rows, columns=["channel", "start", "stop", "code"])


def load_tuev(path, *, montage: str = "tcp16", val_fraction: float = VAL_FRACTION,
              version: str | None = None, lazy: bool | None = None,
              spec: str | None = None) -> TrialSet:
    """TUEV as a trial set of 5-s windows around each annotation (see the module docstring).

    Parameters
    ----------
    path : path-like
        The release root (holding ``edf/`` or ``v2.0.1/edf/``).
    montage, val_fraction, version, lazy, spec
        As in :func:`load_tuab`; ``val_fraction`` over all training subjects.

    Returns
    -------
    TrialSet
        Six classes (spsw, gped, pled, eyem, artf, bckg).
    """
    name = spec or f"tuev:{path}"
    layout = "edf/{train,eval}/**/*.edf with a .rec file beside each"
    edf = release_root(path, "TUEV", layout, version)
    skipped = SkippedRecordings()
    files = []
    for part in ("train", "eval"):
        for file in sorted((edf / part).rglob("*.edf")):
            if file.with_suffix(".rec").is_file():
                files.append((file, part))
            else:
                skipped.add(file, f"no annotation file {file.with_suffix('.rec').name}")
    if not files:
        raise missing_data(dataset="TUEV", folder=edf, layout=layout, source=TUH_SOURCE)
    recordings = describe_recordings([f for f, _ in files], montage, skipped)
    by_path = {r.path: i for i, r in enumerate(recordings)}
    files = [(f, part) for f, part in files if str(f) in by_path]  # the script's processed files
    splits = official_split([part for _, part in files], [tuh_codes(f)[0] for f, _ in files],
                            val_fraction=val_fraction)
    rows, dropped = [], []
    for (file, part), split in zip(files, splits):
        r = by_path[str(file)]
        events = read_rec(file.with_suffix(".rec"))
        unknown = ~events["code"].isin(list(TUEV_CODES))
        if unknown.any():
            skipped.add(file, f"annotation codes {sorted(set(events['code'][unknown]))} are not "
                              f"TUEV's 1-6")
            continue
        subject, session, run = tuh_codes(file)
        onset = events["start"].to_numpy() - TUEV_CONTEXT
        table = pd.DataFrame({"rec": r, "onset": onset, "label": events["code"] - 1,
                              "subject": subject, "session": session, "run": run,
                              "split": split})
        outside = (onset < 0) | (onset + TUEV_SECONDS > recordings[r].seconds)
        rows.append(table[~outside])
        dropped.append(table[outside].assign(
            reason=f"the {TUEV_SECONDS:g}-s window reaches past the recording"))
    provenance = {"loader": "neurofm.datasets.tuh.load_tuev", "dataset": "TUEV",
                  "root": str(edf),
                  "trials": "one per .rec line: 2 s before the annotation's start to 3 s after",
                  "split": ("eval = test; train subjects sorted, first "
                            f"{1 - val_fraction:.0%} train, rest val (CBraMod "
                            "preprocessing/preprocessing_tuev.py)")}
    return recording_windows(name, recordings, _concat(rows), window_seconds=TUEV_SECONDS,
                             montage=montage, class_names=TUEV_CLASSES, skipped=skipped,
                             provenance=provenance, lazy=lazy,
                             dropped=dropped_rows(_concat(dropped), recordings, TUEV_CLASSES))


def _concat(frames) -> pd.DataFrame:
    frames = [f for f in frames if len(f)]
    if not frames:
        return pd.DataFrame(columns=["rec", "onset", "label", "subject", "session", "run",
                                     "split", "reason"])
    return pd.concat(frames, ignore_index=True)
