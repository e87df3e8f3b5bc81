"""Channel kinds and their fixed integer codes.

The codes of the brain kinds are part of the checkpoint format (a learned embedding is indexed by
them), so they never change: ``eeg=0, meg_mag=1, meg_grad=2, seeg=3, ecog=4``. Non-brain kinds
follow and are dropped by default.
"""

from __future__ import annotations

from enum import IntEnum


class ChannelKind(IntEnum):
    """Kind of a channel. Integer values are fixed (checkpoints depend on them)."""

    EEG = 0
    MEG_MAG = 1
    MEG_GRAD = 2
    SEEG = 3
    ECOG = 4
    EOG = 5
    ECG = 6
    EMG = 7
    STIM = 8
    MISC = 9

    @property
    def label(self) -> str:
        """Lower-case name as used in configs and tables (``"meg_mag"``)."""
        return self.name.lower()

    @property
    def is_brain(self) -> bool:
        return self in BRAIN_KINDS

    @property
    def is_meg(self) -> bool:
        return self in (ChannelKind.MEG_MAG, ChannelKind.MEG_GRAD)

    @classmethod
    def from_label(cls, label: str) -> ChannelKind:
        try:
            return cls[label.strip().upper()]
        except KeyError:
            valid = ", ".join(k.label for k in cls)
            raise ValueError(f"Unknown channel kind {label!r}; expected one of: {valid}.") from None


BRAIN_KINDS = frozenset(
    {ChannelKind.EEG, ChannelKind.MEG_MAG, ChannelKind.MEG_GRAD, ChannelKind.SEEG, ChannelKind.ECOG}
)
#: Number of brain kinds; size of the kind embedding in sensor encoders.
N_BRAIN_KINDS = len(BRAIN_KINDS)

_MNE_TYPE_TO_KIND = {
    "eeg": ChannelKind.EEG,
    "seeg": ChannelKind.SEEG,
    "ecog": ChannelKind.ECOG,
    "dbs": ChannelKind.SEEG,
    "eog": ChannelKind.EOG,
    "ecg": ChannelKind.ECG,
    "emg": ChannelKind.EMG,
    "stim": ChannelKind.STIM,
}


def kind_from_mne(ch: dict) -> ChannelKind:
    """Kind of one ``info["chs"][i]`` entry (MEG split by coil unit into mag/grad)."""
    ch_type = _channel_type(ch)
    if ch_type == "mag":
        return ChannelKind.MEG_MAG
    if ch_type == "grad":
        return ChannelKind.MEG_GRAD
    return _MNE_TYPE_TO_KIND.get(ch_type, ChannelKind.MISC)


def _channel_type(ch: dict) -> str:
    from mne.io.constants import FIFF

    kind = ch["kind"]
    if kind == FIFF.FIFFV_MEG_CH:
        return "grad" if ch["unit"] == FIFF.FIFF_UNIT_T_M else "mag"
    table = {
        FIFF.FIFFV_EEG_CH: "eeg",
        FIFF.FIFFV_SEEG_CH: "seeg",
        FIFF.FIFFV_ECOG_CH: "ecog",
        FIFF.FIFFV_DBS_CH: "dbs",
        FIFF.FIFFV_EOG_CH: "eog",
        FIFF.FIFFV_ECG_CH: "ecg",
        FIFF.FIFFV_EMG_CH: "emg",
        FIFF.FIFFV_STIM_CH: "stim",
    }
    return table.get(kind, "misc")
