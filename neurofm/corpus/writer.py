"""Finish a corpus folder: manifest, sensors, index and ``corpus.json``, each atomically.

Used by :func:`neurofm.corpus.prepare_corpus` when every file is done and by
:func:`neurofm.corpus.merge_corpora`. ``corpus.json`` is written last: a folder with it is a
finished corpus.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from neurofm.corpus.folder import (
    CORPUS_FORMAT,
    CORPUS_JSON,
    INDEX_FILE,
    SENSORS_FILE,
    SHARDS_DIR,
    write_json_atomic,
)
from neurofm.corpus.index import write_index
from neurofm.corpus.layouts import SensorTable
from neurofm.corpus.manifest import KEPT, manifest_frame, write_manifest
from neurofm.corpus.shards import SHARD_NAME, ShardInfo


def write_corpus(out, rows, sensors: SensorTable, shards: dict[str, ShardInfo],
                 config: dict, *, prune_parts: Iterable[int] | None = None) -> dict:
    """Write the files of a finished format-3 corpus into ``out`` (its shards already there).

    Sensor rows are renumbered in order of first use along the sorted manifest, so the files
    do not depend on the order in which recordings were prepared; unused rows are dropped.
    Shards of this writer's naming (``NNN-NNNNN.arrow``) that no row uses are deleted (a kill
    between a shard's rename and its journal line leaves one); no other file is.

    Parameters
    ----------
    out : path-like
    rows : iterable of ManifestRow or dict
        Every source file's row.
    sensors : SensorTable
        The rows' ``layout`` values index it.
    shards : dict of str -> ShardInfo
        The shards in place.
    config : dict
        ``corpus.json`` without ``format``, ``shards``, ``n_windows``, ``n_recordings`` and
        ``hours_kept``, which are filled in.
    prune_parts : iterable of int, optional
        Delete unused shards only of these parts (None: of every part). A part that is still
        being prepared into the folder may have a shard in place that is not journaled yet.

    Returns
    -------
    config : dict
        The ``corpus.json`` written.
    """
    out = Path(out)
    frame = manifest_frame(rows)
    kept = frame[(frame["status"] == KEPT) & (frame["n_windows"] > 0)]
    table, renumber = sensors.renumbered(kept["layout"].tolist())
    frame["layout"] = [renumber.get(v, -1) for v in frame["layout"]]
    used = sorted(set(kept["shard"]))
    missing = [name for name in used if name not in shards]
    if missing:
        raise ValueError(f"The manifest of {out} lists windows in shards that were never "
                         f"finished ({missing[:3]}); prepare the corpus again.")
    table.write(out / SENSORS_FILE)
    write_index(frame, out / INDEX_FILE)
    write_manifest(frame.to_dict("records"), out)
    prune = None if prune_parts is None else set(prune_parts)
    for path in (out / SHARDS_DIR).iterdir():
        match = SHARD_NAME.match(path.name)
        if match and path.name not in used and (prune is None or int(match[1]) in prune):
            path.unlink()
    config = {
        "format": CORPUS_FORMAT,
        **config,
        "n_windows": int(kept["n_windows"].sum()),
        "n_recordings": len(kept),
        "hours_kept": float(frame.loc[frame["status"] == KEPT, "hours"].sum()),
        "shards": [shards[name].to_dict() for name in used],
    }
    write_json_atomic(out / CORPUS_JSON, config)
    return config
