"""Sensor encoding: one vector per channel from where it is, how it points and what it is.

The vector is computed from the sensor's physical description only -- never from its name or its
index -- so a montage or device the model has never seen is encoded out of the box, and channel
order carries no meaning:

* **position**: ``xyz / head_radius`` (head frame, metres) expanded into Fourier features, either
  sin/cos at octave frequencies (``"sincos"``) or random Fourier features with a fixed, seeded
  frequency matrix (``"random"``); optional Gaussian jitter of the positions in training;
* **orientation**: the unit normal of MEG coils (zeros for EEG and iEEG);
* **kind**: a learned embedding of ``eeg, meg_mag, meg_grad, seeg, ecog``.

Features go through a small MLP; the kind embedding is added. Padding channels
(``chan_mask=False``) come out as exact zeros.

**Contacts without coordinates** (``sensors.pos_unknown``; docs/sensors.md) get, instead of the
MLP of their position, a learned "position unknown" vector plus a linear map of features of
their name: the shaft code's low :data:`~neurofm.sensors.shafts.SHAFT_CODE_BITS` bits as ±1 and
the contact index along the shaft as ``index / 16`` and sin/cos at periods 4, 8, 16 and 32
contacts (all zero where the name gives no shaft). The kind embedding is added as for every
channel. Both new parameters start at zero, and weights written before they existed (neurofm
0.1.0 folders, format 1, and 0.2.0 development folders, format 2) load with them at zero: such a
model encodes a contact without coordinates by its kind alone, and every channel with a
position exactly as before.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from neurofm.sensors import N_BRAIN_KINDS, SensorBatch
from neurofm.sensors.shafts import SHAFT_CODE_BITS

POSITION_FEATURES = ("sincos", "random")
#: Periods (in contacts) of the sin/cos features of a contact's index along its shaft.
CONTACT_PERIODS = (4.0, 8.0, 16.0, 32.0)
#: Contacts per unit of the linear index feature.
CONTACT_SCALE = 16.0
#: Width of the name features of a position-unknown contact.
N_CONTACT_FEATURES = SHAFT_CODE_BITS + 1 + 2 * len(CONTACT_PERIODS)
#: Parameters added after format 2; weights without them load with these at zero.
POSITION_UNKNOWN_PARAMETERS = ("unknown_position", "contact_projection")


class SensorEncoding(nn.Module):
    """Encode sensors ``SensorBatch -> [B, C, D]``.

    Parameters
    ----------
    dim : int
        Output width ``D`` (the token width).
    n_freqs : int
        ``"sincos"``: number of octave frequencies per axis (``2**k * pi``, k = 0..n_freqs-1).
        ``"random"``: number of random frequency vectors.
    head_radius : float
        Metres; positions are divided by it so that the scalp lies near the unit sphere.
    pos_jitter : float
        Standard deviation in metres of Gaussian noise added to real channels' positions in
        training mode (a montage augmentation); 0 disables it.
    features : {"sincos", "random"}
        Position feature type.
    random_scale : float
        Standard deviation of the random frequency matrix (``"random"`` only).
    seed : int
        Seed of the random frequency matrix, so that it is identical in every process.
    hidden : int or None
        MLP hidden width (default ``dim``).
    """

    def __init__(self, dim: int, n_freqs: int = 8, head_radius: float = 0.095,
                 pos_jitter: float = 0.0, *, features: str = "sincos",
                 random_scale: float = 2.0, seed: int = 0, hidden: int | None = None):
        super().__init__()
        if features not in POSITION_FEATURES:
            raise ValueError(f"SensorEncoding features must be one of {POSITION_FEATURES}; "
                             f"got {features!r}.")
        if head_radius <= 0:
            raise ValueError(f"head_radius must be positive (metres); got {head_radius}.")
        self.dim = int(dim)
        self.head_radius = float(head_radius)
        self.pos_jitter = float(pos_jitter)
        self.features = features
        if features == "sincos":
            freqs = math.pi * 2.0 ** torch.arange(n_freqs, dtype=torch.float32)
            self.register_buffer("frequencies", freqs, persistent=True)
            n_pos = 3 + 2 * 3 * n_freqs
        else:
            gen = torch.Generator().manual_seed(seed)
            matrix = torch.randn(3, n_freqs, generator=gen) * random_scale
            self.register_buffer("frequencies", matrix, persistent=True)
            n_pos = 3 + 2 * n_freqs
        hidden = hidden or dim
        self.mlp = nn.Sequential(nn.Linear(n_pos + 3, hidden), nn.GELU(), nn.Linear(hidden, dim))
        self.kind_embedding = nn.Embedding(N_BRAIN_KINDS, dim)
        # Zero-initialised tensors (no random draws: the initialisation of every other parameter
        # stays what it was before these existed).
        self.unknown_position = nn.Parameter(torch.zeros(dim))
        self.contact_projection = nn.Parameter(torch.zeros(dim, N_CONTACT_FEATURES))
        self.register_load_state_dict_pre_hook(_zero_missing_position_unknown)

    def position_features(self, pos: torch.Tensor) -> torch.Tensor:
        """Fourier features of positions ``[..., 3]`` (metres) -> ``[..., F]``."""
        p = pos / self.head_radius
        if self.features == "sincos":
            angles = (p.unsqueeze(-1) * self.frequencies).flatten(-2)  # [..., 3 * n_freqs]
        else:
            angles = 2 * math.pi * p @ self.frequencies  # [..., n_freqs]
        return torch.cat([p, torch.sin(angles), torch.cos(angles)], dim=-1)

    def contact_features(self, shaft: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """Name features of contacts: shaft codes ``[...]`` int64 and indices ``[...]`` ->
        ``[..., N_CONTACT_FEATURES]`` (zeros where the name gives no shaft)."""
        bits = torch.arange(SHAFT_CODE_BITS, device=shaft.device)
        code = ((shaft.unsqueeze(-1) >> bits) & 1).to(index.dtype) * 2 - 1
        periods = torch.tensor(CONTACT_PERIODS, dtype=index.dtype, device=index.device)
        angles = 2 * math.pi * index.unsqueeze(-1) / periods
        feats = torch.cat([code, (index / CONTACT_SCALE).unsqueeze(-1), torch.sin(angles),
                           torch.cos(angles)], dim=-1)
        return feats * (shaft != 0).unsqueeze(-1).to(feats.dtype)

    def forward(self, sensors: SensorBatch) -> torch.Tensor:
        """Encode every channel.

        Parameters
        ----------
        sensors : SensorBatch
            ``pos [B, C, 3]``, ``ori [B, C, 3]``, ``kind [B, C]``, ``chan_mask [B, C]``;
            ``pos_unknown``, ``shaft`` and ``contact_index [B, C]`` for contacts without
            coordinates.

        Returns
        -------
        Tensor ``[B, C, D]``, zeros on padding channels.
        """
        mask = sensors.chan_mask
        kind = sensors.kind
        bad = mask & ((kind < 0) | (kind >= N_BRAIN_KINDS))
        if bool(bad.any()):
            found = sorted({int(k) for k in kind[bad].tolist()})
            raise ValueError(f"SensorEncoding got channel kind codes {found}; only brain kinds "
                             f"0..{N_BRAIN_KINDS - 1} (eeg, meg_mag, meg_grad, seeg, ecog) can be "
                             "encoded. Drop non-brain channels (EOG/ECG/EMG/stim/misc) first.")
        pos = sensors.pos
        if self.training and self.pos_jitter > 0:
            pos = pos + torch.randn_like(pos) * self.pos_jitter
        feats = torch.cat([self.position_features(pos), sensors.ori.to(pos.dtype)], dim=-1)
        kind = torch.where(mask, kind, torch.zeros_like(kind))
        where = self.mlp(feats)
        # computed for every channel (no device sync to ask whether any is unplaced); the
        # selection keeps channels with a position bit for bit what they were
        named = self.contact_features(sensors.shaft, sensors.contact_index.to(where.dtype))
        unplaced = self.unknown_position + named @ self.contact_projection.T
        where = torch.where((sensors.pos_unknown & mask).unsqueeze(-1), unplaced, where)
        out = where + self.kind_embedding(kind)
        return out * mask.unsqueeze(-1).to(out.dtype)


def _zero_missing_position_unknown(module, state_dict, prefix, local_metadata, strict,
                                   missing_keys, unexpected_keys, error_msgs) -> None:
    """Weights written before the position-unknown parameters existed (format 1 and 2 folders,
    training checkpoints of those versions) load with them at zero, their initial value."""
    if prefix + "kind_embedding.weight" not in state_dict:
        return  # not this module's weights at all: let the strict load report it
    for name in POSITION_UNKNOWN_PARAMETERS:
        if prefix + name not in state_dict:
            state_dict[prefix + name] = torch.zeros_like(getattr(module, name))
