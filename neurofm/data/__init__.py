"""Recordings: read any format, preprocess with one recipe, cut into windows of patches.

::

    raw = read_raw("sub-01_task-rest_eeg.edf")          # or "sample:emotiv14"
    rec = preprocess_raw(raw)                            # Recording, data [C, T], model units
    win = window_recording(rec)                          # Windows, x [W, C, N, P]
    ds = WindowDataset.from_files(paths)                 # skips unusable files, with reasons
    loader = DataLoader(ds, batch_size=8, collate_fn=collate_windows)

See ``docs/data.md`` for the recipe, the scales and the rules for bad input.
"""

from neurofm.data.dataset import WindowDataset, collate_windows, load_windows
from neurofm.data.errors import RecordingError, RecordingTooShortError
from neurofm.data.io import find_bids_root, is_epochs_file, read_epochs, read_raw
from neurofm.data.preprocess import (
    DEFAULT_SCALES,
    PreprocessConfig,
    describe_preprocessing,
    plan_preprocessing,
    preprocess_raw,
)
from neurofm.data.recording import Recording
from neurofm.data.samples import list_samples, load_sample
from neurofm.data.windows import Windows, epochs_to_patches, epochs_to_windows, window_recording

__all__ = [
    "DEFAULT_SCALES",
    "PreprocessConfig",
    "Recording",
    "RecordingError",
    "RecordingTooShortError",
    "WindowDataset",
    "Windows",
    "collate_windows",
    "describe_preprocessing",
    "epochs_to_patches",
    "epochs_to_windows",
    "find_bids_root",
    "is_epochs_file",
    "list_samples",
    "load_sample",
    "load_windows",
    "plan_preprocessing",
    "preprocess_raw",
    "read_epochs",
    "read_raw",
    "window_recording",
]
