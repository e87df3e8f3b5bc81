"""Backbone speed and scaling: neurofm models vs braindecode's CBraMod and LUNA, same run.

Measures, with the same threads, shapes and precision for both sides of every comparison:

* train step (forward + backward + AdamW) and inference throughput (CPU time of the process, so
  that other jobs on a shared machine do not count), B=8 windows of 19 channels x
  30 s at 200 Hz: ``criss_cross_base`` and ``cbramod_base`` vs ``braindecode.models.CBraMod``,
  ``mamba_small`` vs ``braindecode.models.LUNA``; fp32 and bf16 autocast. Timings of the models
  being compared are interleaved round by round (the machine may be shared), and the table reports
  medians and the ratio peer time / our time (> 1 = we are faster);
* parameter counts and FLOPs (``torch.utils.flop_counter.FlopCounterMode``: matmuls, convolutions,
  attention; the elementwise selective scan is not counted) per 30-s 19-channel window;
* model FLOPs utilisation of the train step: achieved FLOP/s / measured matmul peak;
* scaling of inference time and peak extra memory per window with window length and channel count,
  criss-cross vs Mamba (small configs), as JSON and a log-log PNG.

Usage::

    python benchmarks/backbones.py --quick            # a few minutes on a laptop CPU
    python benchmarks/backbones.py --threads 8 --out results/backbones.json
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import platform
import resource
import statistics
import time
import warnings
from contextlib import nullcontext
from pathlib import Path

import torch

SFREQ = 200
PATCH = 200


def sensors_for(batch: int, channels: int, seed: int = 0):
    """Random scalp-like EEG sensors ``SensorBatch [batch, channels]``."""
    from neurofm.sensors import SensorBatch

    gen = torch.Generator().manual_seed(seed)
    pos = torch.nn.functional.normalize(torch.randn(channels, 3, generator=gen), dim=-1) * 0.09
    return SensorBatch(
        pos=pos.expand(batch, -1, -1).contiguous(),
        ori=torch.zeros(batch, channels, 3),
        kind=torch.zeros(batch, channels, dtype=torch.long),
        chan_mask=torch.ones(batch, channels, dtype=torch.bool),
    )


class Runner:
    """Uniform ``infer()`` / ``train_step()`` for a neurofm model or a braindecode peer."""

    def __init__(self, name: str, batch: int, channels: int, seconds: int):
        self.name = name
        self.x = torch.randn(batch, channels, seconds * SFREQ)
        self.target = torch.randn(batch, channels, seconds, PATCH)
        if name == "braindecode.CBraMod":
            from braindecode.models import CBraMod

            self.model = CBraMod(return_encoder_output=True)  # output = proj_out(encoder): patches
            self.forward = lambda: self.model(self.x)
            self.loss = lambda out: torch.nn.functional.mse_loss(out.float(), self.target)
        elif name == "braindecode.LUNA":
            from braindecode.models import LUNA

            self.model = LUNA(n_outputs=2, n_chans=channels, n_times=seconds * SFREQ)
            self.forward = lambda: self.model(self.x)
            self.loss = lambda out: out.float().square().mean()
        else:
            from neurofm.models import create_model

            self.model = create_model(name)
            xp = self.x.reshape(batch, channels, seconds, PATCH)
            sensors = None if name == "cbramod_base" else sensors_for(batch, channels)
            self.forward = lambda: self.model.reconstruct(xp, sensors)
            self.loss = lambda out: torch.nn.functional.mse_loss(out.float(), self.target)
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=1e-4)
        self.params = sum(p.numel() for p in self.model.parameters())

    def infer(self):
        self.model.eval()
        with torch.no_grad():
            self.forward()

    def train_step(self):
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        self.loss(self.forward()).backward()
        self.optimizer.step()


def autocast(precision: str):
    if precision == "bf16":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return nullcontext()


def interleaved_times(runners: list[Runner], mode: str, precision: str, rounds: int) -> dict:
    """Median CPU seconds per call of ``mode`` for each runner, alternating runners every round.

    CPU time of this process (``time.process_time``) rather than wall time, so that other jobs on
    a shared machine do not count; with one thread both agree on an idle machine. The median wall
    time is returned too, under ``"<name>/wall"``.
    """
    cpu = {r.name: [] for r in runners}
    wall = {r.name: [] for r in runners}
    for i in range(rounds + 1):
        for r in runners:
            with autocast(precision):
                c0, w0 = time.process_time(), time.perf_counter()
                getattr(r, mode)()
                c1, w1 = time.process_time(), time.perf_counter()
            if i:  # round 0 warms up
                cpu[r.name].append(c1 - c0)
                wall[r.name].append(w1 - w0)
    out = {name: statistics.median(ts) for name, ts in cpu.items()}
    out.update({f"{name}/wall": statistics.median(ts) for name, ts in wall.items()})
    return out


def count_flops(fn) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


def matmul_peak(precision: str, size: int = 1024, repeats: int = 5) -> float:
    """Best measured FLOP/s of a square matmul in ``precision``."""
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
    a @ b
    best = min(_timed(lambda: a @ b) for _ in range(repeats))
    return 2 * size**3 / best


def _timed(fn) -> float:
    """CPU seconds of this process spent in ``fn()`` (see :func:`interleaved_times`)."""
    t0 = time.process_time()
    fn()
    return time.process_time() - t0


def peer_comparisons(args) -> list[dict]:
    pairs = [
        ("criss_cross_base", "braindecode.CBraMod"),
        ("cbramod_base", "braindecode.CBraMod"),
        ("mamba_small", "braindecode.LUNA"),
    ]
    rows = []
    for ours, peer in pairs:
        runners = [Runner(ours, args.batch, 19, 30), Runner(peer, args.batch, 19, 30)]
        for precision in ("fp32", "bf16"):
            for mode in ("train_step", "infer"):
                t = interleaved_times(runners, mode, precision, args.rounds)
                rows.append(
                    {
                        "model": ours,
                        "peer": peer,
                        "precision": precision,
                        "mode": mode,
                        "batch": args.batch,
                        "ours_s": t[ours],
                        "peer_s": t[peer],
                        "ours_wall_s": t[f"{ours}/wall"],
                        "peer_wall_s": t[f"{peer}/wall"],
                        "ours_windows_per_s": args.batch / t[ours],
                        "peer_windows_per_s": args.batch / t[peer],
                        "speedup": t[peer] / t[ours],
                    }
                )
                print(
                    f"{ours:>17} vs {peer:<20} {precision:>4} {mode:>10}: "
                    f"ours {args.batch / t[ours]:7.2f} win/s, peer {args.batch / t[peer]:7.2f} "
                    f"win/s, speedup {t[peer] / t[ours]:5.2f}x",
                    flush=True,
                )
        # bf16 ours vs fp32 peer (the mixed-precision gain a user sees by switching on autocast)
        for mode in ("train_step", "infer"):
            mine = next(
                r
                for r in rows
                if r["model"] == ours
                and r["peer"] == peer
                and r["precision"] == "bf16"
                and r["mode"] == mode
            )
            theirs = next(
                r
                for r in rows
                if r["model"] == ours
                and r["peer"] == peer
                and r["precision"] == "fp32"
                and r["mode"] == mode
            )
            rows.append(
                {
                    "model": ours,
                    "peer": peer,
                    "precision": "ours bf16 / peer fp32",
                    "mode": mode,
                    "batch": args.batch,
                    "ours_s": mine["ours_s"],
                    "peer_s": theirs["peer_s"],
                    "speedup": theirs["peer_s"] / mine["ours_s"],
                }
            )
    return rows


def model_costs(args) -> list[dict]:
    """Parameters and FLOPs per 30-s 19-channel window for every registered config + peers."""
    from neurofm.models import create_model, list_models

    rows = []
    x = torch.randn(1, 19, 30, PATCH)
    for name in list_models():
        if name == "labram_base":
            continue  # an imported encoder: channels by name, at most 16 patches (docs/hub.md)
        model = create_model(name).eval()
        sensors = None if name == "cbramod_base" else sensors_for(1, 19)
        # grad mode on: FlopCounterMode needs it
        flops = count_flops(lambda m=model, s=sensors: m(x, s))
        rows.append(
            {
                "model": name,
                "params": sum(p.numel() for p in model.parameters()),
                "state_dict_values": sum(v.numel() for v in model.state_dict().values()),
                "gflops_per_window": flops / 1e9,
            }
        )
    for peer in ("braindecode.CBraMod", "braindecode.LUNA"):
        r = Runner(peer, 1, 19, 30)
        r.model.eval()
        flops = count_flops(r.forward)
        rows.append({"model": peer, "params": r.params, "gflops_per_window": flops / 1e9})
    for row in rows:
        print(
            f"{row['model']:>20}: {row['params'] / 1e6:6.3f} M params, "
            f"{row['gflops_per_window']:6.2f} GFLOP / 30-s 19-ch window",
            flush=True,
        )
    return rows


def utilisation(args) -> list[dict]:
    """Model FLOPs utilisation of a train step (B = args.batch)."""
    rows = []
    for precision in ("fp32", "bf16"):
        peak = matmul_peak(precision)
        for name in ("criss_cross_base", "braindecode.CBraMod"):
            r = Runner(name, args.batch, 19, 30)
            with autocast(precision):
                flops = count_flops(r.train_step)
            t = interleaved_times([r], "train_step", precision, max(1, args.rounds // 2))[name]
            rows.append(
                {
                    "model": name,
                    "precision": precision,
                    "train_step_flops": flops,
                    "achieved_gflops": flops / t / 1e9,
                    "matmul_peak_gflops": peak / 1e9,
                    "mfu": flops / t / peak,
                }
            )
            print(
                f"MFU {name:>20} {precision}: {flops / t / 1e9:6.1f} GFLOP/s of "
                f"{peak / 1e9:6.1f} peak = {100 * flops / t / peak:4.1f} %",
                flush=True,
            )
    return rows


def _scaling_point(name: str, channels: int, seconds: int, threads: int, queue) -> None:
    torch.set_num_threads(threads)
    from neurofm.models import create_model

    model = create_model(name).eval()
    x = torch.randn(1, channels, seconds, PATCH)
    sensors = sensors_for(1, channels)
    with torch.no_grad():
        model(x[:, :, :2], sensors)  # warm-up on a short window
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        elapsed = _timed(lambda: model(x, sensors))
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    queue.put((elapsed, max(0, peak - base) * 1024))


def scaling(args) -> list[dict]:
    """Inference time and peak extra memory per window; each point in a fresh process.

    Processes are spawned (not forked), so that the peak resident memory of a point does not
    start from this process's high-water mark.
    """
    ctx = mp.get_context("spawn")
    lengths = [30, 120, 480] if args.quick else [30, 60, 120, 300, 600, 1200]
    channels = [19, 64, 128] if args.quick else [19, 64, 128, 306]
    points = [(19, s) for s in lengths] + [(c, 30) for c in channels if c != 19]
    rows = []
    for name in ("criss_cross_small", "mamba_small"):
        for c, s in points:
            queue = ctx.Queue()
            proc = ctx.Process(target=_scaling_point, args=(name, c, s, args.threads, queue))
            proc.start()
            proc.join()
            if proc.exitcode != 0:
                rows.append(
                    {"model": name, "channels": c, "seconds": s, "error": f"exit {proc.exitcode}"}
                )
                print(f"scaling {name} {c} ch x {s} s: failed (exit {proc.exitcode})")
                continue
            elapsed, mem = queue.get()
            rows.append(
                {
                    "model": name,
                    "channels": c,
                    "seconds": s,
                    "time_s": elapsed,
                    "peak_extra_mb": mem / 2**20,
                }
            )
            print(
                f"scaling {name:>17} {c:4d} ch x {s:5d} s: {elapsed:7.3f} s, "
                f"peak +{mem / 2**20:8.1f} MB",
                flush=True,
            )
    return rows


def plot_scaling(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for name, style in (("criss_cross_small", "o-"), ("mamba_small", "s-")):
        ok = [r for r in rows if r["model"] == name and "time_s" in r]
        by_len = sorted((r["seconds"], r["time_s"]) for r in ok if r["channels"] == 19)
        by_ch = sorted((r["channels"], r["time_s"]) for r in ok if r["seconds"] == 30)
        axes[0].loglog(*zip(*by_len), style, label=name)
        axes[1].loglog(*zip(*by_ch), style, label=name)
    axes[0].set(xlabel="window length (s), 19 channels", ylabel="inference time per window (s)")
    axes[1].set(xlabel="channels, 30-s window", ylabel="inference time per window (s)")
    from matplotlib.ticker import NullFormatter

    for ax, key in zip(axes, ("seconds", "channels")):
        ticks = sorted({r[key] for r in rows if "time_s" in r})
        ax.set_xticks(ticks, [str(t) for t in ticks])  # label the measured points only
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.legend()
        ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="few rounds and short scaling sweeps (minutes on a shared CPU)",
    )
    parser.add_argument("--threads", type=int, default=1, help="torch threads for every model")
    parser.add_argument("--batch", type=int, default=8, help="windows per batch (default 8)")
    parser.add_argument(
        "--rounds",
        type=int,
        default=None,
        help="timed rounds per measurement (default 3 with --quick, else 10)",
    )
    parser.add_argument(
        "--sections",
        default="costs,peers,mfu,scaling",
        help="comma-separated subset of costs,peers,mfu,scaling",
    )
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/backbones.json"))
    args = parser.parse_args(argv)
    args.rounds = args.rounds or (2 if args.quick else 10)
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", category=FutureWarning)
    sections = set(args.sections.split(","))
    result = {
        "machine": platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "threads": args.threads,
        "batch": args.batch,
        "rounds": args.rounds,
        "quick": args.quick,
    }
    if "costs" in sections:
        result["costs"] = model_costs(args)
    if "peers" in sections:
        result["peers"] = peer_comparisons(args)
    if "mfu" in sections:
        result["mfu"] = utilisation(args)
    if "scaling" in sections:
        result["scaling"] = scaling(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    if "scaling" in sections:
        png = args.out.with_suffix(".png")
        plot_scaling(result["scaling"], png)
        print(f"wrote {png}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
