"""Labelled trials from the simulator: ``sim:motor_imagery?modality=meg&subjects=8``.

Each subject is one simulated recording (:func:`neurofm.simulate.simulate_recording`) cut into
the task's trials. All trials share the layout of the sensor set on the average head (EEG and
iEEG positions of individual subjects are scaled with their head size by at most ±6 %).
"""

from __future__ import annotations

import numpy as np

from neurofm.datasets.trials import TrialSet
from neurofm.progress import progress_bar
from neurofm.simulate.artefacts import ARTEFACTS
from neurofm.simulate.recording import simulate_recording
from neurofm.simulate.sensor_sets import make_sensor_set
from neurofm.simulate.tasks import get_task


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
    from neurofm.sensors.positions import resolve_sensors

    sensor_set = make_sensor_set(modality, montage)
    spec = f"sim:{task}?modality={sensor_set.modality}"
    return TrialSet(name=spec, X=np.concatenate(X), y=np.concatenate(y),
                    subject=np.asarray(subject_ids), sfreq=float(sfreq),
                    sensors=resolve_sensors(sensor_set.final_info(sfreq)),
                    task=plan.task_type, class_names=plan.class_names)
