"""Corpus at TUEG scale: many short recordings against a few long ones with the same windows.

Two TUEG-layout trees of EDF files (19 channels under TUH names, 200 Hz, noise) hold the same
number of 10-s windows: ``--recordings`` short recordings of ``--windows-per-recording``
windows each, and ``--long-recordings`` long ones. Each tree is prepared with
:func:`neurofm.corpus.prepare_corpus` and read back with :class:`neurofm.corpus.Corpus`, in fresh
processes, through the public API only, so the same script measures older neurofm code too
(``--code /path/to/checkout``, repeatable: the children run with ``PYTHONPATH`` set to it).

Figures per corpus: ``prepare`` wall time and time per recording, files and bytes written, time
to open the corpus (fastest of 5), the memory the open corpus holds (RSS growth, and the index's
own arrays where the code reports them), shuffled random access in windows/s in one process
(``corpus[i]``) and through a ``DataLoader`` with 2 workers (batches of 32 from
``DistributedWindowSampler``), streamed windows/s (``corpus.stream()``, one process), and peak
RSS of the preparing and of the reading processes. Target: the many-recording corpus within 1.5x
of the few-recording one on open time and shuffled reads.

The extrapolation to TUEG (70,000 recordings, 1.1 M windows of 30 s x 19 channels at 200 Hz in
float16, 228 kB each) scales the measured figures: bytes and files from the measured bytes per
window and the shard size; open time and index memory linearly in the number of recordings
from the two corpora; read rates by the window size (the read cost is mostly copying and
converting the window). The GPU's appetite is an assumption, stated with the numbers:
``criss_cross_base`` costs 5.58 GFLOP per forward pass of one such window
(``benchmarks/backbones.py``), a training step about 3x that, and an H100 sustains about
250 TFLOP/s in bf16 on it (a quarter of its dense peak of 989: a model of width 200 keeps the
tensor cores far from full), so one GPU eats about 15,000 windows/s.

Files are read from the page cache (the corpus was just written), which favours every
configuration alike; on a cold network file system the differences in files opened grow.

Usage::

    python benchmarks/corpus_scale.py --quick                  # 1,000 vs 20 recordings
    python benchmarks/corpus_scale.py                          # 20,000 vs 20 (~12 GB of EDF)
    python benchmarks/corpus_scale.py --quick --code . --code /work/base   # after and before
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SFREQ = 200
WINDOW_SECONDS = 10
TUH_19 = ["FP1", "FP2", "F7", "F3", "FZ", "F4", "F8", "T3", "C3", "CZ", "C4", "T4", "T5", "P3",
          "PZ", "P4", "T6", "O1", "O2"]
#: TUEG after CBraMod's recipe, and the model's appetite (see the module docstring).
TUEG = {"recordings": 70_000, "windows": 1_100_000, "channels": 19, "samples": 6000}
CRISS_CROSS_BASE_GFLOP_FORWARD = 5.58
TRAIN_STEP_FLOP_FACTOR = 3.0
GPU_TFLOPS_BF16 = 250.0


# ----------------------------------------------------------------------------- input trees


def write_edf(path: Path, seconds: int, rng: np.random.Generator) -> None:
    """A plain EDF file: 19 TUH-named EEG channels at 200 Hz, 1-s records, ~20 µV noise."""
    ns = len(TUH_19)

    def text(value, width: int) -> bytes:
        return str(value).ljust(width)[:width].encode("ascii")

    header = [text("0", 8), text(f"{path.stem[:8]} X X X", 80),
              text("Startdate 01-JAN-2015 X X X", 80), text("01.01.15", 8),
              text("00.00.00", 8), text(256 * (ns + 1), 8), text("", 44), text(seconds, 8),
              text(1, 8), text(ns, 4)]
    for width, values in ((16, [f"EEG {n}-REF" for n in TUH_19]), (80, [""] * ns),
                          (8, ["uV"] * ns), (8, [-1000] * ns), (8, [1000] * ns),
                          (8, [-32768] * ns), (8, [32767] * ns), (80, [""] * ns),
                          (8, [SFREQ] * ns), (32, [""] * ns)):
        header += [text(v, width) for v in values]
    data = rng.normal(0, 650, (seconds, ns, SFREQ)).astype("<i2")  # 1 digital step = 0.03 µV
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(header) + data.tobytes())


def subject_id(i: int) -> str:
    letters = []
    for _ in range(8):
        i, r = divmod(i, 26)
        letters.append(chr(ord("a") + r))
    return "".join(reversed(letters))


def build_tree(root: Path, n_recordings: int, seconds: int, seed: int) -> None:
    """``n_recordings`` TUEG-layout EDF files of ``seconds`` each under ``root`` (reused when a
    previous run left the same tree)."""
    marker = root / "tree.json"
    spec = {"recordings": n_recordings, "seconds": seconds, "seed": seed}
    if marker.is_file() and json.loads(marker.read_text()) == spec:
        return
    shutil.rmtree(root, ignore_errors=True)
    rng = np.random.default_rng(seed)
    for i in range(n_recordings):
        sid = subject_id(i)
        write_edf(root / "edf" / f"{i // 1000:03d}" / sid / "s001_2015_01_01" / "01_tcp_ar"
                  / f"{sid}_s001_t000.edf", seconds, rng)
    marker.write_text(json.dumps(spec))


# ----------------------------------------------------------------------------- children


def child_prepare(tree: str, out: str, num_proc: int, shard_size_mb: float) -> dict:
    import inspect

    from neurofm.corpus import PrepareOptions, prepare_corpus
    from neurofm.corpus import prepare as prepare_module

    if hasattr(prepare_module, "_warm_up"):
        prepare_module._warm_up()  # imports before timing, as in benchmarks/pipeline.py
    options = PrepareOptions(window_seconds=WINDOW_SECONDS, trim_seconds=0.0, min_minutes=0.0,
                             max_abs_uv=None)
    kwargs = {}
    if "shard_size_mb" in inspect.signature(prepare_corpus).parameters:
        kwargs["shard_size_mb"] = shard_size_mb
    t0 = time.perf_counter()
    summary = prepare_corpus(tree, out, options, num_proc=num_proc, progress=False, **kwargs)
    seconds = time.perf_counter() - t0
    files = [p for p in Path(out).rglob("*") if p.is_file()]
    shards = [p for p in files if p.parent.name == "shards"]
    return {"seconds": seconds, "recordings": summary.n_kept, "windows": summary.n_windows,
            "files": len(files), "bytes": sum(p.stat().st_size for p in files),
            "shard_files": len(shards), "shard_bytes": sum(p.stat().st_size for p in shards),
            "shard_size_mb": kwargs.get("shard_size_mb")}


def child_read(corpus_dir: str, n_read: int, n_stream: int, batch: int) -> dict:
    import torch

    from neurofm.corpus import Corpus, DistributedWindowSampler
    from neurofm.data import collate_windows

    torch.set_num_threads(1)
    rss0 = _rss_kb(os.getpid())
    t0 = time.perf_counter()
    corpus = Corpus(corpus_dir)
    first_open = time.perf_counter() - t0
    open_rss_mb = (_rss_kb(os.getpid()) - rss0) / 1024
    opens = []
    for _ in range(5):
        t0 = time.perf_counter()
        Corpus(corpus_dir)
        opens.append(time.perf_counter() - t0)
    index = getattr(corpus, "index", None)
    result = {"windows": len(corpus), "open_ms": 1e3 * min(opens),
              "first_open_ms": 1e3 * first_open, "open_rss_mb": open_rss_mb,
              "index_bytes": int(index.nbytes) if hasattr(index, "nbytes") else None}

    order = np.random.default_rng(0).permutation(len(corpus))[:n_read]
    corpus[int(order[0])]
    t0 = time.perf_counter()
    for i in order:
        corpus[int(i)]
    result["random_windows_per_s"] = len(order) / (time.perf_counter() - t0)

    sampler = DistributedWindowSampler(len(corpus), batch_size=batch, seed=0)
    loader = torch.utils.data.DataLoader(corpus, batch_sampler=sampler, num_workers=2,
                                         collate_fn=collate_windows)
    t0 = time.perf_counter()
    batches = iter(loader)
    next(batches)
    result["loader_first_batch_s"] = time.perf_counter() - t0
    count, t0 = 0, time.perf_counter()
    for item in batches:
        count += item["x"].shape[0]
        if count >= n_read:
            break
    result["loader_windows_per_s"] = count / (time.perf_counter() - t0)
    del batches

    count, t0 = 0, time.perf_counter()
    for _ in corpus.stream():
        count += 1
        if count >= n_stream:
            break
    result["stream_windows_per_s"] = count / (time.perf_counter() - t0)
    return result


def run_child(code: Path, name: str, *args) -> dict:
    """Run ``child_<name>(*args)`` in a new interpreter with ``PYTHONPATH=code``; returns its
    result with the peak RSS of the child (``main``) and of its descendants (``workers``)."""
    env = {**os.environ, "PYTHONPATH": str(code), "OMP_NUM_THREADS": "1",
           "MNE_LOGGING_LEVEL": "WARNING"}
    proc = subprocess.Popen([sys.executable, __file__, "--child", name, json.dumps(args)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peaks: dict[int, int] = {}
    stop = threading.Event()

    def watch():
        while not stop.is_set():
            for pid in [proc.pid] + _descendants(proc.pid):
                peaks[pid] = max(peaks.get(pid, 0), _hwm_kb(pid))
            time.sleep(0.05)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    out, err = proc.communicate()
    stop.set()
    watcher.join()
    if proc.returncode != 0:
        raise RuntimeError(f"{name}{args} with {code} failed:\n{err[-3000:]}")
    result = json.loads(out.strip().splitlines()[-1])
    workers = [kb for pid, kb in peaks.items() if pid != proc.pid]
    result["peak_rss_mb_main"] = peaks.get(proc.pid, 0) / 1024
    result["peak_rss_mb_workers"] = max(workers, default=0) / 1024
    return result


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            children.setdefault(int(stat.rsplit(")", 1)[1].split()[1]), []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _status_kb(pid: int, key: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _hwm_kb(pid: int) -> int:
    return _status_kb(pid, "VmHWM:")


def _rss_kb(pid: int) -> int:
    return _status_kb(pid, "VmRSS:")


# ----------------------------------------------------------------------------- figures


def code_label(code: Path) -> str:
    done = subprocess.run(["git", "-C", str(code), "rev-parse", "--short", "HEAD"],
                          capture_output=True, text=True, check=False)
    commit = done.stdout.strip() or "?"
    dirty = subprocess.run(["git", "-C", str(code), "status", "--porcelain", "--", "neurofm"],
                           capture_output=True, text=True, check=False).stdout.strip()
    return f"{code} @ {commit}{' + changes' if dirty else ''}"


def extrapolate(short: dict, long: dict, window_bytes: int) -> dict:
    """TUEG figures from the two corpora (see the module docstring for the assumptions)."""
    n_short, n_long = short["recordings"], long["recordings"]
    scale = TUEG["channels"] * TUEG["samples"] * 2 / window_bytes
    shard_bytes = TUEG["windows"] * scale * short["shard_bytes"] / short["windows"]

    def linear(key):
        """Linear in recordings through the two corpora; a negative slope (the smaller corpus
        measured slower: noise) is taken as flat."""
        slope = max(0.0, (short[key] - long[key]) / (n_short - n_long))
        return max(short[key], long[key]) if slope == 0 else \
            long[key] + slope * (TUEG["recordings"] - n_long)

    other_bytes = linear("other_bytes")
    packed = short["shard_files"] < short["recordings"]
    shard_files = (math.ceil(shard_bytes / (short["shard_size_mb"] * 1e6)) if packed
                   else TUEG["recordings"])
    appetite = GPU_TFLOPS_BF16 * 1e12 / (CRISS_CROSS_BASE_GFLOP_FORWARD * 1e9
                                          * TRAIN_STEP_FLOP_FACTOR)
    loader = short["loader_windows_per_s"] / scale  # 2 workers
    return {
        "recordings": TUEG["recordings"], "windows": TUEG["windows"],
        "bytes": shard_bytes + other_bytes,
        "files": shard_files + short["files"] - short["shard_files"],
        "open_ms": linear("open_ms"),
        "index_mb": (linear("index_bytes") / 2**20 if short.get("index_bytes") is not None
                     else None),
        "open_rss_mb": linear("open_rss_mb"),
        "loader_windows_per_s_2_workers": loader,
        "random_windows_per_s_1_process": short["random_windows_per_s"] / scale,
        "stream_windows_per_s_1_process": short["stream_windows_per_s"] / scale,
        "gpu_windows_per_s": appetite,
        "loader_workers_per_gpu": appetite / (loader / 2),
        "processes_per_gpu_at_one_process_rate": appetite / (short["random_windows_per_s"]
                                                             / scale),
        "assumptions": (f"criss_cross_base {CRISS_CROSS_BASE_GFLOP_FORWARD} GFLOP forward per "
                        f"30-s 19-channel window, x{TRAIN_STEP_FLOP_FACTOR:g} per training step, "
                        f"{GPU_TFLOPS_BF16:g} TFLOP/s bf16 sustained on one H100 (a quarter of "
                        "its dense peak); read rates "
                        f"of the 10-s windows divided by {scale:.0f} (window size); files in "
                        "the page cache; open time and memory linear in recordings"),
    }


def print_table(rows: list[dict]) -> None:
    cols = [("code", "{}", 24), ("corpus", "{}", 7), ("recordings", "{:,}", 11),
            ("windows", "{:,}", 8), ("prepare_s", "{:.1f}", 10), ("ms_per_recording", "{:.1f}", 9),
            ("files", "{:,}", 7), ("mb", "{:.0f}", 7), ("open_ms", "{:.1f}", 8),
            ("open_rss_mb", "{:.1f}", 8), ("random_windows_per_s", "{:.0f}", 9),
            ("loader_windows_per_s", "{:.0f}", 9), ("stream_windows_per_s", "{:.0f}", 9),
            ("prepare_peak_mb", "{:.0f}", 9), ("read_peak_mb", "{:.0f}", 9)]
    heads = {"ms_per_recording": "ms/rec", "open_rss_mb": "open MB", "prepare_s": "prepare s",
             "random_windows_per_s": "random/s", "loader_windows_per_s": "loader/s",
             "stream_windows_per_s": "stream/s", "prepare_peak_mb": "prep MB",
             "read_peak_mb": "read MB", "open_ms": "open ms"}
    print("".join(f"{heads.get(c, c):>{w}}" for c, _, w in cols))
    for row in rows:
        print("".join(f"{(f.format(row[c]) if row.get(c) is not None else '-'):>{w}}"
                      for c, f, w in cols))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="1,000 short recordings (default 20,000)")
    parser.add_argument("--recordings", type=int, default=None, help="short recordings")
    parser.add_argument("--windows-per-recording", type=int, default=4,
                        help="10-s windows per short recording (default 4)")
    parser.add_argument("--long-recordings", type=int, default=20,
                        help="long recordings holding the same windows (default 20)")
    parser.add_argument("--num-proc", type=int, default=1, help="prepare's worker processes")
    parser.add_argument("--shard-size-mb", type=float, default=256.0,
                        help="shard size where the code has the option (default 256)")
    parser.add_argument("--code", action="append", type=Path, default=None,
                        help="neurofm checkout to measure (repeatable; default this one)")
    parser.add_argument("--read-windows", type=int, default=None,
                        help="windows read per access pattern (default 2,000; quick 1,000)")
    parser.add_argument("--json", default=None, help="where to write the results (default "
                        "benchmarks/results/corpus_scale[_quick].json)")
    parser.add_argument("--workdir", default=None,
                        help="folder for trees and corpora (kept; trees are reused)")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        name, child_args = args.child
        print(json.dumps(globals()[f"child_{name}"](*json.loads(child_args))))
        return 0
    n_short = args.recordings or (1000 if args.quick else 20_000)
    per = args.windows_per_recording
    if (n_short * per) % args.long_recordings:
        parser.error("recordings x windows-per-recording must divide by --long-recordings")
    n_read = args.read_windows or (1000 if args.quick else 2000)
    codes = [c.resolve() for c in (args.code or [ROOT])]
    out_json = Path(args.json or ROOT / "benchmarks" / "results" /
                    f"corpus_scale{'_quick' if args.quick else ''}.json")
    work = Path(args.workdir or tempfile.mkdtemp(prefix="neurofm_corpus_scale_"))
    window_bytes = len(TUH_19) * WINDOW_SECONDS * SFREQ * 2
    trees = {"short": (n_short, per * WINDOW_SECONDS),
             "long": (args.long_recordings, n_short * per // args.long_recordings
                      * WINDOW_SECONDS)}
    gb = 2 * n_short * per * window_bytes / 1e9
    print(f"Writing two trees of {n_short * per:,} 10-s windows ({n_short:,} and "
          f"{args.long_recordings} recordings, {gb:.1f} GB of EDF) under {work} ...", flush=True)
    for seed, (name, (count, seconds)) in enumerate(trees.items()):
        build_tree(work / f"tree_{name}", count, seconds, seed)

    rows = []
    for code in codes:
        label = code_label(code)
        for name in trees:
            corpus = work / f"corpus_{name}"
            shutil.rmtree(corpus, ignore_errors=True)
            print(f"{label}: preparing {name} ...", flush=True)
            prep = run_child(code, "prepare", str(work / f"tree_{name}"), str(corpus),
                             args.num_proc, args.shard_size_mb)
            print(f"{label}: reading {name} ...", flush=True)
            read = run_child(code, "read", str(corpus), n_read, n_read, 32)
            rows.append({"code": label, "corpus": name, **prep,
                         "ms_per_recording": 1e3 * prep["seconds"] / prep["recordings"],
                         "mb": prep["bytes"] / 1e6,
                         "other_bytes": prep["bytes"] - prep["shard_bytes"],
                         "prepare_s": prep["seconds"],
                         "prepare_peak_mb": max(prep["peak_rss_mb_main"],
                                                prep["peak_rss_mb_workers"]),
                         **{k: v for k, v in read.items() if k != "windows"},
                         "read_peak_mb": read["peak_rss_mb_main"],
                         "read_worker_peak_mb": read["peak_rss_mb_workers"]})
            shutil.rmtree(corpus, ignore_errors=True)

    ratios, tueg = [], []
    for code in codes:
        label = code_label(code)
        short, long = (next(r for r in rows if r["code"] == label and r["corpus"] == c)
                       for c in ("short", "long"))
        ratios.append({"code": label,
                       "open_time_short_over_long": short["open_ms"] / long["open_ms"],
                       "loader_reads_long_over_short": (long["loader_windows_per_s"]
                                                        / short["loader_windows_per_s"]),
                       "random_reads_long_over_short": (long["random_windows_per_s"]
                                                        / short["random_windows_per_s"])})
        tueg.append({"code": label, **extrapolate(short, long, window_bytes)})

    print()
    print_table(rows)
    print("\nmany vs few recordings (target: within 1.5x)")
    for r in ratios:
        print(f"  {r['code']}: open time {r['open_time_short_over_long']:.2f}x, shuffled reads "
              f"{r['loader_reads_long_over_short']:.2f}x (DataLoader, 2 workers), "
              f"{r['random_reads_long_over_short']:.2f}x (one process)")
    print(f"\nTUEG ({TUEG['recordings']:,} recordings, {TUEG['windows']:,} windows of 30 s):")
    for t in tueg:
        index = f"{t['index_mb']:.1f} MB index" if t["index_mb"] is not None else "index -"
        print(f"  {t['code']}: {t['files']:,} files, {t['bytes'] / 1e9:.0f} GB, open "
              f"{t['open_ms']:.0f} ms, {index}, {t['open_rss_mb']:.0f} MB held when open; "
              f"{t['random_windows_per_s_1_process']:.0f} windows/s read by one process, "
              f"{t['loader_windows_per_s_2_workers']:.0f}/s from 2 loader workers, vs "
              f"{t['gpu_windows_per_s']:.0f}/s eaten by one GPU: "
              f"{t['processes_per_gpu_at_one_process_rate']:.0f} reading processes per GPU at "
              f"the one-process rate ({t['loader_workers_per_gpu']:.0f} at this loader's)")
    print(f"  assumptions: {tueg[0]['assumptions']}")
    result = {"quick": args.quick, "short_recordings": n_short, "windows_per_recording": per,
              "long_recordings": args.long_recordings, "num_proc": args.num_proc,
              "results": rows, "ratios": ratios, "tueg": tueg,
              "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                          "platform": platform.platform()}}
    out_json.parent.mkdir(parents=True, exist_ok=True)
    out_json.write_text(json.dumps(result, indent=1))
    print(f"\nwrote {out_json}")
    if not args.workdir:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
