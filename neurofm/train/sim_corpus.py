"""Simulated corpora for self-contained runs: ``data.path: sim:tiny`` or ``sim:multimodal``.

On first use the recordings are simulated (:func:`neurofm.simulate.recording.simulate_recording`),
written as FIF files and prepared with :func:`neurofm.corpus.prepare_corpus` into a cache folder
named after the full specification; later runs (and the other ranks) just open it. A spec may
change the recipe's numbers, in the syntax of every data spec (:mod:`neurofm.data.data_spec`):
``sim:tiny?recordings=8&seconds=120`` (0.1's ``sim:tiny,recordings=8`` is still read, with a
``DeprecationWarning``).

=============  ==========================================================  ========================
name           recordings                                                   windows
=============  ==========================================================  ========================
``tiny``       resting EEG, 16-electrode BioSemi cap, 6 subjects x 60 s     5-s windows, 1-s patches
``multimodal`` resting EEG (BioSemi 16), MEG (Neuromag 306), sEEG (2        5-s windows, 1-s patches
               shafts x 8) and ECoG (4x4 grid), 2 subjects each x 60 s
=============  ==========================================================  ========================
"""

from __future__ import annotations

import shutil
from pathlib import Path

from neurofm.cache import cache_dir
from neurofm.corpus import Corpus, PrepareOptions, prepare_corpus
from neurofm.data.data_spec import DataSpec, parse_data_spec, typed_options
from neurofm.simulate.recording import simulate_recording
from neurofm.strict import check_keys

#: Recipes: modalities with their sensor set, and the corpus's options.
RECIPES = {
    "tiny": {"modalities": [("eeg", "biosemi16")], "recordings": 6, "seconds": 60.0,
             "window_seconds": 5.0, "patch_seconds": 1.0, "channels": "all-eeg"},
    "multimodal": {"modalities": [("eeg", "biosemi16"), ("meg", "neuromag"),
                                  ("seeg", "shafts2"), ("ecog", "grid4x4")],
                   "recordings": 2, "seconds": 60.0, "window_seconds": 5.0,
                   "patch_seconds": 1.0, "channels": "all"},
}
SIM_SFREQ = 200.0
SIM_LINE_FREQ = 50.0
#: Recipe numbers a spec may change, and their types.
SETTINGS = {"recordings": int, "seconds": float, "window_seconds": float, "patch_seconds": float}


def parse_sim_spec(spec: str) -> tuple[str, dict]:
    """``"sim:tiny?recordings=8"`` -> ``("tiny", {recipe with recordings=8})``.

    Raises
    ------
    ValueError
        Not a ``sim:`` spec, unknown recipe name or setting, a setting that is not a number.
    """
    parsed = parse_data_spec(spec)
    return parsed.name, _recipe(parsed)


def _recipe(spec: DataSpec) -> dict:
    if spec.scheme != "sim" or spec.name not in RECIPES:
        raise ValueError(f"Unknown simulated corpus {spec.text!r}; use "
                         f"sim:{' or sim:'.join(RECIPES)}.")
    check_keys(spec.options, SETTINGS, where=f"simulated corpus {spec.text!r}")
    settings = typed_options(spec, ints=[k for k, t in SETTINGS.items() if t is int],
                             floats=[k for k, t in SETTINGS.items() if t is float])
    return {**RECIPES[spec.name], **settings}


def default_cache_dir() -> Path:
    return cache_dir("sim")


def simulated_corpus(spec: str, cache_dir: str | Path | None = None, *, build: bool = True,
                     progress: bool = False) -> Path:
    """Folder of the simulated corpus ``spec``, simulating and preparing it if needed.

    Parameters
    ----------
    spec : str
        ``sim:NAME[?key=value&...]``: a recipe of :data:`RECIPES`, with :data:`SETTINGS`
        changed.
    cache_dir : str or Path, optional
        Parent folder of the cached corpora (default ``$NEUROFM_CACHE/sim`` or
        ``~/.cache/neurofm/sim``).
    build : bool
        False: only return the folder (raises if it has not been built).
    progress : bool
        Show the preparation's progress bars.

    Returns
    -------
    Path
        A corpus folder readable by :class:`neurofm.corpus.Corpus`.
    """
    parsed = parse_data_spec(spec)
    recipe = _recipe(parsed)
    root = Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
    key = parsed.key()
    corpus_dir = root / key / "corpus"
    if (corpus_dir / "corpus.json").is_file():
        if _readable(corpus_dir) or not build:
            return corpus_dir
        shutil.rmtree(corpus_dir)  # written by an older neurofm: simulate it again
    if not build:
        raise FileNotFoundError(f"The simulated corpus {spec} is not in {root}; it is built by "
                                "the main rank on first use.")
    recordings = root / key / "recordings"
    if recordings.exists():
        shutil.rmtree(recordings)  # left by an interrupted build
    recordings.mkdir(parents=True)
    for modality, montage in recipe["modalities"]:
        for subject in range(recipe["recordings"]):
            rec = simulate_recording("resting", modality, montage=montage,
                                     duration=recipe["seconds"], sfreq=SIM_SFREQ,
                                     subject=subject, seed=0, line_freq=SIM_LINE_FREQ,
                                     grid_mm=20.0)
            path = recordings / f"sub-{subject:03d}_{modality}_raw.fif"
            rec.raw.save(path, overwrite=True, verbose="error")
    options = PrepareOptions(sfreq=SIM_SFREQ, window_seconds=recipe["window_seconds"],
                             patch_seconds=recipe["patch_seconds"], channels=recipe["channels"],
                             max_abs_uv=None, trim_seconds=0.0, min_minutes=0.0,
                             dtype="float32", line_freq=SIM_LINE_FREQ)
    prepare_corpus(recordings, corpus_dir, options, progress=progress)
    shutil.rmtree(recordings)
    return corpus_dir


def _readable(corpus_dir: Path) -> bool:
    try:
        Corpus(corpus_dir)
    except (ValueError, KeyError, OSError):
        return False
    return True
