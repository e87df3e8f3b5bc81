"""Statistics of a prepared corpus (``neurofm corpus stats``) and their plot.

Hours, files kept and skipped by reason, subjects, the number of channels per window, how often
each channel occurs, and the amplitude distribution of a sample of windows (in µV for EEG/iEEG,
from the model units of ``corpus.json``: 1.0 = 100 µV).
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from neurofm.corpus.manifest import KEPT, SKIPPED
from neurofm.corpus.reader import Corpus

#: Model units -> µV for EEG/iEEG (1.0 = 100 µV).
MICROVOLTS_PER_UNIT = 100.0
_AMPLITUDE_BINS_UV = np.linspace(-200.0, 200.0, 81)


def corpus_stats(corpus, *, max_windows: int = 2000, seed: int = 0) -> dict:
    """Summarise a corpus.

    Parameters
    ----------
    corpus : Corpus or path-like or list of path-like
    max_windows : int
        Windows drawn (evenly spread, seeded) for the amplitude distribution.
    seed : int

    Returns
    -------
    stats : dict
        JSON-ready: ``files`` (total, kept, skipped, skipped_by_reason), ``hours`` (sources,
        kept, in_windows), ``windows``, ``subjects``, ``channels_per_window`` ({C: windows}),
        ``channel_names`` ({name: windows}), ``amplitude_uv`` (percentiles of |x|, histogram
        ``edges``/``counts`` of x, ``n_windows`` sampled).
    """
    if not isinstance(corpus, Corpus):
        corpus = Corpus(corpus)
    manifest = corpus.manifest
    skipped = manifest[manifest["status"] == SKIPPED]
    reasons = Counter(r.split(":", 1)[0] for r in skipped["reason"])
    per_window_channels: Counter = Counter()
    names: Counter = Counter()
    for channels, n_windows in _windows_per_channel_set(corpus).items():
        per_window_channels[len(channels)] += n_windows
        for name in channels:
            names[name] += n_windows
    window_seconds = corpus.spec.window_seconds
    stats = {
        "corpus": [str(p) for p in corpus.paths],
        "files": {"total": len(manifest),
                  "kept": int((manifest["status"] == KEPT).sum()),
                  "skipped": len(skipped),
                  "skipped_by_reason": dict(sorted(reasons.items()))},
        "hours": {"sources": float(manifest["hours"].sum()),
                  "kept": float(manifest.loc[manifest["status"] == KEPT, "hours"].sum()),
                  "in_windows": float(len(corpus) * window_seconds / 3600)},
        "windows": len(corpus),
        "subjects": len(corpus.index.subjects),
        "channels_per_window": {str(k): v for k, v in sorted(per_window_channels.items())},
        "channel_names": dict(names.most_common()),
        "amplitude_uv": _amplitude(corpus, max_windows, seed),
    }
    return stats


def _windows_per_channel_set(corpus: Corpus) -> dict[tuple, int]:
    """Windows per distinct list of channels. Format 3 stores each recording's sensors once
    (grouped by their row); formats 1-2 have them in every shard, so each shard is opened."""
    index = corpus.index
    windows = np.bincount(index.layout[index.layout >= 0],
                          weights=index.counts[index.layout >= 0]).astype(np.int64)
    totals: Counter = Counter()
    for layout in np.flatnonzero(windows):
        totals[index.sensors(int(layout)).channels] += int(windows[layout])
    for recording in np.flatnonzero(index.layout < 0):
        totals[corpus.recording_sensors(int(recording)).channels] += int(index.counts[recording])
    return totals


def _amplitude(corpus: Corpus, max_windows: int, seed: int) -> dict:
    n = len(corpus)
    if n == 0:
        return {"n_windows": 0}
    rng = np.random.default_rng(seed)
    picks = np.sort(rng.choice(n, size=min(n, max_windows), replace=False))
    counts = np.zeros(len(_AMPLITUDE_BINS_UV) - 1, np.int64)
    peaks, abs_samples = [], []
    for i in picks:
        x = corpus[int(i)]["x"].numpy().reshape(-1) * MICROVOLTS_PER_UNIT
        counts += np.histogram(x, _AMPLITUDE_BINS_UV)[0]
        peaks.append(float(np.abs(x).max()))
        abs_samples.append(np.abs(x[:: max(1, x.size // 2000)]))
    abs_all = np.concatenate(abs_samples)
    pct = np.percentile(abs_all, [50, 90, 99, 99.9])
    return {
        "n_windows": len(picks),
        "abs_percentiles": {"50": float(pct[0]), "90": float(pct[1]), "99": float(pct[2]),
                            "99.9": float(pct[3])},
        "window_peak_median": float(np.median(peaks)),
        "window_peak_max": float(np.max(peaks)),
        "histogram": {"edges": _AMPLITUDE_BINS_UV.tolist(), "counts": counts.tolist()},
    }


def describe_stats(stats: dict) -> str:
    """Plain-text table of :func:`corpus_stats` for the terminal."""
    files, hours = stats["files"], stats["hours"]
    lines = [
        f"files        {files['total']} ({files['kept']} kept, {files['skipped']} skipped)",
        (f"hours        {hours['sources']:.2f} in sources, {hours['kept']:.2f} kept, "
         f"{hours['in_windows']:.2f} in windows"),
        f"windows      {stats['windows']}",
        f"subjects     {stats['subjects']}",
    ]
    for reason, count in stats["files"]["skipped_by_reason"].items():
        lines.append(f"  skipped {count:6d}  {reason}")
    lines.append("channels per window: " + ", ".join(
        f"{c} ch: {n}" for c, n in stats["channels_per_window"].items()))
    amp = stats["amplitude_uv"]
    if amp["n_windows"]:
        p = amp["abs_percentiles"]
        lines.append(f"|amplitude| µV over {amp['n_windows']} windows: median {p['50']:.1f}, "
                     f"90% {p['90']:.1f}, 99% {p['99']:.1f}, 99.9% {p['99.9']:.1f}, "
                     f"largest window peak {amp['window_peak_max']:.1f}")
    return "\n".join(lines)


def plot_stats(stats: dict, png) -> None:
    """Four panels (skip reasons, channels per window, channel frequency, amplitude) to PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(12, 8))
    reasons = stats["files"]["skipped_by_reason"]
    labels = ["kept"] + list(reasons)
    axes[0, 0].barh(labels, [stats["files"]["kept"]] + list(reasons.values()),
                    color=["tab:green"] + ["tab:red"] * len(reasons))
    axes[0, 0].set_xlabel("files")
    axes[0, 0].set_title(f"{stats['files']['total']} files, {stats['hours']['kept']:.1f} h kept")
    per = stats["channels_per_window"]
    axes[0, 1].bar([str(k) for k in per], list(per.values()))
    axes[0, 1].set_xlabel("channels per window")
    axes[0, 1].set_ylabel("windows")
    names = list(stats["channel_names"].items())[:40]
    axes[1, 0].bar([n for n, _ in names], [c for _, c in names])
    axes[1, 0].tick_params(axis="x", rotation=90, labelsize=7)
    axes[1, 0].set_ylabel("windows")
    axes[1, 0].set_title("channels (most frequent 40)")
    amp = stats["amplitude_uv"]
    if amp["n_windows"]:
        edges = np.asarray(amp["histogram"]["edges"])
        axes[1, 1].stairs(amp["histogram"]["counts"], edges, fill=True)
        axes[1, 1].set_yscale("log")
        axes[1, 1].set_xlabel("amplitude (µV)")
        axes[1, 1].set_title(f"samples of {amp['n_windows']} windows")
    fig.tight_layout()
    fig.savefig(png, dpi=100)
    plt.close(fig)
