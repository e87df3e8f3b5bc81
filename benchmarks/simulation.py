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
   subject (the last quarter of subjects is the test set), so windows of one recording never sit
   on both sides.

Usage::

    python benchmarks/simulation.py --quick                  # a few minutes on a laptop CPU
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
    y = torch.from_numpy(trials.y.astype(np.float32 if regression else np.int64))
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


def split(trials, task: str, seed: int = 0):
    """Train/test indices: stratified over trials, or by subject (see module docstring)."""
    rng = np.random.default_rng(seed)
    if task in ("motor_imagery", "erp"):
        train, test = [], []
        for k in np.unique(trials.y):
            idx = rng.permutation(np.flatnonzero(trials.y == k))
            cut = round(0.75 * len(idx))
            train += idx[:cut].tolist()
            test += idx[cut:].tolist()
        return np.sort(train), np.sort(test)
    subjects = sorted(set(trials.subject))
    n_test = max(2 if task == "abnormal" else 1, len(subjects) // 4)
    test_subjects = subjects[-n_test:]
    is_test = np.isin(trials.subject, test_subjects)
    return np.flatnonzero(~is_test), np.flatnonzero(is_test)


def bench_accuracy(pairs, subjects, minutes, epochs, grid_mm, sfreq,
                   overrides=None) -> list[dict]:
    """Score of the task's reference model for each ``(task, modality)`` pair.

    ``overrides`` maps a task to its own ``(subjects, minutes)``.
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
        train, test = split(trials, task)
        row = {"task": task, "modality": modality, "model": MODEL_FOR_TASK[task],
                   "channels": trials.n_channels,
                   "samples": trials.n_times, "subjects": subjects, "minutes": minutes,
                   "simulate_seconds": sim_seconds}
        row.update(train_model(MODEL_FOR_TASK[task], trials, train, test, epochs))
        rows.append(row)
        score = row.get("balanced_accuracy", row.get("pearson_r"))
        print(f"  {task:14s} {modality:5s} {score:.3f}", flush=True)
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="3 sensor sets; EEG for every task + MEG motor imagery; 4 subjects "
                             "x 3 min; 25 epochs (a few minutes)")
    parser.add_argument("--out", type=Path, default=Path("results/simulation.json"))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--skip-accuracy", action="store_true")
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--tasks", default=",".join(ALL_TASKS),
                        help="comma-separated tasks for the accuracy table (default: all)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.quick:
        sensor_sets = [("eeg", "colin27_1020"), ("meg", "neuromag"), ("seeg", "shafts8")]
        speed_kw = {"seconds": 30.0, "peer_seconds": 10.0, "grid_mm": 12.0}
        acc_kw = {"pairs": [(t, "eeg") for t in ALL_TASKS] + [("motor_imagery", "meg")],
                      "subjects": 4, "minutes": 3.0, "epochs": 25, "grid_mm": 15.0, "sfreq": 100.0}
    else:
        sensor_sets = [("eeg", "colin27_1020"), ("eeg", "colin27_1005"), ("eeg", "biosemi64"),
                       ("eeg", "GSN-HydroCel-129"), ("meg", "neuromag"), ("meg", "ctf275"),
                       ("seeg", "shafts8"), ("ecog", "grid8x8")]
        speed_kw = {"seconds": 120.0, "peer_seconds": 20.0, "grid_mm": 12.0}
        acc_kw = {"pairs": [(t, m) for t in ALL_TASKS for m in ("eeg", "meg", "seeg", "ecog")],
                      "subjects": 8, "minutes": 5.0, "epochs": 40, "grid_mm": 12.0, "sfreq": 100.0}

    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
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
    if not args.skip_accuracy:
        print("\nbraindecode models from scratch (balanced accuracy; vigilance: Pearson r)")
        accuracy = bench_accuracy(**acc_kw)
        print(f"{'task':14s} {'modality':8s} {'model':16s} {'ch':>4s} {'train':>6s} "
              f"{'test':>5s} {'score':>6s} {'chance':>6s}")
        for r in accuracy:
            score = r.get("balanced_accuracy", r.get("pearson_r"))
            chance = f"{r['chance']:.2f}" if "chance" in r else "  r"
            print(f"{r['task']:14s} {r['modality']:8s} {r['model']:16s} {r['channels']:4d} "
                  f"{r['train_trials']:6d} {r['test_trials']:5d} {score:6.3f} {chance:>6s}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "quick": args.quick, "threads": args.threads, "machine": platform.platform(),
        "processor": platform.processor(), "torch": torch.__version__, "speed": speed,
        "accuracy": accuracy}, indent=2))
    print(f"\nWrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
