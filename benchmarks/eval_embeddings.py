"""Embedding extraction for the frozen probe: time and memory per 1,000 windows.

Compares, in one run with the same model, windows and threads:

* ``bare``: a hand-written loop ``with torch.no_grad(): model.embed(...)`` in eval mode (the peer:
  what a user would write without neurofm.eval);
* ``extract``: :func:`neurofm.eval.embeddings.extract_embeddings` (eval + no_grad + bit-for-bit
  frozen check of every parameter and buffer + model/input hashing + writing the cache);
* ``cached``: the same call again, served from the on-disk cache.

Times are process CPU seconds (other jobs on a shared machine do not count), median of
``--repeats``; memory is the growth of the process's peak RSS during the first extraction
(``resource.getrusage``), and peak CUDA memory on GPU. Prints a table and writes JSON.

Usage::

    python benchmarks/eval_embeddings.py --quick
    python benchmarks/eval_embeddings.py --model criss_cross_small --windows 1000 --out results/eval_embeddings.json
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def _layout(channels: int):
    from neurofm.sensors import SensorLayout
    from neurofm.sensors.montages import montage_positions_head

    names = ["Fp1", "Fp2", "F7", "F3", "Fz", "F4", "F8", "T7", "C3", "Cz", "C4", "T8", "P7",
             "P3", "Pz", "P4", "P8", "O1", "O2"][:channels]
    pos = montage_positions_head("standard_1020", names)
    return SensorLayout(names=names, kinds=np.zeros(len(names)),
                        pos=np.stack([pos[n] for n in names]), ori=np.zeros((len(names), 3)),
                        pos_source=["montage"] * len(names))


def _bare(model, x, layout, valid, batch_size):
    from neurofm.sensors import SensorBatch

    model.eval()
    base = SensorBatch.from_layout(layout)
    out = []
    with torch.no_grad():
        for i in range(0, len(x), batch_size):
            xb = torch.from_numpy(x[i:i + batch_size])
            b = xb.shape[0]
            out.append(model.embed(xb, base.expand(b),
                                   patch_valid=torch.from_numpy(valid[i:i + b])).numpy())
    return np.concatenate(out)


def _cpu_seconds(fn) -> float:
    start = time.process_time()
    fn()
    return time.process_time() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="criss_cross_small")
    parser.add_argument("--windows", type=int, default=256, help="windows embedded per repeat")
    parser.add_argument("--channels", type=int, default=19)
    parser.add_argument("--patches", type=int, default=4, help="1-s patches per window")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="tiny model, 64 windows, 2 repeats")
    parser.add_argument("--out", default="benchmarks/results/eval_embeddings.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from neurofm.eval.embeddings import extract_embeddings
    from neurofm.models import create_model

    overrides = {"dim": 32, "depth": 2, "n_heads": 4, "ffn_dim": 64} if args.quick else {}
    if args.quick:
        args.windows, args.repeats = 64, 2
    torch.manual_seed(0)
    model = create_model(args.model, **overrides)
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((args.windows, args.channels, args.patches, 200)) * 0.2).astype(
        np.float32)
    valid = np.ones((args.windows, args.patches), bool)
    layout = _layout(args.channels)

    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    times = {"bare": [], "extract": [], "cached": []}
    with tempfile.TemporaryDirectory() as cache:
        for r in range(args.repeats):
            times["bare"].append(_cpu_seconds(
                lambda: _bare(model, x, layout, valid, args.batch_size)))
            sub = Path(cache) / f"r{r}"
            for key in ("extract", "cached"):  # first call writes the cache, second reads it
                times[key].append(_cpu_seconds(lambda sub=sub: extract_embeddings(
                    model, x, layout, valid, batch_size=args.batch_size, cache_dir=sub)))
    rss_growth_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024

    per_1000 = {k: 1000 * statistics.median(v) / args.windows for k, v in times.items()}
    rows = [("bare no_grad loop (peer)", per_1000["bare"], 1.0),
            ("extract_embeddings (frozen check + cache write)", per_1000["extract"],
             per_1000["bare"] / per_1000["extract"]),
            ("extract_embeddings (cache hit)", per_1000["cached"],
             per_1000["bare"] / max(per_1000["cached"], 1e-9))]
    print(f"{args.model}{' (quick)' if args.quick else ''}: {args.windows} windows x "
          f"{args.channels} ch x {args.patches} s, batch {args.batch_size}, "
          f"{args.threads} thread(s), CPU seconds, median of {args.repeats}")
    print(f"{'path':50s} {'s / 1000 windows':>17s} {'peer / this':>12s}")
    for name, sec, ratio in rows:
        print(f"{name:50s} {sec:17.2f} {ratio:12.2f}")
    print(f"peak RSS growth during the runs: {rss_growth_mb:.0f} MB")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "model": args.model, "overrides": overrides, "windows": args.windows,
        "channels": args.channels, "patches": args.patches, "batch_size": args.batch_size,
        "threads": args.threads, "repeats": args.repeats,
        "cpu_seconds": times, "seconds_per_1000_windows": per_1000,
        "ratio_peer_over_extract": rows[1][2], "peak_rss_growth_mb": rss_growth_mb,
        "python": platform.python_version(), "torch": torch.__version__}, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
