"""Simulate one subject's recording: sources -> forward model -> sensors (+ noise, artefacts).

:func:`simulate_recording` draws the subject (head size, dipole orientations, alpha and mu
frequencies, rhythm amplitude, where each functional region sits), asks the task for its region
time courses and ground truth, and projects everything to the sensors with
:func:`mne.apply_forward_raw`, chunk by chunk so that memory stays ``[S, chunk]`` whatever the
duration. Every dipole of the grid carries independent 1/f background activity.

Randomness comes from ``numpy.random.SeedSequence([seed, subject])`` (the subject) and
``SeedSequence([seed, subject, session])`` (the signals): the same arguments give the same
samples, bit for bit.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import mne
import numpy as np

from neurofm.simulate import artefacts as A
from neurofm.simulate.head import HEAD_SCALES, head_model
from neurofm.simulate.sensor_sets import HEAD_ORIGIN, make_sensor_set
from neurofm.simulate.sources import PinkNoise
from neurofm.simulate.tasks import REGIONS, SubjectTraits, TaskPlan, get_task

#: Background: per-dipole standard deviation is this / sqrt(number of dipoles) nAm, so the
#: total background power does not depend on the grid spacing (~15 µV on EEG).
BACKGROUND_NAM = 345.0
#: Seconds of signal projected per call of :func:`mne.apply_forward_raw`.
CHUNK_SECONDS = 20.0
#: Standard deviation (metres) of a subject's region positions around :data:`REGIONS`.
REGION_JITTER = 0.005


@dataclass
class SimulatedRecording:
    """One simulated recording and its ground truth.

    Attributes
    ----------
    raw : mne.io.RawArray
        Brain channels (SI units, positions set) plus ``misc`` channels of the task
        (``VIGILANCE``); annotations mark trials, events, artefacts and sleep stages.
    subject : str
        Subject id (``"sub001"`` style, from the subject index).
    task : str
    modality : str
    plan : TaskPlan
        Trial onsets, labels, window, class names, task type, recording label.
    """

    raw: mne.io.RawArray
    subject: str
    task: str
    modality: str
    plan: TaskPlan

    def sensor_positions(self) -> np.ndarray:
        """Positions ``[C, 3]`` (metres, head frame) of the brain channels of ``raw``."""
        picks = mne.pick_types(self.raw.info, meg=True, eeg=True, seeg=True, ecog=True)
        locs = np.array([self.raw.info["chs"][i]["loc"][:3] for i in picks])
        if self.modality == "meg":
            trans = self.raw.info["dev_head_t"]["trans"]
            locs = locs @ trans[:3, :3].T + trans[:3, 3]
        return locs

    def trials(self) -> tuple[np.ndarray, np.ndarray]:
        """Labelled trials of the brain channels.

        Returns
        -------
        X : ndarray of float32, shape [n_trials, C, T]
            SI units; trials that would run past the end are left out.
        y : ndarray, shape [n_trials]
        """
        picks = mne.pick_types(self.raw.info, meg=True, eeg=True, seeg=True, ecog=True)
        data = self.raw.get_data(picks=picks)
        sfreq = self.raw.info["sfreq"]
        tmin, tmax = self.plan.window
        length = round((tmax - tmin) * sfreq)
        starts = np.round((self.plan.trial_onsets + tmin) * sfreq).astype(int)
        keep = (starts >= 0) & (starts + length <= data.shape[1])
        X = np.stack([data[:, s:s + length] for s in starts[keep]]) if keep.any() else \
            np.zeros((0, len(picks), length))
        return X.astype(np.float32), np.asarray(self.plan.trial_labels)[keep]


def subject_id(index: int) -> str:
    """Subject id for a subject index: ``0 -> "sub001"``."""
    return f"sub{index + 1:03d}"


def simulate_recording(task: str = "resting", modality: str = "eeg", *, montage: str | None = None,
                       duration: float = 60.0, sfreq: float = 250.0, subject: int = 0,
                       session: int = 0, seed: int = 0, effect: float = 1.0, artefacts=A.ARTEFACTS,
                       line_freq: float = 50.0, grid_mm: float = 12.0,
                       abnormal: bool | None = None, task_options: dict | None = None
                       ) -> SimulatedRecording:
    """Simulate one recording of ``task`` seen through ``modality``.

    Parameters
    ----------
    task : str
        One of :func:`neurofm.simulate.tasks.list_tasks`.
    modality : str
        ``"eeg"``, ``"meg"``, ``"seeg"`` (``"ieeg"``) or ``"ecog"``.
    montage : str, optional
        Sensor set within the modality (see :func:`make_sensor_set`).
    duration : float
        Seconds.
    sfreq : float
        Sampling rate in Hz.
    subject : int
        Subject index; with ``seed`` it fixes the subject (head, dipole orientations, rhythm
        frequencies, region positions).
    session : int
        Session index; with ``seed`` and ``subject`` it fixes the signals of this recording.
    seed : int
    effect : float
        Task effect size (1 = documented default difficulty, 0 = no information).
    artefacts : iterable of str
        Any of ``"blink"``, ``"muscle"``, ``"line"``.
    line_freq : float
        Mains frequency (Hz) for the ``line`` artefact; also stored in ``raw.info``.
    grid_mm : float
        Source grid spacing (mm); coarser is faster.
    abnormal : bool, optional
        ``abnormal`` task: whether this subject is abnormal (default: odd subject indices).
    task_options : dict, optional
        Extra keyword arguments of the task generator (``classes``, ``epoch_seconds`` …).

    Returns
    -------
    SimulatedRecording
    """
    generator = get_task(task)
    artefacts = A.check_artefacts(artefacts)
    if duration <= 0 or sfreq <= 0:
        raise ValueError(f"duration and sfreq must be positive (got {duration} s, {sfreq} Hz).")
    sensor_set = make_sensor_set(modality, montage)
    trait_rng, ori_rng = (np.random.default_rng(s)
                          for s in np.random.SeedSequence([int(seed), int(subject)]).spawn(2))
    task_rng, background_rng, noise_rng = (
        np.random.default_rng(s)
        for s in np.random.SeedSequence([int(seed), int(subject), int(session)]).spawn(3))
    n = round(duration * sfreq)

    head = head_model(sensor_set, HEAD_SCALES[trait_rng.integers(len(HEAD_SCALES))], grid_mm)
    traits = SubjectTraits(alpha_freq=trait_rng.uniform(8.5, 11.5),
                           mu_freq=trait_rng.uniform(9.5, 12.5),
                           rhythm_gain=float(np.exp(0.2 * trait_rng.standard_normal())),
                           abnormal=bool(subject % 2 == 1) if abnormal is None else bool(abnormal))
    region_index = _place_regions(head.source_pos, trait_rng)
    orientations = ori_rng.standard_normal((head.n_sources, 3))
    plan = generator(task_rng, n, sfreq, traits, effect=effect, **(task_options or {}))
    for region, direction in plan.orientations.items():
        orientations[region_index[region]] = direction
    fwd = head.fixed_forward(orientations)
    data = _project(fwd, head, plan, region_index, background_rng, n, sfreq)

    info = head.sensor_set.final_info(sfreq)
    ch_types = info.get_channel_types()
    data += A.sensor_noise(noise_rng, ch_types, n)
    positions = head.sensor_set.positions()
    artefact_notes = A.add_artefacts(data, noise_rng, positions, ch_types, sfreq, artefacts,
                                     line_freq)
    with info._unlock():
        info["line_freq"] = float(line_freq)
        info["description"] = f"neurofm simulate: task={task} subject={subject_id(subject)}"
    raw = mne.io.RawArray(data, info, verbose="error")
    if plan.extra_channels:
        names = list(plan.extra_channels)
        extra = mne.io.RawArray(np.stack([plan.extra_channels[k] for k in names]),
                                mne.create_info(names, sfreq, "misc"), verbose="error")
        raw.add_channels([extra], force_update_info=True)
    meas_date = dt.datetime(2015, 1, 5, 9, tzinfo=dt.UTC) + dt.timedelta(
        days=7 * int(subject) + int(session) + int(seed) % 1000)
    raw.set_meas_date(meas_date)
    notes = list(plan.annotations) + artefact_notes
    if plan.recording_label:
        notes.append((0.0, n / sfreq, plan.recording_label))
    total = n / sfreq
    notes = sorted((on, min(length, total - on), desc) for on, length, desc in notes if on < total)
    if notes:
        onset, length, desc = zip(*notes)
        raw.set_annotations(mne.Annotations(onset, length, desc, orig_time=meas_date))
    return SimulatedRecording(raw=raw, subject=subject_id(subject), task=task,
                              modality=sensor_set.modality, plan=plan)


def _place_regions(source_pos: np.ndarray, rng) -> dict[str, int]:
    """Grid index of each region for one subject (nearest point to a jittered target)."""
    out = {}
    for name, rel in REGIONS.items():
        target = np.asarray(HEAD_ORIGIN) + np.asarray(rel) + REGION_JITTER * rng.standard_normal(3)
        out[name] = int(np.argmin(np.linalg.norm(source_pos - target, axis=1)))
    return out


def _project(fwd, head, plan: TaskPlan, region_index, rng, n: int, sfreq: float) -> np.ndarray:
    """Sensor signals ``[C, n]`` (SI) of background + task sources, chunk by chunk."""
    n_src = head.n_sources
    background = PinkNoise(n_src, rng)
    sigma = BACKGROUND_NAM / np.sqrt(n_src)
    vertices = [fwd["src"][0]["vertno"]]
    info = head.sensor_set.info.copy()
    with info._unlock():
        info["sfreq"] = float(sfreq)
        info["lowpass"] = float(sfreq) / 2.0
    out = np.empty((len(info["ch_names"]), n))
    chunk = max(1, int(CHUNK_SECONDS * sfreq))
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        nam = background.next(stop - start) * sigma
        for region, waveform in plan.activity.items():
            nam[region_index[region]] += waveform[start:stop]
        stc = mne.VolSourceEstimate(nam * 1e-9, vertices, tmin=start / sfreq,
                                    tstep=1.0 / sfreq)
        out[:, start:stop] = mne.apply_forward_raw(fwd, stc, info, verbose="error").get_data()
    return out
