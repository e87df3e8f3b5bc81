"""Task generators: what the brain sources do, and the ground truth that goes with it.

Every task turns a subject and a duration into a :class:`TaskPlan`: time courses (nAm) for a few
named brain regions (added on top of the 1/f background of every dipole), annotations, and the
labelled trials a classifier or regressor is trained on. Regions are points in MNE's head frame
relative to the head centre; each subject's region lands on the grid point nearest a jittered
copy of it (:mod:`neurofm.simulate.recording`).

Tasks (``effect`` scales every task effect; 0 removes the information, 1 is the documented
default difficulty, see ``docs/simulate.md``):

``motor_imagery``
    Cued trials (3 s imagery, 1.5-2.5 s rest) of ``left_hand``, ``right_hand``, ``feet`` and
    ``rest``; imagery desynchronises the 8-30 Hz mu/beta rhythm of the contralateral hand area
    (``left_hand`` -> right motor cortex) or the medial foot area. Trial window 0.5-3.0 s.
``erp``
    Oddball stimuli every 0.9-1.3 s (20 % targets); every stimulus evokes N1/P2 in both auditory
    cortices, targets add a P300 over the parietal midline. Window 0-0.8 s.
``abnormal``
    Whole recordings are ``normal`` or ``abnormal`` (TUAB-like): every abnormal one has
    continuous focal polymorphic delta over one hemisphere, intermittent generalised 3-Hz
    spike-and-wave bursts and a slower, weaker alpha; normal ones have brief weak slow
    transients. Trials are consecutive windows labelled with the recording's class.
``sleep_like``
    Stages W, N1, N2, N3, REM in epochs (default 30 s) from a Markov chain; alpha, theta,
    spindles, K-complexes and slow waves follow the stage. Trials are the epochs.
``vigilance``
    A drifting vigilance level ``v(t)`` in [0, 1] (30-s correlation time) raises posterior
    alpha and lowers frontal theta log-linearly; trials are 4-s windows with the mean ``v`` as
    regression target, and ``v`` is written as a ``misc`` channel ``VIGILANCE``.
``resting``
    Unlabelled background, alpha and mu, for pretraining.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from neurofm.simulate import sources as S

#: Brain regions (metres, head frame, relative to the head centre; +x right, +y front, +z up).
REGIONS = {
    "motor_left": (-0.040, -0.005, 0.045),
    "motor_right": (0.040, -0.005, 0.045),
    "motor_feet": (0.0, -0.012, 0.058),
    "occipital_left": (-0.025, -0.060, 0.012),
    "occipital_right": (0.025, -0.060, 0.012),
    "parietal_mid": (0.0, -0.040, 0.048),
    "temporal_left": (-0.050, 0.0, 0.0),
    "temporal_right": (0.050, 0.0, 0.0),
    "frontal_mid": (0.0, 0.040, 0.038),
    "central_left": (-0.022, -0.005, 0.055),
    "central_right": (0.022, -0.005, 0.055),
}

#: Default amplitudes of the rhythms (nAm, standard deviation of one dipole).
ALPHA_NAM = 250.0
MU_NAM = 200.0
BETA_NAM = 100.0
#: Mean depth of the motor-imagery desynchronisation (fraction of mu/beta amplitude removed).
MI_ERD_DEPTH = 0.75


@dataclass
class SubjectTraits:
    """What differs between simulated subjects (besides head size and dipole orientations)."""

    alpha_freq: float = 10.0
    mu_freq: float = 11.0
    rhythm_gain: float = 1.0
    abnormal: bool = False


@dataclass
class TaskPlan:
    """Output of a task generator for one recording.

    Attributes
    ----------
    activity : dict of str -> ndarray [T]
        Extra time course (nAm) per region name of :data:`REGIONS`.
    annotations : list of (onset_s, duration_s, description)
    trial_onsets : ndarray [n]
        Trial times (s); a trial spans ``onset + window[0]`` to ``onset + window[1]``.
    trial_labels : ndarray [n]
        Class index (int) or target (float).
    window : tuple of float
    class_names : list of str or None
    task_type : str
        ``"classification"``, ``"regression"`` or ``"none"``.
    recording_label : str or None
        Class of the whole recording (``abnormal`` task).
    extra_channels : dict of str -> ndarray [T]
        Non-brain channels to write (``VIGILANCE``).
    orientations : dict of str -> (float, float, float)
        Regions whose dipole points in a fixed direction of MNE's head frame (x right, y front,
        z up) instead of the subject's random orientation. The ERP components use it so that
        their scalp signs are the physiological ones in every subject.
    """

    activity: dict
    annotations: list = field(default_factory=list)
    trial_onsets: np.ndarray = field(default_factory=lambda: np.zeros(0))
    trial_labels: np.ndarray = field(default_factory=lambda: np.zeros(0, int))
    window: tuple = (0.0, 1.0)
    class_names: list | None = None
    task_type: str = "none"
    recording_label: str | None = None
    extra_channels: dict = field(default_factory=dict)
    orientations: dict = field(default_factory=dict)

    def add(self, region: str, waveform: np.ndarray) -> None:
        self.activity[region] = self.activity.get(region, 0.0) + waveform


def _rhythm(rng, n, sfreq, centre, half_width, timescale=2.0):
    return S.band_noise(rng, n, sfreq, centre - half_width, centre + half_width) * \
        S.slow_envelope(rng, n, sfreq, timescale=timescale)


def _posterior_alpha(plan, rng, n, sfreq, traits, gain=1.0):
    for region in ("occipital_left", "occipital_right"):
        plan.add(region, ALPHA_NAM * traits.rhythm_gain * gain *
                 _rhythm(rng, n, sfreq, traits.alpha_freq, 1.0))


def motor_imagery(rng, n, sfreq, traits, effect=1.0,
                  classes=("left_hand", "right_hand", "feet", "rest")) -> TaskPlan:
    """Cued motor imagery with lateralised mu/beta desynchronisation (see module docstring)."""
    contralateral = {"left_hand": "motor_right", "right_hand": "motor_left", "feet": "motor_feet",
                     "rest": None}
    unknown = [c for c in classes if c not in contralateral]
    if unknown or len(classes) < 2:
        raise ValueError(f"motor_imagery classes must be two or more of {list(contralateral)}; "
                         f"got {list(classes)}.")
    duration = n / sfreq
    onsets = []
    t = 2.0
    while t + 3.0 < duration:
        onsets.append(t)
        t += 3.0 + rng.uniform(1.5, 2.5)
    onsets = np.asarray(onsets)
    labels = np.resize(np.arange(len(classes)), len(onsets))
    rng.shuffle(labels)
    plan = TaskPlan(activity={}, trial_onsets=onsets, trial_labels=labels, window=(0.5, 3.0),
                    class_names=list(classes), task_type="classification")
    _posterior_alpha(plan, rng, n, sfreq, traits)
    depth = np.clip(MI_ERD_DEPTH * effect * (1.0 + 0.3 * rng.standard_normal(len(onsets))),
                    0.0, 0.95)
    for region in ("motor_left", "motor_right", "motor_feet"):
        hits = [i for i, k in enumerate(labels) if contralateral[classes[k]] == region]
        gain = S.step_envelope(n, sfreq, onsets[hits] + 0.3, np.full(len(hits), 2.9),
                               1.0 - depth[hits])
        amp = traits.rhythm_gain * (0.6 if region == "motor_feet" else 1.0)
        mu = MU_NAM * _rhythm(rng, n, sfreq, traits.mu_freq, 1.5)
        beta = BETA_NAM * _rhythm(rng, n, sfreq, 21.0, 3.0)
        plan.add(region, amp * gain * (mu + beta))
    plan.annotations = [(float(o), 3.0, classes[k]) for o, k in zip(onsets, labels)]
    return plan


def erp(rng, n, sfreq, traits, effect=1.0, target_probability=0.2) -> TaskPlan:
    """Auditory oddball: N1/P2 to every stimulus, P300 to targets.

    The sources point up (towards the vertex), as their generators' net currents do, so in
    every subject the N1 is negative and the P2 positive at the vertex and the P300 is positive
    over the parietal midline (Pz). The upward P300 dipole is not radial (it sits behind the
    centre), so MEG sees it too.
    """
    duration = n / sfreq
    onsets = []
    t = 1.0
    while t + 1.0 < duration:
        onsets.append(t)
        t += rng.uniform(0.9, 1.3)
    onsets = np.asarray(onsets)
    labels = (rng.random(len(onsets)) < target_probability).astype(int)
    plan = TaskPlan(activity={}, trial_onsets=onsets, trial_labels=labels, window=(0.0, 0.8),
                    class_names=["non_target", "target"], task_type="classification")
    _posterior_alpha(plan, rng, n, sfreq, traits)
    jitter = 0.01 * rng.standard_normal(len(onsets))
    for region in ("temporal_left", "temporal_right"):
        plan.add(region, S.gaussian_pulse(n, sfreq, onsets + 0.10 + jitter, 0.025, -120.0)
                 + S.gaussian_pulse(n, sfreq, onsets + 0.19 + jitter, 0.04, 80.0))
    targets = onsets[labels == 1]
    latency = 0.33 + 0.04 * rng.standard_normal(len(targets))
    amp = 350.0 * effect * np.clip(1.0 + 0.4 * rng.standard_normal(len(targets)), 0.1, None)
    plan.add("parietal_mid", S.gaussian_pulse(n, sfreq, targets + latency, 0.08, amp))
    plan.orientations = {region: (0.0, 0.0, 1.0)
                         for region in ("temporal_left", "temporal_right", "parietal_mid")}
    plan.annotations = [(float(o), 0.0, plan.class_names[k]) for o, k in zip(onsets, labels)]
    return plan


#: Regions of one hemisphere that carry the focal polymorphic delta of abnormal recordings.
_HEMISPHERE_REGIONS = {"left": ("temporal_left", "central_left", "occipital_left"),
                       "right": ("temporal_right", "central_right", "occipital_right")}
#: Regions that carry the generalised spike-and-wave bursts (fronto-central maximum).
_GENERALISED_REGIONS = ("frontal_mid", "central_left", "central_right", "parietal_mid")
#: Source amplitudes (nAm) of the abnormal patterns at ``effect=1``.
FOCAL_DELTA_NAM = 250.0
SPIKE_WAVE_NAM = 400.0


def abnormal(rng, n, sfreq, traits, effect=1.0, window_seconds=10.0,
             spike_wave_per_min=6.0) -> TaskPlan:
    """Normal vs abnormal recordings (TUAB-like), labelled per recording.

    Every abnormal recording carries the same two-part signature, so that it can be learnt
    across subjects from a few training recordings:

    * continuous focal polymorphic delta (1-3 Hz, waxing and waning, never below half its
      level) over the temporal, central and occipital sources of one hemisphere (drawn per
      recording);
    * intermittent generalised 3-Hz spike-and-wave bursts (1.5-4 s, ``spike_wave_per_min``)
      over the fronto-central midline;
    * and a posterior alpha 1.5 Hz slower and 40 % weaker.

    The severity (amplitude of the delta and the bursts) varies by ± 30 % between recordings.
    Normal recordings have posterior alpha and short, weak, generalised slow transients
    (drowsiness-like, 2 per minute) so that delta power alone is not a perfect rule.
    """
    duration = n / sfreq
    onsets = np.arange(0.0, duration - window_seconds + 1e-9, window_seconds)
    label = int(traits.abnormal)
    plan = TaskPlan(activity={}, trial_onsets=onsets, trial_labels=np.full(len(onsets), label),
                    window=(0.0, window_seconds), class_names=["normal", "abnormal"],
                    task_type="classification", recording_label=["normal", "abnormal"][label])
    if not traits.abnormal:
        _posterior_alpha(plan, rng, n, sfreq, traits)
        starts = S.poisson_onsets(rng, duration, rate_per_min=2.0, min_gap_s=5.0)
        lengths = rng.uniform(1.0, 2.5, len(starts))
        gain = S.step_envelope(n, sfreq, starts, lengths, np.ones(len(starts)), baseline=0.0)
        transient = 0.5 * FOCAL_DELTA_NAM * effect * gain * _rhythm(rng, n, sfreq, 2.0, 1.0)
        for region in ("frontal_mid", "parietal_mid"):
            plan.add(region, transient)
        plan.annotations = [(float(a), float(d), "slow_transient")
                            for a, d in zip(starts, lengths)]
        return plan
    slowed = SubjectTraits(alpha_freq=traits.alpha_freq - 1.5 * effect, mu_freq=traits.mu_freq,
                           rhythm_gain=traits.rhythm_gain)
    _posterior_alpha(plan, rng, n, sfreq, slowed, gain=1.0 - 0.4 * effect)
    severity = rng.uniform(0.7, 1.3)
    side = ("left", "right")[rng.integers(2)]
    for region in _HEMISPHERE_REGIONS[side]:
        envelope = np.clip(S.slow_envelope(rng, n, sfreq, timescale=3.0, depth=0.5), 0.5, 2.0)
        delta = S.band_noise(rng, n, sfreq, 1.0, 3.0) * envelope
        plan.add(region, FOCAL_DELTA_NAM * effect * severity * delta)
    starts = S.poisson_onsets(rng, duration, rate_per_min=spike_wave_per_min, min_gap_s=3.0)
    lengths = rng.uniform(1.5, 4.0, len(starts))
    burst = SPIKE_WAVE_NAM * effect * severity * S.spike_wave(n, sfreq, starts, lengths)
    for region in _GENERALISED_REGIONS:
        plan.add(region, burst)
    plan.annotations = [(0.0, duration, f"focal_slowing_{side}")] + [
        (float(a), float(d), "spike_wave") for a, d in zip(starts, lengths)]
    return plan


SLEEP_STAGES = ["W", "N1", "N2", "N3", "REM"]
# Transition probabilities between consecutive epochs (rows: from, columns: to).
_SLEEP_TRANSITIONS = np.array([
    [0.80, 0.15, 0.03, 0.00, 0.02],
    [0.10, 0.50, 0.35, 0.00, 0.05],
    [0.04, 0.05, 0.70, 0.15, 0.06],
    [0.02, 0.02, 0.20, 0.76, 0.00],
    [0.08, 0.07, 0.10, 0.00, 0.75],
])
# Relative level of each rhythm per stage (W, N1, N2, N3, REM).
_SLEEP_LEVELS = {
    "alpha": (1.0, 0.4, 0.2, 0.15, 0.3),
    "theta": (0.2, 1.0, 0.6, 0.4, 1.0),
    "delta": (0.1, 0.2, 0.5, 2.5, 0.2),
    "beta": (0.6, 0.3, 0.2, 0.1, 0.4),
}


def sleep_like(rng, n, sfreq, traits, effect=1.0, epoch_seconds=30.0) -> TaskPlan:
    """Sleep-stage-like epochs with stage-dependent spectra, spindles and K-complexes."""
    n_epochs = int(n / sfreq // epoch_seconds)
    if n_epochs < 1:
        raise ValueError(f"sleep_like needs at least one {epoch_seconds}-s epoch; simulate a "
                         f"longer recording or pass a smaller epoch_seconds.")
    stages = [0]
    for _ in range(n_epochs - 1):
        stages.append(int(rng.choice(5, p=_SLEEP_TRANSITIONS[stages[-1]])))
    stages = np.asarray(stages)
    onsets = np.arange(n_epochs) * epoch_seconds
    plan = TaskPlan(activity={}, trial_onsets=onsets, trial_labels=stages,
                    window=(0.0, epoch_seconds), class_names=list(SLEEP_STAGES),
                    task_type="classification")

    epoch_samples = round(epoch_seconds * sfreq)
    smoother = np.hanning(max(3, int(sfreq)))
    smoother /= smoother.sum()

    def stage_gain(rhythm):
        levels = np.asarray(_SLEEP_LEVELS[rhythm])[stages] ** effect
        per_sample = np.repeat(levels, epoch_samples)
        per_sample = np.r_[per_sample, np.full(n - len(per_sample), levels[-1])]
        half = len(smoother) // 2
        padded = np.pad(per_sample, (half, len(smoother) - 1 - half), mode="edge")
        return np.convolve(padded, smoother, mode="valid")

    g = traits.rhythm_gain
    for region in ("occipital_left", "occipital_right"):
        plan.add(region, ALPHA_NAM * g * stage_gain("alpha") *
                 _rhythm(rng, n, sfreq, traits.alpha_freq, 1.0))
    plan.add("frontal_mid", 200.0 * g * stage_gain("theta") * _rhythm(rng, n, sfreq, 5.5, 1.5))
    for region in ("frontal_mid", "parietal_mid"):
        plan.add(region, 180.0 * g * stage_gain("delta") * _rhythm(rng, n, sfreq, 1.2, 0.7, 4.0))
    for region in ("central_left", "central_right"):
        plan.add(region, BETA_NAM * g * stage_gain("beta") * _rhythm(rng, n, sfreq, 21.0, 3.0))
    spindle_t, kc_t = [], []
    for i in np.flatnonzero(stages >= 2):
        rate = 6.0 if stages[i] == 2 else 1.5
        spindle_t.extend(onsets[i] + S.poisson_onsets(rng, epoch_seconds - 2.0, rate, 1.0))
        if stages[i] == 2:
            kc_t.extend(onsets[i] + S.poisson_onsets(rng, epoch_seconds - 2.0, 1.5, 5.0))
    spindle_len = rng.uniform(0.5, 1.5, len(spindle_t))
    spindle_gain = S.step_envelope(n, sfreq, spindle_t, spindle_len, np.ones(len(spindle_t)),
                                   baseline=0.0, ramp_s=0.25)
    spindles = 250.0 * effect * g * spindle_gain * _rhythm(rng, n, sfreq, 13.0, 1.0)
    for region in ("central_left", "central_right"):
        plan.add(region, spindles)
    kc_t = np.asarray(kc_t)
    plan.add("frontal_mid", 500.0 * effect * g * (S.gaussian_pulse(n, sfreq, kc_t, 0.12, -1.0)
                                                   + S.gaussian_pulse(n, sfreq, kc_t + 0.4,
                                                                      0.18, 0.6)))
    plan.annotations = [(float(o), epoch_seconds, f"Sleep stage {SLEEP_STAGES[s]}")
                        for o, s in zip(onsets, stages)]
    return plan


#: Log-amplitude change of posterior alpha (up) and frontal theta (down) per unit of vigilance.
VIGILANCE_LOG_GAIN = 3.0


def vigilance(rng, n, sfreq, traits, effect=1.0, window_seconds=4.0,
              timescale_seconds=30.0) -> TaskPlan:
    """A drifting vigilance level that trades posterior alpha for frontal theta (regression).

    ``v(t) = sigmoid(2.5 z(t))`` with ``z`` an AR(1) process of unit variance and correlation
    time ``timescale_seconds``, so one recording sweeps most of [0, 1]. Alpha amplitude is
    multiplied by ``exp(effect * VIGILANCE_LOG_GAIN * (v - 0.5))`` and theta by its inverse:
    log band power is linear in ``v``. At ``effect=1`` alpha amplitude changes 6-fold between
    ``v = 0.2`` and ``v = 0.8``, well beyond the ± 20 % per-subject rhythm gain and the
    subject-to-subject change of topography (dipole orientations).
    """
    duration = n / sfreq
    n_knots = int(duration) + 2
    z = np.zeros(n_knots)
    decay = np.exp(-1.0 / timescale_seconds)
    z[0] = rng.standard_normal()
    for i in range(1, n_knots):
        z[i] = decay * z[i - 1] + np.sqrt(1 - decay ** 2) * rng.standard_normal()
    level = np.interp(np.arange(n) / sfreq, np.arange(n_knots), 1.0 / (1.0 + np.exp(-2.5 * z)))
    onsets = np.arange(0.0, duration - window_seconds + 1e-9, window_seconds)
    targets = np.array([level[int(o * sfreq):int((o + window_seconds) * sfreq)].mean()
                        for o in onsets])
    plan = TaskPlan(activity={}, trial_onsets=onsets, trial_labels=targets.astype(np.float32),
                    window=(0.0, window_seconds), task_type="regression",
                    extra_channels={"VIGILANCE": level})
    alpha_gain = np.exp(effect * VIGILANCE_LOG_GAIN * (level - 0.5))
    for region in ("occipital_left", "occipital_right"):
        plan.add(region, ALPHA_NAM * traits.rhythm_gain * alpha_gain *
                 _rhythm(rng, n, sfreq, traits.alpha_freq, 1.0))
    plan.add("frontal_mid", 200.0 * traits.rhythm_gain / alpha_gain *
             _rhythm(rng, n, sfreq, 5.5, 1.5))
    return plan


def resting(rng, n, sfreq, traits, effect=1.0) -> TaskPlan:
    """Unlabelled resting state: posterior alpha and sensorimotor mu/beta."""
    plan = TaskPlan(activity={})
    _posterior_alpha(plan, rng, n, sfreq, traits)
    for region in ("motor_left", "motor_right"):
        plan.add(region, traits.rhythm_gain * (MU_NAM * _rhythm(rng, n, sfreq, traits.mu_freq, 1.5)
                                               + BETA_NAM * _rhythm(rng, n, sfreq, 21.0, 3.0)))
    return plan


#: Task name -> generator ``(rng, n_samples, sfreq, traits, effect, **options) -> TaskPlan``.
TASKS = {
    "motor_imagery": motor_imagery,
    "erp": erp,
    "abnormal": abnormal,
    "sleep_like": sleep_like,
    "vigilance": vigilance,
    "resting": resting,
}


def list_tasks() -> list[str]:
    """Names of the simulated tasks."""
    return list(TASKS)


def get_task(name: str):
    """The generator for task ``name``; ``ValueError`` listing the tasks if unknown."""
    key = str(name).strip().lower()
    if key not in TASKS:
        raise ValueError(f"Unknown simulation task {name!r}; use one of {', '.join(TASKS)}.")
    return TASKS[key]
