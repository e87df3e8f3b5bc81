"""Simulator figures: speed per sensor set, and the supervised reference accuracy per task.

1. Speed: seconds of simulated signal per second of CPU time, per sensor set, for a cold
   forward model (computed) and a cached one, against the peer :func:`mne.simulation.simulate_raw`
   given the same fixed-orientation forward and the same source estimate (a short stretch, since
   it holds the whole ``[S, T]`` estimate in memory). Ratio = peer time / our time (> 1: faster).
2. Accuracy: braindecode's ShallowFBCSPNet (oscillatory tasks) or EEGNet (ERP) trained from
   scratch (AdamW, lr 1e-3, batch 16, channels z-scored with training statistics) on each
   labelled task and modality
   (``motor_imagery``, ``erp``, ``abnormal``, ``sleep_like``: chance 25 %/50 %/50 %/20 %;
   ``vigilance`` is regression, reported as Pearson r). Metric: balanced accuracy on held-out
   data. Trial tasks (motor imagery, ERP) are split 75/25 stratified over the pooled trials of
   all subjects; recording-level and continuous tasks (abnormal, sleep, vigilance) are split by
   subject, so windows of one recording never sit on both sides: the subjects are dealt into
   folds of a quarter of them (at least two for ``abnormal``: one normal, one abnormal), each
   fold is held out once, and the score is the mean over folds (the spread is in the JSON).

Usage::

    python benchmarks/simulation.py --quick                  # ~25 CPU minutes, one thread
    python benchmarks/simulation.py --quick --skip-speed --tasks abnormal,vigilance
    python benchmarks/simulation.py --out results/simulation.json

Prints two tables and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

ALL_TASKS = ("motor_imagery", "erp", "abnormal", "sleep_like", "vigilance")
#: Model per task: ShallowFBCSPNet (log band power) for the oscillatory tasks, EEGNet for ERPs.
MODEL_FOR_TASK = {"motor_imagery": "ShallowFBCSPNet", "erp": "EEGNet",
                  "abnormal": "ShallowFBCSPNet", "sleep_like": "ShallowFBCSPNet",
                  "vigilance": "ShallowFBCSPNet"}


def cpu_time() -> float:
    return time.process_time()


def bench_speed(sensor_sets, seconds: float, peer_seconds: float, grid_mm: float) -> list[dict]:
    """Simulated seconds per CPU second per sensor set, cold and cached, and the MNE peer."""
    import mne

    from neurofm.simulate import head_model, make_sensor_set, simulate_recording
    from neurofm.simulate.head import clear_cache
    from neurofm.simulate.recording import _project
    from neurofm.simulate.tasks import TaskPlan

    rows = []
    for modality, montage in sensor_sets:
        clear_cache()
        kw = {"montage": montage, "sfreq": 250.0, "grid_mm": grid_mm, "artefacts": ()}
        t0 = cpu_time()
        simulate_recording("resting", modality, duration=seconds, **kw)
        cold = cpu_time() - t0
        t0 = cpu_time()
        rec = simulate_recording("resting", modality, duration=seconds, **kw)
        warm = cpu_time() - t0
        # Peer: simulate_raw with the whole source estimate at once, same forward.
        sensor_set = make_sensor_set(modality, montage)
        head = head_model(sensor_set, 1.0, grid_mm)
        fwd = head.fixed_forward(np.random.default_rng(0).standard_normal((head.n_sources, 3)))
        n = int(peer_seconds * 250)
        data = np.random.default_rng(1).standard_normal((head.n_sources, n)) * 1e-8
        stc = mne.VolSourceEstimate(data, [fwd["src"][0]["vertno"]], 0.0, 1 / 250)
        info = sensor_set.final_info(250.0) if modality in ("eeg", "meg") else head.sensor_set.info
        with info._unlock():
            info["sfreq"] = 250.0
        t0 = cpu_time()
        mne.simulation.simulate_raw(info, stc, forward=fwd, verbose="error")
        peer = (cpu_time() - t0) / peer_seconds
        t0 = cpu_time()
        _project(fwd, head, TaskPlan(activity={}), {}, np.random.default_rng(2), n, 250.0)
        ours_project = (cpu_time() - t0) / peer_seconds
        rows.append({"sensor_set": f"{modality}:{sensor_set.name}",
                         "channels": len(rec.raw.ch_names), "sources": head.n_sources,
                         "cold_signal_s_per_s": seconds / cold, "warm_signal_s_per_s": seconds / warm,
                         "warm_signal_min_per_s": seconds / warm / 60.0,
                         "projection_s_per_signal_s": ours_project,
                         "peer_simulate_raw_s_per_signal_s": peer,
                         "ratio_peer_over_ours": peer / ours_project})
    return rows


def train_model(model_name: str, trials, train, test, epochs: int, seed: int = 0) -> dict:
    """Train ``EEGNet`` or ``ShallowFBCSPNet`` (braindecode) from scratch on ``trials[train]``.

    Returns balanced accuracy (classification) or Pearson r (regression) on ``trials[test]``.
    """
    from braindecode import models
    from sklearn.metrics import balanced_accuracy_score

    torch.manual_seed(seed)
    X = trials.X
    mean = X[train].mean(axis=(0, 2), keepdims=True)
    std = X[train].std(axis=(0, 2), keepdims=True) + 1e-20
    Xn = torch.from_numpy(((X - mean) / std).astype(np.float32))
    regression = trials.task == "regression"
    n_out = 1 if regression else len(trials.class_names)
    model = getattr(models, model_name)(n_chans=X.shape[1], n_outputs=n_out, n_times=X.shape[2])
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-3)
    if regression:   # z-scored targets (training statistics) condition the MSE; r is unchanged
        target = trials.y.astype(np.float32)
        y = torch.from_numpy((target - target[train].mean()) / (target[train].std() + 1e-12))
    else:
        y = torch.from_numpy(trials.y.astype(np.int64))
    if not regression:
        counts = np.bincount(trials.y[train], minlength=n_out).astype(np.float32)
        weight = torch.from_numpy(counts.sum() / np.maximum(counts, 1) / n_out)
        loss_fn = torch.nn.CrossEntropyLoss(weight=weight)
    else:
        loss_fn = torch.nn.MSELoss()
    gen = torch.Generator().manual_seed(seed)
    t0 = time.perf_counter()
    for _ in range(epochs):
        model.train()
        for batch in torch.randperm(len(train), generator=gen).split(16):
            idx = torch.from_numpy(train)[batch]
            out = model(Xn[idx])
            loss = loss_fn(out.squeeze(-1) if regression else out, y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        out = torch.cat([model(Xn[torch.from_numpy(b)])
                         for b in np.array_split(test, max(1, len(test) // 64))])
    result = {"train_trials": len(train), "test_trials": len(test),
                  "train_seconds": time.perf_counter() - t0}
    if regression:
        result["pearson_r"] = float(np.corrcoef(out.squeeze(-1).numpy(), trials.y[test])[0, 1])
    else:
        result["balanced_accuracy"] = float(balanced_accuracy_score(trials.y[test],
                                                                    out.argmax(1).numpy()))
        result["chance"] = 1.0 / n_out
    return result


def split(trials, task: str, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """Folds of ``(train, test)`` indices: one stratified trial split, or subject folds.

    See the module docstring. Subjects alternate normal/abnormal in the ``abnormal`` task, so
    consecutive subject pairs keep every fold balanced.
    """
    rng = np.random.default_rng(seed)
    if task in ("motor_imagery", "erp"):
        train, test = [], []
        for k in np.unique(trials.y):
            idx = rng.permutation(np.flatnonzero(trials.y == k))
            cut = round(0.75 * len(idx))
            train += idx[:cut].tolist()
            test += idx[cut:].tolist()
        return [(np.sort(train), np.sort(test))]
    subjects = sorted(set(trials.subject))
    per_fold = max(2 if task == "abnormal" else 1, len(subjects) // 4)
    if len(subjects) < 2 * per_fold:
        raise ValueError(f"{task} needs at least {2 * per_fold} subjects for a subject split "
                         f"(got {len(subjects)}).")
    folds = []
    for start in range(0, len(subjects) - per_fold + 1, per_fold):
        is_test = np.isin(trials.subject, subjects[start:start + per_fold])
        folds.append((np.flatnonzero(~is_test), np.flatnonzero(is_test)))
    return folds


def bench_accuracy(pairs, subjects, minutes, epochs, grid_mm, sfreq,
                   overrides=None, models=None) -> list[dict]:
    """Score of the task's reference model for each ``(task, modality)`` pair.

    ``overrides`` maps a task to its own ``(subjects, minutes)``; ``models`` lists the
    braindecode models to train (default: :data:`MODEL_FOR_TASK` of each task).
    """
    from neurofm.datasets import load_simulated

    rows = []
    default_size = (subjects, minutes)
    for task, modality in pairs:
        subjects, minutes = (overrides or {}).get(task, default_size)
        options = {"epoch_seconds": 10.0} if task == "sleep_like" else {}
        t0 = time.perf_counter()
        trials = load_simulated(task, modality=modality, subjects=subjects, minutes=minutes,
                                sfreq=sfreq, grid_mm=grid_mm, seed=0, **options)
        sim_seconds = time.perf_counter() - t0
        folds = split(trials, task)
        for model_name in models or [MODEL_FOR_TASK[task]]:
            row = {"task": task, "modality": modality, "model": model_name,
                   "channels": trials.n_channels, "samples": trials.n_times,
                   "subjects": subjects, "minutes": minutes, "simulate_seconds": sim_seconds,
                   "folds": [train_model(model_name, trials, train, test, epochs)
                             for train, test in folds]}
            metric = "pearson_r" if trials.task == "regression" else "balanced_accuracy"
            scores = [f[metric] for f in row["folds"]]
            row.update({metric: float(np.mean(scores)), f"{metric}_std": float(np.std(scores)),
                        "n_folds": len(folds), "train_trials": row["folds"][0]["train_trials"],
                        "test_trials": row["folds"][0]["test_trials"]})
            if metric == "balanced_accuracy":
                row["chance"] = row["folds"][0]["chance"]
            rows.append(row)
            print(f"  {task:14s} {modality:5s} {model_name:16s} {np.mean(scores):.3f} "
                  f"(folds: {', '.join(f'{x:.2f}' for x in scores)})", flush=True)
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="3 sensor sets; EEG for every task + MEG motor imagery; 4 subjects "
                             "x 3 min (abnormal and vigilance: 8 x 2 min, 4 subject folds); "
                             "25 epochs (~25 CPU minutes on one thread)")
    parser.add_argument("--out", type=Path, default=Path("results/simulation.json"))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--skip-accuracy", action="store_true")
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--tasks", default=",".join(ALL_TASKS),
                        help="comma-separated tasks for the accuracy table (default: all)")
    parser.add_argument("--modalities", default="",
                        help="comma-separated modalities (eeg, meg, seeg, ecog) for the accuracy "
                             "table: every selected task in each (default: the preset's pairs)")
    parser.add_argument("--models", default="",
                        help="comma-separated braindecode models to train on every task, e.g. "
                             "EEGNet,ShallowFBCSPNet (default: ShallowFBCSPNet for the "
                             "oscillatory tasks, EEGNet for the ERP)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.quick:
        sensor_sets = [("eeg", "colin27_1020"), ("meg", "neuromag"), ("seeg", "shafts8")]
        speed_kw = {"seconds": 30.0, "peer_seconds": 10.0, "grid_mm": 12.0}
        acc_kw = {"pairs": [(t, "eeg") for t in ALL_TASKS] + [("motor_imagery", "meg")],
                      "subjects": 4, "minutes": 3.0, "epochs": 25, "grid_mm": 15.0, "sfreq": 100.0,
                      "overrides": {"abnormal": (8, 2.0), "vigilance": (8, 2.0)}}
    else:
        sensor_sets = [("eeg", "colin27_1020"), ("eeg", "colin27_1005"), ("eeg", "biosemi64"),
                       ("eeg", "GSN-HydroCel-129"), ("meg", "neuromag"), ("meg", "ctf275"),
                       ("seeg", "shafts8"), ("ecog", "grid8x8")]
        speed_kw = {"seconds": 120.0, "peer_seconds": 20.0, "grid_mm": 12.0}
        acc_kw = {"pairs": [(t, m) for t in ALL_TASKS for m in ("eeg", "meg", "seeg", "ecog")],
                      "subjects": 8, "minutes": 5.0, "epochs": 40, "grid_mm": 12.0, "sfreq": 100.0}

    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    acc_kw["models"] = [m.strip() for m in args.models.split(",") if m.strip()] or None
    modalities = [m.strip() for m in args.modalities.split(",") if m.strip()]
    if modalities:
        acc_kw["pairs"] = [(t, m) for t in ALL_TASKS for m in modalities]
    acc_kw["pairs"] = [(t, m) for t, m in acc_kw["pairs"] if t in tasks]
    unknown = sorted(set(tasks) - set(ALL_TASKS))
    if unknown:
        parser.error(f"unknown task(s) {unknown}; choose from {', '.join(ALL_TASKS)}")
    speed = [] if args.skip_speed else bench_speed(sensor_sets, **speed_kw)
    if speed:
        print("Simulation speed (CPU time, 250 Hz, resting, no artefacts)")
        print(f"{'sensor set':24s} {'ch':>4s} {'src':>5s} {'cold s/s':>9s} {'warm s/s':>9s} "
              f"{'min/s':>6s} {'ours proj':>10s} {'simulate_raw':>13s} {'ratio':>6s}")
    for r in speed:
        print(f"{r['sensor_set']:24s} {r['channels']:4d} {r['sources']:5d} "
              f"{r['cold_signal_s_per_s']:9.1f} {r['warm_signal_s_per_s']:9.1f} "
              f"{r['warm_signal_min_per_s']:6.2f} {r['projection_s_per_signal_s']:10.4f} "
              f"{r['peer_simulate_raw_s_per_signal_s']:13.4f} {r['ratio_peer_over_ours']:6.2f}")
    accuracy = []
    from neurofm.compat import braindecode_available

    if not args.skip_accuracy and not braindecode_available():
        print("\naccuracy: skipped, the braindecode models need neurofm[braindecode]")
    elif not args.skip_accuracy:
        print("\nbraindecode models from scratch (balanced accuracy; vigilance: Pearson r)")
        accuracy = bench_accuracy(**acc_kw)
        print(f"{'task':14s} {'modality':8s} {'model':16s} {'ch':>4s} {'folds':>5s} "
              f"{'train':>6s} {'test':>5s} {'score':>6s} {'± sd':>6s} {'chance':>6s}")
        for r in accuracy:
            metric = "balanced_accuracy" if "balanced_accuracy" in r else "pearson_r"
            chance = f"{r['chance']:.2f}" if "chance" in r else "  r"
            print(f"{r['task']:14s} {r['modality']:8s} {r['model']:16s} {r['channels']:4d} "
                  f"{r['n_folds']:5d} {r['train_trials']:6d} {r['test_trials']:5d} "
                  f"{r[metric]:6.3f} {r[metric + '_std']:6.3f} {chance:>6s}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "quick": args.quick, "threads": args.threads, "machine": platform.platform(),
        "processor": platform.processor(), "torch": torch.__version__, "speed": speed,
        "accuracy": accuracy}, indent=2))
    print(f"\nWrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
