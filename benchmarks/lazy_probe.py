"""Probing a TUAB-sized trial set whose windows stay on disk: peak memory and windows per second.

Writes a look-alike TUAB release (``neurofm.datasets.clinical_standins``: simulated 20-minute
recordings with TUH's referential channels at 250 Hz) of each requested size, then in a fresh
process per size loads it with ``tuab:ROOT?lazy=true`` (16 bipolar channels, 10-s windows) and
extracts the frozen embeddings of every window with a random-init ``criss_cross_small`` (the
probe's forward passes; each recording preprocessed whole — 0.3-75 Hz, 60 Hz notch, 200 Hz — then
cut, batch by batch). A few distinct recordings are simulated and hard-linked under distinct
subject names to reach the window count (the reader opens and preprocesses every file as if it
were distinct; the page cache serves repeated bytes).

Reported per size: load time (reading every EDF header), embedding time and windows/s, the
process's peak RSS (``VmHWM`` of ``/proc/self/status``: the probing process's own peak, which
``ru_maxrss`` is not after a fork from a large parent), its peak before embedding (imports, model,
window table), and the memory the same windows would take in memory as model inputs (float32).
Memory is flat when the peak does not grow with the number of windows.

Usage::

    python benchmarks/lazy_probe.py --quick                      # 500 and 2,000 windows
    python benchmarks/lazy_probe.py --sizes 10000 100000 --out benchmarks/results/lazy_probe.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

RECORDING_SECONDS = 1200.0
DISTINCT_RECORDINGS = 4
WINDOW_SECONDS = 10.0

_WORKER = textwrap.dedent("""
    import json, resource, sys, time
    import torch
    from neurofm.data.spec import PreprocessSpec
    from neurofm.datasets import load_dataset
    from neurofm.eval.embeddings import extract_embeddings
    from neurofm.eval.window_inputs import recording_inputs
    from neurofm.models import create_model

    root, device, batch = sys.argv[1], sys.argv[2], int(sys.argv[3])
    def rss_mb():  # this process image's peak (ru_maxrss would include the parent's at fork)
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    trials = load_dataset(f"tuab:{root}?lazy=true")
    load_s = time.perf_counter() - start
    torch.manual_seed(0)
    model = create_model("criss_cross_small")
    spec = PreprocessSpec(l_freq=0.3, h_freq=75.0, line_freq=60.0)
    inputs = recording_inputs(trials, spec)
    before = rss_mb()
    stats = {}
    start = time.perf_counter()
    z = extract_embeddings(model, inputs.x, inputs.sensors, inputs.patch_valid,
                           batch_size=batch, device=device, stats=stats)
    probe_s = time.perf_counter() - start
    n = len(trials)
    print(json.dumps({
        "windows": n, "recordings": trials.provenance["n_recordings"], "load_s": load_s,
        "probe_s": probe_s, "windows_per_s": n / probe_s, "peak_rss_mb": rss_mb(),
        "rss_before_probe_mb": before, "embedding_shape": list(z.shape),
        "inputs_in_memory_mb": n * 16 * 2000 * 4 / 2**20, "threads": torch.get_num_threads(),
        "peak_cuda_mb": stats.get("peak_memory_mb")}))
""")


def write_release(root: Path, windows: int) -> int:
    """A TUAB look-alike of at least ``windows`` 10-s windows; returns the recording count."""
    from neurofm.datasets.clinical_standins import write_tuab
    from neurofm.simulate.tueg import tueg_subject_id

    per_file = int(RECORDING_SECONDS // WINDOW_SECONDS)
    n_files = math.ceil(windows / per_file)
    seeds = root / "distinct"
    sources = write_tuab(seeds, train=(DISTINCT_RECORDINGS // 2, DISTINCT_RECORDINGS // 2),
                         evaluation=(0, 0), seconds=RECORDING_SECONDS)
    edf = root / "release" / "v3.0.1" / "edf"
    for i in range(n_files):
        part = "eval" if i % 5 == 4 else "train"
        label = ("normal", "abnormal")[i % 2]
        folder = edf / part / label / "01_tcp_ar"
        folder.mkdir(parents=True, exist_ok=True)
        per_class = DISTINCT_RECORDINGS // 2  # write_tuab's order: the normal ones first
        source = sources[(i % 2) * per_class + (i // 2) % per_class]
        os.link(source, folder / f"{tueg_subject_id(1000 + i)}_s001_t000.edf")
    return n_files


def measure(windows: int, device: str, batch: int) -> dict:
    """Write a release of ``windows`` windows and probe it in a fresh process."""
    with tempfile.TemporaryDirectory(prefix="lazy_probe_") as tmp:
        start = time.perf_counter()
        write_release(Path(tmp), windows)
        written = time.perf_counter() - start
        done = subprocess.run([sys.executable, "-W", "ignore", "-c", _WORKER,
                               str(Path(tmp) / "release"), device, str(batch)],
                              capture_output=True, text=True, check=False,
                              env={**os.environ, "MNE_LOGGING_LEVEL": "ERROR"})
        if done.returncode:
            raise RuntimeError(f"probe of {windows} windows failed:\n{done.stderr[-3000:]}")
        result = json.loads(done.stdout.strip().splitlines()[-1])
        return {**result, "write_s": written}


def table(rows: list[dict]) -> str:
    lines = [("| windows | recordings | load (s) | probe (s) | windows/s | peak RSS (MB) | "
             "RSS before probe (MB) | inputs in memory would be (MB) |"),
             "|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['windows']:,} | {r['recordings']:,} | {r['load_s']:.1f} | "
                     f"{r['probe_s']:.1f} | {r['windows_per_s']:.1f} | {r['peak_rss_mb']:.0f} | "
                     f"{r['rss_before_probe_mb']:.0f} | {r['inputs_in_memory_mb']:,.0f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000],
                        help="window counts to probe")
    parser.add_argument("--quick", action="store_true", help="500 and 2,000 windows")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--out", default=None, help="JSON file to write")
    args = parser.parse_args(argv)
    sizes = [500, 2000] if args.quick else args.sizes
    rows = []
    for windows in sizes:
        rows.append(measure(windows, args.device, args.batch_size))
        print(table(rows[-1:]).splitlines()[-1], flush=True)
    print(table(rows))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps({
            "benchmark": "lazy_probe", "model": "criss_cross_small (random init)",
            "device": args.device, "batch_size": args.batch_size,
            "recording_seconds": RECORDING_SECONDS, "python": platform.python_version(),
            "cpu_count": os.cpu_count(), "results": rows}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
