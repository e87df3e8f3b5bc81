"""Tokenizer benchmark: encode throughput and codebook use during training.

1. **Encode throughput** (windows/s of ``NeuralTokenizer.encode``, no grad, fp32) for 30-s windows
   at 200 Hz of a 19-channel 10-20 EEG and the 306-channel Neuromag MEG, for the ``small``
   tokenizer (every sensor is a token row) and ``small_unified`` (16 latent channels); the ratio
   unified / per-sensor is measured in the same run, rounds interleaved.
2. **Codebook curves**: the ``small`` tokenizer trained on simulated resting EEG
   (``neurofm.simulate``), with and without dead-code restart; every ``--eval-every`` steps the
   held-out subject's codebook usage, perplexity and amplitude error (vs the mean-spectrum
   baseline) are recorded. Written as a PNG and JSON.

Usage::

    python benchmarks/tokenizer.py --quick
    python benchmarks/tokenizer.py --threads 4 --steps 600 --out results/tokenizer.json
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch

EEG_1020 = ["Fp1", "Fp2", "F3", "F4", "C3", "C4", "P3", "P4", "O1", "O2", "F7", "F8", "T7", "T8",
            "P7", "P8", "Fz", "Cz", "Pz"]
SFREQ = 200.0


def montage_sensors(name: str):
    """``SensorBatch`` (B=1) of ``"eeg19"`` or ``"meg306"``, resolved by neurofm.sensors."""
    import mne

    from neurofm.sensors import SensorBatch

    if name == "eeg19":
        return SensorBatch.from_info(mne.create_info(EEG_1020, SFREQ, "eeg"))
    return SensorBatch.from_info(mne.channels.read_meg_canonical_info("neuromag"))


def encode_throughput(batch_size: int, window_seconds: float, rounds: int) -> list[dict]:
    """Windows/s of ``encode`` for each montage and config; configs interleaved per round."""
    from neurofm.sensors import SensorBatch
    from neurofm.tokenizer import NeuralTokenizer, tokenizer_config

    rows = []
    for montage in ("eeg19", "meg306"):
        sensors = SensorBatch.collate([montage_sensors(montage)] * batch_size)
        n_patches = int(window_seconds)
        x = torch.randn(batch_size, sensors.n_channels, n_patches, 200)
        models = {}
        for name in ("small", "small_unified"):
            torch.manual_seed(0)
            models[name] = NeuralTokenizer(tokenizer_config(name, kmeans_vectors=0)).eval()
        times = {name: [] for name in models}
        with torch.no_grad():
            for name, model in models.items():  # warm-up
                model.encode(x, sensors)
            for _ in range(rounds):
                for name, model in models.items():
                    start = time.perf_counter()
                    model.encode(x, sensors)
                    times[name].append(time.perf_counter() - start)
        for name, t in times.items():
            median = statistics.median(t)
            rows.append({"montage": montage, "channels": sensors.n_channels, "config": name,
                         "windows_per_s": batch_size / median, "median_s_per_batch": median})
        small, unified = (r for r in rows[-2:])
        unified["speedup_vs_small"] = unified["windows_per_s"] / small["windows_per_s"]
    return rows


def simulated_batches(subjects: range, batch_size: int, seconds: float, seed: int) -> list[dict]:
    """Collated 5-s windows of simulated resting EEG (one subject per recording)."""
    from neurofm.data.dataset import WindowDataset, collate_windows
    from neurofm.data.preprocess import PreprocessConfig, preprocess_raw
    from neurofm.data.windows import window_recording
    from neurofm.simulate.recording import simulate_recording

    windows = []
    for subject in subjects:
        rec = simulate_recording("resting", "eeg", duration=seconds, sfreq=SFREQ,
                                 subject=subject, seed=seed, grid_mm=20.0)
        windows.append(window_recording(preprocess_raw(rec.raw, PreprocessConfig()), 5.0, 1.0))
    dataset = WindowDataset(windows)
    order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed))
    items = [dataset[int(i)] for i in order]
    return [collate_windows(items[i:i + batch_size])
            for i in range(0, len(items) - batch_size + 1, batch_size)]


def codebook_curves(steps: int, eval_every: int, n_subjects: int, seconds: float) -> dict:
    """Held-out usage / perplexity / amplitude error during training, restart on and off."""
    from neurofm.tokenizer import NeuralTokenizer, tokenizer_config
    from neurofm.train.tokenizer_loop import (
        TokenizerTrainConfig,
        evaluate_tokenizer,
        mean_amplitude_spectrum,
        train_tokenizer,
    )

    train = simulated_batches(range(n_subjects - 1), 8, seconds, seed=0)
    held_out = simulated_batches(range(n_subjects - 1, n_subjects), 8, seconds, seed=0)
    mean = mean_amplitude_spectrum(train)
    curves = {}
    for label, dead_after in (("restart", 10), ("no_restart", 0)):
        torch.manual_seed(0)
        model = NeuralTokenizer(tokenizer_config("small", dead_after=dead_after,
                                                 kmeans_vectors=1024))
        points = []
        config = TokenizerTrainConfig(steps=steps, lr=2e-3, warmup_steps=min(50, steps // 5),
                                      log_every=eval_every)

        def evaluate(record, model=model, points=points):
            result = evaluate_tokenizer(model, held_out, mean_amplitude=mean)
            points.append({"step": record["step"], **{k: result[k] for k in (
                "usage", "perplexity", "amplitude", "baseline_amplitude")}})

        train_tokenizer(model, train, config, progress=True, on_log=evaluate)
        curves[label] = {"codebook_size": model.config.codebook_size, "points": points}
    return curves


def plot_curves(curves: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for label, curve in curves.items():
        steps = [p["step"] for p in curve["points"]]
        size = curve["codebook_size"]
        axes[0].plot(steps, [100 * p["usage"] for p in curve["points"]], marker="o", label=label)
        axes[1].plot(steps, [100 * p["perplexity"] / size for p in curve["points"]], marker="o",
                     label=label)
        axes[2].plot(steps, [p["amplitude"] for p in curve["points"]], marker="o", label=label)
    baseline = next(iter(curves.values()))["points"][0]["baseline_amplitude"]
    axes[2].axhline(baseline, color="grey", linestyle="--", label="mean spectrum")
    for ax, title in zip(axes, ("codes used (%)", "perplexity (% of codebook)",
                                "held-out relative amplitude error")):
        ax.set_title(title)
        ax.set_xlabel("training step")
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="Short run (a few minutes).")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--eval-every", type=int, default=50)
    parser.add_argument("--out", default="results/tokenizer.json")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    rounds, window_seconds, steps, subjects, seconds = 5, 30.0, args.steps, 5, 120.0
    if args.quick:
        rounds, steps, subjects, seconds = 3, min(steps, 200), 5, 60.0

    throughput = encode_throughput(args.batch_size, window_seconds, rounds)
    print(f"\nEncode throughput, B={args.batch_size} x {window_seconds:g}-s windows, "
          f"{args.threads} thread(s)")
    print(f"{'montage':<8} {'config':<14} {'windows/s':>10} {'vs small':>9}")
    for row in throughput:
        ratio = f"{row['speedup_vs_small']:.2f}x" if "speedup_vs_small" in row else ""
        print(f"{row['montage']:<8} {row['config']:<14} {row['windows_per_s']:>10.2f} "
              f"{ratio:>9}")

    curves = codebook_curves(steps, args.eval_every, subjects, seconds)
    print("\nHeld-out codebook use (small config, 128 codes) after training")
    print(f"{'run':<11} {'step':>5} {'usage':>7} {'perplexity':>11} {'amp err':>8} "
          f"{'baseline':>9}")
    for label, curve in curves.items():
        last = curve["points"][-1]
        print(f"{label:<11} {last['step']:>5} {100 * last['usage']:>6.1f}% "
              f"{last['perplexity']:>11.1f} {last['amplitude']:>8.4f} "
              f"{last['baseline_amplitude']:>9.4f}")

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    png = out.with_suffix(".png")
    plot_curves(curves, png)
    out.write_text(json.dumps({
        "machine": {"platform": platform.platform(), "processor": platform.processor(),
                    "threads": args.threads, "torch": torch.__version__},
        "settings": {"batch_size": args.batch_size, "window_seconds": window_seconds,
                     "rounds": rounds, "steps": steps, "subjects": subjects,
                     "seconds_per_subject": seconds},
        "encode_throughput": throughput, "codebook_curves": curves}, indent=2) + "\n")
    print(f"\nWrote {out} and {png}")


if __name__ == "__main__":
    main()
