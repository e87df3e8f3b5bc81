"""Backbone speed and scaling: neurofm models vs braindecode's CBraMod and LUNA, same run.

Sections (``--sections``, all by default):

* ``peers``: train step (forward + backward + AdamW on the reconstruction MSE; the forward in
  the precision's autocast region, the backward outside it, as neurofm's trainer and PyTorch's
  mixed-precision recipe run it) and inference,
  B = 8 windows of 19 channels x 30 s at 200 Hz, fp32 and bf16 autocast, ``--threads`` torch
  threads (default 2), wall time: the median of ``--rounds`` (5) paired rounds after ``--warmup``
  (3) warm-up rounds, the two models of a pair alternating call by call (CPU time is recorded
  too). The ratio is peer time / our time (> 1 = neurofm faster). Pairs: ``criss_cross_base``
  and ``cbramod_base`` vs ``braindecode.models.CBraMod``, ``mamba_small`` and
  ``mamba2_small`` vs ``braindecode.models.LUNA``; plus "ours bf16 / peer fp32" rows;
* ``scaling``: inference time (median of a few calls, wall and CPU) and peak extra resident
  memory per window (B = 1) of ``criss_cross_small``, ``mamba_small`` and ``mamba2_small``,
  ``--scaling-threads`` (default 1), 19 channels from 30 s to 20 min and 19 to 306 channels at
  30 s, each point in a fresh process; JSON and a log-log plot (``<out>.png``) that marks
  where the Mamba curves cross the criss-cross one;
* ``compile``: ``mamba_small``'s train step with the Mamba-1 scan as PyTorch blocks (eager), as
  compiled blocks (``neurofm.nn.scan.set_compiled``) and through the fused C kernels
  (``neurofm.nn.mamba_kernels``, the default on CPU), in one process: compile time and the
  kernels' build time, seconds per step each way (paired), and the number of steps after which
  compiling has paid off against eager;
* ``costs``: parameters and FLOPs per 30-s 19-channel window (``FlopCounterMode``: matmuls,
  convolutions, attention; not the element-wise work of a selective scan);
* ``mfu``: model FLOPs utilisation of the criss-cross train step.

Before/after: the script imports ``neurofm`` from ``PYTHONPATH``, so it can time an older checkout
(``PYTHONPATH=/path/to/old python benchmarks/backbones.py --out before.json``); configurations or
switches that checkout lacks are skipped and listed under ``"skipped"``. ``--compare before.json
after.json`` prints the rows the two files share side by side.

Usage::

    python benchmarks/backbones.py --quick            # a few minutes
    python benchmarks/backbones.py --out results/backbones.json
    python benchmarks/backbones.py --compare before.json after.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import multiprocessing as mp
import os
import platform
import resource
import statistics
import subprocess
import tempfile
import time
import warnings
from contextlib import contextmanager, nullcontext
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
        """Forward and loss in the caller's autocast region; backward outside it, as neurofm's
        trainer and PyTorch's mixed-precision recipe do (the backward of each operation then
        runs in the precision its forward ran in)."""
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        loss = self.loss(self.forward())
        with torch.autocast("cpu", enabled=False):
            loss.backward()
        self.optimizer.step()


def autocast(precision: str):
    if precision == "bf16":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return nullcontext()


def paired_times(runners: list[Runner], mode: str, precision: str, rounds: int,
                 warmup: int) -> dict:
    """Median wall seconds per call of ``mode`` for each runner, the runners taking turns.

    ``warmup`` rounds first (not timed), then ``rounds`` timed ones; in each round every runner
    makes one call, so a machine that speeds up or slows down affects both sides alike. The
    median CPU seconds of this process are returned too, under ``"<name>/cpu"``.
    """
    wall = {r.name: [] for r in runners}
    cpu = {r.name: [] for r in runners}
    for i in range(warmup + rounds):
        for r in runners:
            with autocast(precision):
                c0, w0 = time.process_time(), time.perf_counter()
                getattr(r, mode)()
                c1, w1 = time.process_time(), time.perf_counter()
            if i >= warmup:
                wall[r.name].append(w1 - w0)
                cpu[r.name].append(c1 - c0)
    out = {name: statistics.median(ts) for name, ts in wall.items()}
    out.update({f"{name}/cpu": statistics.median(ts) for name, ts in cpu.items()})
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
    """Wall seconds spent in ``fn()``."""
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def registered(name: str) -> bool:
    """Whether ``name`` can run here: a configuration the imported neurofm (maybe an older
    checkout) has, or a braindecode peer with the ``braindecode`` extra installed."""
    if name.startswith("braindecode."):
        try:
            from neurofm.compat import braindecode_available
        except ImportError:  # an older checkout (0.1.0) required braindecode: try it here
            try:
                import braindecode.models  # noqa: F401
            except Exception:  # noqa: BLE001 - any import failure: the peer cannot run
                return False
            return True
        return braindecode_available()
    from neurofm.models import list_models

    return name in list_models()


PAIRS = [
    ("criss_cross_base", "braindecode.CBraMod"),
    ("cbramod_base", "braindecode.CBraMod"),
    ("mamba_small", "braindecode.LUNA"),
    ("mamba2_small", "braindecode.LUNA"),
]


def peer_comparisons(args, skipped: list[str]) -> list[dict]:
    rows = []
    for ours, peer in PAIRS:
        if not registered(ours):
            skipped.append(f"peers: {ours} is not registered in this checkout")
            continue
        if not registered(peer):
            skipped.append(f"peers: {peer} needs neurofm[braindecode]")
            continue
        runners = [Runner(ours, args.batch, 19, 30), Runner(peer, args.batch, 19, 30)]
        for precision in ("fp32", "bf16"):
            for mode in ("train_step", "infer"):
                t = paired_times(runners, mode, precision, args.rounds, args.warmup)
                rows.append({
                    "model": ours, "peer": peer, "precision": precision, "mode": mode,
                    "batch": args.batch, "threads": args.threads,
                    "ours_s": t[ours], "peer_s": t[peer],
                    "ours_cpu_s": t[f"{ours}/cpu"], "peer_cpu_s": t[f"{peer}/cpu"],
                    "ours_windows_per_s": args.batch / t[ours],
                    "peer_windows_per_s": args.batch / t[peer],
                    "speedup": t[peer] / t[ours],
                })
                print(f"{ours:>17} vs {peer:<20} {precision:>4} {mode:>10}: "
                      f"ours {args.batch / t[ours]:7.2f} win/s, peer {args.batch / t[peer]:7.2f} "
                      f"win/s, speedup {t[peer] / t[ours]:5.2f}x", flush=True)
        # bf16 ours vs fp32 peer (the mixed-precision gain a user sees by switching on autocast)
        for mode in ("train_step", "infer"):
            mine, theirs = (next(r for r in rows if r["model"] == ours and r["peer"] == peer
                                 and r["precision"] == p and r["mode"] == mode)
                            for p in ("bf16", "fp32"))
            rows.append({
                "model": ours, "peer": peer, "precision": "ours bf16 / peer fp32", "mode": mode,
                "batch": args.batch, "threads": args.threads, "ours_s": mine["ours_s"],
                "peer_s": theirs["peer_s"], "speedup": theirs["peer_s"] / mine["ours_s"],
            })
            print(f"{ours:>17} vs {peer:<20} bf16/fp32 {mode:>10}: speedup "
                  f"{theirs['peer_s'] / mine['ours_s']:5.2f}x", flush=True)
    return rows


def compile_payoff(args, skipped: list[str]) -> list[dict]:
    """``mamba_small`` train step with the Mamba-1 scan as PyTorch blocks (eager), as compiled
    blocks, and through the fused C kernels (the default on CPU since they exist), one process."""
    try:
        from neurofm.nn.scan import set_compiled
    except ImportError:
        skipped.append("compile: this checkout has no neurofm.nn.scan.set_compiled")
        return []
    try:  # the kernels' builder and switch (in mamba_kernels before the dropout kernels came)
        from neurofm.nn import cpu_kernels as kernels
    except ImportError:
        try:
            from neurofm.nn import mamba_kernels as kernels
        except ImportError:
            kernels = None
            skipped.append("compile: this checkout has no fused CPU kernels (neurofm.nn.cpu_kernels)")
    rows = []
    for precision in ("fp32", "bf16"):
        runner = Runner("mamba_small", args.batch, 19, 30)
        row = _compile_row(runner, precision, args, set_compiled, kernels)
        rows.append(row)
        kernel = (f", fused C kernels {row['kernel_step_s']:.3f} s/step (built in "
                  f"{row['kernel_build_s']:.1f} s)" if kernels else "")
        print(f"compile mamba_small {precision}: compile {row['compile_s']:.1f} s, eager "
              f"{row['eager_step_s']:.3f} s/step, compiled {row['compiled_step_s']:.3f} s/step, "
              f"pays off after {row['break_even_steps'] or float('inf'):.0f} steps{kernel}",
              flush=True)
    return rows


def _compile_row(runner: Runner, precision: str, args, set_compiled, kernels) -> dict:
    """Compile time = first compiled step - an eager step; then paired steps of each path."""
    def step():
        with autocast(precision):
            runner.train_step()

    def use(path):
        set_compiled(path == "compiled")
        if kernels is not None:
            kernels.set_enabled(path == "kernel")

    paths = ["eager", "compiled"] + (["kernel"] if kernels is not None else [])
    build_s = None
    if kernels is not None:  # a fresh build, in a folder of its own
        with tempfile.TemporaryDirectory() as tmp, _environ(NEUROFM_CACHE=tmp):
            build_s = _timed(kernels.build)
    use("eager")
    for _ in range(args.warmup):
        step()
    eager_once = _timed(step)
    use("compiled")
    first = _timed(step)  # compiles the kernels (or loads them from the inductor cache)
    step()
    times = {path: [] for path in paths}
    for _ in range(args.rounds):
        for path in paths:
            use(path)
            if path == "kernel" and not times["kernel"]:
                step()  # loads the library
            times[path].append(_timed(step))
    use("kernel" if kernels is not None else "eager")
    set_compiled(False)
    eager, compiled = statistics.median(times["eager"]), statistics.median(times["compiled"])
    compile_s = max(0.0, first - eager_once)
    row = {"model": runner.name, "precision": precision, "threads": args.threads,
           "batch": args.batch, "compile_s": compile_s, "eager_step_s": eager,
           "compiled_step_s": compiled, "step_speedup": eager / compiled,
           "break_even_steps": compile_s / (eager - compiled) if eager > compiled else None}
    if kernels is not None:
        kernel = statistics.median(times["kernel"])
        row.update(kernel_step_s=kernel, kernel_build_s=build_s,
                   kernel_vs_eager=eager / kernel, kernel_vs_compiled=compiled / kernel)
    return row


@contextmanager
def _environ(**values):
    before = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


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
    for peer in filter(registered, ("braindecode.CBraMod", "braindecode.LUNA")):
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
        for name in filter(registered, ("criss_cross_base", "braindecode.CBraMod")):
            r = Runner(name, args.batch, 19, 30)
            with autocast(precision):
                flops = count_flops(r.train_step)
            t = paired_times([r], "train_step", precision, max(1, args.rounds // 2), 1)[name]
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


SCALING_MODELS = ("criss_cross_small", "mamba_small", "mamba2_small")


def _scaling_point(name: str, channels: int, seconds: int, threads: int, repeats: int,
                   queue) -> None:
    torch.set_num_threads(threads)
    from neurofm.models import create_model

    model = create_model(name).eval()
    x = torch.randn(1, channels, seconds, PATCH)
    sensors = sensors_for(1, channels)
    with torch.no_grad():
        model(x[:, :, :2], sensors)  # warm-up on a short window
        base = _peak_rss_reset()
        wall, cpu = [], []
        for _ in range(repeats):
            c0, w0 = time.process_time(), time.perf_counter()
            model(x, sensors)
            wall.append(time.perf_counter() - w0)
            cpu.append(time.process_time() - c0)
        peak = _peak_rss()
    queue.put((statistics.median(wall), statistics.median(cpu), max(0, peak - base)))


def _peak_rss_reset() -> int:
    """Reset this process's peak resident memory (Linux: ``/proc/self/clear_refs``) and return
    the resident memory now, in bytes. ``ru_maxrss`` alone is not enough: a process started from
    a large parent inherits the parent's high-water mark."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return _proc_status_kb("VmRSS") * 1024
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _peak_rss() -> int:
    """Peak resident memory since :func:`_peak_rss_reset`, in bytes."""
    try:
        return _proc_status_kb("VmHWM") * 1024
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _proc_status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise OSError(f"/proc/self/status has no {field}")


def scaling(args, skipped: list[str]) -> list[dict]:
    """Inference time and peak extra memory per window; each point in a fresh process.

    Processes are spawned (not forked), so that the peak resident memory of a point does not
    start from this process's high-water mark.
    """
    ctx = mp.get_context("spawn")
    lengths = [30, 120, 480, 1200] if args.quick else [30, 60, 120, 300, 600, 900, 1200]
    channels = [19, 64] if args.quick else [19, 64, 128, 306]
    repeats = 1 if args.quick else 3
    points = [(19, s) for s in lengths] + [(c, 30) for c in channels if c != 19]
    rows = []
    for name in SCALING_MODELS:
        if not registered(name):
            skipped.append(f"scaling: {name} is not registered in this checkout")
            continue
        for c, s in points:
            queue = ctx.Queue()
            proc = ctx.Process(target=_scaling_point,
                               args=(name, c, s, args.scaling_threads, repeats, queue))
            proc.start()
            proc.join()
            if proc.exitcode != 0:
                rows.append({"model": name, "channels": c, "seconds": s,
                             "error": f"exit {proc.exitcode}"})
                print(f"scaling {name} {c} ch x {s} s: failed (exit {proc.exitcode})")
                continue
            wall, cpu, mem = queue.get()
            rows.append({"model": name, "channels": c, "seconds": s,
                         "threads": args.scaling_threads, "time_s": wall, "cpu_s": cpu,
                         "peak_extra_mb": mem / 2**20})
            print(f"scaling {name:>17} {c:4d} ch x {s:5d} s: {wall:7.3f} s, "
                  f"peak +{mem / 2**20:8.1f} MB", flush=True)
    return rows


def crossings(rows: list[dict], reference: str = "criss_cross_small") -> dict:
    """Window length (s, 19 channels) from which each other model is faster than ``reference``.

    Interpolated linearly in log-log between the two measured lengths where the time ratio
    changes sign; None if the curves do not cross in the measured range (``"always"`` if the
    model is faster at every length).
    """
    def curve(name):
        return dict(sorted((r["seconds"], r["time_s"]) for r in rows
                           if r["model"] == name and r["channels"] == 19 and "time_s" in r))

    ref = curve(reference)
    out = {}
    for name in sorted({r["model"] for r in rows} - {reference}):
        other = curve(name)
        lengths = [s for s in ref if s in other]
        logs = [(s, math.log(other[s] / ref[s])) for s in lengths]
        out[name] = None
        if logs and all(d < 0 for _, d in logs):
            out[name] = "always"
        for (s0, d0), (s1, d1) in itertools.pairwise(logs):
            if d0 >= 0 > d1:
                frac = d0 / (d0 - d1)
                out[name] = round(math.exp(math.log(s0) + frac * (math.log(s1) - math.log(s0))))
    return out


def plot_scaling(rows: list[dict], cross: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    styles = {"criss_cross_small": "o-", "mamba_small": "s-", "mamba2_small": "^-"}
    for name in sorted({r["model"] for r in rows}):
        ok = [r for r in rows if r["model"] == name and "time_s" in r]
        by_len = sorted((r["seconds"], r["time_s"], r["peak_extra_mb"]) for r in ok
                        if r["channels"] == 19)
        by_ch = sorted((r["channels"], r["time_s"]) for r in ok if r["seconds"] == 30)
        style = styles.get(name, "x-")
        if by_len:
            axes[0].loglog([p[0] for p in by_len], [p[1] for p in by_len], style, label=name)
            axes[1].loglog([p[0] for p in by_len], [max(p[2], 0.1) for p in by_len], style,
                           label=name)
        if by_ch:
            axes[2].loglog(*zip(*by_ch), style, label=name)
        if isinstance(cross.get(name), int):
            axes[0].axvline(cross[name], linestyle="--", color="grey", alpha=0.6)
            axes[0].annotate(f"{name} faster\nfrom {cross[name]} s", (cross[name], 0.02),
                             xycoords=("data", "axes fraction"), fontsize=8, rotation=90,
                             ha="right", va="bottom")
    axes[0].set(xlabel="window length (s), 19 channels", ylabel="inference time per window (s)")
    axes[1].set(xlabel="window length (s), 19 channels", ylabel="peak extra memory (MB)")
    axes[2].set(xlabel="channels, 30-s window", ylabel="inference time per window (s)")
    for ax, key in zip(axes, ("seconds", "seconds", "channels")):
        ticks = sorted({r[key] for r in rows if "time_s" in r})
        ax.set_xticks(ticks, [str(t) for t in ticks])  # label the measured points only
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.legend()
        ax.grid(True, which="both", alpha=0.3)
    threads = {r.get("threads") for r in rows if "time_s" in r}
    fig.suptitle(f"Inference per window (B = 1), threads: {sorted(threads, key=str)}")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def compare(before: Path, after: Path) -> None:
    """Print the rows two result files share, before and after."""
    a, b = json.loads(before.read_text()), json.loads(after.read_text())
    print(f"before: {before} ({a.get('neurofm', '?')}), after: {after} ({b.get('neurofm', '?')})")
    keys = {"peers": ("model", "peer", "precision", "mode"), "scaling": ("model", "channels",
            "seconds"), "compile": ("model", "precision")}
    values = {"peers": ("ours_s", "speedup"), "scaling": ("time_s", "peak_extra_mb"),
              "compile": ("compiled_step_s", "break_even_steps", "kernel_step_s")}
    for section, key in keys.items():
        old = {tuple(r.get(k) for k in key): r for r in a.get(section, [])}
        rows = [(tuple(r.get(k) for k in key), old.get(tuple(r.get(k) for k in key)), r)
                for r in b.get(section, [])]
        if not rows:
            continue
        print(f"\n{section}: " + ", ".join(f"{v} before -> after" for v in values[section]))
        for k, was, now in rows:
            cells = []
            for v in values[section]:
                x, y = (was or {}).get(v), now.get(v)
                cells.append(f"{_fmt(x):>9} -> {_fmt(y):<9}")
            print("  " + " ".join(str(p) for p in k).ljust(58) + "  ".join(cells))


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.3g}" if isinstance(value, float) else str(value)


def _neurofm_source() -> str:
    """Where the imported neurofm lives, with its version and git commit when it has one."""
    import neurofm

    folder = Path(neurofm.__file__).resolve().parent
    commit = subprocess.run(["git", "-C", str(folder), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True, check=False).stdout.strip()
    version = getattr(neurofm, "__version__", "?")
    return f"{version} at {folder.parent}" + (f" (commit {commit})" if commit else "")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true",
                        help="fewer rounds, a shorter scaling sweep, no compile section "
                             "(a few minutes)")
    parser.add_argument("--threads", type=int, default=2,
                        help="torch threads for the peer comparisons and the compile section "
                             "(default 2)")
    parser.add_argument("--scaling-threads", type=int, default=1,
                        help="torch threads for the scaling sweep (default 1)")
    parser.add_argument("--batch", type=int, default=8, help="windows per batch (default 8)")
    parser.add_argument("--rounds", type=int, default=None,
                        help="timed paired rounds per measurement (default 5, 3 with --quick)")
    parser.add_argument("--warmup", type=int, default=None,
                        help="warm-up rounds before timing (default 3, 1 with --quick)")
    parser.add_argument("--sections", default=None,
                        help="comma-separated subset of costs,peers,mfu,scaling,compile "
                             "(default all; without compile with --quick)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/backbones.json"))
    parser.add_argument("--compare", nargs=2, type=Path, metavar=("BEFORE", "AFTER"),
                        help="print two result files side by side and exit")
    args = parser.parse_args(argv)
    if args.compare:
        compare(*args.compare)
        return 0
    args.rounds = args.rounds or (3 if args.quick else 5)
    args.warmup = args.warmup if args.warmup is not None else (1 if args.quick else 3)
    default = "costs,peers,mfu,scaling" + ("" if args.quick else ",compile")
    sections = set((args.sections or default).split(","))
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", category=FutureWarning)
    skipped: list[str] = []
    result = {
        "machine": platform.processor() or platform.machine(),
        "cpus": len(os.sched_getaffinity(0)),
        "torch": torch.__version__,
        "neurofm": _neurofm_source(),
        "threads": args.threads,
        "scaling_threads": args.scaling_threads,
        "batch": args.batch,
        "rounds": args.rounds,
        "warmup": args.warmup,
        "timing": "wall seconds, median of the paired rounds (CPU seconds beside)",
        "quick": args.quick,
        "load_average_before": list(os.getloadavg()),
    }
    if "costs" in sections:
        result["costs"] = model_costs(args)
    if "peers" in sections:
        result["peers"] = peer_comparisons(args, skipped)
    if "mfu" in sections:
        result["mfu"] = utilisation(args)
    if "compile" in sections:
        result["compile"] = compile_payoff(args, skipped)
    if "scaling" in sections:
        result["scaling"] = scaling(args, skipped)
        result["crossings"] = crossings(result["scaling"])
        print(f"Mamba faster than criss_cross_small (19 ch) from: {result['crossings']}")
    result["skipped"] = skipped
    result["load_average_after"] = list(os.getloadavg())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    if "scaling" in sections:
        png = args.out.with_suffix(".png")
        plot_scaling(result["scaling"], result["crossings"], png)
        print(f"wrote {png}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
