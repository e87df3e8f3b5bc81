"""The sensors of a corpus's recordings, stored once: ``sensors.arrow``.

Every recording's sensors (canonical channel names, :class:`ChannelKind` codes, positions and
orientations) are one row of ``sensors.arrow`` (an Arrow IPC file), and the manifest's
``layout`` column (and ``index.arrow``) give each kept recording its row. Recordings with the same
sensors share a row: a TUEG corpus prepared with ``tueg19`` has one, whatever its number of
recordings.

============  =====================================  ========================================
column        Arrow type                             meaning
============  =====================================  ========================================
channels      list<string>                           ``[C]`` canonical channel names
kinds         list<int8>                             ``[C]`` :class:`ChannelKind` codes
positions     list<fixed_size_list<float32, 3>>      ``[C, 3]`` metres, MNE head frame
orientations  list<fixed_size_list<float32, 3>>      ``[C, 3]`` unit vectors (MEG), else zeros
============  =====================================  ========================================
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from neurofm.corpus.folder import temporary_path
from neurofm.sensors import SensorBatch

SCHEMA = pa.schema([
    ("channels", pa.list_(pa.string())),
    ("kinds", pa.list_(pa.int8())),
    ("positions", pa.list_(pa.list_(pa.float32(), 3))),
    ("orientations", pa.list_(pa.list_(pa.float32(), 3))),
])


@dataclass(frozen=True, eq=False)
class RecordingSensors:
    """The sensors of one recording as a corpus stores them.

    Attributes
    ----------
    channels : tuple of str, length C
        Canonical channel names.
    kinds : ndarray of int8, shape [C]
    positions, orientations : ndarray of float32, shape [C, 3]
    """

    channels: tuple
    kinds: np.ndarray
    positions: np.ndarray
    orientations: np.ndarray

    @classmethod
    def create(cls, channels, kinds, positions, orientations) -> RecordingSensors:
        """Typed copy of the four fields (any sequences / arrays)."""
        n = len(channels)
        return cls(tuple(str(c) for c in channels),
                   np.asarray(kinds, np.int8).reshape(n).copy(),
                   np.asarray(positions, np.float32).reshape(n, 3).copy(),
                   np.asarray(orientations, np.float32).reshape(n, 3).copy())

    def key(self) -> str:
        """Digest of the four fields: recordings with equal keys share a stored row."""
        digest = hashlib.sha256("\x1f".join(self.channels).encode("utf-8"))
        for array in (self.kinds, self.positions, self.orientations):
            digest.update(b"\x1e" + np.ascontiguousarray(array).tobytes())
        return digest.hexdigest()

    def to_json(self) -> dict:
        """JSON form (float32 values survive the round trip exactly)."""
        return {"channels": list(self.channels), "kinds": self.kinds.tolist(),
                "positions": self.positions.tolist(), "orientations": self.orientations.tolist()}

    @classmethod
    def from_json(cls, value: dict) -> RecordingSensors:
        return cls.create(value["channels"], value["kinds"], value["positions"],
                          value["orientations"])

    def sensor_batch(self) -> SensorBatch:
        """:class:`SensorBatch` of batch size 1 (new tensors), all channels real."""
        return SensorBatch.from_arrays(self.channels, self.kinds, self.positions,
                                       self.orientations)


class SensorTable:
    """Distinct :class:`RecordingSensors` in order of first :meth:`add`; rows are ``int``."""

    def __init__(self, rows=()):
        self.rows: list[RecordingSensors] = []
        self._row_of: dict[str, int] = {}
        for sensors in rows:
            self.add(sensors)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, row: int) -> RecordingSensors:
        return self.rows[row]

    def add(self, sensors: RecordingSensors) -> int:
        """Row of ``sensors``, appended if no equal row exists."""
        key = sensors.key()
        row = self._row_of.get(key)
        if row is None:
            row = self._row_of[key] = len(self.rows)
            self.rows.append(sensors)
        return row

    def renumbered(self, used) -> tuple[SensorTable, dict[int, int]]:
        """Table of the rows in ``used`` (an iterable of rows, first use first), and the map
        old row -> new row; rows never used are dropped."""
        table, mapping = SensorTable(), {}
        for row in used:
            if row >= 0 and row not in mapping:
                mapping[row] = table.add(self.rows[row])
        return table, mapping

    def write(self, path) -> None:
        """Write ``sensors.arrow`` atomically."""
        path = Path(path)
        columns = [
            pa.array([list(s.channels) for s in self.rows], SCHEMA.field("channels").type),
            pa.array([s.kinds for s in self.rows], SCHEMA.field("kinds").type),
            pa.array([s.positions.tolist() for s in self.rows], SCHEMA.field("positions").type),
            pa.array([s.orientations.tolist() for s in self.rows],
                     SCHEMA.field("orientations").type),
        ]
        tmp = temporary_path(path)
        with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_file(sink, SCHEMA) as writer:
            writer.write_table(pa.Table.from_arrays(columns, schema=SCHEMA))
        os.replace(tmp, path)

    @classmethod
    def read(cls, path) -> SensorTable:
        """Every row of ``sensors.arrow`` (equal rows stay separate rows)."""
        stored = StoredSensors(path)
        table = cls()
        for row in range(len(stored)):
            sensors = stored[row]
            table._row_of.setdefault(sensors.key(), len(table.rows))
            table.rows.append(sensors)
        return table


class StoredSensors:
    """``sensors.arrow`` memory-mapped; rows decoded on first use and kept.

    Raises
    ------
    FileNotFoundError
        The file is missing.
    ValueError
        The file is not a table of sensors.
    """

    def __init__(self, path):
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing: the corpus is incomplete. Copy it again, "
                                    "or prepare the corpus again (re-running finishes it).")
        try:
            self.table = pa.ipc.open_file(pa.memory_map(str(path))).read_all()
            self.table.select(SCHEMA.names)
        except (pa.ArrowException, KeyError) as err:
            raise ValueError(f"{path} cannot be read as the corpus's sensors ({err}); copy it "
                             "again or prepare the corpus again.") from None
        self._decoded: dict[int, RecordingSensors] = {}

    def __len__(self) -> int:
        return self.table.num_rows

    def __getitem__(self, row: int) -> RecordingSensors:
        sensors = self._decoded.get(row)
        if sensors is None:
            one = self.table.slice(row, 1)

            sensors = self._decoded[row] = RecordingSensors.create(
                *(list_values(one.column(name).combine_chunks()) for name in SCHEMA.names))
        return sensors


def list_values(array: pa.Array):
    """Values of a (nested) list array, flattened: a list of str for strings, else an ndarray."""
    while pa.types.is_list(array.type) or pa.types.is_fixed_size_list(array.type):
        array = array.flatten()
    if pa.types.is_string(array.type):
        return array.to_pylist()
    return array.to_numpy(zero_copy_only=False)
