"""A corpus folder: its file names, the format in ``corpus.json``, and writing files atomically.

::

    CORPUS/
      corpus.json       format, options, preprocessing spec, sources, totals, the shard list
      manifest.parquet  one row per source file (neurofm.corpus.manifest)
      index.arrow       one row per recording holding windows: shard and rows (format 3)
      sensors.arrow     the distinct sensor layouts of the recordings (format 3)
      shards/           Arrow shards of windows (neurofm.corpus.shards)

Formats of ``corpus.json`` (the ``format`` field; absent means 1):

1. neurofm 0.1.0: ``preprocess`` (a ``PreprocessConfig``), ``sfreq``, ``window_samples`` and
   ``patch_samples`` beside it; one shard per recording, sensors repeated in every row.
2. The :class:`~neurofm.data.spec.PreprocessSpec` under ``preprocessing`` and the manifest's
   ``report`` column; still one shard per recording.
3. Packed shards of bounded size holding many recordings, the sensors once per recording
   (``sensors.arrow``), ``index.arrow``, the manifest's ``shard_row`` and ``layout`` columns and
   the shard list with checksums under ``shards`` in ``corpus.json``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from neurofm._version import __version__
from neurofm.data.spec import PreprocessSpec
from neurofm.strict import field_names

CORPUS_JSON = "corpus.json"
SHARDS_DIR = "shards"
INDEX_FILE = "index.arrow"
SENSORS_FILE = "sensors.arrow"
PROGRESS_DIR = "_progress"
#: Prefix of files being written; a killed writer leaves only such files behind.
TMP_PREFIX = ".tmp-"
#: Format of the corpus this neurofm writes (see the module docstring).
CORPUS_FORMAT = 3
#: First format with packed shards, ``index.arrow`` and ``sensors.arrow``.
PACKED_FORMAT = 3


def corpus_format(config: dict) -> int:
    """The ``format`` of a ``corpus.json`` (1 when absent: neurofm 0.1.0)."""
    return int(config.get("format", 1))


def corpus_parts(config: dict) -> tuple[list[int], int]:
    """The parts of a ``--num-parts`` run a ``corpus.json`` holds, and their number.

    ``part`` is ``{"index": i, "count": n}``; ``index`` is a list when several (not all) parts
    were prepared into one folder, and ``{"index": 0, "count": 1}`` a whole corpus.
    """
    index = config["part"]["index"]
    return (sorted(index) if isinstance(index, list) else [int(index)]), int(config["part"]["count"])


def read_corpus_json(path) -> dict:
    """``corpus.json`` of the folder ``path``; a newer format than this neurofm reads is refused.

    Raises
    ------
    FileNotFoundError
        ``path`` is not a finished corpus.
    ValueError
        The corpus has a newer format.
    """
    path = Path(path)
    file = path / CORPUS_JSON
    if not file.is_file():
        raise FileNotFoundError(
            f"{file} does not exist: {path} is not a finished corpus. Run 'neurofm prepare SRC "
            f"--out {path}' (re-running resumes an interrupted run).")
    config = json.loads(file.read_text(encoding="utf-8"))
    version = corpus_format(config)
    if version > CORPUS_FORMAT:
        raise ValueError(f"{file} has corpus format {version}, newer than the format "
                         f"{CORPUS_FORMAT} that neurofm {__version__} reads; upgrade neurofm.")
    return config


def corpus_spec(config: dict, *, where: str = CORPUS_JSON) -> PreprocessSpec:
    """The :class:`PreprocessSpec` a ``corpus.json`` records, in any format.

    Formats 2 and 3 store it under ``preprocessing``. Format 1 (neurofm 0.1.0) stored the
    ``PreprocessConfig`` (recipe and bad-input policies) under ``preprocess`` and the rate,
    patch and window lengths beside it; the recipe is read from there.
    """
    if "preprocessing" in config:
        return PreprocessSpec.from_dict(config["preprocessing"], where=where)
    recipe = {k: v for k, v in config.get("preprocess", {}).items()
              if k in field_names(PreprocessSpec) or k == "notch"}
    recipe.update(sfreq=config["sfreq"], patch_samples=config["patch_samples"],
                  window_samples=config["window_samples"])
    return PreprocessSpec.from_dict(recipe, where=where)


def temporary_path(target: Path) -> Path:
    """Hidden file beside ``target`` that a writer fills before renaming it into place."""
    return target.with_name(f"{TMP_PREFIX}{target.name}-{os.getpid()}")


def write_json_atomic(path, value) -> None:
    """Write ``value`` as JSON to ``path`` through a temporary file and a rename."""
    path = Path(path)
    tmp = temporary_path(path)
    tmp.write_text(json.dumps(value, indent=1, ensure_ascii=False), encoding="utf-8")
    os.replace(tmp, path)


def remove_temporary_files(folder) -> int:
    """Delete leftover ``.tmp-*`` files of killed writers in ``folder``; return how many."""
    count = 0
    for path in Path(folder).glob(f"{TMP_PREFIX}*"):
        path.unlink(missing_ok=True)
        count += 1
    return count
