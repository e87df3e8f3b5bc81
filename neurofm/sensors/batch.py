"""``SensorBatch``: sensor metadata as tensors, travelling beside a model batch.

Shapes (DESIGN.md "Signals"): ``pos [B, C, 3]`` (metres, head frame), ``ori [B, C, 3]`` (unit
vectors for MEG, zeros otherwise), ``kind [B, C]`` (int64 :class:`ChannelKind` codes) and
``chan_mask [B, C]`` (True = real channel, False = padding), so one batch can mix montages.

iEEG contacts without coordinates (docs/sensors.md, "Contacts without coordinates") are flagged
by ``pos_unknown [B, C]`` (their ``pos`` is zero) and described by their shaft and index read
from their names: ``shaft [B, C]`` (int64 :func:`~neurofm.sensors.shafts.shaft_code`, 0: none)
and ``contact_index [B, C]`` (float32, -1: none). The three fields have defaults (no contact
without a position), so batches built from positions alone need not name them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields

import numpy as np
import torch

from neurofm.sensors.layout import SensorLayout
from neurofm.sensors.positions import resolve_sensors
from neurofm.sensors.shafts import NO_CONTACT_INDEX, contact_arrays


@dataclass
class SensorBatch:
    """Sensor tensors of a batch (see the module docstring).

    A NaN row of a CPU ``pos`` given to the constructor marks that channel position-unknown: its
    ``pos`` becomes zero and ``pos_unknown`` True (numpy layouts and corpora store unknown
    positions as NaN; a batch's tensors hold none). Tensors already on an accelerator are not
    scanned (that would wait for the device on every batch).
    """

    pos: torch.Tensor  # [B, C, 3] float32
    ori: torch.Tensor  # [B, C, 3] float32
    kind: torch.Tensor  # [B, C] int64
    chan_mask: torch.Tensor  # [B, C] bool
    pos_unknown: torch.Tensor | None = None  # [B, C] bool, default all False
    shaft: torch.Tensor | None = None  # [B, C] int64, default 0 (no shaft)
    contact_index: torch.Tensor | None = None  # [B, C] float32, default -1 (no index)

    def __post_init__(self):
        b, c = self.kind.shape
        device = self.kind.device
        if self.pos_unknown is None:
            self.pos_unknown = torch.zeros(b, c, dtype=torch.bool, device=device)
        if self.shaft is None:
            self.shaft = torch.zeros(b, c, dtype=torch.int64, device=device)
        if self.contact_index is None:
            self.contact_index = torch.full((b, c), NO_CONTACT_INDEX, dtype=torch.float32,
                                            device=device)
        for name, shape in (("pos", (b, c, 3)), ("ori", (b, c, 3)), ("chan_mask", (b, c)),
                            ("pos_unknown", (b, c)), ("shaft", (b, c)),
                            ("contact_index", (b, c))):
            got = tuple(getattr(self, name).shape)
            if got != shape:
                raise ValueError(f"SensorBatch.{name} has shape {got}; expected {shape} "
                                 f"to match kind {tuple(self.kind.shape)}.")
        if self.pos.device.type == "cpu":
            missing = torch.isnan(self.pos).any(-1)
            if bool(missing.any()):
                self.pos_unknown = self.pos_unknown | missing
                self.pos = torch.nan_to_num(self.pos, nan=0.0)

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
            pos_unknown=self.pos_unknown.to(device=device),
            shaft=self.shaft.to(device=device),
            contact_index=self.contact_index.to(device=device, dtype=dtype
                                                or self.contact_index.dtype),
        )

    def expand(self, b: int) -> SensorBatch:
        """A batch of one repeated ``b`` times (views, no copies)."""
        if self.batch_size != 1:
            raise ValueError(f"SensorBatch.expand repeats a batch of one; this batch has "
                             f"{self.batch_size} items.")
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        return SensorBatch(**{name: t.expand(b, *t.shape[1:]) for name, t in values.items()})

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
        """Batch of one from a :class:`SensorLayout` (NaN positions: position-unknown contacts,
        described by the shaft and index of their names)."""
        return cls.from_arrays(layout.names, layout.kinds, layout.pos, layout.ori)

    @classmethod
    def from_arrays(cls, names, kinds, pos, ori) -> SensorBatch:
        """Batch of one from channel names ``[C]``, kind codes ``[C]``, positions ``[C, 3]``
        (NaN rows: position unknown) and orientations ``[C, 3]``.

        Shaft codes and contact indices are read from the names of the position-unknown
        channels only (:func:`~neurofm.sensors.shafts.parse_contact`); a channel with a
        position needs none.
        """
        c = len(names)
        pos = np.asarray(pos, np.float32).reshape(c, 3)
        unknown = np.isnan(pos).any(axis=1)
        shaft = np.zeros(c, np.int64)
        index = np.full(c, NO_CONTACT_INDEX, np.float32)
        if unknown.any():
            codes, numbers = contact_arrays([n for n, u in zip(names, unknown) if u])
            shaft[unknown], index[unknown] = codes, numbers
        return cls(
            pos=torch.from_numpy(np.nan_to_num(pos, nan=0.0)).reshape(1, c, 3),
            ori=torch.from_numpy(np.ascontiguousarray(ori, np.float32)).reshape(1, c, 3),
            kind=torch.from_numpy(np.ascontiguousarray(kinds, np.int64)).reshape(1, c),
            chan_mask=torch.ones(1, c, dtype=torch.bool),
            pos_unknown=torch.from_numpy(unknown).reshape(1, c),
            shaft=torch.from_numpy(shaft).reshape(1, c),
            contact_index=torch.from_numpy(index).reshape(1, c),
        )

    @classmethod
    def from_info(cls, info, **kwargs) -> SensorBatch:
        """Batch of one from an MNE ``Info``; ``kwargs`` go to :func:`resolve_sensors`."""
        return cls.from_layout(resolve_sensors(info, **kwargs))

    @classmethod
    def collate(cls, items: Sequence[SensorBatch]) -> SensorBatch:
        """Concatenate batches along B, padding channels to the largest C.

        Padding channels have zero position/orientation, kind 0, ``chan_mask=False``,
        ``pos_unknown=False``, shaft 0 and contact index -1.
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
        unknown = torch.zeros_like(mask)
        shaft = ref.shaft.new_zeros(b_total, c_max)
        index = ref.contact_index.new_full((b_total, c_max), NO_CONTACT_INDEX)
        row = 0
        for it in items:
            b, c = it.batch_size, it.n_channels
            pos[row:row + b, :c] = it.pos
            ori[row:row + b, :c] = it.ori
            kind[row:row + b, :c] = it.kind
            mask[row:row + b, :c] = it.chan_mask
            unknown[row:row + b, :c] = it.pos_unknown
            shaft[row:row + b, :c] = it.shaft
            index[row:row + b, :c] = it.contact_index
            row += b
        return cls(pos=pos, ori=ori, kind=kind, chan_mask=mask, pos_unknown=unknown,
                   shaft=shaft, contact_index=index)
