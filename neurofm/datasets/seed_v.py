"""SEED-V, read from its distributed files (``seed-v:PATH``).

``PATH`` is the release folder holding ``EEG_raw/`` (or ``EEG_raw`` itself): one Neuroscan
``.cnt`` recording per subject and session, ``{subject}_{session}_{date}.cnt`` (16 subjects x
3 sessions, 62 EEG channels + M1, M2, VEO, HEO at 1000 Hz), read with MNE's CNT reader. A copy
converted to ``.fif`` or ``.edf`` under the same name is read instead where no ``.cnt`` is
(neurofm's tests use EDF: nothing here writes CNT, so the CNT reading itself is MNE's, untested
by neurofm).

Each session shows 15 film clips at fixed times; the clip times and emotions per session are
those of CBraMod's ``preprocessing/preprocessing_SEEDV.py`` (:data:`TRIAL_SECONDS`,
:data:`SESSION_LABELS`), from the SEED-V documentation. The trials are the 1-s windows of each
clip. Split (CBraMod): clips 1–5 of every session train, 6–10 validation, 11–15 test — within
each subject and session, so a subject's windows are on both sides (not a subject-level split).

Channels: montage ``seed60``, the cap without CB1 and CB2 (cerebellar sites with no 10-05
position; CBraMod keeps all 62).
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

#: Emotion of each label index (SEED-V documentation: 0 disgust, 1 fear, 2 sad, 3 neutral,
#: 4 happy).
SEED_V_CLASSES = ["disgust", "fear", "sad", "neutral", "happy"]
#: Session -> (start s, end s) of its 15 clips (CBraMod preprocessing_SEEDV.py).
TRIAL_SECONDS = {
    "1": ((30, 102), (132, 228), (287, 524), (555, 742), (773, 920), (982, 1240),
          (1271, 1568), (1628, 1697), (1730, 1994), (2025, 2166), (2227, 2401), (2435, 2607),
          (2667, 2901), (2932, 3172), (3204, 3359)),
    "2": ((30, 267), (299, 488), (548, 614), (646, 773), (836, 967), (1000, 1059),
          (1091, 1331), (1392, 1622), (1657, 1777), (1809, 1908), (1966, 2153), (2186, 2302),
          (2333, 2428), (2490, 2709), (2741, 2817)),
    "3": ((30, 321), (353, 418), (478, 643), (674, 764), (825, 877), (908, 1147),
          (1200, 1284), (1346, 1418), (1451, 1679), (1711, 1996), (2055, 2275), (2307, 2425),
          (2457, 2664), (2726, 2857), (2888, 3066)),
}
#: Session -> label index of each clip (CBraMod preprocessing_SEEDV.py).
SESSION_LABELS = {
    "1": (4, 1, 3, 2, 0, 4, 1, 3, 2, 0, 4, 1, 3, 2, 0),
    "2": (2, 1, 3, 0, 4, 4, 0, 3, 2, 1, 3, 4, 1, 2, 0),
    "3": (2, 1, 3, 0, 4, 4, 0, 3, 2, 1, 3, 4, 1, 2, 0),
}
#: Clip index -> split (CBraMod: 5 / 5 / 5 per session).
CLIP_SPLIT = ("train",) * 5 + ("val",) * 5 + ("test",) * 5
SEED_V_SOURCE = "https://bcmi.sjtu.edu.cn/home/seed/seed-v.html (licence agreement)"

_NAME = re.compile(r"^(?P<subject>\d+)_(?P<session>[123])_(?P<date>\d+)$")


def load_seed_v(path, *, montage: str = "seed60", window: float = 1.0,
                lazy: bool | None = None, spec: str | None = None) -> TrialSet:
    """SEED-V as a trial set of 1-s windows of the film clips (see the module docstring).

    Parameters
    ----------
    path : path-like
        The folder holding ``EEG_raw/`` (or ``EEG_raw``).
    montage : str
    window : float
        Window length in seconds (CBraMod: 1).
    lazy, spec
        As in :func:`neurofm.datasets.tuh.load_tuab`.
    """
    name = spec or f"seed-v:{path}"
    root = Path(path).expanduser()
    folder = root / "EEG_raw" if (root / "EEG_raw").is_dir() else root
    layout = "EEG_raw/{subject}_{session}_{date}.cnt"
    found: dict[str, Path] = {}
    for suffix in (".edf", ".fif", ".cnt"):  # the distributed .cnt wins over a conversion
        for file in sorted(folder.glob(f"*{suffix}")) if folder.is_dir() else []:
            if _NAME.match(file.stem):
                found[file.stem] = file
    if not found:
        raise missing_data(dataset="SEED-V", folder=root, layout=layout, source=SEED_V_SOURCE)
    skipped = SkippedRecordings()
    files = [found[stem] for stem in sorted(found)]
    recordings = describe_recordings(files, montage, skipped)
    by_path = {r.path: i for i, r in enumerate(recordings)}
    rows = []
    for file in files:
        r = by_path.get(str(file))
        if r is None:
            continue
        match = _NAME.match(file.stem)
        session = match["session"]
        last = TRIAL_SECONDS[session][-1][1]
        if last > recordings[r].seconds:
            skipped.add(file, f"lasts {recordings[r].seconds:.0f} s; the clips of session "
                              f"{session} run to {last} s")
            continue
        for clip, ((start, end), label) in enumerate(zip(TRIAL_SECONDS[session],
                                                         SESSION_LABELS[session])):
            onsets = start + window * np.arange(int((end - start) // window))
            rows.append(pd.DataFrame({"rec": r, "onset": onsets, "label": label,
                                      "subject": match["subject"], "session": session,
                                      "run": str(clip + 1), "split": CLIP_SPLIT[clip]}))
    frame = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(
        columns=["rec", "onset", "label", "subject", "session", "run", "split"])
    provenance = {"loader": "neurofm.datasets.seed_v.load_seed_v", "dataset": "SEED-V",
                  "root": str(folder), "clips": "CBraMod preprocessing/preprocessing_SEEDV.py",
                  "split": "clips 1-5 train, 6-10 val, 11-15 test in every session (CBraMod)",
                  "run": "the clip number (1-15) of each window"}
    return recording_windows(name, recordings, frame, window_seconds=window, montage=montage,
                             class_names=SEED_V_CLASSES, skipped=skipped,
                             provenance=provenance, lazy=lazy)
