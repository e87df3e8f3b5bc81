"""``neurofm.embed`` on a long recording against the same work written by hand with MNE and torch.

The recording: 10 minutes of 64-channel EEG (BioSemi-64 names, positions from the montage) at
500 Hz, Gaussian noise of 20 µV with a 10-Hz rhythm, as an in-memory MNE Raw. The model:
``criss_cross_small`` (random initialisation; the cost does not depend on the weights) with its
preprocessing (200 Hz, 0.3-75 Hz, 1.0 = 100 µV), cut into 30-s windows (20 windows).

* ``neurofm.embed``: ``neurofm.embed(model, raw)`` (channel checks, sensors, one FIR + FFT
  resampling pass, windows, forward passes in batches of 8).
* ``by hand``: ``raw.copy().resample(200)``, ``.filter(0.3, 75)`` (MNE's FIR), ``* 1e4``,
  reshape into ``[20, 64, 30, 200]``, ``SensorBatch.from_info`` and ``model.embed`` in batches
  of 8 under ``torch.inference_mode`` - what a user would write without neurofm.

Both run ``--repeats`` times, alternating, on ``--threads`` torch threads (median wall time);
the preprocessing and the model part of each are timed apart (``neurofm.embed``'s forward passes
by wrapping :func:`neurofm.embedding.encode`). The table also gives how close the
two sets of embeddings are (their filters differ: MNE's FIR design vs neurofm's plan).
Prints a table and writes JSON (``--out``). ``--quick``: 2 minutes of recording, 2 repeats.

Usage::

    python benchmarks/embed.py --quick
    python benchmarks/embed.py --out benchmarks/results/embed.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
import warnings
from pathlib import Path

import mne
import numpy as np
import torch

import neurofm
from neurofm.models import create_model
from neurofm.sensors import SensorBatch

BATCH = 8


def make_recording(minutes: float, n_channels: int = 64, sfreq: float = 500.0,
                   seed: int = 0) -> mne.io.RawArray:
    """``minutes`` of ``n_channels`` BioSemi channels: 20 µV noise plus a 10-Hz rhythm."""
    montage = mne.channels.make_standard_montage("biosemi64")
    names = montage.ch_names[:n_channels]
    rng = np.random.default_rng(seed)
    n = round(minutes * 60 * sfreq)
    t = np.arange(n) / sfreq
    data = rng.normal(0.0, 20e-6, (n_channels, n)).astype(np.float64)
    data += 10e-6 * np.sin(2 * np.pi * 10 * t)[None, :]
    info = mne.create_info(names, sfreq, "eeg")
    raw = mne.io.RawArray(data, info, verbose="error")
    raw.set_montage(montage, verbose="error")
    return raw


def by_hand(model, raw, window_seconds: float = 30.0) -> tuple[np.ndarray, dict]:
    """The same work with MNE and torch directly: resample, filter, scale, window, forward."""
    start = time.perf_counter()
    prepared = raw.copy().resample(200.0, verbose="error").filter(0.3, 75.0, verbose="error")
    data = prepared.get_data().astype(np.float32) * 1e4  # volts -> 1.0 = 100 µV
    c, w = data.shape[0], round(window_seconds * 200)
    n_windows = data.shape[1] // w
    x = np.ascontiguousarray(data[:, :n_windows * w].reshape(c, n_windows, w // 200, 200)
                             .transpose(1, 0, 2, 3))
    sensors = SensorBatch.from_info(prepared.info)
    preprocess_s = time.perf_counter() - start
    start = time.perf_counter()
    out = []
    with torch.inference_mode():
        for i in range(0, n_windows, BATCH):
            xb = torch.from_numpy(x[i:i + BATCH])
            sb = SensorBatch.collate([sensors] * xb.shape[0])
            out.append(model.embed(xb, sb).numpy())
    model_s = time.perf_counter() - start
    return np.concatenate(out), {"preprocess_s": preprocess_s, "model_s": model_s}


def with_neurofm(model, raw) -> tuple[np.ndarray, dict]:
    """``neurofm.embed`` end to end; its forward passes (:func:`neurofm.embedding.encode`) are
    timed apart by wrapping that function for the call."""
    from neurofm import embedding

    encode, spent = embedding.encode, {}

    def timed_encode(*args, **kwargs):
        start = time.perf_counter()
        try:
            return encode(*args, **kwargs)
        finally:
            spent["model_s"] = time.perf_counter() - start

    embedding.encode = timed_encode
    start = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = neurofm.embed(model, raw, batch_size=BATCH)
    finally:
        embedding.encode = encode
    total = time.perf_counter() - start
    return out.embeddings, {"total_s": total, "model_s": spent["model_s"],
                            "preprocess_s": total - spent["model_s"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--channels", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--quick", action="store_true",
                        help="2 minutes of recording, 2 repeats")
    parser.add_argument("--out", default="benchmarks/results/embed.json")
    args = parser.parse_args()
    if args.quick:
        args.minutes, args.repeats = 2.0, 2
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = create_model("criss_cross_small").eval()
    raw = make_recording(args.minutes, args.channels)
    rec_s = raw.n_times / raw.info["sfreq"]

    with_neurofm(model, raw)  # warm-up (imports, kernel caches) for both paths
    by_hand(model, raw)
    runs = {"neurofm.embed": [], "by hand": []}
    parts = {"neurofm.embed": [], "by hand": []}
    for _ in range(args.repeats):
        z_ours, timing = with_neurofm(model, raw)
        runs["neurofm.embed"].append(timing["total_s"])
        parts["neurofm.embed"].append(timing)
        z_hand, timing = by_hand(model, raw)
        runs["by hand"].append(timing["preprocess_s"] + timing["model_s"])
        parts["by hand"].append(timing)
    n_windows = len(z_ours)
    rows = []
    for name, seconds in runs.items():
        median = statistics.median(seconds)
        rows.append({"path": name, "median_s": round(median, 3),
                     "windows_per_s": round(n_windows / median, 2),
                     "recording_s_per_s": round(rec_s / median, 1),
                     "preprocess_s": round(statistics.median(
                         p["preprocess_s"] for p in parts[name]), 3),
                     "model_s": round(statistics.median(p["model_s"] for p in parts[name]), 3),
                     "runs_s": [round(s, 3) for s in seconds]})
    rows[0]["vs_by_hand"] = round(rows[1]["median_s"] / rows[0]["median_s"], 2)
    cos = np.sum(z_ours * z_hand, 1) / (np.linalg.norm(z_ours, axis=1)
                                         * np.linalg.norm(z_hand, axis=1))
    agreement = {"min_cosine": float(cos.min()),
                 "max_abs_diff": float(np.abs(z_ours - z_hand).max()),
                 "max_abs_embedding": float(np.abs(z_hand).max())}

    print(f"neurofm.embed vs by hand: {args.minutes:g} min x {args.channels} ch at 500 Hz, "
          f"{n_windows} windows of 30 s, criss_cross_small, {args.threads} thread(s)")
    print(f"{'path':<15} {'median s':>9} {'prep s':>7} {'model s':>8} {'windows/s':>10} "
          f"{'rec s/s':>8}  runs")
    for row in rows:
        print(f"{row['path']:<15} {row['median_s']:>9.2f} {row['preprocess_s']:>7.2f} "
              f"{row['model_s']:>8.2f} {row['windows_per_s']:>10.2f} "
              f"{row['recording_s_per_s']:>8.1f}  {row['runs_s']}")
    print(f"neurofm.embed takes {1 / rows[0]['vs_by_hand']:.2f}x the time by hand; embeddings "
          f"agree to cosine >= {agreement['min_cosine']:.4f}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "benchmark": "embed", "minutes": args.minutes, "channels": args.channels,
        "sfreq_in": 500.0, "windows": n_windows, "threads": args.threads,
        "repeats": args.repeats, "model": "criss_cross_small", "rows": rows,
        "agreement": agreement,
        "machine": {"python": platform.python_version(), "torch": torch.__version__,
                    "cpu_count": os.cpu_count(), "load_average": os.getloadavg()},
    }, indent=1))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
