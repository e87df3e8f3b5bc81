"""Simulated data sets: trials in memory (``sim:motor_imagery?modality=meg&subjects=8``) or files.

Each subject is one simulated recording (:func:`neurofm.simulate.simulate_recording`).
:func:`load_simulated` cuts them into the task's trials; all trials share the layout of the
sensor set on the average head (EEG and iEEG positions of individual subjects are scaled with
their head size by at most ±6 %). :func:`write_simulated` writes them as FIF, EDF or BIDS files
(``neurofm simulate``); a BIDS folder of a labelled task records its classes and trial window,
so that :func:`neurofm.datasets.load_dataset` reads it back as trials.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from neurofm.datasets.folders import write_trials_sidecar
from neurofm.datasets.trials import TrialSet
from neurofm.progress import progress_bar
from neurofm.sensors.positions import resolve_sensors
from neurofm.simulate.artefacts import ARTEFACTS
from neurofm.simulate.recording import simulate_recording
from neurofm.simulate.sensor_sets import make_sensor_set, normalise_modality
from neurofm.simulate.tasks import get_task
from neurofm.simulate.writers import check_format, write_recording


def load_simulated(task: str = "motor_imagery", *, modality: str = "eeg",
                   montage: str | None = None, subjects: int = 8, minutes: float = 5.0,
                   sfreq: float = 250.0, seed: int = 0, effect: float = 1.0,
                   artefacts=ARTEFACTS, grid_mm: float = 12.0, progress: bool = False,
                   **task_options) -> TrialSet:
    """Simulate ``subjects`` recordings of ``task`` and return their trials.

    Parameters
    ----------
    task : str
        A labelled task: ``motor_imagery``, ``erp``, ``abnormal``, ``sleep_like`` or
        ``vigilance`` (``resting`` has no labels).
    modality, montage : str
        Sensor set (see :func:`neurofm.simulate.make_sensor_set`).
    subjects : int
        Number of subjects (one recording each).
    minutes : float
        Duration of each recording.
    sfreq : float
        Sampling rate (Hz).
    seed : int
    effect : float
        Effect size (1 = default difficulty).
    artefacts : iterable of str
        Artefacts to add (``blink``, ``muscle``, ``line``).
    grid_mm : float
        Source grid spacing.
    progress : bool
        Show a progress bar over subjects.
    **task_options
        Passed to the task generator (``classes``, ``epoch_seconds``, ``window_seconds`` …).

    Returns
    -------
    TrialSet
    """
    get_task(task)
    if task == "resting":
        raise ValueError("The 'resting' task has no labels; write recordings for pretraining "
                         "with `neurofm simulate OUT --task resting` instead.")
    if int(subjects) < 1 or minutes <= 0:
        raise ValueError(f"subjects must be >= 1 and minutes > 0 (got {subjects}, {minutes}).")
    X, y, subject_ids, plan = [], [], [], None
    for index in progress_bar(range(int(subjects)), desc=f"simulating {task}", unit="subject",
                              disable=not progress):
        rec = simulate_recording(task, modality, montage=montage, duration=60.0 * minutes,
                                 sfreq=sfreq, subject=index, seed=seed, effect=effect,
                                 artefacts=artefacts, grid_mm=grid_mm, task_options=task_options)
        trials, labels = rec.trials()
        X.append(trials)
        y.append(labels)
        subject_ids += [rec.subject] * len(labels)
        plan = rec.plan
    if not subject_ids:
        raise ValueError(f"No complete {task} trial fits in {minutes} minute(s); simulate longer "
                         f"recordings.")
    sensor_set = make_sensor_set(modality, montage)
    spec = f"sim:{task}?modality={sensor_set.modality}"
    return TrialSet(name=spec, X=np.concatenate(X), y=np.concatenate(y),
                    subject=np.asarray(subject_ids), sfreq=float(sfreq),
                    sensors=resolve_sensors(sensor_set.final_info(sfreq)),
                    task=plan.task_type, class_names=plan.class_names,
                    source=np.full(len(subject_ids), f"simulated ({spec}, seed {seed})"))


@dataclass(frozen=True)
class SimulatedFiles:
    """What :func:`write_simulated` wrote: the files, and the recordings' modality and width."""

    paths: list[Path]
    task: str
    modality: str
    n_channels: int


def write_simulated(out, task: str = "motor_imagery", modality: str = "eeg", *,
                    fmt: str = "fif", montage: str | None = None, subjects: int = 8,
                    minutes: float = 5.0, sfreq: float = 250.0, seed: int = 0,
                    effect: float = 1.0, artefacts=ARTEFACTS, line_freq: float = 50.0,
                    grid_mm: float = 12.0, progress: bool = False) -> SimulatedFiles:
    """Simulate one recording per subject and write each as a file under ``out``.

    Parameters
    ----------
    out : path-like
        Output folder (the BIDS root for ``fmt="bids"``), created.
    task, modality, montage, sfreq, seed, effect, artefacts, line_freq, grid_mm
        As in :func:`neurofm.simulate.simulate_recording` (``task`` may be ``resting``).
    fmt : str
        ``"fif"``, ``"edf"`` (not MEG) or ``"bids"`` (:func:`neurofm.simulate.write_recording`).
    subjects : int
        Recordings, one per subject.
    minutes : float
        Duration of each recording.
    progress : bool
        Show a progress bar over subjects.

    Returns
    -------
    SimulatedFiles
    """
    if int(subjects) < 1 or minutes <= 0:
        raise ValueError(f"subjects must be >= 1 and minutes > 0 (got {subjects}, {minutes}).")
    check_format(fmt, normalise_modality(modality))
    paths, rec = [], None
    for index in progress_bar(range(int(subjects)), desc=f"simulate {task}/{modality}",
                              unit="subject", disable=not progress):
        rec = simulate_recording(task, modality, montage=montage, duration=60.0 * minutes,
                                 sfreq=sfreq, subject=index, seed=seed, effect=effect,
                                 artefacts=artefacts, line_freq=line_freq, grid_mm=grid_mm)
        paths.append(write_recording(rec, out, fmt))
    if fmt == "bids" and rec.plan.class_names and rec.plan.recording_label is None:
        write_trials_sidecar(out, rec.plan.class_names, *rec.plan.window)
    return SimulatedFiles(paths, task, rec.modality, len(rec.raw.ch_names))
