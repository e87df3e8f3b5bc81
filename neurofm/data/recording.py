"""``Recording``: one preprocessed continuous recording, ready to be cut into windows."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from neurofm.sensors import SensorLayout


@dataclass
class Recording:
    """A preprocessed recording in model units.

    Attributes
    ----------
    data : ndarray of float32, shape [C, T]
        Signals at ``sfreq`` in model units (1.0 = 100 µV for EEG/iEEG; see
        :data:`neurofm.data.preprocess.DEFAULT_SCALES` for MEG). Row ``c`` is channel
        ``sensors.names[c]``.
    sfreq : float
        Sampling rate in Hz.
    sensors : SensorLayout
        Names, kinds, positions and orientations of the C channels.
    source : str
        The file the data came from (or ``sample:NAME``).
    subject, session : str or None
        From the BIDS entities of the file name when there are any.
    report : list of str
        What preprocessing did and found (channels dropped and why, flat channels, unit fixes).
    bad_samples : ndarray of bool, shape [T], or None
        True where the output is affected by NaN/Inf input samples (only with
        ``on_nan="drop_window"``); windows that touch them are dropped.
    """

    data: np.ndarray
    sfreq: float
    sensors: SensorLayout
    source: str
    subject: str | None = None
    session: str | None = None
    report: list[str] = field(default_factory=list)
    bad_samples: np.ndarray | None = None

    def __post_init__(self):
        if self.data.ndim != 2 or self.data.shape[0] != len(self.sensors):
            raise ValueError(f"Recording data has shape {self.data.shape}; expected "
                             f"[{len(self.sensors)} channels, T samples].")

    @property
    def n_channels(self) -> int:
        return self.data.shape[0]

    @property
    def n_times(self) -> int:
        return self.data.shape[1]

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return self.n_times / self.sfreq
