"""Loading a BNCI2014_001-sized MOABB dataset from disk, and probing it with criss_cross_base.

The data are a stand-in of BCI Competition IV 2a (:mod:`neurofm.datasets.moabb_standins`):
MOABB's ``FakeDataset`` with its shape (9 subjects, 2 sessions, 6 runs of 48 trials = 288 trials
per session, 22 EEG channels at 250 Hz, events and trial interval of BNCI2014_001), written once
as FIF files (one per subject, session and run) and read back from disk on every load, as a
downloaded dataset is read. Steps, each timed (wall and process CPU seconds):

* ``write``: writing the FIF files (setup; not part of the figure);
* ``load (MOABB get_data, peer)``: ``MotorImagery().get_data(dataset)`` — MOABB's own arrays,
  what a MOABB user would write;
* ``load (neurofm from_moabb)``: :func:`neurofm.datasets.from_moabb` — the same paradigm
  pipeline run per subject, session and run, files checked first, with the metadata table;
* ``probe`` (unless ``--skip-probe``): ``neurofm probe`` on the loaded trials
  (:func:`neurofm.eval.run.run_evaluation`): preprocessing to 200 Hz, frozen criss_cross_base
  embeddings (mean pooling, a fresh cache), a logistic-regression probe per fold of
  leave-one-subject-out (the bcic_iv_2a config's stricter protocol), one seed, no baseline row.

The two loaders are timed ``--repeats`` times, alternating (median). ``--quick``: 3 subjects
and 1 run of 48 trials per session (288 trials). Prints a table and writes JSON (``--out``).

Usage::

    python benchmarks/bci_load.py --quick
    python benchmarks/bci_load.py --out benchmarks/results/bci_load.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch


def _timed(fn):
    wall, cpu = time.perf_counter(), time.process_time()
    value = fn()
    return value, time.perf_counter() - wall, time.process_time() - cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="criss_cross_base")
    parser.add_argument("--subjects", type=int, default=9)
    parser.add_argument("--runs", type=int, default=6, help="runs per session (48 trials each)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeats", type=int, default=3,
                        help="loads timed per loader (median; the two alternate)")
    parser.add_argument("--skip-probe", action="store_true", help="time the loads only")
    parser.add_argument("--quick", action="store_true",
                        help="3 subjects x 2 sessions x 1 run of 48 trials (288 trials), "
                             "2 repeats")
    parser.add_argument("--out", default="benchmarks/results/bci_load.json")
    args = parser.parse_args()
    if args.quick:
        args.subjects, args.runs, args.repeats = 3, 1, 2
    torch.set_num_threads(args.threads)
    os.environ.setdefault("MNE_LOGGING_LEVEL", "WARNING")

    from moabb.paradigms import MotorImagery

    from neurofm.datasets import from_moabb
    from neurofm.datasets.moabb_standins import SHAPES, standin_dataset
    from neurofm.eval.run import EvalSettings, run_evaluation

    shape = SHAPES["BNCI2014_001"]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        dataset = standin_dataset("BNCI2014_001", subjects=args.subjects, runs=args.runs,
                                  folder=Path(tmp) / "fif", seed=0)
        files, wall, cpu = _timed(dataset.write)
        rows.append({"step": "write FIF files (setup)", "wall_s": wall, "cpu_s": cpu,
                     "files": len(files)})
        loads = {"load (MOABB get_data, peer)":
                 lambda: MotorImagery(fmin=None, fmax=None).get_data(dataset)[1],
                 "load (neurofm from_moabb)": lambda: from_moabb(dataset, "MotorImagery")}
        times, loaded = {name: [] for name in loads}, {}
        for _ in range(args.repeats):   # alternate, so neither gets a warmer file cache
            for name, load in loads.items():
                loaded[name], wall, cpu = _timed(load)
                times[name].append((wall, cpu))
        for name, measured in times.items():
            rows.append({"step": name, "wall_s": statistics.median(t[0] for t in measured),
                         "cpu_s": statistics.median(t[1] for t in measured),
                         "trials": len(loaded[name])})
        trials = loaded["load (neurofm from_moabb)"]
        if not args.skip_probe:
            settings = EvalSettings(
                model=args.model, data=trials.name, out=str(Path(tmp) / "probe"),
                protocol="loso", seeds=1, pool="mean", baselines=[], importance=False,
                batch_size=args.batch_size, device=args.device,
                cache_dir=str(Path(tmp) / "cache"))
            payload, wall, cpu = _timed(lambda: run_evaluation(settings, trials=trials))
            timing = next(iter(payload["embedding_timing"].values()))[0]
            rows.append({"step": f"probe {args.model} (preprocess + embed + LOSO probe)",
                         "wall_s": wall, "cpu_s": cpu, "trials": len(trials),
                         "embed_s_per_1000": timing.get("seconds_per_1000"),
                         "balanced_accuracy": payload["methods"][0]["summary"][
                             "balanced_accuracy"]["mean"]})
    for row in rows:
        if "trials" in row:
            row["trials_per_s"] = row["trials"] / max(row["wall_s"], 1e-9)
    ratio = rows[2]["wall_s"] / max(rows[1]["wall_s"], 1e-9)

    n_sessions = shape.sessions
    print(f"BNCI2014_001 stand-in{' (quick)' if args.quick else ''}: {args.subjects} subjects x "
          f"{n_sessions} sessions x {args.runs} run(s) x {shape.events_per_run} trials, "
          f"{len(shape.channels)} ch at {shape.sfreq:g} Hz; {args.model} on {args.device}, "
          f"{args.threads} thread(s)")
    print(f"{'step':58s} {'wall s':>8s} {'CPU s':>8s} {'trials/s':>9s}  (loads: median of "
          f"{args.repeats})")
    for row in rows:
        rate = f"{row['trials_per_s']:9.0f}" if "trials_per_s" in row else f"{'':9s}"
        print(f"{row['step']:58s} {row['wall_s']:8.2f} {row['cpu_s']:8.2f} {rate}")
    print(f"from_moabb / get_data wall time: {ratio:.2f}")
    if len(rows) > 3:
        print(f"embedding: {rows[3]['embed_s_per_1000']:.1f} s per 1000 trials")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "quick": args.quick, "model": args.model, "device": args.device,
        "threads": args.threads, "batch_size": args.batch_size,
        "shape": {"subjects": args.subjects, "sessions": n_sessions, "runs": args.runs,
                  "trials_per_run": shape.events_per_run, "channels": len(shape.channels),
                  "sfreq": shape.sfreq},
        "results": rows, "ratios": {"from_moabb_over_get_data": ratio},
        "machine": {"cores": os.cpu_count(), "python": platform.python_version(),
                    "torch": torch.__version__, "platform": platform.platform()}},
        indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
