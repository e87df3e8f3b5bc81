"""Training metrics: one JSON line per logged step, TensorBoard scalars and a loss-curve PNG.

Only rank 0 writes. ``metrics.jsonl`` is appended to, so a resumed run continues the same file;
records from steps after the checkpoint a run resumed from are dropped on resume, so the file
never holds two records of one step.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Sequence
from pathlib import Path

from neurofm.compat import MissingExtraError, install_hint


class MetricsLog:
    """Write metrics of a run directory.

    Parameters
    ----------
    out_dir : Path
        Run directory; writes ``metrics.jsonl`` and, with ``tensorboard``, ``tensorboard/``.
    resume_step : int
        Step the run starts from; records of later steps (from a killed run) are dropped.
    tensorboard : bool or None
        Also write TensorBoard events: None when the ``tensorboard`` package is installed, True
        always (:class:`~neurofm.compat.MissingExtraError` naming the extra when it is not).
    """

    def __init__(self, out_dir: Path, resume_step: int = 0, tensorboard: bool | None = None):
        installed = tensorboard_installed()
        write = installed if tensorboard is None else tensorboard
        if write and not installed:
            raise MissingExtraError(f"run.tensorboard=true needs TensorBoard: "
                                    f"{install_hint('tensorboard')}, or set "
                                    "run.tensorboard=false (metrics.jsonl and loss.png are "
                                    "written either way).")
        self.path = Path(out_dir) / "metrics.jsonl"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        kept = [r for r in read_metrics(self.path) if r["step"] <= resume_step]
        with open(self.path, "w", encoding="utf-8") as fh:
            fh.writelines(json.dumps(r) + "\n" for r in kept)
        self.writer = None
        if write:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(Path(out_dir) / "tensorboard"),
                                        purge_step=resume_step + 1)

    def log(self, record: dict) -> None:
        """Append ``record`` (must hold ``step``; other values are numbers)."""
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\n")
        if self.writer is not None:
            for key, value in record.items():
                if key != "step" and isinstance(value, (int, float)):
                    self.writer.add_scalar(key, value, record["step"])

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def tensorboard_installed() -> bool:
    """Whether the ``tensorboard`` package (the ``tensorboard`` extra) is installed."""
    return importlib.util.find_spec("tensorboard") is not None


def read_metrics(path: str | Path) -> list[dict]:
    """Records of a ``metrics.jsonl`` (empty when the file does not exist)."""
    path = Path(path)
    if not path.is_file():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            break  # a line cut short by a kill: everything after it is untrustworthy
    return records


def plot_loss_curve(metrics_path: str | Path, png_path: str | Path,
                    terms: Sequence[str] = ()) -> Path | None:
    """Plot the loss (log scale), the ``terms`` logged beside it, and the learning rate against
    step; None when there is nothing to plot."""
    records = [r for r in read_metrics(metrics_path) if "loss" in r]
    if not records:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [r["step"] for r in records]
    fig, (ax_loss, ax_lr) = plt.subplots(2, 1, figsize=(7, 5), sharex=True,
                                         gridspec_kw={"height_ratios": [3, 1]})
    ax_loss.plot(steps, [r["loss"] for r in records], label="total")
    for term in terms:
        if term in records[0]:
            ax_loss.plot(steps, [r.get(term) for r in records], label=term, alpha=0.7)
    ax_loss.set_yscale("log")
    ax_loss.set_ylabel("loss")
    ax_loss.legend()
    ax_loss.grid(alpha=0.3)
    ax_lr.plot(steps, [r["lr"] for r in records], color="tab:gray")
    ax_lr.set_ylabel("lr")
    ax_lr.set_xlabel("step")
    fig.tight_layout()
    fig.savefig(png_path, dpi=120)
    plt.close(fig)
    return Path(png_path)
