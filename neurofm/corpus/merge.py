"""Merge the parts of a corpus prepared with ``--part-index i --num-parts n`` into one folder.

Reading the part folders together (``Corpus([part0, part1, ...])``) needs no merge; merging makes
one self-contained folder that lists the same windows in the same order as a single-machine run
(manifest rows in sorted path order, one ``corpus.json``, one ``sensors.arrow`` and
``index.arrow``). Shard names carry the part number, so the parts' shards never collide; they
are hard-linked when the parts are on the same file system, else copied, each atomically. Parts
of formats 1-2 (one shard per recording) merge into a folder of their format.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from neurofm.corpus.folder import (
    CORPUS_JSON,
    PACKED_FORMAT,
    SENSORS_FILE,
    SHARDS_DIR,
    corpus_format,
    corpus_parts,
    read_corpus_json,
    temporary_path,
    write_json_atomic,
)
from neurofm.corpus.layouts import SensorTable
from neurofm.corpus.manifest import read_manifest, write_manifest
from neurofm.corpus.shards import ShardInfo
from neurofm.corpus.writer import write_corpus
from neurofm.output_folder import claim_output_folder

#: What merged folders' output-folder marker names.
MERGE_COMMAND = "neurofm.corpus.merge_corpora"


def merge_corpora(parts, out) -> Path:
    """Merge part folders into ``out``.

    Parameters
    ----------
    parts : sequence of path-like
        Every part of one ``--num-parts`` run (any order).
    out : path-like
        New corpus folder: new, empty, or written by an earlier merge
        (:func:`neurofm.output_folder.claim_output_folder`).

    Returns
    -------
    out : Path

    Raises
    ------
    ValueError
        Parts with different options or formats, parts missing or repeated, or ``out`` holds
        files that an earlier merge did not write.
    """
    parts = [Path(p) for p in parts]
    configs = []
    for part in parts:
        file = part / CORPUS_JSON
        if not file.is_file():
            raise FileNotFoundError(f"{file} does not exist: {part} is not a finished corpus "
                                    "part. Finish it by re-running its neurofm prepare command.")
        configs.append(read_corpus_json(part))
    first = configs[0]
    for part, config in zip(parts, configs):
        if config["options"] != first["options"]:
            raise ValueError(f"{part} was prepared with other options than {parts[0]}; only "
                             "parts of one run (same options) can be merged.")
        if corpus_format(config) != corpus_format(first):
            raise ValueError(f"{part} has corpus format {corpus_format(config)}, {parts[0]} "
                             f"format {corpus_format(first)}; only parts of one run can be "
                             "merged.")
    count = corpus_parts(first)[1]
    indices = sorted(i for c in configs for i in corpus_parts(c)[0])
    if any(corpus_parts(c)[1] != count for c in configs) or indices != list(range(count)):
        raise ValueError(f"Expected the parts 0..{count - 1} of one --num-parts {count} run "
                         f"exactly once each; got part indices {indices}.")
    out = Path(out)
    claim_output_folder(out, MERGE_COMMAND, {"parts": [str(p) for p in parts]})
    (out / SHARDS_DIR).mkdir(parents=True, exist_ok=True)
    rows, sensors, shards = [], SensorTable(), {}
    for part, config in zip(parts, configs):
        manifest = read_manifest(part)
        for shard in sorted(set(manifest["shard"]) - {""}):
            _link_or_copy(part / SHARDS_DIR / shard, out / SHARDS_DIR / shard)
        if corpus_format(config) >= PACKED_FORMAT:
            part_sensors = SensorTable.read(part / SENSORS_FILE)
            renumber = {row: sensors.add(s) for row, s in enumerate(part_sensors.rows)}
            manifest["layout"] = [renumber.get(v, -1) for v in manifest["layout"]]
            shards.update({s["name"]: ShardInfo(**s) for s in config["shards"]})
        rows.extend(manifest.to_dict("records"))
    merged = dict(first)
    merged["part"] = {"index": 0, "count": 1}
    merged["merged_from"] = [str(p.resolve()) for p in parts]
    merged["sources"] = sorted({s for c in configs for s in c["sources"]})
    if corpus_format(first) >= PACKED_FORMAT:
        for key in ("format", "n_windows", "n_recordings", "hours_kept", "shards"):
            merged.pop(key)
        write_corpus(out, rows, sensors, shards, merged)
        return out
    write_manifest(rows, out)
    merged["n_windows"] = int(sum(c["n_windows"] for c in configs))
    merged["hours_kept"] = float(sum(c["hours_kept"] for c in configs))
    write_json_atomic(out / CORPUS_JSON, merged)
    return out


def _link_or_copy(src: Path, dst: Path) -> None:
    tmp = temporary_path(dst)
    tmp.unlink(missing_ok=True)
    try:
        os.link(src, tmp)
    except OSError:
        shutil.copyfile(src, tmp)
    os.replace(tmp, dst)
