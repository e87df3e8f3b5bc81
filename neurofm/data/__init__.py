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

from neurofm.data.band import BandLimitWarning
from neurofm.data.dataset import WindowDataset, collate_windows, load_windows
from neurofm.data.errors import RecordingError, RecordingTooShortError
from neurofm.data.io import find_bids_root, is_epochs_file, read_epochs, read_raw
from neurofm.data.preprocess import (
    PreprocessConfig,
    describe_preprocessing,
    plan_preprocessing,
    preprocess_raw,
    preprocess_trials,
)
from neurofm.data.recording import Recording
from neurofm.data.samples import list_samples, load_sample
from neurofm.data.spec import (
    DEFAULT_SCALES,
    DEFAULT_SFREQ,
    PreprocessSpec,
    as_spec,
    check_compatible,
)
from neurofm.data.windows import Windows, epochs_to_patches, epochs_to_windows, window_recording

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
    "is_epochs_file",
    "list_samples",
    "load_sample",
    "load_windows",
    "plan_preprocessing",
    "preprocess_raw",
    "preprocess_trials",
    "read_epochs",
    "read_raw",
    "window_recording",
]
