"""iEEG-BIDS releases with clinical contact labels: Omni-iEEG and any iEEG-BIDS root.

Source of the columns and their meanings: the authors' code (roychowdhuryresearch/Omni-iEEG:
``omni_ieeg/dataloader/datafilter.py`` reads ``participants.tsv`` — ``participant_id``,
``dataset``, ``outcome`` with -1 unknown, ``event_annotation`` — and each
``sub-*/*/ieeg/*.edf`` with its ``*_channels.tsv`` — ``soz``, ``resection``, ``good``,
``sampling_frequency``; ``channel_model/.../features.py`` reads ``final_split.csv``'s
``patient_name, edf_name, split, frequency, interictal, length, outcome, has_resection,
has_soz, dataset``). The other ``channels.tsv`` columns (``low_cutoff``, ``high_cutoff``,
``edf_length``, ``anatomical``) are from the release description and not used by the tasks.
The release layout under ``ROOT``::

    participants.tsv                          participant_id, dataset, outcome, event_annotation
    sub-*/ses-*/ieeg/*_ieeg.edf               the recordings (any MNE-readable iEEG-BIDS format)
    sub-*/ses-*/ieeg/*_channels.tsv           name, sampling_frequency, low_cutoff, high_cutoff,
                                              edf_length, good, soz, resection, anatomical
    derivatives/datasplit/final_split.csv     patient_name, edf_name, split, frequency,
                                              interictal, length, outcome, has_resection,
                                              has_soz, dataset

``-1`` or ``"-1"`` (and BIDS's ``n/a``) mean unknown in every label column. ``outcome`` is the
surgical outcome (1: good, 0: poor), ``soz`` marks seizure-onset-zone contacts, ``resection``
the contacts removed by surgery, ``good`` (0: bad contact) the contacts to use; ``edf_name`` is
the recording's path relative to ``ROOT``.

Any iEEG-BIDS root reads the same way: its ``channels.tsv`` ``type`` column (``SEEG``,
``ECOG`` …) gives the channel kinds (without one, every channel is ``kind``, default sEEG) and
``status == "bad"`` marks bad channels as ``good == 0`` does. Where a recording has an
``*_electrodes.tsv`` beside it, it is opened with mne-bids (``read_raw_bids``), which places the
contacts from it (MNI space, or subject space with a transform, mapped to the head frame by
:func:`neurofm.sensors.resolve_sensors`); without one, the contacts are position-unknown
(docs/sensors.md, "Contacts without coordinates"). The release is not strict BIDS (its
``channels.tsv`` lacks ``type`` and ``units``), so ``channels.tsv`` is read here, not by
mne-bids.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from neurofm.datasets.missing import missing_data
from neurofm.datasets.recordings import open_raw
from neurofm.datasets.segments import LabelledRecording
from neurofm.sensors import BRAIN_KINDS, resolve_sensors

#: Value of an unknown label.
UNKNOWN = -1
#: Columns of an Omni-iEEG ``channels.tsv`` (issue text / Omni-iEEG release description).
CHANNEL_COLUMNS = ("name", "sampling_frequency", "low_cutoff", "high_cutoff", "edf_length",
                   "good", "soz", "resection", "anatomical")
#: Integer label columns of ``channels.tsv`` (-1: unknown).
LABEL_COLUMNS = ("good", "soz", "resection")
#: Columns of ``participants.tsv`` read here.
PARTICIPANT_COLUMNS = ("participant_id", "dataset", "outcome", "event_annotation")
#: Columns of ``derivatives/datasplit/final_split.csv``.
SPLIT_COLUMNS = ("patient_name", "edf_name", "split", "frequency", "interictal", "length",
                 "outcome", "has_resection", "has_soz", "dataset")
#: Where the release keeps its split.
SPLIT_FILE = "derivatives/datasplit/final_split.csv"
#: Signal files of an iEEG-BIDS recording.
SIGNAL_SUFFIXES = (".edf", ".vhdr", ".fif", ".set", ".bdf")
#: Kinds of BIDS channel types (anything else is not a brain channel and is left out).
BIDS_TYPES = {"SEEG": "seeg", "ECOG": "ecog", "DBS": "dbs", "EEG": "eeg"}
#: Spellings of the split column and the split they mean.
SPLIT_NAMES = {"train": "train", "training": "train", "val": "val", "valid": "val",
               "validation": "val", "test": "test", "testing": "test"}
OMNI_IEEG_LAYOUT = ("participants.tsv, sub-*/ses-*/ieeg/*_ieeg.edf with *_channels.tsv, and "
                    f"{SPLIT_FILE}")
OMNI_IEEG_SOURCE = ("the Omni-iEEG release (its authors' distribution page; BIDS-formatted, "
                    "several centres)")

_BIDS_ENTITY = re.compile(r"(?:^|_)(?P<key>sub|ses|run)-(?P<value>[^_]+)")
_TRUE = {"true", "1", "yes", "y", "t", "interictal"}
_FALSE = {"false", "0", "no", "n", "f", "ictal"}


def label_value(value, *, where: str) -> int:
    """An integer label cell: ``1``, ``0``, ``-1``, ``"1.0"``; ``"-1"``, ``n/a`` and empty
    cells are :data:`UNKNOWN`.

    Raises
    ------
    ValueError
        Anything else, naming ``where`` (file, column and row).
    """
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return UNKNOWN
    text = str(value).strip()
    if text.lower() in ("", "n/a", "na", "nan", "none", "-1"):
        return UNKNOWN
    try:
        number = float(text)
    except ValueError:
        raise ValueError(f"{where}: {value!r} is not an integer label (1, 0 or -1 for "
                         "unknown).") from None
    if number != int(number):
        raise ValueError(f"{where}: {value!r} is not an integer label (1, 0 or -1 for unknown).")
    return int(number)


def flag_value(value, *, where: str) -> bool:
    """A true/false cell (``True``, ``1``, ``"yes"`` …; ``interictal``/``ictal`` too).

    Raises
    ------
    ValueError
        Anything else, naming ``where``.
    """
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"{where}: {value!r} is neither true nor false.")


def participant_id(name: str) -> str:
    """``"sub-007"`` for ``"sub-007"`` or ``"007"`` (split files may omit the prefix)."""
    name = str(name).strip()
    return name if name.startswith("sub-") else f"sub-{name}"


def read_table(path, *, sep: str, where: str, required=()) -> pd.DataFrame:
    """A TSV/CSV file as strings (``n/a`` kept as text), checking ``required`` columns.

    Raises
    ------
    FileNotFoundError
        No such file.
    ValueError
        Columns missing (named, with the file's columns).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{where}: {path} does not exist.")
    table = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False)
    table.columns = [c.strip() for c in table.columns]
    missing = [c for c in required if c not in table.columns]
    if missing:
        raise ValueError(f"{path} lacks the column(s) {missing} ({where}); it has "
                         f"{list(table.columns)}.")
    return table


def read_participants(path) -> pd.DataFrame:
    """``participants.tsv`` indexed by ``participant_id``: ``dataset`` (str), ``outcome``
    (int, -1 unknown) and ``event_annotation`` (str) where present."""
    table = read_table(path, sep="\t", where="participants.tsv", required=("participant_id",))
    table["participant_id"] = [participant_id(p) for p in table["participant_id"]]
    if "outcome" in table:
        table["outcome"] = [label_value(v, where=f"{path}, outcome, row {i + 2}")
                            for i, v in enumerate(table["outcome"])]
    else:
        table["outcome"] = UNKNOWN
    for column in ("dataset", "event_annotation"):
        if column not in table:
            table[column] = ""
    return table.set_index("participant_id")


def read_channels(path) -> pd.DataFrame:
    """A recording's ``channels.tsv``: ``name``, the label columns as int (-1: unknown),
    ``anatomical`` (``""`` when unknown) and ``type`` / ``status`` where present."""
    table = read_table(path, sep="\t", where="channels.tsv", required=("name",))
    for column in LABEL_COLUMNS:
        if column in table:
            table[column] = [label_value(v, where=f"{path}, {column}, row {i + 2}")
                             for i, v in enumerate(table[column])]
    if "anatomical" in table:
        table["anatomical"] = ["" if str(v).strip() in ("-1", "n/a", "") else str(v).strip()
                               for v in table["anatomical"]]
    table["name"] = table["name"].str.strip()
    return table


def read_split(path) -> pd.DataFrame:
    """``final_split.csv``, one row per recording, indexed by ``edf_name`` (posix, relative to
    the root): ``participant`` (from ``patient_name``), ``split``, ``frequency`` (float),
    ``interictal`` (bool), ``length`` (float s), ``outcome`` / ``has_resection`` / ``has_soz``
    (int, -1 unknown) and ``dataset``.

    Raises
    ------
    ValueError
        A missing column, an unknown split name, a value that is not a number or a flag, or a
        recording listed twice (file, column and row named).
    """
    table = read_table(path, sep=",", where="final_split.csv", required=("edf_name", "split"))
    out = pd.DataFrame({"edf_name": [_relative(n) for n in table["edf_name"]]})
    out["participant"] = [participant_id(p) for p in table["patient_name"]] \
        if "patient_name" in table else [_participant_of(n) for n in out["edf_name"]]
    splits = []
    for i, value in enumerate(table["split"]):
        key = str(value).strip().lower()
        if key not in SPLIT_NAMES:
            raise ValueError(f"{path}, split, row {i + 2}: {value!r} is not a split; expected "
                             "train, val or test.")
        splits.append(SPLIT_NAMES[key])
    out["split"] = splits
    for column in ("frequency", "length"):
        values = []
        for i, value in enumerate(table.get(column, [np.nan] * len(table))):
            try:
                values.append(float(value))
            except ValueError:
                raise ValueError(f"{path}, {column}, row {i + 2}: {value!r} is not a "
                                 "number.") from None
        out[column] = values
    out["interictal"] = [flag_value(v, where=f"{path}, interictal, row {i + 2}")
                         for i, v in enumerate(table["interictal"])] \
        if "interictal" in table else None
    for column in ("outcome", "has_resection", "has_soz"):
        out[column] = [label_value(v, where=f"{path}, {column}, row {i + 2}")
                       for i, v in enumerate(table[column])] if column in table else UNKNOWN
    out["dataset"] = table["dataset"].str.strip() if "dataset" in table else ""
    repeated = out["edf_name"][out["edf_name"].duplicated()].tolist()
    if repeated:
        raise ValueError(f"{path} lists {repeated[0]!r} more than once.")
    return out.set_index("edf_name", drop=False)


def _relative(name: str) -> str:
    return Path(str(name).strip().lstrip("./")).as_posix()


def _entities(name: str) -> dict:
    return {m["key"]: m["value"] for m in _BIDS_ENTITY.finditer(Path(name).name)}


def _participant_of(name: str) -> str:
    sub = _entities(name).get("sub")
    return participant_id(sub) if sub else Path(name).parts[0]


class IEEGRelease:
    """An Omni-iEEG release or iEEG-BIDS root on disk (see the module docstring).

    Parameters
    ----------
    root : path-like
    kind : {"seeg", "ecog"}
        Kind of every channel of a ``channels.tsv`` without a ``type`` column.
    split_file : str or None
        Path of the split, relative to ``root`` or absolute; None: no split file. A split file
        that does not exist is not an error unless ``require_split``.
    require_split : bool
        Stop when the split file is missing (Omni-iEEG's tasks are defined on it).
    dataset : str
        The name used in messages (``"Omni-iEEG"``).

    Attributes
    ----------
    participants : pandas.DataFrame
        ``participants.tsv`` indexed by participant (:func:`read_participants`); empty when the
        root has none.
    files : pandas.DataFrame
        Every recording under ``root``: ``name`` (relative posix path), ``participant``,
        ``session``, ``run``.
    split : pandas.DataFrame or None
        The split file (:func:`read_split`).
    """

    def __init__(self, root, *, kind: str = "seeg", split_file: str | None = SPLIT_FILE,
                 require_split: bool = False, dataset: str = "iEEG-BIDS"):
        self.root = Path(root).expanduser()
        self.dataset = dataset
        if kind not in ("seeg", "ecog"):
            raise ValueError(f"kind must be 'seeg' or 'ecog' (the kind of channels whose "
                             f"channels.tsv names no type); got {kind!r}.")
        self.kind = kind
        files = sorted(p for p in self.root.glob("sub-*/**/*_ieeg.*")
                       if p.suffix.lower() in SIGNAL_SUFFIXES) if self.root.is_dir() else []
        if not files:
            raise missing_data(dataset=dataset, folder=self.root, layout=OMNI_IEEG_LAYOUT,
                               source=OMNI_IEEG_SOURCE)
        names = [p.relative_to(self.root).as_posix() for p in files]
        self.files = pd.DataFrame({
            "name": names, "participant": [_participant_of(n) for n in names],
            "session": [_entities(n).get("ses", "0") for n in names],
            "run": [_entities(n).get("run", "0") for n in names]}).set_index("name", drop=False)
        participants = self.root / "participants.tsv"
        self.participants = read_participants(participants) if participants.is_file() else \
            pd.DataFrame(columns=["dataset", "outcome", "event_annotation"]).rename_axis(
                "participant_id")
        self.split_path = None
        self.split = None
        if split_file is not None:
            path = Path(split_file)
            path = path if path.is_absolute() else self.root / path
            if path.is_file():
                self.split_path, self.split = path, read_split(path)
            elif require_split:
                raise missing_data(dataset=f"{dataset} split file", folder=self.root,
                                   layout=str(Path(split_file)), source=OMNI_IEEG_SOURCE)

    def outcome(self, participant: str) -> int:
        """Surgical outcome of ``participant`` (1 good, 0 poor, -1 unknown) from
        ``participants.tsv``."""
        if participant in self.participants.index:
            return int(self.participants.loc[participant, "outcome"])
        return UNKNOWN

    def channels_path(self, name: str) -> Path:
        """The ``channels.tsv`` of recording ``name`` (same entities, suffix ``channels``)."""
        path = self.root / name
        stem = re.sub(r"_ieeg$", "", path.stem)
        return path.with_name(f"{stem}_channels.tsv")

    def read(self, name: str) -> tuple[LabelledRecording, pd.DataFrame, list[tuple[str, str]]]:
        """Open recording ``name``: its header, its contacts and their labels.

        Returns
        -------
        recording : LabelledRecording
            The good brain contacts, in file order, with positions from ``electrodes.tsv``
            where there is one (else position-unknown).
        contacts : pandas.DataFrame
            The ``channels.tsv`` rows of those contacts, in the layout's order.
        dropped : list of (name, reason)
            Contacts left out: bad ones (``good == 0`` or ``status == bad``) and channels that
            are not brain contacts.

        Raises
        ------
        ValueError
            ``channels.tsv`` missing, or naming channels the file does not hold (both named).
        """
        path = self.root / name
        channels_path = self.channels_path(name)
        if not channels_path.is_file():
            raise ValueError(f"{path} has no {channels_path.name} beside it; every recording of "
                             f"an iEEG-BIDS release needs one (its contacts and labels).")
        channels = read_channels(channels_path)
        raw = self._open(path)
        absent = [n for n in channels["name"] if n not in raw.ch_names]
        if absent:
            raise ValueError(f"{channels_path} names channel(s) {absent[:10]} that {path.name} "
                             f"does not hold (it has {raw.ch_names[:10]} …).")
        dropped, keep, types = [], [], {}
        brain = {k.label for k in BRAIN_KINDS} | {"dbs"}
        for _, row in channels.iterrows():
            kind = self._kind(row)
            if kind not in brain:
                dropped.append((row["name"], f"type {row.get('type', '?')} is not a brain contact"))
            elif row.get("good", 1) == 0:
                dropped.append((row["name"], "good = 0 in channels.tsv"))
            elif str(row.get("status", "good")).strip().lower() == "bad":
                dropped.append((row["name"], "status = bad in channels.tsv"))
            else:
                keep.append(row["name"])
                types[row["name"]] = kind
        if not keep:
            raise ValueError(f"{path} has no good brain contact (channels.tsv marks "
                             f"{len(dropped)} channel(s) bad or non-brain).")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # MNE notes unit changes of EDF channels
            raw.set_channel_types(types, on_unit_change="ignore")
            raw.pick(keep)
        layout = resolve_sensors(raw.info, kinds=BRAIN_KINDS)
        order = {n: i for i, n in enumerate(channels["name"])}
        contacts = channels.iloc[[order[n] for n in layout.names]].reset_index(drop=True)
        entry = self.files.loc[name] if name in self.files.index else None
        attributes = self.split.loc[name].to_dict() if self.split is not None and \
            name in self.split.index else {}
        recording = LabelledRecording(
            path=str(path), name=name,
            participant=entry["participant"] if entry is not None else _participant_of(name),
            session=entry["session"] if entry is not None else "0",
            run=entry["run"] if entry is not None else "0",
            sfreq=float(raw.info["sfreq"]), n_times=int(raw.n_times), layout=layout,
            line_freq=raw.info.get("line_freq"), attributes=attributes)
        return recording, contacts, dropped

    def _kind(self, row) -> str:
        if "type" in row and str(row["type"]).strip():
            return BIDS_TYPES.get(str(row["type"]).strip().upper(), "misc")
        return self.kind

    @staticmethod
    def _open(path: Path):
        """The recording's reader (no samples loaded); with mne-bids when an
        ``electrodes.tsv`` places its contacts."""
        if not any(path.parent.glob("*_electrodes.tsv")):
            return open_raw(path)
        import mne_bids

        bids_path = mne_bids.get_bids_path_from_fname(path)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # mne-bids' notes on non-standard columns
            return mne_bids.read_raw_bids(bids_path, verbose="error")
