"""Check a corpus folder, e.g. after copying it between machines (``neurofm corpus verify``).

Format 3: every shard listed in ``corpus.json`` is there with its recorded size and SHA-256,
reads as Arrow windows with the recorded number of rows, and the manifest, ``index.arrow`` and
``sensors.arrow`` agree with the shards (each kept file's rows lie in its shard, hold its source
path and as many channels as its sensors; the rows of a shard are covered once). Formats 1-2
record no checksums: every kept file's shard must read with the manifest's number of windows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa

from neurofm.corpus.folder import (
    INDEX_FILE,
    PACKED_FORMAT,
    SENSORS_FILE,
    SHARDS_DIR,
    corpus_format,
    read_corpus_json,
)
from neurofm.corpus.index import index_table
from neurofm.corpus.layouts import StoredSensors
from neurofm.corpus.manifest import KEPT, read_manifest
from neurofm.corpus.shards import ShardFile, file_sha256


@dataclass
class VerifyReport:
    """Outcome of :func:`verify_corpus`; ``problems`` empty means the corpus is sound."""

    folder: Path
    format: int = 0
    n_shards: int = 0
    n_windows: int = 0
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def describe(self) -> str:
        head = (f"{self.folder}: corpus format {self.format}, {self.n_shards} shards, "
                f"{self.n_windows} windows: "
                + ("OK" if self.ok else f"{len(self.problems)} problem(s)"))
        return "\n".join([head] + [f"  problem: {p}" for p in self.problems]
                         + [f"  note: {n}" for n in self.notes])


def verify_corpus(path, *, checksums: bool = True) -> VerifyReport:
    """Check every shard and the index files of the corpus folder ``path``.

    Parameters
    ----------
    path : path-like
    checksums : bool
        Compare every shard's SHA-256 with ``corpus.json`` (reads every byte).

    Returns
    -------
    VerifyReport
    """
    report = VerifyReport(Path(path))
    folder = report.folder
    try:
        config = read_corpus_json(folder)
        manifest = read_manifest(folder)
    except (OSError, ValueError) as err:
        report.problems.append(str(err))
        return report
    report.format = corpus_format(config)
    kept = manifest[(manifest["status"] == KEPT) & (manifest["n_windows"] > 0)]
    report.n_windows = int(kept["n_windows"].sum())
    if config.get("n_windows") is not None and config["n_windows"] != report.n_windows:
        report.problems.append(f"corpus.json counts {config['n_windows']} windows, the manifest "
                               f"{report.n_windows}; prepare the corpus again.")
    if report.format >= PACKED_FORMAT:
        _verify_packed(folder, config, manifest, kept, report, checksums)
    else:
        _verify_legacy(folder, kept, report)
    return report


def _verify_packed(folder, config, manifest, kept, report: VerifyReport, checksums: bool):
    listed = {s["name"]: s for s in config.get("shards", [])}
    report.n_shards = len(listed)
    sensors = _sensors(folder, report)
    _check_index(folder, manifest, report)
    by_shard = {name: rows.sort_values("shard_row") for name, rows in kept.groupby("shard")}
    for name in sorted(set(by_shard) - set(listed)):
        report.problems.append(f"the manifest puts windows in {SHARDS_DIR}/{name}, which "
                               "corpus.json does not list; prepare the corpus again.")
    for name, info in sorted(listed.items()):
        _check_shard(folder / SHARDS_DIR / name, info, by_shard.get(name), sensors, report,
                     checksums)
    on_disk = {p.name for p in (folder / SHARDS_DIR).glob("*.arrow")}
    extra = sorted(on_disk - set(listed))
    if extra:
        report.notes.append(f"{len(extra)} file(s) in {SHARDS_DIR}/ that corpus.json does not "
                            f"list (not read): {', '.join(extra[:5])}")


def _sensors(folder: Path, report: VerifyReport):
    try:
        return StoredSensors(folder / SENSORS_FILE)
    except (OSError, ValueError) as err:
        report.problems.append(str(err))
        return None


def _check_index(folder: Path, manifest, report: VerifyReport) -> None:
    path = folder / INDEX_FILE
    try:
        stored = pa.ipc.open_file(pa.memory_map(str(path))).read_all()
    except (OSError, pa.ArrowException) as err:
        report.problems.append(f"{path} cannot be read ({err}); copy it again or prepare the "
                               "corpus again.")
        return
    if not stored.equals(index_table(manifest)):
        report.problems.append(f"{path} does not match manifest.parquet (shards, rows or "
                               "sensors differ); copy both again or prepare the corpus again.")


def _check_shard(path: Path, info: dict, rows, sensors, report: VerifyReport,
                 checksums: bool) -> None:
    name = f"{SHARDS_DIR}/{path.name}"
    if not path.is_file():
        report.problems.append(f"{name} is missing; copy it again.")
        return
    size = path.stat().st_size
    if size != info["bytes"]:
        report.problems.append(f"{name} has {size} bytes, corpus.json records {info['bytes']} "
                               "(truncated or changed); copy it again.")
        return
    if checksums and file_sha256(path) != info["sha256"]:
        report.problems.append(f"{name}: SHA-256 differs from the one in corpus.json (damaged "
                               "or changed since it was written); copy it again.")
        return
    try:
        shard = ShardFile(path)
        for batch in shard.batches:
            batch.validate(full=True)
    except (OSError, ValueError, pa.ArrowException) as err:
        report.problems.append(f"{name} cannot be read: {err}")
        return
    if shard.n_rows != info["n_windows"]:
        report.problems.append(f"{name} holds {shard.n_rows} windows, corpus.json records "
                               f"{info['n_windows']}; copy it again.")
        return
    if rows is None:
        report.problems.append(f"{name}: no file of the manifest has windows in it; prepare the "
                               "corpus again.")
        return
    _check_rows(name, shard, rows, sensors, report)


def _check_rows(name: str, shard: ShardFile, rows, sensors, report: VerifyReport) -> None:
    """The manifest's row ranges cover the shard once, with the right sources and channels."""
    starts = rows["shard_row"].to_numpy()
    counts = rows["n_windows"].to_numpy()
    if starts[0] != 0 or np.any(starts[1:] != (starts + counts)[:-1]) or \
            starts[-1] + counts[-1] != shard.n_rows:
        report.problems.append(f"{name}: the manifest's row ranges do not cover its "
                               f"{shard.n_rows} rows exactly once; prepare the corpus again.")
        return
    sources = np.repeat(rows["path"].to_numpy(object), counts)
    stored = np.asarray(shard.sources(), dtype=object)
    wrong = np.flatnonzero(sources != stored)
    if len(wrong):
        row = int(wrong[0])
        report.problems.append(f"{name} row {row} holds a window of {stored[row]!r}, the "
                               f"manifest says {sources[row]!r}; prepare the corpus again.")
        return
    if sensors is None:
        return
    channels = shard.channel_counts()
    layouts = rows["layout"].to_numpy()
    if np.any((layouts < 0) | (layouts >= len(sensors))):
        report.problems.append(f"{name}: the manifest gives sensor rows outside sensors.arrow "
                               f"(0..{len(sensors) - 1}); prepare the corpus again.")
        return
    expected = np.repeat([len(sensors[int(v)].channels) for v in layouts], counts)
    wrong = np.flatnonzero(channels != expected)
    if len(wrong):
        row = int(wrong[0])
        report.problems.append(f"{name} row {row} has {channels[row]} channels, its sensors "
                               f"list {expected[row]}; prepare the corpus again.")


def _verify_legacy(folder: Path, kept, report: VerifyReport) -> None:
    report.n_shards = len(kept)
    report.notes.append(f"corpus format {report.format} records no checksums; checked that "
                        "every shard reads with the manifest's number of windows")
    for row in kept.itertuples():
        path = folder / SHARDS_DIR / row.shard
        try:
            shard = ShardFile(path)
        except (OSError, ValueError) as err:
            report.problems.append(str(err))
            continue
        if shard.n_rows != row.n_windows:
            report.problems.append(f"{SHARDS_DIR}/{row.shard} holds {shard.n_rows} windows, the "
                                   f"manifest {row.n_windows} for {row.path}; copy it again.")
