"""What ``neurofm prepare`` has finished in a corpus folder, and the locks that let the parts of
one run (``--part-index i --num-parts n``) write into the same folder, together or in turn.

::

    CORPUS/
      .neurofm-lock           held while a job reads or writes the folder's shared files
      .neurofm-lock-part-000  held by the job preparing part 0, for its whole run
      _progress/
        settings.json   corpus format, options and number of parts of the run in progress
        part-000.jsonl  part 0's journal, one JSON line per event, appended in order:
                        {"skipped": ROW}                     a file that gives no windows
                        {"shard": INFO, "rows": [ROW, ...],  a shard in place, with the manifest
                         "sensors": [[N, SENSORS], ...]}      rows of its recordings and the
                                                             part's sensor rows first used since
                                                             its last shard

A shard's line is appended (and flushed to disk) right after the shard is renamed into place, so
a killed job loses at most the shard being written: its recordings are prepared again, nothing
is listed twice. A line cut short by the kill is dropped (and cut off the part's own journal)
when the journal is read.

**Parts in one folder.** Each part writes only shards of its own name (``<part>-<n>.arrow``)
and its own journal. When a part's files are all done, it writes the corpus files
(``manifest.parquet``, ``index.arrow``, ``sensors.arrow``, ``corpus.json``) from everything
finished in the folder -- the corpus written before and every part's journal -- and deletes its
journal; the last journal gone, ``_progress/`` goes too. ``corpus.json`` names as ``part`` the
parts whose files are all in it: every part gives ``{"index": 0, "count": 1}``, as one job
writes. A second job for a part that is being prepared is refused with the holder's pid and
host (:class:`~neurofm.folder_lock.FolderLock`; the lock of a killed job is free again).

Re-running on a finished corpus starts from it (its manifest, ``sensors.arrow`` and shard
list), so files added to the sources since are prepared into new shards.

:class:`PrepareState` is the one place that reads and writes this state.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path

from neurofm.corpus.folder import (
    CORPUS_FORMAT,
    CORPUS_JSON,
    INDEX_FILE,
    PACKED_FORMAT,
    PROGRESS_DIR,
    SENSORS_FILE,
    SHARDS_DIR,
    TMP_PREFIX,
    corpus_format,
    read_corpus_json,
    write_json_atomic,
)
from neurofm.corpus.layouts import RecordingSensors, SensorTable
from neurofm.corpus.manifest import MANIFEST_NAME, ManifestRow, read_manifest
from neurofm.corpus.shards import SHARD_NAME, ShardInfo
from neurofm.corpus.writer import write_corpus
from neurofm.folder_lock import FolderLock

SETTINGS_FILE = "settings.json"
JOURNAL_NAME = "part-{:03d}.jsonl"
#: Held while a job reads or writes the folder's shared files (short).
FOLDER_LOCK = ".neurofm-lock"
#: Held by the job preparing one part, for its whole run.
PART_LOCK = ".neurofm-lock-part-{:03d}"
#: Seconds a job waits for another one to finish writing the shared files.
FOLDER_LOCK_WAIT = 600.0


@dataclass
class _Finished:
    """Files, sensor rows and shards of one record: the finished corpus, or a part's journal.

    ``rows[path].layout`` indexes this record's own ``sensors``.
    """

    rows: dict[str, ManifestRow] = field(default_factory=dict)
    sensors: SensorTable = field(default_factory=SensorTable)
    shards: dict[str, ShardInfo] = field(default_factory=dict)


class PrepareState:
    """Files finished so far in the folder, this part's sensor rows; appends to its journal.

    Use :meth:`start`, then :meth:`record_skipped` / :meth:`record_shard` as files are done,
    :meth:`finish` when they all are, :meth:`close` in any case.

    Attributes
    ----------
    done : dict of str -> ManifestRow
        Finished files by manifest path (of every part, for skipping; their ``layout`` values
        index the sensor rows of the record they come from).
    sensors : SensorTable
        This part's sensor rows (journaled ones and those of the shard being written).
    shards : dict of str -> ShardInfo
        Shards in place, by name.
    """

    def __init__(self, out, part_index: int = 0, num_parts: int = 1):
        self.out = Path(out)
        self.part_index, self.num_parts = part_index, num_parts
        self.progress_dir = self.out / PROGRESS_DIR
        self.journal_path = self.progress_dir / JOURNAL_NAME.format(part_index)
        self.done: dict[str, ManifestRow] = {}
        self.sensors = SensorTable()
        self.shards: dict[str, ShardInfo] = {}
        self._journaled_sensors = 0
        self._journal = None
        self._part_lock = FolderLock(
            self.out / PART_LOCK.format(part_index),
            f"neurofm prepare (part {part_index} of {num_parts})")

    @classmethod
    def start(cls, out, settings: dict) -> PrepareState:
        """Take this part's lock, check the folder's settings and load what is finished.

        Parameters
        ----------
        out : path-like
        settings : dict
            ``{"options": {...}, "part": {"index": i, "count": n}}`` (JSON values).

        Raises
        ------
        ValueError
            ``out`` holds a corpus prepared with other options (or, while parts are in
            progress, another number of parts), or by an older neurofm.
        LockBusyError
            Another job is preparing the same part into ``out``.
        """
        part = settings["part"]
        state = cls(out, int(part["index"]), int(part["count"]))
        settings = {"format": CORPUS_FORMAT, **json.loads(json.dumps(settings))}
        state.out.mkdir(parents=True, exist_ok=True)
        state._part_lock.acquire()
        try:
            with state._folder_lock():
                state._check_settings(settings)
                (state.out / SHARDS_DIR).mkdir(exist_ok=True)
                state.progress_dir.mkdir(exist_ok=True)
                write_json_atomic(state.progress_dir / SETTINGS_FILE,
                                  {"format": CORPUS_FORMAT, "options": settings["options"],
                                   "parts": state.num_parts})
                state._remove_own_temporary_files()
                state._load()
                state._journal = open(state.journal_path, "a",  # noqa: SIM115 - close()
                                      encoding="utf-8")
        except BaseException:
            state._part_lock.release()
            raise
        return state

    def next_sequence(self, part_index: int) -> int:
        """Sequence number for this part's next shard (after every shard in place)."""
        taken = [int(m[2]) for name in self.shards if (m := SHARD_NAME.match(name))
                 and int(m[1]) == part_index]
        return max(taken, default=-1) + 1

    def record_skipped(self, row: ManifestRow) -> None:
        """A file that gives no windows: journaled (flushed, not synced: redone on power loss)."""
        self.done[row.path] = row
        self._append({"skipped": row.to_dict()}, sync=False)

    def record_shard(self, info: ShardInfo, rows: list[ManifestRow]) -> None:
        """A shard in place holding the windows of ``rows``: journaled and synced to disk."""
        new = range(self._journaled_sensors, len(self.sensors))
        self._append({"shard": info.to_dict(), "rows": [r.to_dict() for r in rows],
                      "sensors": [[i, self.sensors[i].to_json()] for i in new]}, sync=True)
        self._journaled_sensors = len(self.sensors)
        self.shards[info.name] = info
        for row in rows:
            self.done[row.path] = row

    def finish(self, parts: list[list], config: dict) -> tuple[dict[str, ManifestRow], list[int]]:
        """Write the corpus files from everything finished in the folder; drop this journal.

        Parameters
        ----------
        parts : list of list of SourceFile
            Every part's files (:func:`~neurofm.corpus.prepare.split_into_parts`).
        config : dict
            ``corpus.json`` without ``part`` (filled in) and what :func:`write_corpus` fills.

        Returns
        -------
        rows : dict of str -> ManifestRow
            The manifest written, by path.
        complete : list of int
            The parts whose files are all in the corpus.
        """
        self._close_journal()
        with self._folder_lock():
            records = [self._read_finished(), *self._read_journals().values()]
            done, sensors, shards = _combine(records)
            listed = sorted(f.relpath for files in parts for f in files)
            rows = {path: done[path] for path in listed if path in done}
            complete = [i for i, files in enumerate(parts)
                        if all(f.relpath in done for f in files)]
            if len(complete) == len(parts):
                part = {"index": 0, "count": 1}
            else:
                part = {"index": complete[0] if len(complete) == 1 else complete,
                        "count": len(parts)}
            write_corpus(self.out, list(rows.values()), sensors, shards,
                         {**config, "part": part}, prune_parts={self.part_index})
            self.journal_path.unlink(missing_ok=True)
            if not any(self.progress_dir.glob(JOURNAL_NAME.replace("{:03d}", "*"))):
                shutil.rmtree(self.progress_dir, ignore_errors=True)
        return rows, complete

    def close(self) -> None:
        """Close the journal and give up this part's lock."""
        self._close_journal()
        self._part_lock.release()

    # ----------------------------------------------------------------------------- internals

    def _folder_lock(self) -> FolderLock:
        return FolderLock(self.out / FOLDER_LOCK, "neurofm prepare").acquire(
            wait=FOLDER_LOCK_WAIT)

    def _close_journal(self) -> None:
        if self._journal is not None:
            self._journal.close()
            self._journal = None

    def _check_settings(self, settings: dict) -> None:
        """Options against the run in progress (and its number of parts) or the corpus."""
        if self._journal_paths():
            previous = json.loads((self.progress_dir / SETTINGS_FILE).read_text("utf-8"))
            _check_same(self.out, previous, settings, parts=self.num_parts)
        elif (self.out / CORPUS_JSON).is_file():
            corpus = read_corpus_json(self.out)
            _check_same(self.out, {"format": corpus_format(corpus),
                                   "options": corpus["options"]}, settings)

    def _journal_paths(self) -> dict[int, Path]:
        if not self.progress_dir.is_dir():
            return {}
        return {int(p.stem.split("-")[1]): p for p in
                self.progress_dir.glob(JOURNAL_NAME.replace("{:03d}", "*"))}

    def _remove_own_temporary_files(self) -> None:
        """Temporary files of this part's killed jobs (other parts' may be in use)."""
        own = [self.out / SHARDS_DIR, f"{TMP_PREFIX}{self.part_index:03d}-"]
        for path in own[0].glob(f"{own[1]}*"):
            path.unlink(missing_ok=True)
        for folder, name in ((self.progress_dir, SETTINGS_FILE), (self.out, CORPUS_JSON),
                             (self.out, MANIFEST_NAME), (self.out, INDEX_FILE),
                             (self.out, SENSORS_FILE)):  # shared files: under the folder lock
            for path in folder.glob(f"{TMP_PREFIX}{name}-*"):
                path.unlink(missing_ok=True)

    def _load(self) -> None:
        finished = self._read_finished()
        journals = self._read_journals()
        own = journals.get(self.part_index, _Finished())
        self.sensors, self._journaled_sensors = own.sensors, len(own.sensors)
        for record in (finished, *journals.values()):
            self.done.update(record.rows)
            self.shards.update(record.shards)

    def _read_finished(self) -> _Finished:
        """The corpus written before (by an earlier run or another part), or nothing."""
        if not (self.out / CORPUS_JSON).is_file():
            return _Finished()
        config = read_corpus_json(self.out)
        rows = {rec["path"]: ManifestRow(**rec)
                for rec in read_manifest(self.out).to_dict("records")}
        return _Finished(rows, SensorTable.read(self.out / SENSORS_FILE),
                         {s["name"]: ShardInfo(**s) for s in config["shards"]})

    def _read_journals(self) -> dict[int, _Finished]:
        return {index: _replay(path, own=index == self.part_index)
                for index, path in sorted(self._journal_paths().items())}

    def _append(self, record: dict, *, sync: bool) -> None:
        self._journal.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._journal.flush()
        if sync:
            os.fsync(self._journal.fileno())


def _replay(journal: Path, *, own: bool) -> _Finished:
    """What a part's journal records. A line cut short by a kill is dropped; in this part's own
    journal it is also cut off the file (another part may be writing its line right now)."""
    data = journal.read_bytes()
    complete = data.rfind(b"\n") + 1
    if own and complete < len(data):
        with open(journal, "r+b") as fh:
            fh.truncate(complete)
    finished = _Finished()
    for number, line in enumerate(data[:complete].decode("utf-8").splitlines(), 1):
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise ValueError(f"{journal} line {number} is not JSON ({err}); the progress "
                             "records are damaged. Prepare into a new --out folder.") from None
        if "skipped" in record:
            row = ManifestRow(**record["skipped"])
            finished.rows[row.path] = row
            continue
        for number_expected, sensors in record["sensors"]:
            if finished.sensors.add(RecordingSensors.from_json(sensors)) != number_expected:
                raise ValueError(f"{journal} line {number}: sensor row {number_expected} is "
                                 "out of order; prepare into a new --out folder.")
        info = ShardInfo(**record["shard"])
        finished.shards[info.name] = info
        for row in record["rows"]:
            finished.rows[row["path"]] = ManifestRow(**row)
    return finished


def _combine(records: list[_Finished]) -> tuple[dict[str, ManifestRow], SensorTable,
                                                 dict[str, ShardInfo]]:
    """One set of rows over one sensor table (later records win for a file in several)."""
    rows, sensors, shards = {}, SensorTable(), {}
    for record in records:
        renumber = {i: sensors.add(s) for i, s in enumerate(record.sensors.rows)}
        for path, row in record.rows.items():
            rows[path] = replace(row, layout=renumber.get(row.layout, -1))
        shards.update(record.shards)
    return rows, sensors, shards


def _check_same(out: Path, previous: dict, settings: dict, parts: int | None = None) -> None:
    version = int(previous.get("format", 2))
    if version < PACKED_FORMAT:
        raise ValueError(
            f"{out} holds a corpus of format {version} (one shard per recording), prepared or "
            f"started by an older neurofm; this neurofm writes format {CORPUS_FORMAT}. The "
            "finished corpus still reads as it is; to add files or change it, prepare into a "
            "new --out folder.")
    differ = [f"{k}: {previous['options'].get(k)!r} then, {v!r} now"
              for k, v in settings["options"].items() if previous["options"].get(k) != v]
    if parts is not None and previous.get("parts") != parts:
        differ.append(f"num_parts: {previous.get('parts')!r} then, {parts!r} now (parts of "
                      "one run into one folder split the files the same way)")
    if differ:
        raise ValueError(
            f"{out} holds a corpus prepared with other settings ({'; '.join(differ)}). Use a "
            "new --out folder, or repeat the original options to resume.")
