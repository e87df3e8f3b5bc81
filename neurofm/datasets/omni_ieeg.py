"""Omni-iEEG tasks on an iEEG-BIDS release: seizure-onset-zone contacts (``task=soz``), ictal
vs. interictal and sleep vs. awake recordings (``task=ictal`` / ``task=sleep``).

``omni-ieeg:PATH?task=soz`` reads the release of :mod:`neurofm.datasets.ieeg` and needs its
split file; ``ieeg-bids:PATH?task=...`` reads any iEEG-BIDS root with the same label columns,
a split file being optional. Source of the rules below: the authors' code
(roychowdhuryresearch/Omni-iEEG; :data:`SOURCE`), read for this module; where neurofm differs
it says so, and what could not be checked is listed in the task configs' ``to_check``.

**SOZ contacts** (``target="channel"``):

* recordings: ``frequency > 900`` (Hz), ``interictal``, ``length >= 62`` (s) and ``dataset !=
  "Multicenter"``, read from the split file (without one: rate and length from the file
  header, the other two not applied, and ``provenance`` says so);
* contacts: good ones only (``good == 0`` are dropped and listed);
* labels: **normal** (class 0) = ``resection == 0`` in a participant with ``outcome == 1`` —
  this wins over ``soz``; **SOZ** (class 1) = ``soz == 1`` otherwise (so, in participants with
  ``outcome == 1``, only where ``resection != 0``); every other contact has no label (-1). The
  authors' raw label 1 means normal; their evaluation treats SOZ as the positive class, and so
  does neurofm: SOZ is class index 1, the positive class of AUROC, AUC-PR and F1. Contacts
  without a label are still embedded and scored: a participant's predicted resection ratio
  (:mod:`neurofm.eval.channel_metrics`) sums over every good contact whose ``resection`` is
  known;
* segments: 60 s, skipping the first and last second of each recording; up to 5 random
  segments per contact (per recording: every contact of a segment is embedded together) for
  training, every non-overlapping one for testing; a contact's score is the mean over its
  segments (:class:`~neurofm.datasets.segments.SegmentSet`).

**Recording tasks** (``target="recording"``): the labels come from a split file like the
authors' ``ictal_sleep/*_split_cross.csv`` (``labels=PATH``, relative to the release root or
absolute; default ``derivatives/datasplit/<task>_split_cross.csv``). Columns expected:

==============  ===========================================================================
``edf_name``    the recording's path relative to the root (required; the authors' files
                call it ``edf_file``)
``label``       the class: its name (``ictal``/``interictal``, ``sleep``/``awake``, any case)
                or its index (0 = ``interictal`` / ``awake``, 1 = ``ictal`` / ``sleep``)
``patient_name``  the participant (optional, ``patient`` in the authors' files; else the
                ``sub-`` entity of ``edf_name``)
``split``       ``train`` / ``val`` / ``test`` (optional), or
``fold``        an integer: ``protocol official`` then tests each fold once, trained on the
                others (optional)
==============  ===========================================================================

Every recording listed is used (same segment rule); a recording's score is the mean over its
segments.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from neurofm.datasets.ieeg import (
    SPLIT_FILE,
    SPLIT_NAMES,
    UNKNOWN,
    IEEGRelease,
    participant_id,
    read_table,
)
from neurofm.datasets.segments import SegmentSet

#: Tasks and their classes (index 1 is the positive class).
TASK_CLASSES = {"soz": ("normal", "soz"), "ictal": ("interictal", "ictal"),
                "sleep": ("awake", "sleep")}
#: What each task labels.
TASK_TARGETS = {"soz": "channel", "ictal": "recording", "sleep": "recording"}
#: Where the labels of a recording task are looked for by default (relative to the root).
LABELS_FILE = "derivatives/datasplit/{task}_split_cross.csv"
#: Column names of the authors' ``*_split_cross.csv`` and what neurofm calls them.
LABEL_ALIASES = {"edf_file": "edf_name", "patient": "patient_name"}
#: Where the rules come from (named in results.json and the task configs).
SOURCE = ("the authors' code, roychowdhuryresearch/Omni-iEEG: channel_model/channel_model_train/"
          "features.py (training contacts and segments), channel_model/benchmark/"
          "evaluation_channel.py (test labels, metrics, resection ratio), exploratory_model/"
          "ictal_sleep/*_split_cross.csv (recording tasks)")
SOZ_RULE = ("normal (class 0) = resection == 0 in a participant with outcome == 1 (wins over "
            "soz); SOZ (class 1, the positive class) = soz == 1 otherwise; other contacts "
            "unlabelled")


def load_omni_ieeg(path, *, task: str = "soz", spec: str | None = None, kind: str = "seeg",
                   segment: float = 60.0, skip: float = 1.0, train_segments: int = 5,
                   min_frequency: float = 900.0, min_length: float = 62.0,
                   exclude_datasets=("Multicenter",), labels: str | None = None,
                   split_file: str | None = SPLIT_FILE, require_split: bool = True,
                   dataset: str = "Omni-iEEG") -> SegmentSet:
    """A task of an Omni-iEEG release (see the module docstring).

    Parameters
    ----------
    path : path-like
        The release root.
    task : {"soz", "ictal", "sleep"}
    kind : {"seeg", "ecog"}
        Kind of channels whose ``channels.tsv`` names no type.
    segment, skip : float
        Segment length and the seconds skipped at each end of a recording.
    train_segments : int
        Segments per training recording (at most).
    min_frequency, min_length : float
        SOZ task: recordings must have a rate above ``min_frequency`` Hz and last at least
        ``min_length`` s.
    exclude_datasets : sequence of str
        SOZ task: centres (the split file's ``dataset``) left out.
    labels : str, optional
        Recording tasks: the ``*_split_cross.csv`` (default :data:`LABELS_FILE`).
    split_file : str or None
        The release's split (``final_split.csv``), relative to ``path`` or absolute.
    require_split : bool
        Stop when the split file is missing (Omni-iEEG); ``ieeg-bids:`` does not.
    dataset : str
        The name used in messages and ``provenance``.

    Returns
    -------
    SegmentSet
    """
    if task not in TASK_CLASSES:
        raise ValueError(f"task must be one of {', '.join(TASK_CLASSES)}; got {task!r}.")
    name = spec or f"omni-ieeg:{path}?task={task}"
    release = IEEGRelease(path, kind=kind, split_file=split_file,
                          require_split=require_split and task == "soz", dataset=dataset)
    options = {"task": task, "kind": kind, "segment_seconds": segment, "skip_seconds": skip,
               "train_segments": train_segments}
    if task == "soz":
        return _soz_task(release, name, options, min_frequency=min_frequency,
                         min_length=min_length, exclude=tuple(exclude_datasets))
    return _recording_task(release, name, options, labels)


def load_ieeg_bids(path, **options) -> SegmentSet:
    """:func:`load_omni_ieeg` for any iEEG-BIDS root (``ieeg-bids:PATH``): the split file is
    optional."""
    options.setdefault("require_split", False)
    options.setdefault("dataset", "iEEG-BIDS")
    options.setdefault("spec", f"ieeg-bids:{path}?task={options.get('task', 'soz')}")
    return load_omni_ieeg(path, **options)


def _segment_set(release, name, options, recordings, units, dropped, skipped, provenance,
                 target) -> SegmentSet:
    if skipped:
        shown = "; ".join(f"{s['recording']}: {s['reason']}" for s in skipped[:3])
        warnings.warn(f"{name}: skipped {len(skipped)} recording(s): {shown}. results.json "
                      "lists them under data.provenance.skipped_recordings.", stacklevel=3)
    if not units:
        reasons = "; ".join(f"{s['recording']}: {s['reason']}" for s in skipped[:5])
        raise ValueError(f"{name}: no recording left for task {options['task']}"
                         + (f" ({reasons})" if reasons else "") + ".")
    provenance = {"loader": "neurofm.datasets.omni_ieeg.load_omni_ieeg",
                  "dataset": release.dataset, "root": str(release.root), "source": SOURCE,
                  "split_file": None if release.split_path is None else str(release.split_path),
                  **options, "positive_class": TASK_CLASSES[options["task"]][1],
                  "skipped_recordings": skipped, **provenance}
    return SegmentSet(name, recordings, pd.concat(units, ignore_index=True), target=target,
                      class_names=list(TASK_CLASSES[options["task"]]),
                      segment_seconds=options["segment_seconds"],
                      skip_seconds=options["skip_seconds"],
                      train_segments=options["train_segments"], provenance=provenance,
                      dropped=pd.DataFrame(dropped, columns=["participant", "recording", "name",
                                                             "reason"]))


def _soz_task(release: IEEGRelease, name, options, *, min_frequency, min_length, exclude):
    skipped, recordings, units, dropped = [], [], [], []
    candidates, filters = _soz_candidates(release, min_frequency, min_length, exclude, skipped)
    for file in candidates:
        try:
            recording, contacts, left_out = release.read(file)
        except ValueError as err:
            skipped.append({"recording": file, "reason": str(err)})
            continue
        if not _soz_filters_pass(recording, min_frequency, min_length, skipped):
            continue
        missing = [c for c in ("soz", "resection") if c not in contacts]
        if missing:
            raise ValueError(f"{release.channels_path(file)} lacks the column(s) {missing}; the "
                             "SOZ task reads the soz and resection labels of every contact.")
        outcome = release.outcome(recording.participant)
        if outcome == UNKNOWN:
            outcome = int(recording.attributes.get("outcome", UNKNOWN))
        soz = contacts["soz"].to_numpy(dtype=int)
        resection = contacts["resection"].to_numpy(dtype=int)
        normal = (resection == 0) & (outcome == 1)
        label = np.where(normal, 0, np.where(soz == 1, 1, -1))
        if not (label >= 0).any() and not (outcome != UNKNOWN and (resection != UNKNOWN).any()):
            skipped.append({"recording": file, "reason": "no labelled contact and no known "
                                                         "outcome with resection labels"})
            continue
        r = len(recordings)
        recordings.append(recording)
        dropped += [(recording.participant, file, n, why) for n, why in left_out]
        units.append(pd.DataFrame({
            "rec": r, "contact": np.arange(len(contacts)), "name": contacts["name"],
            "participant": recording.participant, "session": recording.session, "label": label,
            "split": recording.attributes.get("split", ""), "soz": soz, "resection": resection,
            "outcome": outcome,
            "anatomical": contacts.get("anatomical", "")}))
    provenance = {"filters": filters, "label_rule": SOZ_RULE}
    return _segment_set(release, name, options, recordings, units, dropped, skipped, provenance,
                        "channel")


def _soz_candidates(release, min_frequency, min_length, exclude, skipped):
    """Recordings that pass the split file's filters (all files when there is none)."""
    if release.split is None:
        filters = [(f"frequency > {min_frequency:g} Hz and length >= {min_length:g} s from the "
                    "file headers; interictal and dataset not applied (no split file)")]
        return list(release.files["name"]), filters
    table = release.split
    keep = np.ones(len(table), bool)
    filters = []
    for column, rule, passed in (
            ("frequency", f"frequency > {min_frequency:g}", table["frequency"] > min_frequency),
            ("interictal", "interictal", table["interictal"].astype(bool)
             if table["interictal"].notna().all() else None),
            ("length", f"length >= {min_length:g}", table["length"] >= min_length),
            ("dataset", f"dataset not in {list(exclude)}", ~table["dataset"].isin(exclude))):
        if passed is None:
            filters.append(f"{rule}: not applied ({column} not in the split file)")
            continue
        passed = np.asarray(passed, bool) | (table[column].isna().to_numpy()
                                             if column in ("frequency", "length") else False)
        filters.append(f"{rule}: {int((keep & ~passed).sum())} recording(s) left out")
        keep &= passed
    on_disk = set(release.files["name"])
    chosen = []
    for file in table.index[keep]:
        if file in on_disk:
            chosen.append(file)
        else:
            skipped.append({"recording": file, "reason": f"listed in "
                                                         f"{release.split_path.name} but not "
                                                         "on disk"})
    return chosen, filters


def _soz_filters_pass(recording, min_frequency, min_length, skipped) -> bool:
    """Rate and length from the header where the split file gave none."""
    frequency = recording.attributes.get("frequency", np.nan)
    length = recording.attributes.get("length", np.nan)
    frequency = recording.sfreq if not np.isfinite(frequency) else frequency
    length = recording.seconds if not np.isfinite(length) else length
    if frequency <= min_frequency:
        skipped.append({"recording": recording.name, "reason": f"recorded at {frequency:g} Hz "
                                                              f"(<= {min_frequency:g})"})
        return False
    if length < min_length:
        skipped.append({"recording": recording.name, "reason": f"{length:g} s long "
                                                              f"(< {min_length:g})"})
        return False
    return True


def _recording_task(release: IEEGRelease, name, options, labels):
    task = options["task"]
    classes = TASK_CLASSES[task]
    labels_path = Path(labels or LABELS_FILE.format(task=task)).expanduser()
    labels_path = labels_path if labels_path.is_absolute() else release.root / labels_path
    table = read_labels(labels_path, classes)
    skipped, recordings, units, dropped = [], [], [], []
    on_disk = set(release.files["name"])
    for _, row in table.iterrows():
        file = row["edf_name"]
        if file not in on_disk:
            skipped.append({"recording": file, "reason": f"listed in {labels_path.name} but "
                                                         "not on disk"})
            continue
        try:
            recording, _, left_out = release.read(file)
        except ValueError as err:
            skipped.append({"recording": file, "reason": str(err)})
            continue
        participant = row["participant"] or recording.participant
        units.append(pd.DataFrame({"rec": [len(recordings)], "participant": participant,
                                   "session": recording.session, "label": row["label"],
                                   "split": row["split"], "fold": row["fold"]}))
        recordings.append(recording)
        dropped += [(participant, file, n, why) for n, why in left_out]
    provenance = {"labels_file": str(labels_path),
                  "label_columns": "edf_name, label, patient_name (optional), split or fold"}
    return _segment_set(release, name, options, recordings, units, dropped, skipped, provenance,
                        "recording")


def read_labels(path, classes) -> pd.DataFrame:
    """A ``*_split_cross.csv`` (columns in the module docstring) as ``edf_name``,
    ``participant`` (``""`` when not given), ``label`` (class index), ``split`` and ``fold``
    (``""`` when not given).

    Raises
    ------
    FileNotFoundError
        No such file (names where it was looked for and the option that points elsewhere).
    ValueError
        A missing column, an unknown class, split or fold (file, row and value named).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: the labels of a recording task come "
                                "from a split file like the authors' "
                                "ictal_sleep/<task>_split_cross.csv; pass labels=PATH in the "
                                "data spec.")
    table = read_table(path, sep=",", where="labels file", required=())
    table = table.rename(columns={k: v for k, v in LABEL_ALIASES.items() if v not in table})
    missing = [c for c in ("edf_name", "label") if c not in table]
    if missing:
        raise ValueError(f"{path} lacks the column(s) {missing} (labels file; the authors' "
                         f"files have patient, edf_file, label, split); it has "
                         f"{list(table.columns)}.")
    lookup = {c.lower(): i for i, c in enumerate(classes)} | {"0": 0, "1": 1}
    out = pd.DataFrame({"edf_name": [Path(str(n).strip().lstrip("./")).as_posix()
                                     for n in table["edf_name"]]})
    out["participant"] = [participant_id(p) if str(p).strip() else "" for p in
                          table["patient_name"]] if "patient_name" in table else ""
    values = []
    for i, value in enumerate(table["label"]):
        key = str(value).strip().lower()
        key = str(int(float(key))) if key.replace(".", "", 1).isdigit() else key
        if key not in lookup:
            raise ValueError(f"{path}, label, row {i + 2}: {value!r} is not a class of this task "
                             f"({', '.join(classes)}, or 0 / 1).")
        values.append(lookup[key])
    out["label"] = values
    split = []
    for i, value in enumerate(table.get("split", [""] * len(table))):
        key = str(value).strip().lower()
        if key and key not in SPLIT_NAMES:
            raise ValueError(f"{path}, split, row {i + 2}: {value!r} is not train, val or "
                             "test.")
        split.append(SPLIT_NAMES.get(key, ""))
    out["split"] = split
    out["fold"] = [_fold(v, path, i) for i, v in enumerate(table["fold"])] \
        if "fold" in table else ""
    return out


def _fold(value, path, i) -> str:
    text = str(value).strip()
    if text == "":
        return ""
    try:
        return str(int(float(text)))
    except ValueError:
        raise ValueError(f"{path}, fold, row {i + 2}: {value!r} is not an integer "
                         "fold.") from None
