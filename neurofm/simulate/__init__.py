"""Physically simulated EEG, MEG and intracranial recordings with known ground truth.

Sources on a volume grid inside a spherical head (1/f background on every dipole, rhythms and
task effects on named regions) are projected to the sensors with MNE's forward model
(:mod:`neurofm.simulate.head`); sensor noise and artefacts follow. See ``docs/simulate.md``.
"""

from neurofm.simulate.artefacts import ARTEFACTS
from neurofm.simulate.head import HeadModel, head_model
from neurofm.simulate.recording import SimulatedRecording, simulate_recording
from neurofm.simulate.sensor_sets import SensorSet, make_sensor_set
from neurofm.simulate.tasks import list_tasks
from neurofm.simulate.tueg import simulate_tueg_tree
from neurofm.simulate.writers import FORMATS, write_recording

__all__ = [
    "ARTEFACTS",
    "FORMATS",
    "HeadModel",
    "SensorSet",
    "SimulatedRecording",
    "head_model",
    "list_tasks",
    "make_sensor_set",
    "simulate_recording",
    "simulate_tueg_tree",
    "write_recording",
]
