"""Recordings: read any format, preprocess with one recipe, cut into windows of patches.

::

    raw = read_raw("sub-01_task-rest_eeg.edf")          # or "sample:emotiv14"
    config = PreprocessConfig.from_spec(model.preprocessing)   # or PreprocessConfig()
    rec = preprocess_raw(raw, config)                    # Recording, data [C, T], model units
    win = window_recording(rec)                          # Windows, x [W, C, N, P]
    ds = WindowDataset.from_files(paths)                 # skips unusable files, with reasons
    loader = DataLoader(ds, batch_size=8, collate_fn=collate_windows)

The recipe is one typed record, :class:`PreprocessSpec` (``neurofm.data.spec``), which corpora
and models carry. See ``docs/data.md`` for the recipe, the scales and the rules for bad input.
"""

import importlib

from neurofm.data.errors import RecordingError, RecordingTooShortError
from neurofm.data.recording import Recording
from neurofm.data.spec import (
    DEFAULT_SCALES,
    DEFAULT_SFREQ,
    PreprocessSpec,
    as_spec,
    check_compatible,
)

#: Names from modules that import MNE/SciPy, loaded on first use: ``neurofm.data.spec`` is
#: imported by models, corpora and training, which must not pay for MNE.
_LAZY = {
    "BandLimitWarning": "neurofm.data.band",
    "WindowDataset": "neurofm.data.dataset",
    "collate_windows": "neurofm.data.dataset",
    "load_windows": "neurofm.data.dataset",
    "find_bids_root": "neurofm.data.io",
    "is_epochs_file": "neurofm.data.io",
    "read_epochs": "neurofm.data.io",
    "read_raw": "neurofm.data.io",
    "PreprocessConfig": "neurofm.data.preprocess",
    "describe_preprocessing": "neurofm.data.preprocess",
    "plan_preprocessing": "neurofm.data.preprocess",
    "preprocess_raw": "neurofm.data.preprocess",
    "preprocess_trials": "neurofm.data.preprocess",
    "list_samples": "neurofm.data.samples",
    "format_summary": "neurofm.data.summary",
    "summarise_recording": "neurofm.data.summary",
    "load_sample": "neurofm.data.samples",
    "Windows": "neurofm.data.windows",
    "epochs_to_patches": "neurofm.data.windows",
    "epochs_to_windows": "neurofm.data.windows",
    "window_recording": "neurofm.data.windows",
}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'neurofm.data' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "DEFAULT_SCALES",
    "DEFAULT_SFREQ",
    "BandLimitWarning",
    "PreprocessConfig",
    "PreprocessSpec",
    "Recording",
    "RecordingError",
    "RecordingTooShortError",
    "WindowDataset",
    "Windows",
    "as_spec",
    "check_compatible",
    "collate_windows",
    "describe_preprocessing",
    "epochs_to_patches",
    "epochs_to_windows",
    "find_bids_root",
    "format_summary",
    "is_epochs_file",
    "list_samples",
    "load_sample",
    "load_windows",
    "plan_preprocessing",
    "preprocess_raw",
    "preprocess_trials",
    "read_epochs",
    "read_raw",
    "summarise_recording",
    "window_recording",
]
