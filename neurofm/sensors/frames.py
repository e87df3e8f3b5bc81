"""Coordinate frames: MNI / fsaverage template space and MNE's head frame.

Electrode positions stored in template space (iEEG ``electrodes.tsv`` in MNI space, a DigMontage
in the ``mni_tal`` or ``mri`` frame without fiducials) are mapped into fsaverage's head frame, so
that EEG, MEG and iEEG positions share one frame.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np


@lru_cache(maxsize=1)
def _fsaverage_mri_to_head():
    import mne

    path = Path(mne.__file__).parent / "data" / "fsaverage" / "fsaverage-trans.fif"
    head_to_mri = mne.read_trans(path, verbose="error")
    return mne.transforms.invert_transform(head_to_mri)


def mni_to_head(xyz) -> np.ndarray:
    """Map MNI / fsaverage coordinates (metres) into the head frame of fsaverage.

    Uses the head<->MRI transform that the MNE wheel ships for fsaverage
    (``mne/data/fsaverage/fsaverage-trans.fif``, inverted). fsaverage's MRI space is MNI305.

    Parameters
    ----------
    xyz : array-like, shape [n, 3] or [3]
        Coordinates in metres (not millimetres).

    Returns
    -------
    ndarray of float64, shape like ``xyz``
        Head-frame coordinates in metres.
    """
    import mne

    pts = np.asarray(xyz, dtype=float)
    if pts.shape[-1:] != (3,) or pts.ndim not in (1, 2):
        raise ValueError(f"mni_to_head expects coordinates of shape [n, 3] or [3], got {pts.shape}.")
    if not np.all(np.isfinite(pts)):
        raise ValueError("mni_to_head got non-finite coordinates; remove NaN/Inf positions first.")
    if np.abs(pts).max(initial=0.0) > 1.0:
        raise ValueError("mni_to_head expects metres, but a coordinate exceeds 1 m: the values "
                         "look like millimetres; divide them by 1000.")
    return mne.transforms.apply_trans(_fsaverage_mri_to_head(), pts)


def file_positions_in_mni(info) -> bool:
    """True when the recording's electrode digitisation is in MNI/fsaverage (template) space."""
    from mne.io.constants import FIFF

    template = {FIFF.FIFFV_MNE_COORD_MNI_TAL, FIFF.FIFFV_COORD_MRI}
    frames = {int(d["coord_frame"]) for d in (info.get("dig") or [])
              if d["kind"] == FIFF.FIFFV_POINT_EEG}
    return bool(frames) and frames <= template
