"""Merge the parts of a corpus prepared with ``--shard-index i --num-shards n`` into one folder.

Reading the part folders together (``Corpus([part0, part1, ...])``) needs no merge; merging makes
one self-contained folder, the same as a single-machine run would have written (manifest rows in
sorted path order, one ``corpus.json``). Shards are hard-linked when the parts are on the same
file system, else copied, each atomically.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from neurofm.corpus.manifest import read_manifest, write_manifest
from neurofm.corpus.prepare import CORPUS_JSON, SHARDS_DIR
from neurofm.corpus.reader import read_corpus_json
from neurofm.corpus.shards import TMP_PREFIX


def merge_corpora(parts, out) -> Path:
    """Merge part folders into ``out``.

    Parameters
    ----------
    parts : sequence of path-like
        Every part of one ``--num-shards`` run (any order).
    out : path-like
        New corpus folder (may exist and be empty).

    Returns
    -------
    out : Path

    Raises
    ------
    ValueError
        Parts with different options, parts missing or repeated, or ``out`` not empty.
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
    count = first["part"]["count"]
    indices = sorted(c["part"]["index"] for c in configs)
    if any(c["part"]["count"] != count for c in configs) or indices != list(range(count)):
        raise ValueError(f"Expected the parts 0..{count - 1} of one --num-shards {count} run "
                         f"exactly once each; got part indices {indices}.")
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise ValueError(f"{out} is not empty; merge into a new folder.")
    (out / SHARDS_DIR).mkdir(parents=True, exist_ok=True)
    rows = []
    for part in parts:
        manifest = read_manifest(part)
        for shard in manifest["shard"]:
            if shard:
                _link_or_copy(part / SHARDS_DIR / shard, out / SHARDS_DIR / shard)
        rows.extend(manifest.to_dict("records"))
    write_manifest(rows, out)
    merged = dict(first)
    merged["part"] = {"index": 0, "count": 1}
    merged["merged_from"] = [str(p.resolve()) for p in parts]
    merged["sources"] = sorted({s for c in configs for s in c["sources"]})
    merged["n_windows"] = int(sum(c["n_windows"] for c in configs))
    merged["hours_kept"] = float(sum(c["hours_kept"] for c in configs))
    tmp = out / f"{TMP_PREFIX}{CORPUS_JSON}"
    tmp.write_text(json.dumps(merged, indent=1, ensure_ascii=False), encoding="utf-8")
    os.replace(tmp, out / CORPUS_JSON)
    return out


def _link_or_copy(src: Path, dst: Path) -> None:
    tmp = dst.with_name(f"{TMP_PREFIX}{dst.name}")
    tmp.unlink(missing_ok=True)
    try:
        os.link(src, tmp)
    except OSError:
        shutil.copyfile(src, tmp)
    os.replace(tmp, dst)
