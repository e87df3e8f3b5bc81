"""MOABB data sets as :class:`~neurofm.datasets.trials.TrialSet`: any dataset, any paradigm.

::

    from moabb.datasets import BNCI2014_001
    trials = from_moabb(BNCI2014_001(), "MotorImagery", subjects=[1, 2])
    trials = load_dataset("moabb:BNCI2014_001?paradigm=LeftRightImagery&subjects=1,2,3")

The trials are the MNE Epochs the paradigm makes (``return_epochs=True``, so volts, not MOABB's
µV arrays), per subject, session and run, with the dataset's channel positions (its montage).
``len(trials)`` is the number of trials ``paradigm.get_data(dataset, subjects)`` gives: the
same process pipeline (:meth:`paradigm.make_process_pipelines`) is run through
:meth:`dataset.get_data`, one run at a time, so that each trial keeps its subject, session, run,
source file and onset in the metadata table.

Band-pass: MOABB's motor-imagery paradigms filter each recording 8-32 Hz by default. A paradigm
named by the spec (or by a string) is built without that filter (``fmin=None, fmax=None``)
unless ``fmin``/``fmax`` are given, so evaluation applies the band it states, once. A band the
paradigm does apply (given ``fmin``/``fmax``, or a paradigm object that filters) is recorded in
:attr:`TrialSet.band`, and evaluation then does not filter again.

Nothing is downloaded here: the files are checked first (:mod:`neurofm.datasets.moabb_files`).
"""

from __future__ import annotations

import difflib
import inspect
import os

import numpy as np

from neurofm.data.data_spec import DataSpec, typed_options
from neurofm.datasets.moabb_files import (
    _Blocked,
    check_moabb_files,
    missing_data_error,
    no_downloads,
    require_moabb,
)
from neurofm.datasets.trials import AppliedBand, TrialSet
from neurofm.sensors.positions import resolve_sensors

#: Paradigm used when none is given, by the dataset's ``paradigm`` attribute.
DEFAULT_PARADIGMS = {"imagery": "MotorImagery", "p300": "P300", "ssvep": "SSVEP",
                     "cvep": "CVEP"}
#: How MOABB band-passes a recording (``moabb.datasets.preprocessing.get_filter_pipeline``).
MOABB_FILTER = "IIR Butterworth order 4, zero-phase (mne raw.filter method='iir'), on each " \
               "continuous recording before epoching"
_FLOAT_OPTIONS = {"tmin", "tmax", "fmin", "fmax", "resample", "overlap"}
_INT_OPTIONS = {"n_classes"}
_LIST_OPTIONS = {"events", "channels", "subjects"}


def _classes(module, base) -> dict[str, type]:
    return {name: obj for name, obj in vars(module).items()
            if isinstance(obj, type) and issubclass(obj, base) and not inspect.isabstract(obj)}


def _find(name: str, classes: dict[str, type], what: str, where: str) -> type:
    if name in classes:
        return classes[name]
    folded = {k.lower().replace("-", "_"): v for k, v in classes.items()}
    key = name.strip().lower().replace("-", "_")
    if key in folded:
        return folded[key]
    close = difflib.get_close_matches(name, list(classes), n=3, cutoff=0.6)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    raise ValueError(f"Unknown MOABB {what} {name!r}.{hint} Use a class name from {where} "
                     f"(e.g. {', '.join(list(classes)[:4])}).")


def dataset_by_name(name: str):
    """A MOABB dataset object from its class name (``"BNCI2014_001"``, case-insensitive; the
    code's ``-`` may be ``_``).

    Raises
    ------
    ValueError
        No such dataset in ``moabb.datasets`` (close names are suggested).
    """
    require_moabb()
    import moabb.datasets
    from moabb.datasets.base import BaseDataset

    return _find(name, _classes(moabb.datasets, BaseDataset), "dataset", "moabb.datasets")()


def paradigm_by_name(name: str, **options):
    """A MOABB paradigm object from its class name, without MOABB's default band-pass.

    ``fmin``/``fmax`` default to None (no filter: evaluation applies its band) for paradigms
    that take them; ``n_classes`` defaults to the number of ``events`` given.

    Raises
    ------
    ValueError
        An unknown paradigm, an option the paradigm does not take (the valid ones are listed),
        or a filter-bank paradigm (a trial set has one band).
    """
    require_moabb()
    import moabb.paradigms
    from moabb.paradigms.base import BaseProcessing

    cls = _find(name, _classes(moabb.paradigms, BaseProcessing), "paradigm", "moabb.paradigms")
    parameters = inspect.signature(cls).parameters
    if "filters" in parameters:
        raise ValueError(f"{cls.__name__} is a filter-bank paradigm (several copies of each "
                         "trial); a trial set has one band. Use MotorImagery, LeftRightImagery, "
                         "P300 or SSVEP.")
    unknown = sorted(set(options) - set(parameters))
    if unknown:
        raise ValueError(f"{cls.__name__} takes no option {', '.join(unknown)}; its options: "
                         f"{', '.join(p for p in parameters if p != 'scorer')}.")
    if "fmin" in parameters and "fmax" in parameters:
        options.setdefault("fmin", None)
        options.setdefault("fmax", None)
    if options.get("events") and "n_classes" in parameters:
        options.setdefault("n_classes", len(options["events"]))
    return cls(**options)


def load_moabb(name: str, *, paradigm: str | None = None, subjects=None, spec: str | None = None,
               **paradigm_options) -> TrialSet:
    """The trials of the MOABB dataset ``name`` (the ``moabb:NAME?...`` spec).

    Parameters
    ----------
    name : str
        Dataset class name (``BNCI2014_001``, ``PhysionetMI``, ``FakeDataset`` …).
    paradigm : str, optional
        Paradigm class name; default by the dataset's kind (:data:`DEFAULT_PARADIGMS`).
    subjects : list of int, optional
        Default: every subject.
    spec : str, optional
        The spec text, the trial set's name.
    **paradigm_options
        Options of the paradigm (``tmin``, ``tmax``, ``events``, ``fmin``, ``fmax``, ``channels``,
        ``resample`` …).
    """
    dataset = dataset_by_name(name)
    if paradigm is None:
        paradigm = _default_paradigm(dataset)
    return from_moabb(dataset, paradigm_by_name(paradigm, **paradigm_options), subjects,
                      name=spec or f"moabb:{type(dataset).__name__}")


def moabb_options(spec: DataSpec) -> dict:
    """The query of a ``moabb:`` spec as keyword arguments of :func:`load_moabb`
    (``subjects=1,2,3`` or ``subjects=1-3`` -> ``[1, 2, 3]``, ``events=a,b`` -> a list, numbers
    as numbers)."""
    options = typed_options(spec, ints=_INT_OPTIONS, floats=_FLOAT_OPTIONS, lists=_LIST_OPTIONS)
    if "subjects" in options:
        try:
            options["subjects"] = [s for item in options["subjects"] for s in _numbers(item)]
        except ValueError:
            raise ValueError(f"In data spec {spec.text!r}: subjects must be numbers or ranges "
                             f"(subjects=1,2,3 or subjects=1-87,89-109); got "
                             f"{spec.options['subjects']!r}.") from None
    return options


def _numbers(item: str) -> list[int]:
    """``"7"`` -> ``[7]``; ``"1-3"`` -> ``[1, 2, 3]``."""
    first, dash, last = item.partition("-")
    if not dash:
        return [int(item)]
    if int(last) < int(first):
        raise ValueError(item)
    return list(range(int(first), int(last) + 1))


def _default_paradigm(dataset) -> str:
    kind = getattr(dataset, "paradigm", None)
    if kind not in DEFAULT_PARADIGMS:
        raise ValueError(f"{type(dataset).__name__} is a {kind!r} dataset; name its paradigm "
                         f"(paradigm=...) from moabb.paradigms.")
    return DEFAULT_PARADIGMS[kind]


def from_moabb(dataset, paradigm=None, subjects=None, *, name: str | None = None) -> TrialSet:
    """The trials a MOABB paradigm makes of a MOABB dataset, with their metadata.

    Parameters
    ----------
    dataset : moabb.datasets.base.BaseDataset
        Any MOABB dataset object (``FakeDataset`` included).
    paradigm : moabb paradigm or str, optional
        A paradigm object (used as it is: a band-pass it applies is recorded in
        :attr:`TrialSet.band`) or a class name (built by :func:`paradigm_by_name`, without
        MOABB's default band-pass); default by the dataset's kind.
    subjects : list of int, optional
        Default: every subject of the dataset.
    name : str, optional
        The trial set's name (default ``moabb:<dataset class>``).

    Returns
    -------
    TrialSet
        Volts, one row per trial: subject, session and run as MOABB names them, the subject's
        source file where MOABB's file list tells it, onset in seconds, the event name as label.

    Raises
    ------
    MissingDataError
        The data are not on disk (names the folder and the download command).
    ValueError
        Unknown subjects or events, a paradigm that does not fit the dataset, or runs whose
        channels or sampling rates differ.
    """
    require_moabb()
    dataset_name = type(dataset).__name__
    name = name or f"moabb:{dataset_name}"
    if paradigm is None:
        paradigm = _default_paradigm(dataset)
    if isinstance(paradigm, str):
        paradigm = paradigm_by_name(paradigm)
    filters = list(getattr(paradigm, "filters", None) or [[None, None]])
    if len(filters) != 1:
        raise ValueError(f"{type(paradigm).__name__} has {len(filters)} filter bands; a trial "
                         "set has one band. Use a paradigm with one band.")
    _check_events(dataset, paradigm)
    if not paradigm.is_valid(dataset):
        raise ValueError(f"The paradigm {type(paradigm).__name__} does not fit {dataset_name} "
                         f"(a {dataset.paradigm!r} dataset with events "
                         f"{', '.join(dataset.event_id)}).")
    subjects = _check_subjects(dataset, subjects)
    files = check_moabb_files(dataset, subjects, name=dataset_name)
    class_names = list(paradigm.used_events(dataset))
    pipeline = paradigm.make_process_pipelines(dataset, return_epochs=True)[0]
    labels_pipeline = paradigm.make_labels_pipeline(dataset, return_epochs=True)
    with no_downloads() as refused:
        try:
            data = dataset.get_data(subjects=subjects, process_pipeline=pipeline)
        except _Blocked as blocked:
            raise missing_data_error(dataset, dataset_name, blocked.what, blocked.folder) \
                from None
    if refused:
        raise missing_data_error(dataset, dataset_name, *refused[0])

    X, labels, rows, info0, where0 = [], [], [], None, None
    for subject, sessions in data.items():
        for session_index, (session, runs) in enumerate(sessions.items()):
            for run_index, (run, epochs) in enumerate(runs.items()):
                if epochs is None:  # a run without any of the paradigm's events
                    continue
                where = f"subject {subject}, session {session}, run {run}"
                info0, where0 = _same_channels(info0, where0, epochs.info, where, dataset_name)
                X.append(epochs.get_data(copy=False))
                labels.append(np.asarray(labels_pipeline.transform(epochs)).astype(str))
                source = _source(files[subject], sessions, session_index, run_index)
                rows.append((len(epochs), str(subject), str(session), str(run), source,
                             _onsets(epochs, paradigm)))
    if not X:
        raise ValueError(f"{dataset_name}: no trial of the events {class_names} in subjects "
                         f"{subjects}.")
    labels = np.concatenate(labels)
    y = np.array([class_names.index(label) for label in labels])
    columns = {key: np.concatenate([np.full(row[0], row[i], dtype=object) for row in rows])
               for i, key in enumerate(("subject", "session", "run", "source"), start=1)}
    l_freq, h_freq = filters[0]
    band = None if l_freq is None and h_freq is None else AppliedBand(
        None if l_freq is None else float(l_freq), None if h_freq is None else float(h_freq),
        MOABB_FILTER, f"MOABB {type(paradigm).__name__}")
    return TrialSet(name=name, X=np.concatenate(X), y=y, sfreq=float(info0["sfreq"]),
                    sensors=resolve_sensors(info0), task="classification",
                    class_names=class_names, onset=np.concatenate([r[5] for r in rows]),
                    band=band, provenance=_provenance(dataset, paradigm, subjects, files),
                    **columns)


def _check_events(dataset, paradigm) -> None:
    events = getattr(paradigm, "events", None) or []
    unknown = [e for e in events if e not in dataset.event_id]
    if unknown:
        raise ValueError(f"{type(dataset).__name__} has no event {', '.join(map(repr, unknown))}; "
                         f"its events: {', '.join(dataset.event_id)}.")


def _check_subjects(dataset, subjects) -> list[int]:
    if subjects is None:
        return list(dataset.subject_list)
    subjects = [int(s) if isinstance(s, str) and s.isdigit() else s for s in subjects]
    unknown = [s for s in subjects if s not in dataset.subject_list]
    if unknown:
        listed = dataset.subject_list
        shown = f"{listed[0]}-{listed[-1]}" if len(listed) > 10 else ", ".join(map(str, listed))
        raise ValueError(f"{type(dataset).__name__} has no subject(s) {unknown}; its subjects: "
                         f"{shown}.")
    return list(subjects)


def _same_channels(info0, where0, info, where, dataset_name):
    if info0 is None:
        return info, where
    if info["ch_names"] != info0["ch_names"] or info["sfreq"] != info0["sfreq"]:
        differ = sorted(set(info["ch_names"]) ^ set(info0["ch_names"]))
        detail = (f"channels {differ[:6]}" if differ else
                  f"{info['sfreq']:g} Hz vs {info0['sfreq']:g} Hz" if info["sfreq"] !=
                  info0["sfreq"] else "channel order")
        raise ValueError(f"{dataset_name}: {where} differs from {where0} ({detail}); a trial set "
                         "has one channel layout and rate. Leave those subjects out (subjects=...)"
                         ", pick channels (channels=...) or resample (resample=...).")
    return info0, where0


def _onsets(epochs, paradigm) -> np.ndarray:
    """Seconds of each trial's first sample on its recording's time axis (MNE's count)."""
    if getattr(paradigm, "resample", None) is None:
        raw_sfreq = epochs.info["sfreq"]
    else:  # MNE keeps event samples at the recording's rate after Epochs.resample
        raw_sfreq = getattr(epochs, "_raw_sfreq", None)
        if raw_sfreq is None:
            return np.full(len(epochs), np.nan)
    return epochs.events[:, 0] / raw_sfreq + epochs.tmin


def _source(files: list, sessions: dict, session_index: int, run_index: int) -> str:
    """The file a run came from when MOABB's file list tells it: one file per session, or one
    per run; else the folder holding the subject's files; ``""`` for data made in memory."""
    if not files:
        return ""
    if len(files) == len(sessions):
        return str(files[session_index])
    runs_before = sum(len(runs) for runs in list(sessions.values())[:session_index])
    if len(files) == sum(len(runs) for runs in sessions.values()):
        return str(files[runs_before + run_index])
    return os.path.commonpath([str(f) for f in files]) if len(files) > 1 else str(files[0])


def _provenance(dataset, paradigm, subjects, files) -> dict:
    import moabb

    options = {key: getattr(paradigm, key) for key in ("tmin", "tmax", "baseline", "channels",
                                                      "resample", "events", "n_classes")
               if getattr(paradigm, key, None) is not None}
    options["filters"] = [list(band) for band in paradigm.filters]
    return {"loader": "moabb", "moabb_version": moabb.__version__,
            "dataset": type(dataset).__name__, "code": dataset.code,
            "interval": list(dataset.interval), "paradigm": type(paradigm).__name__,
            "paradigm_options": options, "events": dict(paradigm.used_events(dataset)),
            "subjects": [int(s) for s in subjects],
            "n_files": int(sum(len(f) for f in files.values()))}
