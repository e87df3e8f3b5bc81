"""Write simulated recordings as FIF, EDF or a BIDS dataset.

* ``fif``: ``<out>/<subject>_task-<task>_raw.fif`` (all modalities; positions and MEG geometry
  kept). FIF embeds the time of writing in its file id, so two runs differ in those bytes only.
* ``edf``: ``<out>/<subject>_task-<task>.edf`` via :func:`mne.export.export_raw` (edfio); EEG,
  sEEG and ECoG only (EDF keeps no sensor positions: read them back with the montage).
  Byte-identical for identical inputs.
* ``bids``: a BIDS dataset under ``<out>`` written by mne-bids (EDF for EEG/iEEG, FIF for MEG),
  annotations as ``events.tsv``, line frequency and channel types in the side-cars.
"""

from __future__ import annotations

from pathlib import Path

import mne
from mne.io.constants import FIFF

from neurofm.simulate.recording import SimulatedRecording

FORMATS = ("fif", "edf", "bids")


def check_format(fmt: str, modality: str) -> str:
    """Validate an output format for a modality; returns it lower-cased."""
    key = str(fmt).strip().lower()
    if key not in FORMATS:
        raise ValueError(f"Unknown output format {fmt!r}; use one of {', '.join(FORMATS)}.")
    if key == "edf" and modality == "meg":
        raise ValueError("EDF cannot hold MEG channels with their geometry; use --format fif "
                         "or --format bids for MEG.")
    return key


def write_recording(rec: SimulatedRecording, out_dir, fmt: str = "fif",
                    overwrite: bool = True) -> Path:
    """Write one simulated recording; returns the path of the file written.

    Parameters
    ----------
    rec : SimulatedRecording
    out_dir : path-like
        Output folder (for ``bids``: the BIDS root).
    fmt : str
        ``"fif"``, ``"edf"`` or ``"bids"``.
    overwrite : bool
    """
    fmt = check_format(fmt, rec.modality)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    task = rec.task.replace("_", "")
    if fmt == "fif":
        path = out_dir / f"{rec.subject}_task-{task}_raw.fif"
        rec.raw.save(path, overwrite=overwrite, verbose="error")
        return path
    if fmt == "edf":
        path = out_dir / f"{rec.subject}_task-{task}.edf"
        mne.export.export_raw(path, rec.raw, fmt="edf", overwrite=overwrite, verbose="error")
        return path
    return _write_bids(rec, out_dir, task, overwrite)


def _write_bids(rec: SimulatedRecording, root: Path, task: str, overwrite: bool) -> Path:
    import mne_bids

    datatype = {"eeg": "eeg", "meg": "meg", "seeg": "ieeg", "ecog": "ieeg"}[rec.modality]
    bids_path = mne_bids.BIDSPath(subject=rec.subject.replace("sub", ""), task=task,
                                  datatype=datatype, root=root)
    raw = rec.raw.copy()
    if rec.modality in ("seeg", "ecog"):
        # BIDS iEEG coordinates must name a space; the simulator's head frame is not a
        # template, so the positions go out as "Other" (unknown) coordinates.
        positions = {ch["ch_name"]: ch["loc"][:3] for ch in raw.info["chs"]
                     if ch["kind"] in (FIFF.FIFFV_SEEG_CH, FIFF.FIFFV_ECOG_CH)}
        montage = mne.channels.make_dig_montage(positions, coord_frame="unknown")
        raw.set_montage(None)
    else:
        montage = None
    mne_bids.write_raw_bids(raw, bids_path, format="FIF" if rec.modality == "meg" else "EDF",
                            allow_preload=True, overwrite=overwrite, montage=montage,
                            verbose="error")
    return bids_path.fpath
