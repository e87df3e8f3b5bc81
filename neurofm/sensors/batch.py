"""``SensorBatch``: sensor metadata as tensors, travelling beside a model batch.

Shapes (DESIGN.md "Signals"): ``pos [B, C, 3]`` (metres, head frame), ``ori [B, C, 3]`` (unit
vectors for MEG, zeros otherwise), ``kind [B, C]`` (int64 :class:`ChannelKind` codes) and
``chan_mask [B, C]`` (True = real channel, False = padding), so one batch can mix montages.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields

import numpy as np
import torch

from neurofm.sensors.layout import SensorLayout
from neurofm.sensors.positions import resolve_sensors


@dataclass
class SensorBatch:
    pos: torch.Tensor  # [B, C, 3] float32
    ori: torch.Tensor  # [B, C, 3] float32
    kind: torch.Tensor  # [B, C] int64
    chan_mask: torch.Tensor  # [B, C] bool

    def __post_init__(self):
        b, c = self.kind.shape
        for name, shape in (("pos", (b, c, 3)), ("ori", (b, c, 3)), ("chan_mask", (b, c))):
            got = tuple(getattr(self, name).shape)
            if got != shape:
                raise ValueError(f"SensorBatch.{name} has shape {got}; expected {shape} "
                                 f"to match kind {tuple(self.kind.shape)}.")

    @property
    def batch_size(self) -> int:
        return self.kind.shape[0]

    @property
    def n_channels(self) -> int:
        return self.kind.shape[1]

    def to(self, device=None, dtype=None) -> SensorBatch:
        """Move to ``device``; ``dtype`` applies to the float fields only."""
        return SensorBatch(
            pos=self.pos.to(device=device, dtype=dtype or self.pos.dtype),
            ori=self.ori.to(device=device, dtype=dtype or self.ori.dtype),
            kind=self.kind.to(device=device),
            chan_mask=self.chan_mask.to(device=device),
        )

    def __getitem__(self, index) -> SensorBatch:
        """Select batch items (keeps the batch dimension for ints)."""
        if isinstance(index, (int, np.integer)):
            i, b = int(index), self.batch_size
            if not -b <= i < b:
                raise IndexError(f"batch index {i} is out of range for a batch of {b}.")
            index = slice(i % b, i % b + 1)
        return SensorBatch(**{f.name: getattr(self, f.name)[index] for f in fields(self)})

    def permute_channels(self, perm) -> SensorBatch:
        """Reorder channels along dim 1 with the index ``perm [C]``."""
        perm = torch.as_tensor(perm, dtype=torch.long)
        return SensorBatch(**{f.name: getattr(self, f.name)[:, perm] for f in fields(self)})

    @classmethod
    def from_layout(cls, layout: SensorLayout) -> SensorBatch:
        """Batch of one from a :class:`SensorLayout`."""
        c = len(layout)
        return cls(
            pos=torch.from_numpy(np.ascontiguousarray(layout.pos, np.float32)).reshape(1, c, 3),
            ori=torch.from_numpy(np.ascontiguousarray(layout.ori, np.float32)).reshape(1, c, 3),
            kind=torch.from_numpy(np.ascontiguousarray(layout.kinds, np.int64)).reshape(1, c),
            chan_mask=torch.ones(1, c, dtype=torch.bool),
        )

    @classmethod
    def from_info(cls, info, **kwargs) -> SensorBatch:
        """Batch of one from an MNE ``Info``; ``kwargs`` go to :func:`resolve_sensors`."""
        return cls.from_layout(resolve_sensors(info, **kwargs))

    @classmethod
    def collate(cls, items: Sequence[SensorBatch]) -> SensorBatch:
        """Concatenate batches along B, padding channels to the largest C.

        Padding channels have zero position/orientation, kind 0 and ``chan_mask=False``.
        """
        if not items:
            raise ValueError("SensorBatch.collate needs at least one item.")
        c_max = max(it.n_channels for it in items)
        b_total = sum(it.batch_size for it in items)
        ref = items[0]
        pos = ref.pos.new_zeros(b_total, c_max, 3)
        ori = ref.ori.new_zeros(b_total, c_max, 3)
        kind = ref.kind.new_zeros(b_total, c_max)
        mask = torch.zeros(b_total, c_max, dtype=torch.bool, device=ref.chan_mask.device)
        row = 0
        for it in items:
            b, c = it.batch_size, it.n_channels
            pos[row:row + b, :c] = it.pos
            ori[row:row + b, :c] = it.ori
            kind[row:row + b, :c] = it.kind
            mask[row:row + b, :c] = it.chan_mask
            row += b
        return cls(pos=pos, ori=ori, kind=kind, chan_mask=mask)
