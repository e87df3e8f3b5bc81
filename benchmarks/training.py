"""Training throughput (windows/s): one process vs two processes (DDP, gloo) on this machine.

Builds a synthetic EEG corpus with ``neurofm prepare`` (19 10-20 channels, 200 Hz, 1-s patches),
then pretrains the same model with the same global batch as

* 1 process, 1 thread;
* 1 process, N threads (N = the CPU cores given, default all) — the single-process peer;
* N processes x 1 thread through ``torchrun`` (DDP over gloo);
* optionally (``--bf16``) 1 process, 1 thread under bf16 autocast.

Throughput is the median of the per-step windows/s that the trainer logs, after warm-up steps.
Prints a table with ratios against the single-process N-thread run (the peer on the same cores)
and against one process on one thread, and writes JSON. On a machine shared with other jobs,
multi-threaded runs suffer most from oversubscription; the JSON records the load average.

    python benchmarks/training.py            # criss_cross_small (D=128, 6 layers), 30-s windows
    python benchmarks/training.py --quick    # tiny model, 5-s windows: ~1 minute
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHANNELS = ["Fp1", "Fp2", "F7", "F3", "Fz", "F4", "F8", "T7", "C3", "Cz", "C4", "T8", "P7", "P3",
            "Pz", "P4", "P8", "O1", "O2"]


def build_corpus(root: Path, window_seconds: float, n_files: int, seconds: float) -> Path:
    """Synthetic 19-channel EEG (alpha-band sinusoids + noise) prepared into a corpus."""
    import mne
    import numpy as np

    from neurofm.corpus import PrepareOptions, prepare_corpus

    src = root / "src"
    src.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * 200)) / 200.0
    for k in range(n_files):
        data = np.stack([20e-6 * np.sin(2 * np.pi * rng.uniform(4, 12) * t + rng.uniform(0, 6))
                         + 5e-6 * rng.standard_normal(t.size) for _ in CHANNELS])
        raw = mne.io.RawArray(data, mne.create_info(CHANNELS, 200.0, "eeg"), verbose="error")
        raw.set_montage("standard_1020", verbose="error")
        raw.save(src / f"sub-{k:02d}_raw.fif", verbose="error", overwrite=True)
    options = PrepareOptions(window_seconds=window_seconds, patch_seconds=1.0,
                             channels="all-eeg", trim_seconds=0.0, min_minutes=0.0,
                             max_abs_uv=None, dtype="float32", line_freq=50.0)
    prepare_corpus(src, root / "corpus", options, progress=False)
    return root / "corpus"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_case(corpus: Path, out: Path, overrides: list[str], *, nproc: int, threads: int,
             precision: str) -> dict:
    """Train in fresh processes; return the median windows/s after warm-up."""
    args = ["--config", str(Path(__file__).parent.parent / "pretrain/configs/sim_tiny.yaml"),
            "--out", str(out), "--set", f"data.path={corpus}", "--set", "run.log_every=1",
            "--set", "run.tensorboard=false", "--set", "run.progress=false",
            "--set", f"run.precision={precision}", "--set", "run.checkpoint_every=100000",
            "--set", "run.device=cpu"]
    for item in overrides:
        args += ["--set", item]
    if nproc == 1:
        cmd = [sys.executable, "-m", "neurofm.pretrain", *args]
    else:
        cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={nproc}",
               "--nnodes=1", "--master_addr=127.0.0.1", f"--master_port={free_port()}",
               "-m", "neurofm.pretrain", *args]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    steady = [r["windows_per_s"] for r in records[WARMUP_STEPS:]]
    return {"nproc": nproc, "threads_per_proc": threads, "precision": precision,
            "windows_per_s": statistics.median(steady), "steps_measured": len(steady),
            "final_loss": records[-1]["loss"], "wall_s": wall}


WARMUP_STEPS = 3


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="Tiny model and 5-s windows (about a minute on 2 cores).")
    parser.add_argument("--cores", type=int, default=os.cpu_count(),
                        help="Cores to use: threads of the single process, ranks of DDP.")
    parser.add_argument("--steps", type=int, default=None, help="Steps per case.")
    parser.add_argument("--bf16", action="store_true", help="Add a bf16 autocast case.")
    parser.add_argument("--json", default="benchmarks/results/training.json",
                        help="Where to write the results.")
    args = parser.parse_args(argv)
    cores = max(args.cores, 2)
    if args.quick:
        model = ("model.overrides={dim: 64, depth: 2, n_heads: 4, ffn_dim: 128, dropout: 0.0, "
                 "drop_path: 0.0}")
        window, batch, steps, n_files = 5.0, 8, args.steps or 12, 4
        model_name = "criss_cross_small (D=64, 2 layers)"
    else:
        model = "model.overrides={dropout: 0.0, drop_path: 0.0}"
        window, batch, steps, n_files = 30.0, 8, args.steps or 10, 4
        model_name = "criss_cross_small (D=128, 6 layers)"
    overrides = [model, f"data.batch_size={batch}", f"run.steps={steps}",
                 "optim.warmup_steps=2"]
    with tempfile.TemporaryDirectory(prefix="neurofm-bench-") as tmp:
        tmp = Path(tmp)
        corpus = build_corpus(tmp / "data", window, n_files, seconds=max(60.0, 4 * window))
        cases = [("1 process x 1 thread", 1, 1, "fp32"),
                 (f"1 process x {cores} threads", 1, cores, "fp32"),
                 (f"{cores} processes x 1 thread (DDP, gloo)", cores, 1, "fp32")]
        if args.bf16:
            cases.append(("1 process x 1 thread, bf16 autocast", 1, 1, "bf16"))
        results = []
        for k, (label, nproc, threads, precision) in enumerate(cases):
            res = run_case(corpus, tmp / f"run{k}", overrides, nproc=nproc, threads=threads,
                           precision=precision)
            res["case"] = label
            results.append(res)
            print(f"  done: {label}", file=sys.stderr)
    peer, one_thread = results[1]["windows_per_s"], results[0]["windows_per_s"]
    print(f"\nTraining throughput, {model_name}, {len(CHANNELS)} ch x {window:.0f}-s windows, "
          f"global batch {batch}, {steps} steps (median after {WARMUP_STEPS} warm-up)\n")
    print(f"{'case':<42} {'windows/s':>10} {'vs 1p x ' + str(cores) + 't':>10} "
          f"{'vs 1p x 1t':>10} {'final loss':>11}")
    for res in results:
        res["ratio_vs_single_process"] = res["windows_per_s"] / peer
        res["ratio_vs_single_thread"] = res["windows_per_s"] / one_thread
        print(f"{res['case']:<42} {res['windows_per_s']:>10.2f} "
              f"{res['ratio_vs_single_process']:>9.2f}x {res['ratio_vs_single_thread']:>9.2f}x "
              f"{res['final_loss']:>11.6f}")
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    import torch

    out.write_text(json.dumps({
        "benchmark": "training_throughput", "model": model_name, "channels": len(CHANNELS),
        "window_seconds": window, "global_batch": batch, "steps": steps, "cores": cores,
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(),
                    "load_average": os.getloadavg(),
                    "torch": torch.__version__},
        "results": results}, indent=2))
    print(f"\nWrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
