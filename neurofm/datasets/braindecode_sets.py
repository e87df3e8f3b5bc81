"""braindecode data sets as trial sets: ``from_braindecode`` and ``braindecode:CLASS?...``.

:func:`from_braindecode` turns any braindecode ``BaseConcatDataset`` into a
:class:`~neurofm.datasets.trials.TrialSet`:

* **recordings** (``RawDataset``, what ``TUHAbnormal``, ``SleepPhysionet``, ``MOABBDataset``
  give) are cut into windows of ``window`` seconds every ``stride`` seconds, labelled by the
  dataset's target (``description[target_name]``, e.g. TUAB's ``pathological``);
* **ready windows** (``EEGWindowsDataset`` from braindecode's windowers, their
  ``i_start_in_trial`` / ``i_stop_in_trial`` and ``target``; ``WindowsDataset`` of MNE epochs)
  are taken as they are.

Each recording's channels are reduced to ``montage`` (:mod:`neurofm.datasets.montages`; None
keeps the EEG channels as they are, which must then be the same in every recording). A recording
read from a file and not loaded or changed since (``raw.preload`` False) stays on disk: its
windows are read from the file like ``tuab:``'s (:mod:`neurofm.datasets.recordings`); a recording
braindecode holds in memory (preloaded, preprocessed) is read from memory.

**Metadata** from the description columns: ``subject``; ``session`` (an integer session of a TUH
file is written as its file-name code, ``4`` -> ``s004``, so that both routes give the same
groups); ``run`` (TUH: the token of the file name); ``source`` (``path``). The official split:
``train`` (bool, the TUH classes) or ``split`` (``"train"``/``"eval"``, ``TUHEvents``) — ``eval``
is the test set and the training subjects are split 80/20 as in :mod:`neurofm.datasets.tuh` —
so ``braindecode:TUHAbnormal?path=ROOT`` and ``tuab:ROOT`` give the same trials and groups.

**No downloads.** braindecode's ``SleepPhysionet`` downloads what it lacks (and retries five
times when offline), ``CHBMIT(root=None)`` downloads from Zenodo. ``braindecode:SleepPhysionet``
checks MNE's sleep folder first and stops with a :class:`~neurofm.datasets.moabb_files.
MissingDataError` naming the missing files; ``braindecode:CHBMIT`` needs ``root``; every class is
built with downloads and network connections refused (:func:`downloads_refused`).

braindecode is imported only here and only when called: ``braindecode.datasets`` imports
torchaudio, which loads only beside the torch version it was built for.
"""

from __future__ import annotations

import contextlib
import inspect
import socket
from pathlib import Path

import numpy as np
import pandas as pd

from neurofm.compat import require_braindecode
from neurofm.datasets.missing import missing_data
from neurofm.datasets.moabb_files import MissingDataError, MissingExtraError
from neurofm.datasets.montages import Derivation, resolve_montage
from neurofm.datasets.recordings import (
    RecordingFile,
    SkippedRecordings,
    open_raw,
    recording_windows,
)
from neurofm.datasets.sleep_edf import SLEEP_EDF_SOURCE
from neurofm.datasets.trials import TrialSet
from neurofm.datasets.tuh import TUAB_CLASSES, VAL_FRACTION, official_split, tuh_codes
from neurofm.sensors.positions import resolve_sensors

#: Options of ``braindecode:CLASS?...`` that are neurofm's (every other key goes to the class).
OWN_OPTIONS = ("window", "stride", "montage", "target", "val_fraction", "lazy")
#: Default montage per braindecode class (None: the channels as recorded).
DEFAULT_MONTAGES = {"TUHAbnormal": "tcp16", "TUHEvents": "tcp16", "TUH": "tcp16",
                    "SleepPhysionet": "sleep", "CHBMIT": "tcp16"}


def require_braindecode_datasets():
    """``braindecode.datasets`` (imported here, on demand).

    Raises
    ------
    MissingExtraError
        braindecode is not installed, or its data sets cannot be imported beside this torch
        (torchaudio); the message says so and names the loaders that need neither.
    """
    require_braindecode("the braindecode: data spec (the loaders tuab:, tuev:, chbmit:, "
                        "sleep-edf: and seed-v: read the same releases without braindecode)")
    try:
        from braindecode import datasets
    except (ImportError, OSError) as err:  # torchaudio may fail to load beside this torch
        raise MissingExtraError(
            f"braindecode data sets cannot be imported beside this torch ({type(err).__name__}: "
            f"{err}). The loaders tuab:, tuev:, chbmit:, sleep-edf: and seed-v: read the same "
            "releases without braindecode.") from err
    return datasets


@contextlib.contextmanager
def downloads_refused(dataset: str):
    """Within this block ``pooch.retrieve`` only answers for files on disk and internet
    connections raise :class:`MissingDataError` (a data set's class cannot download)."""
    import pooch

    def refuse(what: str, folder=""):
        raise MissingDataError(dataset, str(folder or "the data set's folder"), "",
                               missing=f"missing: {what}",
                               how="put the files there (or pass the folder that holds them) "
                                   "and run again.")

    def retrieve_local(url, known_hash=None, fname=None, path=None, *args, **kwargs):
        if path is not None and fname is not None and (Path(path) / fname).is_file():
            return str(Path(path) / fname)
        return refuse(f"{fname or url} (from {url})", path)

    real_connect = socket.socket.connect

    def connect_local(sock, address):
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            return refuse(f"a network connection to {address}")
        return real_connect(sock, address)

    patches = [(pooch, "retrieve", retrieve_local), (socket.socket, "connect", connect_local),
               (socket, "create_connection", lambda address, *a, **k: refuse(
                   f"a network connection to {address}"))]
    saved = [(owner, attr, getattr(owner, attr)) for owner, attr, _ in patches]
    for owner, attr, replacement in patches:
        setattr(owner, attr, replacement)
    try:
        yield
    finally:
        for owner, attr, original in saved:
            setattr(owner, attr, original)


def check_sleep_physionet(subject_ids=None, recording_ids=None) -> None:
    """The Sleep-EDF files ``SleepPhysionet(subject_ids, recording_ids)`` reads, checked on disk
    in MNE's sleep folder (it would download the missing ones).

    Raises
    ------
    MissingDataError
        Naming the folder and the first missing files.
    """
    from mne.datasets.sleep_physionet._utils import AGE_SLEEP_RECORDS, _data_path

    subjects = set(range(83) if subject_ids is None else np.atleast_1d(subject_ids).tolist())
    nights = set([1, 2] if recording_ids is None else np.atleast_1d(recording_ids).tolist())
    records = pd.read_csv(AGE_SLEEP_RECORDS)
    wanted = records[records["subject"].isin(subjects) & records["night"].isin(nights)]
    folder = Path(_data_path())
    missing = [f for f in wanted["fname"] if not (folder / f).is_file()]
    if missing:
        shown = ", ".join(missing[:4]) + (f" and {len(missing) - 4} more" if len(missing) > 4
                                          else "")
        raise MissingDataError(
            "braindecode:SleepPhysionet", str(folder), "", missing=f"missing: {shown}",
            how=(f"put the Sleep-EDF files there (obtain them from {SLEEP_EDF_SOURCE}), or read "
                 "a folder that holds them with sleep-edf:PATH."))


def _typed(value: str, default):
    """A query value read as a class parameter: ``true``/``false`` a bool, digits an int (a
    float where the default is one), a comma list a list (of ints where they are digits), the
    rest a string."""
    if isinstance(default, bool) or value.lower() in ("true", "false"):
        return value.lower() == "true"
    if "," in value:
        items = [v for v in value.split(",") if v]
        return [int(v) if v.lstrip("-").isdigit() else v for v in items]
    if value.lstrip("-").isdigit():
        return float(value) if isinstance(default, float) else int(value)
    return value


def load_braindecode(class_name: str, options: dict, *, spec: str | None = None) -> TrialSet:
    """``braindecode:CLASS?key=value&...``: build the braindecode data set, then
    :func:`from_braindecode`.

    ``window``, ``stride``, ``montage``, ``target``, ``val_fraction`` and ``lazy`` are neurofm's
    options; every other key is a parameter of the class (``path``, ``version``,
    ``on_missing_files``, ``subject_ids`` …), its value read as the type of the parameter's
    default. braindecode's TUH classes refuse a folder with fewer files than the full release
    unless given ``on_missing_files=warn``.

    Raises
    ------
    ValueError
        An unknown class or class parameter (the valid ones listed).
    MissingDataError
        The data are not on disk (nothing is downloaded).
    """
    datasets = require_braindecode_datasets()
    cls = getattr(datasets, class_name, None)
    if not (inspect.isclass(cls) and issubclass(cls, datasets.BaseConcatDataset)):
        known = [n for n in getattr(datasets, "__all__", []) if n[0].isupper()]
        raise ValueError(f"braindecode has no data set {class_name!r}; known: "
                         f"{', '.join(known)}.")
    ours = {k: options[k] for k in OWN_OPTIONS if k in options}
    params = inspect.signature(cls.__init__).parameters
    kwargs = {}
    for key, value in options.items():
        if key in OWN_OPTIONS:
            continue
        if key not in params and not any(p.kind == p.VAR_KEYWORD for p in params.values()):
            raise ValueError(f"braindecode {class_name} has no parameter {key!r}; it takes "
                             f"{', '.join(p for p in params if p != 'self')} (and neurofm's "
                             f"{', '.join(OWN_OPTIONS)}).")
        default = params[key].default if key in params else None
        kwargs[key] = _typed(value, default)
    name = spec or f"braindecode:{class_name}"
    if class_name == "SleepPhysionet":
        check_sleep_physionet(kwargs.get("subject_ids"), kwargs.get("recording_ids"))
    if class_name == "CHBMIT" and kwargs.get("root") is None:
        raise missing_data(dataset=name, folder="(no root given)",
                           layout="the BIDS CHB-MIT (participants.tsv, sub-*/)",
                           source="https://zenodo.org/records/10259996 (pass root=PATH; "
                                  "braindecode's CHBMIT() would download it), or read "
                                  "PhysioNet's release with chbmit:PATH")
    if "path" in kwargs and not Path(str(kwargs["path"])).expanduser().exists():
        raise missing_data(dataset=name, folder=kwargs["path"], layout="the release's files",
                           source="the data set's distributor")
    if "path" in kwargs:
        kwargs["path"] = str(Path(str(kwargs["path"])).expanduser())
    with downloads_refused(name):
        try:
            concat = cls(**kwargs)
        except RuntimeError as err:
            if "Expected" in str(err) and "files" in str(err):
                raise ValueError(f"{name}: {err} Add on_missing_files=warn to the spec to read "
                                 "a partial copy.") from None
            raise
    montage = ours.get("montage", DEFAULT_MONTAGES.get(class_name))
    return from_braindecode(
        concat, window=float(ours.get("window", 10.0)),
        stride=None if "stride" not in ours else float(ours["stride"]),
        montage=None if montage in (None, "none") else montage, target=ours.get("target"),
        val_fraction=float(ours.get("val_fraction", VAL_FRACTION)),
        lazy=None if "lazy" not in ours else str(ours["lazy"]).lower() == "true", name=name)


def _session(description: pd.Series, path: str | None) -> str:
    session = description.get("session")
    if path is not None and isinstance(session, (int, np.integer)):
        code = f"s{int(session):03d}"
        if f"_{code}_" in Path(path).name:
            return code
    return "0" if session is None or (isinstance(session, float) and np.isnan(session)) \
        else str(session)


def _run(description: pd.Series, path: str | None) -> str:
    if path is not None and tuh_codes(path)[2] != "0":
        return tuh_codes(path)[2]
    run = description.get("run")
    return "0" if run is None else str(run)


def _part(description: pd.Series) -> str | None:
    if "train" in description.index:
        return "train" if bool(description["train"]) else "eval"
    if "split" in description.index and str(description["split"]) in ("train", "eval"):
        return str(description["split"])
    return None


def _as_recorded(ch_names) -> Derivation:
    return Derivation("as-recorded", tuple(ch_names), tuple(ch_names), np.eye(len(ch_names)))


def from_braindecode(dataset, *, window: float | None = 10.0, stride: float | None = None,
                     montage: str | None = "tcp16", target: str | None = None,
                     class_names: list[str] | None = None, val_fraction: float = VAL_FRACTION,
                     lazy: bool | None = None, name: str = "braindecode") -> TrialSet:
    """A trial set from a braindecode ``BaseConcatDataset`` (see the module docstring).

    Parameters
    ----------
    dataset : braindecode.datasets.BaseConcatDataset
    window, stride : float
        Window length and step (s) for recordings (ignored for ready windows).
    montage : str or None
        A montage of :mod:`neurofm.datasets.montages`; None keeps the EEG channels as recorded
        (the same in every recording). A recording lacking a channel is skipped with the reason.
    target : str, optional
        The description column that labels a recording (default: the dataset's
        ``target_name``).
    class_names : list of str, optional
        Names of the classes (default: TUAB's for ``pathological``, else the sorted values).
    val_fraction : float
        Share of training subjects put in validation when the description has an official split.
    lazy : bool, optional
        As in :func:`neurofm.datasets.tuh.load_tuab`.
    name : str

    Returns
    -------
    TrialSet
    """
    parts = list(dataset.datasets)
    if not parts:
        raise ValueError(f"{name}: the braindecode data set is empty.")
    target = target or getattr(parts[0], "target_name", None)
    if isinstance(target, (list, tuple)):
        target = target[0]
    if target is None and "pathological" in parts[0].description.index:
        target = "pathological"  # windows of TUHAbnormal carry it as their target
    skipped = SkippedRecordings()
    recordings, rows, sources = [], [], []
    for ds in parts:
        description = ds.description
        raw = getattr(ds, "raw", None)
        signals = raw if raw is not None else ds.windows
        path = str(description["path"]) if "path" in description.index else None
        if path is None and raw is not None and raw.filenames and raw.filenames[0]:
            path = str(raw.filenames[0])
        where = path or f"recording {len(sources)}"
        on_disk = raw is not None and path is not None and not raw.preload and \
            Path(path).is_file() and not hasattr(ds, "windows")
        if on_disk:  # read the file as neurofm's reader sees it (braindecode renames labels)
            signals = open_raw(path)
        try:
            derivation = (resolve_montage(signals.ch_names, montage, source="the recording")
                          if montage
                          else _as_recorded(_eeg_names(signals)))
            if recordings and derivation.names != recordings[0].derivation.names:
                raise ValueError(f"{where} has channels {list(derivation.names)[:5]}…, not "
                                 f"those of the first recording; pass a montage")
        except ValueError as err:
            skipped.add(where, str(err))
            continue
        onsets, labels = _windows_of(ds, raw, window, stride, target)
        recordings.append(RecordingFile(path or "", float(signals.info["sfreq"]),
                                        int(raw.n_times) if raw is not None else 0,
                                        derivation, signals.info.get("line_freq")))
        sources.append((ds, raw, on_disk))
        rows.append(pd.DataFrame({
            "rec": len(recordings) - 1, "onset": onsets, "label": labels,
            "subject": str(description.get("subject", len(rows))),
            "session": _session(description, path), "run": _run(description, path),
            "part": _part(description) or ""}))
    frame = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(
        columns=["rec", "onset", "label", "subject", "session", "run", "part"])
    frame, names = _labelled(frame, target, class_names)
    if len(frame) and (frame["part"] != "").all():
        by_rec = frame.groupby("rec").first()
        split = official_split(by_rec["part"], by_rec["subject"],
                               by_rec["label"] if target == "pathological" else None,
                               val_fraction=val_fraction)
        frame["split"] = pd.Series(split, index=by_rec.index).loc[frame["rec"]].to_numpy()
    provenance = {"loader": "neurofm.datasets.braindecode_sets.from_braindecode",
                  "braindecode_class": type(dataset).__name__, "target": target,
                  "window_stride_seconds": stride}
    seconds = window if window is not None and not hasattr(parts[0], "crop_inds") and \
        not hasattr(parts[0], "windows") else _window_seconds(parts[0])
    layout = resolve_sensors(_info_for(recordings[0])) if recordings else None
    if all(on_disk for _, _, on_disk in sources):
        return recording_windows(name, recordings, frame, window_seconds=seconds,
                                 montage=montage or "as-recorded", class_names=names,
                                 skipped=skipped, provenance=provenance, lazy=lazy,
                                 layout=layout)
    skipped.warn(name)
    X = _read_in_memory(recordings, sources, frame, seconds)
    return TrialSet(name=name, X=X, y=frame["label"].to_numpy(dtype=np.int64),
                    subject=frame["subject"].to_numpy(), sfreq=recordings[0].sfreq,
                    sensors=layout, class_names=names,
                    split=frame["split"].to_numpy() if "split" in frame else None,
                    session=frame["session"].to_numpy(), run=frame["run"].to_numpy(),
                    source=[recordings[r].path for r in frame["rec"]],
                    onset=frame["onset"].to_numpy(),
                    provenance={**provenance, "in_memory": True,
                                "skipped_recordings": list(skipped.items)})


def _labelled(frame: pd.DataFrame, target, class_names) -> tuple[pd.DataFrame, list[str]]:
    """Labels as class indices, and the class names."""
    values = frame["label"].tolist()
    if class_names is None and target == "pathological":
        class_names = TUAB_CLASSES
    if class_names is None:
        ordered = sorted(set(values))
        frame["label"] = [ordered.index(v) for v in values]
        return frame, [str(v) for v in ordered]
    frame["label"] = np.asarray(values).astype(int)
    return frame, list(class_names)


def _eeg_names(obj) -> list[str]:
    types = obj.get_channel_types()
    return [n for n, t in zip(obj.ch_names, types) if t in ("eeg", "seeg", "ecog")]


def _info_for(rec: RecordingFile):
    import mne

    return mne.create_info(list(rec.derivation.names), rec.sfreq, "eeg")


def _window_seconds(ds) -> float:
    if hasattr(ds, "crop_inds"):
        start, stop = ds.crop_inds[0, 1:]
        return (stop - start) / ds.raw.info["sfreq"]
    return ds.windows.times.size / ds.windows.info["sfreq"]


def _windows_of(ds, raw, window, stride, target):
    """``(onsets [k] s, labels [k])`` of one braindecode data set."""
    if hasattr(ds, "crop_inds") and raw is not None:  # EEGWindowsDataset
        return ds.crop_inds[:, 1] / raw.info["sfreq"], list(ds.y)
    if hasattr(ds, "windows"):  # WindowsDataset (MNE epochs)
        epochs = ds.windows
        return epochs.events[:, 0] / epochs.info["sfreq"], list(epochs.metadata["target"])
    if window is None:
        raise ValueError("Cutting braindecode recordings into windows needs window=SECONDS.")
    if target is None:
        raise ValueError(f"{type(ds).__name__} recordings carry no target (description column) "
                         "to label their windows: pass target=COLUMN, or cut labelled windows "
                         "with braindecode first (create_windows_from_events, e.g. for sleep "
                         "stages) and pass those.")
    step = window if stride is None else stride
    duration = raw.n_times / raw.info["sfreq"]
    n = int(np.floor((duration - window) / step + 1e-9)) + 1 if duration >= window else 0
    label = ds.description[target]
    label = label.item() if hasattr(label, "item") else label
    return np.arange(n) * step, [label] * n


def _read_in_memory(recordings, sources, frame, seconds) -> np.ndarray:
    """The windows of ``frame``, read from the braindecode objects: ``[n, C, T]`` float32."""
    n_times = round(seconds * recordings[0].sfreq)
    X = np.empty((len(frame), len(recordings[0].derivation.names), n_times), np.float32)
    for r, group in frame.groupby("rec", sort=False):
        rec, (ds, raw, _) = recordings[r], sources[r]
        if hasattr(ds, "windows"):
            data = ds.windows.get_data(picks=list(rec.derivation.picks))
            X[group.index] = rec.derivation.apply(data)[..., :n_times]
            continue
        picks = [raw.ch_names.index(p) for p in rec.derivation.picks]
        for i, onset in zip(group.index, group["onset"]):
            start = round(onset * rec.sfreq)
            X[i] = rec.derivation.apply(raw.get_data(picks=picks, start=start,
                                                     stop=start + n_times))
    return X
