"""What a ``neurofm prepare`` run has finished, on disk until the corpus is complete.

::

    CORPUS/_progress/
      settings.json   corpus format, options and part of the run; a re-run with others is refused
      journal.jsonl   one JSON line per event, appended in order:
                      {"skipped": ROW}                     a file that gives no windows
                      {"shard": INFO, "rows": [ROW, ...],  a shard in place, with the manifest
                       "sensors": [[N, SENSORS], ...]}      rows of its recordings and the sensor
                                                           rows first used since the last shard

A shard's line is appended (and flushed to disk) right after the shard is renamed into place, so
a killed run loses at most the shard being written: its recordings are prepared again, nothing
is listed twice. A line cut short by the kill is dropped (and cut off the file) when the journal
is read. When the corpus is finished the folder is removed; re-running then starts from the
finished corpus (its manifest, ``sensors.arrow`` and shard list), so files added to the sources
since are prepared into new shards.

:class:`PrepareState` is the one place that reads and writes this state: a lock on the output
folder or a marker of who wrote it belongs here.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from neurofm.corpus.folder import (
    CORPUS_FORMAT,
    CORPUS_JSON,
    PACKED_FORMAT,
    PROGRESS_DIR,
    SENSORS_FILE,
    SHARDS_DIR,
    corpus_format,
    read_corpus_json,
    remove_temporary_files,
    temporary_path,
    write_json_atomic,
)
from neurofm.corpus.layouts import RecordingSensors, SensorTable
from neurofm.corpus.manifest import ManifestRow, read_manifest
from neurofm.corpus.shards import SHARD_NAME, ShardInfo

SETTINGS_FILE = "settings.json"
JOURNAL_FILE = "journal.jsonl"


class PrepareState:
    """Files finished so far, the sensor rows and shards they use; appends to the journal.

    Use :meth:`start`.

    Attributes
    ----------
    done : dict of str -> ManifestRow
        Finished files by manifest path (kept ones with their shard, rows and sensor row).
    sensors : SensorTable
        Sensor rows referenced by ``done`` (and possibly by the shard being written).
    shards : dict of str -> ShardInfo
        Shards in place, by name.
    """

    def __init__(self, out: Path):
        self.out = Path(out)
        self.progress_dir = self.out / PROGRESS_DIR
        self.done: dict[str, ManifestRow] = {}
        self.sensors = SensorTable()
        self.shards: dict[str, ShardInfo] = {}
        self._journaled_sensors = 0
        self._journal = None

    @classmethod
    def start(cls, out, settings: dict) -> PrepareState:
        """Create ``out``, or check that the run there used the same settings and load what it
        finished.

        Parameters
        ----------
        out : path-like
        settings : dict
            ``{"options": {...}, "part": {"index": i, "count": n}}`` (JSON values).

        Raises
        ------
        ValueError
            ``out`` holds a corpus prepared with other settings, or by an older neurofm.
        """
        state = cls(out)
        settings = {"format": CORPUS_FORMAT, **json.loads(json.dumps(settings))}
        previous = state._previous_settings()
        if previous is not None:
            _check_same(state.out, previous, settings)
        (state.out / SHARDS_DIR).mkdir(parents=True, exist_ok=True)
        state.progress_dir.mkdir(exist_ok=True)
        finished = previous is not None and not (state.progress_dir / SETTINGS_FILE).is_file()
        write_json_atomic(state.progress_dir / SETTINGS_FILE, settings)
        remove_temporary_files(state.out / SHARDS_DIR)
        remove_temporary_files(state.progress_dir)
        if finished:
            state._load_finished()
            state._write_journal()
        else:
            state._replay()
        journal = state.progress_dir / JOURNAL_FILE
        state._journal = open(journal, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()
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

    def close(self) -> None:
        if self._journal is not None:
            self._journal.close()
            self._journal = None

    def remove(self) -> None:
        """Delete the progress folder (the corpus is complete)."""
        self.close()
        shutil.rmtree(self.progress_dir, ignore_errors=True)

    # ----------------------------------------------------------------------------- internals

    def _previous_settings(self) -> dict | None:
        file = self.progress_dir / SETTINGS_FILE
        if file.is_file():
            return json.loads(file.read_text(encoding="utf-8"))
        if (self.out / CORPUS_JSON).is_file():
            corpus = read_corpus_json(self.out)
            return {"format": corpus_format(corpus), "options": corpus["options"],
                    "part": corpus["part"]}
        return None

    def _append(self, record: dict, *, sync: bool) -> None:
        self._journal.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._journal.flush()
        if sync:
            os.fsync(self._journal.fileno())

    def _replay(self) -> None:
        journal = self.progress_dir / JOURNAL_FILE
        if not journal.is_file():
            return
        data = journal.read_bytes()
        complete = data.rfind(b"\n") + 1
        if complete < len(data):  # a line cut short by a kill
            with open(journal, "r+b") as fh:
                fh.truncate(complete)
        for number, line in enumerate(data[:complete].decode("utf-8").splitlines(), 1):
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(f"{journal} line {number} is not JSON ({err}); the progress "
                                 "records are damaged. Prepare into a new --out folder.") from None
            if "skipped" in record:
                row = ManifestRow(**record["skipped"])
                self.done[row.path] = row
                continue
            for number_expected, sensors in record["sensors"]:
                if self.sensors.add(RecordingSensors.from_json(sensors)) != number_expected:
                    raise ValueError(f"{journal} line {number}: sensor row {number_expected} is "
                                     "out of order; prepare into a new --out folder.")
            self._journaled_sensors = len(self.sensors)
            info = ShardInfo(**record["shard"])
            self.shards[info.name] = info
            for row in record["rows"]:
                self.done[row["path"]] = ManifestRow(**row)

    def _load_finished(self) -> None:
        """State of the finished corpus in ``out`` (to add files prepared since)."""
        config = read_corpus_json(self.out)
        self.sensors = SensorTable.read(self.out / SENSORS_FILE)
        self.shards = {s["name"]: ShardInfo(**s) for s in config["shards"]}
        for rec in read_manifest(self.out).to_dict("records"):
            self.done[rec["path"]] = ManifestRow(**rec)
        self._journaled_sensors = len(self.sensors)

    def _write_journal(self) -> None:
        """A journal of the loaded finished corpus, so that an interrupted re-run keeps it."""
        kept: dict[str, list[ManifestRow]] = {}
        lines = []
        for row in self.done.values():
            if row.shard:
                kept.setdefault(row.shard, []).append(row)
            else:
                lines.append({"skipped": row.to_dict()})
        sensors = [[i, s.to_json()] for i, s in enumerate(self.sensors.rows)]
        for name in sorted(self.shards):
            lines.append({"shard": self.shards[name].to_dict(),
                          "rows": [r.to_dict() for r in kept.get(name, [])], "sensors": sensors})
            sensors = []
        tmp = temporary_path(self.progress_dir / JOURNAL_FILE)
        tmp.write_text("".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines),
                       encoding="utf-8")
        os.replace(tmp, self.progress_dir / JOURNAL_FILE)


def _check_same(out: Path, previous: dict, settings: dict) -> None:
    version = int(previous.get("format", 2))
    if version < PACKED_FORMAT:
        raise ValueError(
            f"{out} holds a corpus of format {version} (one shard per recording), prepared or "
            f"started by an older neurofm; this neurofm writes format {CORPUS_FORMAT}. The "
            "finished corpus still reads as it is; to add files or change it, prepare into a "
            "new --out folder.")
    differ = [f"{k}: {previous[group].get(k)!r} then, {v!r} now"
              for group in ("options", "part") for k, v in settings[group].items()
              if previous[group].get(k) != v]
    if differ:
        raise ValueError(
            f"{out} holds a corpus prepared with other settings ({'; '.join(differ)}). Use a "
            "new --out folder, or repeat the original options to resume.")
