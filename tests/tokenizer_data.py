"""Small synthetic sensor layouts and signals for the tokenizer tests (nothing downloaded).

EEG positions come from MNE's 10-05 montage (head frame), MEG positions and coil normals from MNE's
canonical Neuromag layout moved by a device-to-head transform, sEEG contacts lie on a line inside
the head. Signals are sums of a few oscillations at random per-channel frequencies plus noise.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from neurofm.sensors import ChannelKind, SensorBatch, kind_from_mne

SFREQ = 200.0


@lru_cache(maxsize=1)
def _standard_1005_positions() -> np.ndarray:
    from neurofm.sensors.montages import montage_positions_head

    return np.array(list(montage_positions_head("standard_1005").values()), dtype=np.float32)


@lru_cache(maxsize=1)
def _neuromag_sensors() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    import mne

    info = mne.channels.read_meg_canonical_info("neuromag")
    dev_head = np.eye(4)
    dev_head[:3, 3] = [0.0, 0.01, 0.04]  # head sits 4 cm below the helmet origin
    picks = mne.pick_types(info, meg=True)
    loc = np.array([info["chs"][i]["loc"] for i in picks])
    pos = loc[:, :3] @ dev_head[:3, :3].T + dev_head[:3, 3]
    ori = loc[:, 9:12] @ dev_head[:3, :3].T
    kinds = np.array([int(kind_from_mne(info["chs"][i])) for i in picks])
    return pos.astype(np.float32), ori.astype(np.float32), kinds


def _batch(pos, ori, kinds) -> SensorBatch:
    c = len(kinds)
    return SensorBatch(pos=torch.as_tensor(pos, dtype=torch.float32).reshape(1, c, 3),
                       ori=torch.as_tensor(ori, dtype=torch.float32).reshape(1, c, 3),
                       kind=torch.as_tensor(kinds, dtype=torch.long).reshape(1, c),
                       chan_mask=torch.ones(1, c, dtype=torch.bool))


def eeg_sensors(n_channels: int = 19, seed: int = 0) -> SensorBatch:
    """A random ``n_channels`` subset of the 10-05 electrodes (batch of one)."""
    table = _standard_1005_positions()
    idx = np.random.default_rng(seed).choice(len(table), n_channels, replace=False)
    return _batch(table[idx], np.zeros((n_channels, 3)), np.full(n_channels, ChannelKind.EEG))


def meg_sensors() -> SensorBatch:
    """The 306 Neuromag sensors (102 magnetometers, 204 gradiometers) in head coordinates."""
    pos, ori, kinds = _neuromag_sensors()
    return _batch(pos, ori, kinds)


def seeg_sensors(n_contacts: int = 12, seed: int = 0) -> SensorBatch:
    """One depth electrode: contacts 3.5 mm apart on a random line through the head."""
    rng = np.random.default_rng(seed)
    start = rng.uniform(-0.04, 0.04, 3)
    direction = rng.normal(size=3)
    direction /= np.linalg.norm(direction)
    pos = start + np.arange(n_contacts)[:, None] * 0.0035 * direction
    return _batch(pos, np.zeros((n_contacts, 3)), np.full(n_contacts, ChannelKind.SEEG))


def oscillation_windows(n_windows: int, n_channels: int, n_patches: int = 4,
                        patch_size: int = 64, seed: int = 0,
                        channel_freqs: np.ndarray | None = None) -> torch.Tensor:
    """Windows ``x [W, C, N, P]``: per channel, one main rhythm, up to two weaker ones, noise.

    ``channel_freqs [C, 3]`` fixes each channel's frequencies (Hz); by default they are drawn at
    random in 2-40 Hz. Amplitudes (main 0.5-1.5, others 0-0.3, each present half of the time)
    and phases are drawn per window, so windows differ.
    """
    rng = np.random.default_rng(seed)
    if channel_freqs is None:
        channel_freqs = rng.uniform(2.0, 40.0, size=(n_channels, 3))
    t = np.arange(n_patches * patch_size) / SFREQ
    amp = rng.uniform(0.0, 0.3, size=(n_windows, n_channels, 3))
    amp[..., 0] = rng.uniform(0.5, 1.5, size=(n_windows, n_channels))
    amp[..., 1:] *= rng.random((n_windows, n_channels, 2)) < 0.5
    phase = rng.uniform(0, 2 * np.pi, size=(n_windows, n_channels, 3))
    waves = amp[..., None] * np.sin(2 * np.pi * channel_freqs[None, :, :, None] * t
                                    + phase[..., None])
    x = waves.sum(axis=2) + 0.1 * rng.normal(size=(n_windows, n_channels, t.size))
    return torch.from_numpy(x.astype(np.float32)).reshape(n_windows, n_channels, n_patches,
                                                           patch_size)


def pad_channels(x: torch.Tensor, n_channels: int) -> torch.Tensor:
    """Zero-pad ``x [B, C, N, P]`` along channels to ``n_channels``."""
    out = x.new_zeros(x.shape[0], n_channels, *x.shape[2:])
    out[:, :x.shape[1]] = x
    return out
