"""What a recording holds and what preprocessing would do to it (``neurofm info``).

:func:`summarise_recording` reads one recording (or epochs file) and returns its sampling rate,
duration, mains frequency, one row per channel (kind, unit, where its position comes from, kept
or dropped and why), the planned preprocessing steps and the findings of the signal checks
(NaN/Inf, flat channels, volts/µV mix-ups); :func:`format_summary` prints it as a table.
"""

from __future__ import annotations

import numpy as np

from neurofm.data.checks import (
    VOLTAGE_KINDS,
    detect_unit_mismatch,
    find_flat,
    find_nonfinite,
)
from neurofm.data.io import is_epochs_file, read_epochs, read_raw
from neurofm.data.preprocess import (
    PreprocessConfig,
    describe_preprocessing,
    epochs_source,
    plan_preprocessing,
    recording_source,
)
from neurofm.sensors import kind_from_mne


def summarise_recording(path, config: PreprocessConfig | None = None) -> dict:
    """Everything ``neurofm info`` shows about a recording, as plain JSON-ready data.

    Parameters
    ----------
    path : str or path-like
        A recording file, an MNE ``-epo.fif`` epochs file, or ``sample:NAME``.
    config : PreprocessConfig, optional
        The preprocessing to plan (default: :class:`PreprocessConfig`'s defaults).

    Returns
    -------
    dict
        ``source``, ``type`` (``"continuous"`` / ``"epochs"``), ``sfreq``, ``n_times``,
        ``duration_seconds`` (epochs: ``epochs``, ``epoch_seconds``), ``line_freq``,
        ``channels`` (one row per channel: name, kind, unit, position source, position, action),
        ``preprocessing`` (the planned steps) and ``checks`` (problems found in the samples).
    """
    config = config or PreprocessConfig()
    epochs = not str(path).startswith("sample:") and is_epochs_file(path)
    inst = read_epochs(path) if epochs else read_raw(path)
    info = inst.info
    source = epochs_source(inst) if epochs else recording_source(inst)
    plan = plan_preprocessing(info, config, source=source,
                              n_times=None if epochs else inst.n_times)
    sfreq = float(info["sfreq"])
    if epochs:
        n_times = len(inst) * len(inst.times)
        extent = {"epochs": len(inst), "epoch_seconds": len(inst.times) / sfreq}
    else:
        n_times = inst.n_times
        extent = {}
    return {
        "source": source,
        "type": "epochs" if epochs else "continuous",
        "sfreq": sfreq,
        "n_times": int(n_times),
        "duration_seconds": n_times / sfreq,
        **extent,
        "line_freq": info.get("line_freq"),
        "channels": _channel_rows(info, plan),
        "preprocessing": describe_preprocessing(inst, config),
        "checks": _signal_checks(inst, plan, epochs),
    }


def format_summary(summary: dict) -> str:
    """The table ``neurofm info`` prints, from :func:`summarise_recording`'s result."""
    lines = [f"Recording: {summary['source']} ({summary['type']})"]
    extent = f"{summary['duration_seconds']:.2f} s ({summary['n_times']} samples)"
    if summary["type"] == "epochs":
        extent = (f"{summary['epochs']} epochs x {summary['epoch_seconds']:.3g} s = " + extent)
    lines.append(f"Sampling rate: {summary['sfreq']:g} Hz    Duration: {extent}")
    line = summary["line_freq"]
    lines.append(f"Mains (line_freq): {f'{line:g} Hz' if line else 'not stored in the file'}")
    units = sorted({f"{c['kind']} in {c['unit']}" for c in summary["channels"]})
    lines.append(f"Units (as read): {', '.join(units)}")
    lines.append("")
    header = ("channel", "kind", "unit", "position source", "action")
    rows = [(c["name"], c["kind"], c["unit"], c["position_source"], c["action"])
            for c in summary["channels"]]
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    for row in [header] + rows:
        lines.append("  ".join(str(v).ljust(w) for v, w in zip(row, widths)).rstrip())
    lines.append("")
    lines.append("Preprocessing:")
    lines.extend(f"  {p}" for p in summary["preprocessing"])
    lines.append("Signal checks:")
    checks = summary["checks"] or ["no NaN/Inf, flat channel or unit problem found"]
    lines.extend(f"  {c}" for c in checks)
    return "\n".join(lines)


_UNITS = {107: "V", 112: "T", 201: "T/m"}  # FIFF unit codes MNE uses for brain channels


def _channel_rows(info, plan) -> list[dict]:
    dropped = dict(plan.dropped)
    layout = plan.layout
    placed = {}
    if layout is not None:
        for i, name in enumerate(layout.names):
            placed[name] = (layout.pos_source[i], layout.pos[i].tolist(), layout.canonical[i])
    rows = []
    for ch in info["chs"]:
        name, kind = ch["ch_name"], kind_from_mne(ch)
        if name in placed:
            source, pos, canonical = placed[name]
            action = "keep" if canonical == name else f"keep (as {canonical})"
        else:
            source, pos = ("missing" if kind.is_brain else "-"), None
            action = f"drop: {dropped[name]}" if name in dropped else "error: see below"
        rows.append({"name": name, "kind": kind.label, "unit": _UNITS.get(int(ch["unit"]), "?"),
                     "position_source": source, "position_m": pos, "action": action})
    return rows


def _signal_checks(inst, plan, epochs: bool) -> list[str]:
    """NaN/Inf, flat and unit findings on the channels preprocessing would keep."""
    if not plan.picks:
        return []
    data = inst.get_data(picks=plan.picks)
    if epochs:
        data = data.transpose(1, 0, 2).reshape(len(plan.picks), -1)  # epochs end to end
    found = [n.describe() for n in find_nonfinite(data, plan.layout.names, plan.sfreq_in)]
    mismatch = detect_unit_mismatch(data, plan.layout.kinds)
    scales = plan.scales
    if mismatch is not None:
        found.append(f"{mismatch.describe()}; preprocessing multiplies by {mismatch.factor:g} "
                     "(on_units='fix')")
        volt_rows = np.isin(plan.layout.kinds, [int(k) for k in VOLTAGE_KINDS])
        scales = scales * np.where(volt_rows, mismatch.factor, 1.0)
    flat = find_flat(data, scales)
    if flat.any():
        names = ", ".join(plan.layout.names[i] for i in np.flatnonzero(flat))
        found.append(f"flat channels: {names} (kept; on_flat='drop' removes them)")
    return found
