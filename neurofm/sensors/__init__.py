"""Sensors: channel kinds, name normalisation, 3-D positions and orientations.

Every channel a model sees carries a kind (:class:`ChannelKind`), a position in metres in MNE's
head frame and, for MEG, a unit orientation. :func:`resolve_sensors` finds them for an MNE
``Info`` (from the file, else from a standard montage after name normalisation; iEEG contacts
found nowhere are kept position-unknown, related by the shaft and index of their names,
:mod:`neurofm.sensors.shafts`); :class:`SensorBatch` carries them as tensors beside the signal.
"""

from neurofm.sensors.batch import SensorBatch
from neurofm.sensors.frames import mni_to_head
from neurofm.sensors.kinds import BRAIN_KINDS, N_BRAIN_KINDS, ChannelKind, kind_from_mne
from neurofm.sensors.layout import SensorLayout
from neurofm.sensors.montages import (
    DEFAULT_EEG_MONTAGE,
    available_montages,
    get_montage,
    montage_name,
    montage_positions_head,
)
from neurofm.sensors.names import NormalisedName, normalise_channel_name
from neurofm.sensors.positions import (
    DuplicateChannelError,
    UnknownChannelError,
    resolve_sensors,
)
from neurofm.sensors.shafts import Contact, parse_contact, shaft_code

__all__ = [
    "BRAIN_KINDS",
    "DEFAULT_EEG_MONTAGE",
    "N_BRAIN_KINDS",
    "ChannelKind",
    "Contact",
    "DuplicateChannelError",
    "NormalisedName",
    "SensorBatch",
    "SensorLayout",
    "UnknownChannelError",
    "available_montages",
    "get_montage",
    "kind_from_mne",
    "mni_to_head",
    "montage_name",
    "montage_positions_head",
    "normalise_channel_name",
    "parse_contact",
    "resolve_sensors",
    "shaft_code",
]
