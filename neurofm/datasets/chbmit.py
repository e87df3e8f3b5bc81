"""CHB-MIT Scalp EEG, read from its PhysioNet folder (``chbmit:PATH``).

``PATH`` holds the case folders of the release (``chb-mit-scalp-eeg-database-1.0.0/``):
``chbNN/chbNN_MM.edf`` recordings (256 Hz, bipolar "double banana" channels such as ``FP1-F7``;
some files repeat ``T8-P8``) and ``chbNN/chbNN-summary.txt``, which lists for each file its
seizures::

    File Name: chb01_03.edf
    Number of Seizures in File: 1
    Seizure Start Time: 2996 seconds
    Seizure End Time: 3036 seconds

(later cases write ``Seizure 1 Start Time: ...``). A file the summary does not list is skipped
(its seizures are unknown). Subjects are the cases (``chb01`` … ``chb24``; ``chb21`` is
``chb01`` 1.5 years later, a separate case as in the release and in the papers' split),
sessions ``"0"``, runs the file numbers.

**Windows and labels**, as CBraMod's ``preprocessing/CHB-MIT/process2.py`` (after BIOT):

* non-overlapping 10-s windows from each file's start; a window is a seizure window (class 1)
  when a seizure's start or end sample falls strictly inside it (``labels="paper"``; a window
  lying wholly inside a long seizure is class 0 under this rule). ``labels="overlap"`` marks every
  window that overlaps a seizure instead;
* plus, for each seizure, extra seizure windows every 5 s from 1 s before its start to 1 s
  after its end (``seizure_stride``; 0 adds none), in every split as in the script; those that
  would run past the file's end are left out (the script keeps them shorter and stretches them);
* sample indices of seizure times are ``seconds * rate - 1``, as in the script's
  ``process_metadata``.

The montage is the papers' 16 bipolar channels (``tcp16``); a file lacking one is skipped with
the reason (the script fills missing channels with zeros).
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
    recording_windows,
)
from neurofm.datasets.trials import TrialSet

CHBMIT_CLASSES = ["background", "seizure"]
#: Where CHB-MIT is obtained.
CHBMIT_SOURCE = "https://physionet.org/content/chbmit/1.0.0/ (open access, about 43 GB)"
LABEL_RULES = ("paper", "overlap")

_SEIZURE = re.compile(r"^Seizure(?:\s+\d+)?\s+(?P<which>Start|End)\s+Time:\s*(?P<t>[\d.]+)",
                      re.IGNORECASE)


def read_summary(path) -> dict[str, list[tuple[float, float]]]:
    """``{file name: [(start s, end s), ...]}`` from a ``chbNN-summary.txt``.

    Raises
    ------
    ValueError
        A seizure start without its end (file and line named).
    """
    seizures: dict[str, list[tuple[float, float]]] = {}
    current, start = None, None
    for number, line in enumerate(Path(path).read_text(errors="replace").splitlines(), 1):
        line = line.strip()
        if line.startswith("File Name:"):
            current, start = line.split(":", 1)[1].strip(), None
            seizures[current] = []
        elif (match := _SEIZURE.match(line)) and current is not None:
            if match["which"].lower() == "start":
                start = float(match["t"])
            elif start is None:
                raise ValueError(f"{path}, line {number}: a seizure end without a start.")
            else:
                seizures[current].append((start, float(match["t"])))
                start = None
    return seizures


def window_labels(onsets: np.ndarray, window: float, sfreq: float, seizures, rule: str
                  ) -> np.ndarray:
    """Class of each window starting at ``onsets`` (s): 1 for a seizure window (see
    ``labels`` in the module docstring)."""
    first = np.round(onsets * sfreq).astype(int)
    width = round(window * sfreq)
    label = np.zeros(len(onsets), dtype=int)
    for start, end in seizures:
        if rule == "paper":
            s, e = int(start * sfreq) - 1, int(end * sfreq) - 1
            hit = ((first < s) & (s < first + width)) | ((first < e) & (e < first + width))
        else:
            hit = (onsets < end) & (onsets + window > start)
        label[hit] = 1
    return label


def load_chbmit(path, *, window: float = 10.0, seizure_stride: float = 5.0,
                labels: str = "paper", montage: str = "tcp16", exclude=(),
                lazy: bool | None = None, spec: str | None = None) -> TrialSet:
    """CHB-MIT as a trial set of windows left on disk (see the module docstring).

    Parameters
    ----------
    path : path-like
        The folder holding ``chbNN/``.
    window : float
        Window length in seconds.
    seizure_stride : float
        Step of the extra seizure windows (s); 0 for none.
    labels : {"paper", "overlap"}
    montage : str
    exclude : sequence of str
        Cases to leave out (``chb12``): CBraMod's scripts do not process chb12, chb13, chb17.
    lazy, spec
        As in :func:`neurofm.datasets.tuh.load_tuab`.
    """
    if labels not in LABEL_RULES:
        raise ValueError(f"labels must be one of {LABEL_RULES}; got {labels!r}.")
    name = spec or f"chbmit:{path}"
    root = Path(path).expanduser()
    layout = "chbNN/chbNN_MM.edf and chbNN/chbNN-summary.txt"
    cases = sorted(p for p in root.glob("chb[0-9][0-9]") if p.is_dir()) if root.is_dir() else []
    cases = [c for c in cases if c.name not in set(exclude)]
    if not cases:
        raise missing_data(dataset="CHB-MIT", folder=root, layout=layout, source=CHBMIT_SOURCE)
    skipped = SkippedRecordings()
    files = []
    for case in cases:
        summary = case / f"{case.name}-summary.txt"
        table = read_summary(summary) if summary.is_file() else {}
        for file in sorted(case.glob("*.edf")):
            if file.name in table:
                files.append((file, case.name, table[file.name]))
            else:
                skipped.add(file, f"not listed in {summary.name} (its seizures are unknown)")
    recordings = describe_recordings([f for f, _, _ in files], montage, skipped)
    by_path = {r.path: i for i, r in enumerate(recordings)}
    rows = []
    for file, case, seizures in files:
        r = by_path.get(str(file))
        if r is None:
            continue
        rec = recordings[r]
        onsets = np.arange(int(rec.seconds // window)) * window
        extra = [np.arange(max(0, int(s * rec.sfreq) - 1 - rec.sfreq),
                           min(int(e * rec.sfreq) - 1 + rec.sfreq, rec.n_times),
                           seizure_stride * rec.sfreq) / rec.sfreq
                 for s, e in seizures] if seizure_stride else []
        extra = np.concatenate(extra) if extra else np.zeros(0)
        extra = extra[extra + window <= rec.seconds]
        label = np.r_[window_labels(onsets, window, rec.sfreq, seizures, labels),
                      np.ones(len(extra), dtype=int)]
        run = file.stem.split("_", 1)[-1]
        rows.append(pd.DataFrame({"rec": r, "onset": np.r_[onsets, extra], "label": label,
                                  "subject": case, "session": "0", "run": run}))
    frame = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(
        columns=["rec", "onset", "label", "subject", "session", "run"])
    provenance = {"loader": "neurofm.datasets.chbmit.load_chbmit", "dataset": "CHB-MIT",
                  "root": str(root), "labels": labels, "seizure_stride_seconds": seizure_stride,
                  "excluded_cases": sorted(set(exclude)),
                  "windows": "CBraMod preprocessing/CHB-MIT/process2.py (after BIOT)"}
    return recording_windows(name, recordings, frame, window_seconds=window, montage=montage,
                             class_names=CHBMIT_CLASSES, skipped=skipped,
                             provenance=provenance, lazy=lazy)
