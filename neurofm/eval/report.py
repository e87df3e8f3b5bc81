"""Evaluation outputs: ``results.json``, a markdown table and figures.

Figures (matplotlib, Agg backend): a confusion matrix of a method's pooled test predictions, a
per-subject bar chart of the headline metric for every method with the chance line, and a topomap
of channel importance (``mne.viz.plot_topomap``) for models with sensor positions.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from neurofm.eval.metrics import METRICS, format_summary
from neurofm.sensors import ChannelKind, SensorLayout

_LABELS = {"balanced_accuracy": "Balanced acc.", "cohen_kappa": "Cohen's κ",
           "f1_weighted": "Weighted F1", "auroc": "AUROC", "auc_pr": "AUC-PR",
           "pearson_r": "Pearson r", "r2": "R²", "rmse": "RMSE"}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return _jsonable(obj.item())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def write_json(path: str | Path, payload: dict) -> Path:
    """Write ``payload`` as indented JSON (numpy values converted, NaN -> null)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_jsonable(payload), indent=2, ensure_ascii=False) + "\n")
    return path


def markdown_table(rows: list[dict], kind: str, *, title: str | None = None,
                   chance: float | None = None) -> str:
    """A table with one row per method: runs and each metric as mean ± std [95 % CI].

    Parameters
    ----------
    rows : list of dict
        ``{"method": str, "summary": {metric: summarise-dict}, "n_runs": int}``.
    kind : {"binary", "multiclass", "regression"}
    """
    names = METRICS[kind]
    lines = []
    if title:
        lines += [f"### {title}", ""]
    lines.append("| Method | Runs | " + " | ".join(_LABELS[n] for n in names) + " |")
    lines.append("|---|---:|" + "---:|" * len(names))
    for row in rows:
        cells = [format_summary(row["summary"][n]) if n in row["summary"] else "n/a"
                 for n in names]
        lines.append(f"| {row['method']} | {row['n_runs']} | " + " | ".join(cells) + " |")
    if chance is not None and math.isfinite(chance):
        lines += ["", (f"Chance level (balanced accuracy): {chance:.3f}. Values are mean ± std "
                       "[95 % CI] over seeds x folds.")]
    return "\n".join(lines) + "\n"


def plot_confusion(y_true, y_pred, class_names: list[str], path: str | Path, *,
                   title: str = "") -> Path:
    """Row-normalised confusion matrix with counts, saved as PNG."""
    from sklearn.metrics import confusion_matrix

    plt = _pyplot()
    k = len(class_names)
    cm = confusion_matrix(np.asarray(y_true, int), np.asarray(y_pred, int), labels=range(k))
    norm = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(1.2 * k + 2.5, 1.2 * k + 2))
    im = ax.imshow(norm, vmin=0, vmax=1, cmap="Blues")
    for i in range(k):
        for j in range(k):
            ax.text(j, i, f"{norm[i, j]:.2f}\n({cm[i, j]})", ha="center", va="center",
                    color="white" if norm[i, j] > 0.5 else "black", fontsize=8)
    ax.set(xticks=range(k), yticks=range(k), xticklabels=class_names, yticklabels=class_names,
           xlabel="Predicted", ylabel="True", title=title)
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)


def plot_per_subject(scores: dict[str, dict[str, float]], path: str | Path, *, metric: str,
                     chance: float | None = None) -> Path:
    """Grouped bars: headline metric per test subject (x) for every method (colour)."""
    plt = _pyplot()
    methods = list(scores)
    subjects = sorted({s for m in methods for s in scores[m]})
    width = 0.8 / max(len(methods), 1)
    fig, ax = plt.subplots(figsize=(max(5, 0.5 * len(subjects) * len(methods) + 2) + 3, 3.5))
    for i, method in enumerate(methods):
        vals = [scores[method].get(s, np.nan) for s in subjects]
        ax.bar(np.arange(len(subjects)) + i * width - 0.4 + width / 2, vals, width, label=method)
    if chance is not None and math.isfinite(chance):
        ax.axhline(chance, color="k", ls="--", lw=1, label="chance")
    ax.set(xticks=range(len(subjects)), ylabel=_LABELS.get(metric, metric), xlabel="Subject")
    ax.set_xticklabels(subjects, rotation=45 if len(subjects) > 8 else 0, ha="right"
                       if len(subjects) > 8 else "center")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)


def topomap_channels(sensors: SensorLayout) -> tuple[np.ndarray, str] | None:
    """Indices and kind label of the channels a topomap can show (EEG, else magnetometers)."""
    for kind in (ChannelKind.EEG, ChannelKind.MEG_MAG):
        idx = np.flatnonzero(sensors.kinds == int(kind))
        if idx.size >= 3:
            return idx, kind.label
    return None


def plot_topomap(values: np.ndarray, sensors: SensorLayout, path: str | Path, *,
                 title: str = "Channel importance") -> Path:
    """Topomap of ``values [C]`` at the sensors' head-frame positions (EEG or magnetometers).

    Raises
    ------
    ValueError
        When fewer than three EEG or magnetometer channels have positions (iEEG contacts do
        not lie on the scalp; a topomap would mislead).
    """
    import mne

    plt = _pyplot()
    picked = topomap_channels(sensors)
    if picked is None:
        raise ValueError("A topomap needs at least 3 EEG or magnetometer channels; these sensors "
                         f"are {sorted(set(sensors.kind_labels()))}.")
    idx, label = picked
    names = [sensors.names[i] for i in idx]
    info = mne.create_info(names, 100.0, "eeg")
    montage = mne.channels.make_dig_montage(
        ch_pos={n: sensors.pos[i].astype(float) for n, i in zip(names, idx)}, coord_frame="head")
    info.set_montage(montage, on_missing="ignore", verbose="error")
    fig, ax = plt.subplots(figsize=(4, 4))
    im, _ = mne.viz.plot_topomap(np.asarray(values, float)[idx], info, axes=ax, show=False,
                                 cmap="Reds", names=names if len(names) <= 32 else None)
    ax.set_title(f"{title} ({label})", fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return Path(path)
