"""Sensors: channel kinds, name normalisation, 3-D positions and orientations.

Every channel a model sees carries a kind (:class:`ChannelKind`), a position in metres in MNE's
head frame and, for MEG, a unit orientation. :func:`resolve_sensors` finds them for an MNE
``Info`` (from the file, else from a standard montage after name normalisation);
:class:`SensorBatch` carries them as tensors beside the signal.
"""

from neurofm.sensors.batch import SensorBatch
from neurofm.sensors.kinds import BRAIN_KINDS, N_BRAIN_KINDS, ChannelKind, kind_from_mne
from neurofm.sensors.layout import SensorLayout

__all__ = [
    "BRAIN_KINDS",
    "N_BRAIN_KINDS",
    "ChannelKind",
    "SensorBatch",
    "SensorLayout",
    "kind_from_mne",
]
