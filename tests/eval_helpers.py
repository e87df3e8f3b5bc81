"""Small synthetic trial sets and a tiny frozen encoder for the evaluation tests."""

from __future__ import annotations

import numpy as np
import torch

from neurofm.datasets.trials import TrialSet
from neurofm.sensors import SensorLayout
from neurofm.sensors.montages import montage_positions_head

CHANNELS = ["C3", "Cz", "C4", "Fz", "Pz", "O1", "O2", "F3"]


def eeg_layout(names=CHANNELS) -> SensorLayout:
    pos = montage_positions_head("standard_1020", names)
    return SensorLayout(names=list(names), kinds=np.zeros(len(names)),
                        pos=np.stack([pos[n] for n in names]), ori=np.zeros((len(names), 3)),
                        pos_source=["montage:standard_1020"] * len(names))


def alpha_trials(n_subjects=4, per_class=10, sfreq=100.0, seconds=1.0, effect=3.0, seed=0,
                 split=False) -> TrialSet:
    """Two classes that differ by 10-Hz power on C3 (class 1) vs C4 (class 0), ~10 µV noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(sfreq * seconds)) / sfreq
    X, y, subj = [], [], []
    for s in range(n_subjects):
        for label in (0, 1):
            for _ in range(per_class):
                trial = rng.standard_normal((len(CHANNELS), t.size)) * 1e-5
                phase = rng.uniform(0, 2 * np.pi)
                channel = 0 if label == 1 else 2
                trial[channel] += effect * 1e-5 * np.sin(2 * np.pi * 10 * t + phase)
                X.append(trial)
                y.append(label)
                subj.append(f"S{s:02d}")
    y = np.array(y)
    split_arr = None
    if split:
        split_arr = np.where(np.arange(y.size) % 4 == 0, "test", "train")
    return TrialSet(name="synthetic-alpha", X=np.array(X), y=y, subject=np.array(subj),
                    sfreq=sfreq, sensors=eeg_layout(), class_names=["right", "left"],
                    split=split_arr)


class TinyEncoder(torch.nn.Module):
    """Implements ``embed``: log power of a fixed random projection, with BatchNorm + dropout
    so a non-frozen forward would visibly change buffers."""

    def __init__(self, patch=200, dim=16):
        super().__init__()
        self.proj = torch.nn.Linear(patch, dim)
        self.norm = torch.nn.BatchNorm1d(dim)
        self.drop = torch.nn.Dropout(0.5)

    def embed(self, x, sensors, patch_valid=None):
        h = self.proj(x).pow(2).mean(dim=2)  # [B, C, D]
        w = sensors.chan_mask[:, :, None].float()
        h = (h * w).sum(1) / w.sum(1)
        return self.drop(self.norm(torch.log1p(h)))
