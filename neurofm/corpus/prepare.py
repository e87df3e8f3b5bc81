"""Prepare a corpus of preprocessed windows from many recordings: parallel, resumable, atomic.

:func:`prepare_corpus` runs three phases over the files found under the sources
(:func:`~neurofm.corpus.discover.discover_sources`):

1. **Checksum** every file (SHA-256, in the worker processes). Empty and unreadable files are
   skipped here; of files with the same checksum the first in sorted path order is kept and the
   others are skipped as duplicates, so the outcome does not depend on ``num_proc``.
2. **Prepare** each remaining file in a worker, one recording in memory per worker: read
   (:func:`neurofm.data.read_raw`), drop recordings shorter than ``min_minutes``, pick channels,
   trim ``trim_seconds`` at each end, preprocess (:func:`neurofm.data.preprocess_raw`: band-pass,
   notch, resample, rescale to 1.0 = 100 µV) and cut into windows rejecting those above
   ``max_abs_uv`` (:func:`neurofm.data.window_recording`). A file that fails is skipped with its
   reason. This process packs the windows, in file order, into shards of at most
   ``shard_size_mb`` (:class:`~neurofm.corpus.shards.ShardWriter`, atomic writes) and keeps each
   recording's sensors once (:mod:`neurofm.corpus.layouts`).
3. **Finish**: write ``sensors.arrow``, ``index.arrow``, ``manifest.parquet`` and
   ``corpus.json`` (:func:`neurofm.corpus.writer.write_corpus`).

Progress is journaled in ``<out>/_progress/`` (:mod:`neurofm.corpus.progress`): a skipped file
right away, a kept file when its shard is in place. Re-running the same command after Ctrl-C,
``kill -9`` or a crash redoes only the recordings of the shard that was being written (and files
not reached); the corpus lists the same windows as an uninterrupted run. A full disk stops the job
with a message (nothing partial stays behind); a dead worker stops it likewise.

``part_index``/``num_parts`` (``--part-index``/``--num-parts``) split the file list into
disjoint parts for several machines. Files are assigned by size (largest first, to the part with
the fewest bytes so far), so identical files (same size) always land in the same part and
duplicate detection stays global; the parts' corpora read as one (:class:`Corpus` over several
folders, or :func:`neurofm.corpus.merge.merge_corpora`), and the parts may also write into one
folder, together or in turn (:mod:`neurofm.corpus.progress`).

``out`` follows the output-folder rule (:func:`neurofm.output_folder.claim_output_folder`): new,
empty, or a corpus folder of ``neurofm prepare`` (its own marker, or the ``corpus.json`` of an
older neurofm); files of other names in it are never deleted.
"""

from __future__ import annotations

import errno
import json
import os
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa

from neurofm._version import __version__
from neurofm.corpus.discover import SourceFile, discover_sources
from neurofm.corpus.edf_checks import bad_range_channels, surplus_data_note
from neurofm.corpus.folder import CORPUS_FORMAT, CORPUS_JSON, PROGRESS_DIR, SHARDS_DIR
from neurofm.corpus.layouts import RecordingSensors
from neurofm.corpus.manifest import KEPT, SKIPPED, ManifestRow
from neurofm.corpus.progress import PrepareState
from neurofm.corpus.shards import DEFAULT_SHARD_MB, ShardWriter, file_sha256, windows_table
from neurofm.data.spec import BRAIN_KIND_LABELS, DEFAULT_SCALES, DEFAULT_SFREQ, PreprocessSpec
from neurofm.logs import get_logger, verbose
from neurofm.output_folder import claim_output_folder
from neurofm.user_errors import is_disk_full

__all__ = ["CORPUS_FORMAT", "CORPUS_JSON", "PROGRESS_DIR", "SHARDS_DIR", "PrepareOptions",
           "PrepareSummary", "RecordingWindows", "file_sha256", "prepare_corpus", "prepare_file",
           "split_into_parts"]

logger = get_logger(__name__)

#: The 19 channels of the 10-20 system common to TUEG recordings, in CBraMod's order
#: (10-05 spelling: T7/T8/P7/P8 are TUH's T3/T4/T5/T6).
TUEG19 = ("Fp1", "Fp2", "F7", "F3", "Fz", "F4", "F8", "T7", "C3", "Cz", "C4", "T8", "P7", "P3",
          "Pz", "P4", "P8", "O1", "O2")
CHANNEL_MODES = ("tueg19", "all-eeg", "all")
FLAT_POLICIES = ("drop", "report")
#: The command that writes corpus folders (their output-folder marker).
PREPARE_COMMAND = "neurofm prepare"


@dataclass
class PrepareOptions:
    """What ``neurofm prepare`` does to each recording (stored in ``corpus.json``).

    Defaults follow CBraMod's TUEG recipe.

    Attributes
    ----------
    sfreq : float
        Output sampling rate in Hz.
    window_seconds, patch_seconds : float
        Window and patch lengths; a window holds ``window_seconds / patch_seconds`` patches.
    channels : {"tueg19", "all-eeg", "all"}
        ``tueg19``: the 19 10-20 channels, in a fixed order; files lacking any are skipped.
        ``all-eeg``: every EEG channel with a known position (files lacking some are kept).
        ``all``: every EEG, MEG, sEEG and ECoG channel with a known position.
    max_abs_uv : float or None
        Windows with any EEG sample above this many µV are rejected (None keeps all).
    trim_seconds : float
        Seconds cut from the start and the end of each recording.
    min_minutes : float
        Recordings shorter than this are skipped.
    dtype : {"float16", "float32"}
        Storage type of the signal.
    l_freq, h_freq : float
        Band-pass edges in Hz.
    line_freq : float or None
        Mains frequency for the notch (60 Hz for TUEG; None: no notch).
    on_flat : {"drop", "report"}
        Flat channels are dropped (and listed in the manifest's ``report``; a recording left
        with fewer than half its channels is skipped as ``flat-signal``), or kept and listed.
    """

    sfreq: float = DEFAULT_SFREQ
    window_seconds: float = 30.0
    patch_seconds: float = 1.0
    channels: str = "tueg19"
    max_abs_uv: float | None = 100.0
    trim_seconds: float = 60.0
    min_minutes: float = 5.0
    dtype: str = "float16"
    l_freq: float = 0.3
    h_freq: float = 75.0
    line_freq: float | None = 60.0
    on_flat: str = "drop"

    def __post_init__(self):
        if self.channels not in CHANNEL_MODES:
            raise ValueError(f"channels must be one of {CHANNEL_MODES}, got {self.channels!r}.")
        if self.dtype not in ("float16", "float32"):
            raise ValueError(f"dtype must be 'float16' or 'float32', got {self.dtype!r}.")
        if self.on_flat not in FLAT_POLICIES:
            raise ValueError(f"on_flat must be one of {FLAT_POLICIES}, got {self.on_flat!r}.")
        ratio = self.window_seconds / self.patch_seconds
        if self.patch_seconds <= 0 or abs(ratio - round(ratio)) > 1e-9 or ratio < 1:
            raise ValueError(
                f"window_seconds ({self.window_seconds}) must be a whole multiple of "
                f"patch_seconds ({self.patch_seconds}).")
        patch = self.patch_seconds * self.sfreq
        if abs(patch - round(patch)) > 1e-9:
            raise ValueError(f"patch_seconds x sfreq = {patch} must be a whole number of samples.")
        if self.trim_seconds < 0 or self.min_minutes < 0:
            raise ValueError("trim_seconds and min_minutes must not be negative.")
        self.spec()  # band edges against the rate, one place

    @property
    def patch_samples(self) -> int:
        return round(self.patch_seconds * self.sfreq)

    @property
    def window_samples(self) -> int:
        return round(self.window_seconds * self.sfreq)

    @property
    def max_abs_model_units(self) -> float | None:
        """``max_abs_uv`` in model units (EEG: 1.0 = 100 µV)."""
        if self.max_abs_uv is None:
            return None
        return self.max_abs_uv * 1e-6 * DEFAULT_SCALES["eeg"]

    def spec(self) -> PreprocessSpec:
        """The :class:`PreprocessSpec` of the corpus (written into ``corpus.json``)."""
        kinds = ("eeg",) if self.channels in ("tueg19", "all-eeg") else BRAIN_KIND_LABELS
        return PreprocessSpec(sfreq=self.sfreq, patch_samples=self.patch_samples,
                              l_freq=self.l_freq, h_freq=self.h_freq, line_freq=self.line_freq,
                              kinds=kinds, window_samples=self.window_samples)

    def preprocess_config(self):
        """The :class:`neurofm.data.PreprocessConfig` applied to each file: the spec, flat
        channels as ``on_flat`` says, and channels without a position are an error in ``tueg19``
        mode, dropped otherwise."""
        from neurofm.data.preprocess import PreprocessConfig  # imports MNE: workers only

        return PreprocessConfig.from_spec(
            self.spec(), on_flat=self.on_flat,
            on_unknown="raise" if self.channels == "tueg19" else "drop")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class PrepareSummary:
    """What :func:`prepare_corpus` did."""

    out: Path
    n_files: int
    n_kept: int
    n_skipped: int
    n_windows: int
    hours_kept: float
    n_resumed: int
    seconds: float
    reasons: dict[str, int] = field(default_factory=dict)
    parts_missing: list[int] = field(default_factory=list)

    def describe(self) -> str:
        lines = [(f"Corpus {self.out}: {self.n_kept} of {self.n_files} files kept, "
                  f"{self.n_windows} windows, {self.hours_kept:.2f} h of recordings "
                  f"({self.n_resumed} files done in an earlier run; {self.seconds:.1f} s).")]
        for reason, count in sorted(self.reasons.items()):
            lines.append(f"  skipped {count:6d}  {reason}")
        if self.parts_missing:
            missing = ", ".join(map(str, self.parts_missing))
            lines.append(f"Parts not (yet) prepared into {self.out}: {missing}. Read the part "
                         "folders together with Corpus([...]) or merge them (merge_corpora), "
                         "or prepare those parts into this folder too.")
        return "\n".join(lines)


class SkipFile(Exception):
    """A file cannot enter the corpus; ``category`` groups reasons in stats."""

    def __init__(self, category: str, detail: str):
        super().__init__(f"{category}: {detail}")
        self.category = category


@verbose
def prepare_corpus(sources, out, options: PrepareOptions | None = None, *, num_proc: int = 1,
                   part_index: int = 0, num_parts: int = 1,
                   shard_size_mb: float = DEFAULT_SHARD_MB, progress: bool = True,
                   overwrite: bool = False, verbose=None) -> PrepareSummary:
    """Prepare (or resume preparing) a corpus.

    Parameters
    ----------
    sources : path-like or list of path-like
        TUEG tree, BIDS root, folder of recordings or text file listing paths.
    out : path-like
        Corpus folder: new, empty, or one ``neurofm prepare`` wrote (the output-folder rule,
        :func:`neurofm.output_folder.claim_output_folder`). Re-running with the same arguments
        resumes; the parts of one run may write into one folder, at once or in turn.
    options : PrepareOptions, optional
    num_proc : int
        Worker processes (1: everything in this process).
    part_index, num_parts : int
        Prepare only part ``part_index`` of ``num_parts`` disjoint parts of the file list.
    shard_size_mb : float
        Bound on a shard file's size in MB (10^6 bytes); a recording larger than that gets a
        shard of its own. May change between runs into the same folder.
    progress : bool
        Show tqdm progress bars (never above INFO level).
    overwrite : bool
        Write into ``out`` although it holds files neurofm did not write (they are kept).
    verbose : bool, str, int or None
        Log level (:func:`neurofm.logs.log_level`; None: the package's): INFO says what is
        prepared and what an earlier run did; DEBUG names each file kept or skipped.

    Returns
    -------
    PrepareSummary

    Raises
    ------
    ValueError
        ``out`` holds other files, a corpus prepared with other options, or the same part is
        being prepared into it by another job (the error names it).
    OSError
        The disk is full (free space and re-run to resume).
    RuntimeError
        A worker process died (killed, out of memory); re-run to resume.
    """
    t0 = time.perf_counter()
    options = options or PrepareOptions()
    if num_parts < 1 or not 0 <= part_index < num_parts:
        raise ValueError(f"part index {part_index} must be in 0..{num_parts - 1} "
                         f"(number of parts {num_parts}).")
    if num_proc < 1:
        raise ValueError(f"num_proc must be at least 1, got {num_proc}.")
    if not shard_size_mb > 0:
        raise ValueError(f"shard_size_mb must be positive, got {shard_size_mb}.")
    out = Path(out)
    parts = split_into_parts(discover_sources(sources), num_parts)
    files = parts[part_index]
    settings = {"options": options.to_dict(), "part": {"index": part_index, "count": num_parts}}
    claim_output_folder(out, PREPARE_COMMAND, settings, overwrite=overwrite,
                        recognise=is_corpus_folder)
    state = PrepareState.start(out, settings)
    try:
        n_resumed = sum(1 for f in files if f.relpath in state.done)
        part = f" (part {part_index} of {num_parts})" if num_parts > 1 else ""
        logger.info("Preparing %d recording file(s)%s into %s with %d process(es); %d done in "
                    "an earlier run.", len(files), part, out, num_proc, n_resumed)
        with _Workers(num_proc) as workers:
            hashes = _checksum_phase(files, state.done, workers, progress)
            tasks = []
            for f, verdict in zip(files, _dedup(files, hashes)):
                if f.relpath in state.done:
                    continue
                if isinstance(verdict, ManifestRow):
                    state.record_skipped(verdict)
                else:
                    tasks.append((f, verdict, options))
            writer = ShardWriter(out / SHARDS_DIR, part_index=part_index,
                                 first_sequence=state.next_sequence(part_index),
                                 max_bytes=int(shard_size_mb * 1e6), on_close=state.record_shard)
            with _disk_full_message(), writer:
                for row, windows in _prepare_phase(tasks, workers, progress):
                    if windows is None:
                        logger.debug("skipped %s: %s", row.path, row.reason)
                        state.record_skipped(row)
                        continue
                    logger.debug("kept %s: %d windows", row.path, row.n_windows)
                    row.shard, row.shard_row = writer.add(windows.table, row)
                    row.layout = state.sensors.add(windows.sensors)
        if isinstance(sources, (str, os.PathLike)):
            sources = [sources]
        with _disk_full_message():
            written, complete = state.finish(parts, {
                "neurofm_version": __version__,
                "created": datetime.now(UTC).isoformat(timespec="seconds"),
                "sources": [str(Path(s).expanduser().resolve()) for s in sources],
                "options": settings["options"],
                "preprocessing": options.spec().to_dict(),
                "shard_size_mb": float(shard_size_mb),
            })
    finally:
        state.close()
    rows = [written[f.relpath] for f in files]
    kept = [r for r in rows if r.status == KEPT]
    reasons: dict[str, int] = {}
    for r in rows:
        if r.status == SKIPPED:
            key = r.reason.split(":", 1)[0]
            reasons[key] = reasons.get(key, 0) + 1
    return PrepareSummary(out=out, n_files=len(rows), n_kept=len(kept),
                          n_skipped=len(rows) - len(kept),
                          n_windows=int(sum(r.n_windows for r in kept)),
                          hours_kept=float(sum(r.hours for r in kept)), n_resumed=n_resumed,
                          seconds=time.perf_counter() - t0, reasons=reasons,
                          parts_missing=[i for i in range(num_parts) if i not in complete])


def is_corpus_folder(path) -> bool:
    """True for a folder ``neurofm prepare`` wrote before it left an output-folder marker (a
    finished corpus, or a run in progress)."""
    path = Path(path)
    if (path / PROGRESS_DIR / "settings.json").is_file():
        return True
    try:
        config = json.loads((path / CORPUS_JSON).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(config, dict) and "options" in config and "n_windows" in config


def split_into_parts(files: list[SourceFile], num_parts: int) -> list[list[SourceFile]]:
    """Split files into ``num_parts`` disjoint parts of similar total size.

    Files of equal size go to the same part (so duplicates meet); groups are placed largest
    first on the part with the fewest bytes. Deterministic for a given file list; each part
    keeps sorted path order.
    """
    if num_parts == 1:
        return [files]
    groups: dict[int, list[SourceFile]] = {}
    for f in files:
        groups.setdefault(_size(f.path), []).append(f)
    loads = [0] * num_parts
    parts: list[list[SourceFile]] = [[] for _ in range(num_parts)]
    for size in sorted(groups, key=lambda s: (-s * len(groups[s]), s)):
        target = min(range(num_parts), key=lambda i: (loads[i], i))
        parts[target].extend(groups[size])
        loads[target] += size * len(groups[size])
    return [sorted(p, key=lambda f: f.relpath) for p in parts]


@dataclass
class RecordingWindows:
    """The windows of one kept recording, ready for a shard.

    Attributes
    ----------
    table : pyarrow.Table
        Rows of :func:`neurofm.corpus.shards.windows_table`.
    sensors : RecordingSensors
    """

    table: pa.Table
    sensors: RecordingSensors


def prepare_file(source: SourceFile, sha256: str, options: PrepareOptions
                 ) -> tuple[ManifestRow, RecordingWindows | None]:
    """Prepare one file: its manifest row and, if kept, its windows.

    Never raises for a bad recording: the returned row says why it was skipped (and the windows
    are None).

    Returns
    -------
    row : ManifestRow
        ``status`` kept (with ``n_windows``) or skipped (with ``reason``); the caller fills in
        ``shard``, ``shard_row`` and ``layout`` when it stores the windows.
    windows : RecordingWindows or None
    """
    row = ManifestRow(path=source.relpath, status=SKIPPED, sha256=sha256,
                      subject=source.subject, session=source.session or "")
    try:
        windows, layout, start = _windows_of(source, options, row)
        row.n_rejected = int(windows.n_rejected)
        if len(windows.x) == 0:
            raise SkipFile("no-clean-windows",
                           f"all {windows.n_rejected} windows exceed ±{options.max_abs_uv} µV")
        signal = windows.x.reshape(len(windows.x), windows.x.shape[1], -1)  # [W, C, T]
        table = windows_table(signal, source=source.relpath, start=start, dtype=options.dtype)
        sensors = RecordingSensors.create(list(layout.canonical), layout.kinds, layout.pos,
                                          layout.ori)
        row.status, row.n_windows = KEPT, len(signal)
        return row, RecordingWindows(table, sensors)
    except SkipFile as skip:
        row.reason = str(skip)
    except OSError as err:
        row.reason = f"unreadable: {type(err).__name__}: {err}"
    except ValueError as err:  # RecordingError and friends: messages name the file and fix
        row.reason = f"{_category(err)}: {err}"
    except Exception as err:  # noqa: BLE001 - a reader bug must not stop a 27,000-hour job
        row.reason = f"error: {type(err).__name__}: {err}"
    return row, None


def _windows_of(source: SourceFile, options: PrepareOptions, row: ManifestRow):
    """Windows, SensorLayout and window starts (s from file start) of one file.

    Sets ``row.hours`` as soon as the duration is known, so skipped files report it too, and
    ``row.report`` to what preprocessing did.
    """
    from neurofm.data.errors import RecordingError
    from neurofm.data.io import read_raw
    from neurofm.data.preprocess import preprocess_raw
    from neurofm.data.windows import window_recording

    notes = []
    if source.path.suffix.lower() in (".edf", ".bdf"):
        bad = bad_range_channels(source.path)
        if bad:
            raise SkipFile("bad-physical-range",
                           f"{source.relpath}: signals {bad} have an empty physical or digital "
                           "range in the header, so their values cannot be decoded; fix the "
                           "header or drop those signals")
        notes += filter(None, [surplus_data_note(source.path)])
        row.report = "; ".join(notes)
    try:
        raw = read_raw(source.path, preload=False, verbose="error")
    except RecordingError as err:  # truncated, corrupt header, no reader for it
        raise SkipFile("unreadable-recording", str(err)) from None
    duration = raw.n_times / raw.info["sfreq"]
    row.hours = duration / 3600
    if len(raw.ch_names) == 0:
        raise SkipFile("no-signal", f"{source.relpath} holds no signal channels "
                       "(an annotations-only EDF+?)")
    if duration < options.min_minutes * 60:
        raise SkipFile("too-short", f"{duration / 60:.2f} min is shorter than --min-minutes "
                       f"{options.min_minutes:g}")
    raw = _pick_channels(raw, options.channels, source.relpath)
    usable = duration - 2 * options.trim_seconds
    if usable < options.window_seconds:
        raise SkipFile("too-short", f"{duration:.1f} s leaves {max(usable, 0):.1f} s after "
                       f"trimming {options.trim_seconds:g} s at each end, less than one "
                       f"{options.window_seconds:g}-s window")
    if options.trim_seconds > 0:
        raw.crop(tmin=options.trim_seconds, tmax=duration - options.trim_seconds,
                 include_tmax=False)
    rec = preprocess_raw(raw, options.preprocess_config(), source=source.relpath)
    row.report = "; ".join(notes + rec.report)
    windows = window_recording(rec, window_seconds=options.window_seconds,
                               patch_seconds=options.patch_seconds,
                               max_abs=options.max_abs_model_units)
    start = np.asarray(windows.start, np.float64) + options.trim_seconds
    return windows, rec.sensors, start


def _pick_channels(raw, mode: str, relpath: str):
    """Restrict ``raw`` to the channels of ``mode``; skip the file if none (or not all 19)."""
    from neurofm.sensors.names import normalise_channel_name

    names = [normalise_channel_name(n) for n in raw.ch_names]
    if mode == "tueg19":
        index = {}
        for i, n in enumerate(names):
            if not n.bipolar and n.known:
                index.setdefault(n.canonical, i)
        missing = [c for c in TUEG19 if c not in index]
        if len(missing) == len(TUEG19):
            raise SkipFile("no-eeg-channels", f"none of the 19 10-20 EEG channels among "
                           f"{_short_list(raw.ch_names)}")
        if missing:
            raise SkipFile("missing-channels", f"lacks {missing} of the 19 10-20 channels; "
                           "prepare with --channels all-eeg to keep its available channels")
        return raw.pick([index[c] for c in TUEG19])
    types = raw.get_channel_types()
    brain = {"eeg"} if mode == "all-eeg" else {"eeg", "mag", "grad", "seeg", "ecog", "dbs"}
    usable = [i for i, (n, t) in enumerate(zip(names, types))
              if t in brain and (t != "eeg" or n.known)]
    if not usable:
        raise SkipFile("no-eeg-channels", f"no {'EEG' if mode == 'all-eeg' else 'brain'} "
                       f"channel with a known position among {_short_list(raw.ch_names)}")
    return raw.pick(usable)


def _short_list(names, limit: int = 8) -> str:
    shown = ", ".join(names[:limit])
    return f"[{shown}{', …' if len(names) > limit else ''}] ({len(names)} channels)"


def _category(err: Exception) -> str:
    from neurofm.data.errors import FlatSignalError, RecordingTooShortError

    if isinstance(err, FlatSignalError):
        return "flat-signal"
    return "too-short" if isinstance(err, RecordingTooShortError) else "preprocessing-failed"


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


# --------------------------------------------------------------------------- phases


def _checksum_phase(files, done, workers, progress) -> dict[str, str | ManifestRow]:
    """sha256 (or a skip row for empty/unreadable files) per relpath not done yet."""
    todo = [f for f in files if f.relpath not in done]
    results = {}
    bar = _bar(len(todo), "checksums", progress)
    for f, result in zip(todo, workers.map(_checksum_task, todo)):
        results[f.relpath] = result
        bar.update(1)
    bar.close()
    for f in files:
        if f.relpath in done:
            results[f.relpath] = done[f.relpath].sha256 or done[f.relpath]
    return results


def _checksum_task(source: SourceFile):
    row = ManifestRow(path=source.relpath, status=SKIPPED, subject=source.subject,
                      session=source.session or "")
    try:
        if source.path.stat().st_size == 0:
            row.reason = "empty-file: 0 bytes; re-copy it or remove it from the source"
            return row
        return file_sha256(source.path)
    except OSError as err:
        row.reason = f"unreadable: {_unreadable_reason(source.path, err)}"
        return row


def _unreadable_reason(path: Path, err: OSError) -> str:
    if err.errno == errno.ELOOP:
        return ("a symbolic link that leads back to itself (a loop); fix or remove the link")
    if path.is_symlink() and not path.exists():
        return (f"a symbolic link to {os.readlink(path)}, which does not exist; fix or remove "
                "the link")
    return (f"{type(err).__name__}: {err.strerror or err}; check the file's permissions and "
            "that the disk is mounted")


def _dedup(files, hashes):
    """Per file: its sha256 to prepare, or a skip row (empty, unreadable, duplicate)."""
    first_with: dict[str, str] = {}
    for f in files:
        result = hashes[f.relpath]
        if isinstance(result, ManifestRow):
            yield result
            continue
        first = first_with.setdefault(result, f.relpath)
        if first != f.relpath:
            yield ManifestRow(path=f.relpath, status=SKIPPED, sha256=result,
                              reason=f"duplicate: same bytes (sha256) as {first}",
                              subject=f.subject, session=f.session or "")
        else:
            yield result


def _prepare_phase(tasks, workers, progress):
    total_bytes = sum(_size(t[0].path) for t in tasks)
    bar = _bar(len(tasks), "prepare", progress, unit="file")
    hours = kept = 0.0
    done_bytes = 0
    t0 = time.perf_counter()
    try:
        for task, (row, windows) in zip(tasks, workers.map(_prepare_task, tasks)):
            hours += row.hours
            kept += row.status == KEPT
            done_bytes += _size(task[0].path)
            elapsed = time.perf_counter() - t0
            bar.set_postfix_str(f"{hours:.1f} h done, {int(kept)} kept, "
                                f"{hours * 60 / max(elapsed, 1e-9):.1f} h/min, "
                                f"{100 * done_bytes / max(total_bytes, 1):.0f}% bytes",
                                refresh=False)
            bar.update(1)
            yield row, windows
    finally:
        bar.close()


def _prepare_task(task) -> tuple[ManifestRow, RecordingWindows | None]:
    source, sha256, options = task
    return prepare_file(source, sha256, options)


def _bar(total, desc, enabled, unit="file"):
    from neurofm.progress import progress_bar

    return progress_bar(total=total, desc=desc, unit=unit, disable=not enabled, dynamic_ncols=True)


class _Workers:
    """``map`` over a process pool (or in this process for one worker), order preserved.

    A dead worker and a full disk are turned into errors that say how to resume.
    """

    def __init__(self, num_proc: int):
        self.num_proc = num_proc
        self.pool = None

    def __enter__(self):
        if self.num_proc > 1:
            import multiprocessing

            # Forked workers inherit the imports and caches warmed here; elsewhere they spawn.
            _warm_up()
            method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
            self.pool = ProcessPoolExecutor(self.num_proc,
                                            mp_context=multiprocessing.get_context(method),
                                            initializer=_limit_threads)
        return self

    def map(self, fn, items):
        try:
            if self.pool is None:
                yield from map(fn, items)
            else:
                # At most 2 tasks per worker in flight: results wait here in file order, so
                # this bounds the recordings' windows this process holds to ~2 per worker.
                yield from _bounded_map(self.pool, fn, items, 2 * self.num_proc)
        except BrokenProcessPool:
            raise RuntimeError(
                "A worker process died (killed, or out of memory) while preparing the corpus. "
                "Nothing partial was kept; re-run the same command to resume, with fewer "
                "--num-proc if memory is short.") from None

    def __exit__(self, *exc):
        if self.pool is not None:
            self.pool.shutdown(wait=exc[0] is None, cancel_futures=True)
        return False


def _bounded_map(pool, fn, items, window: int):
    from collections import deque

    pending = deque()
    items = iter(items)
    for item in items:
        pending.append(pool.submit(fn, item))
        if len(pending) >= window:
            break
    while pending:
        result = pending.popleft().result()
        nxt = next(items, None)
        if nxt is not None:
            pending.append(pool.submit(fn, nxt))
        yield result


def _warm_up():
    """Import the readers, filters and shard writer (``datasets``, ~1 s) and load the 10-05
    name table once, before forking, so no worker pays for them again."""
    import datasets  # noqa: F401 - imported lazily by shard_features
    import mne.filter
    import mne.io.edf  # noqa: F401

    import neurofm.data.preprocess
    import neurofm.data.windows  # noqa: F401
    from neurofm.sensors.names import canonical_1005_names

    canonical_1005_names()


def _limit_threads():
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
    except ImportError:
        pass


@contextmanager
def _disk_full_message():
    """Turn a full disk (or quota) into an error that says how to resume."""
    try:
        yield
    except OSError as err:
        if is_disk_full(err):
            raise OSError(err.errno or errno.ENOSPC, f"Disk full while writing the corpus "
                          f"({err}). No partial shard was kept; free space and re-run the same "
                          "command to resume.") from None
        raise
