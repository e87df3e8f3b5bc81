"""Header checks for EDF/BDF files that MNE reads without complaint but decodes into garbage.

MNE only warns when a signal's physical (or digital) minimum equals its maximum, and then
returns a constant; a corpus must skip such a file instead. Truncated files are caught by
:func:`neurofm.data.io.check_edf_size` when the file is read; a file holding more records than
its header says is read whole, and :func:`surplus_data_note` says so in the manifest.
"""

from __future__ import annotations

from pathlib import Path

ANNOTATION_LABELS = ("EDF Annotations", "BDF Annotations")


def bad_range_channels(path) -> list[str]:
    """Signals of an EDF/BDF whose physical or digital range is empty or unreadable.

    Parameters
    ----------
    path : path-like
        An ``.edf`` or ``.bdf`` file (any case).

    Returns
    -------
    names : list of str
        Labels of the bad signals (annotation channels are not judged); empty when all are
        fine or the header is too short to judge (reading the file reports that).
    """
    with open(Path(path), "rb") as f:
        head = f.read(256)
        try:
            n_signals = int(head[252:256].decode("ascii").strip())
        except ValueError:
            return []
        fields = f.read(256 * n_signals)
    if n_signals <= 0 or len(fields) < 256 * n_signals:
        return []

    def column(offset: int, width: int) -> list[str]:
        start = offset * n_signals
        return [fields[start + i * width:start + (i + 1) * width].decode("latin-1").strip()
                for i in range(n_signals)]

    labels = column(0, 16)
    phys_min, phys_max = column(104, 8), column(112, 8)
    dig_min, dig_max = column(120, 8), column(128, 8)
    bad = []
    for i, label in enumerate(labels):
        if label in ANNOTATION_LABELS:
            continue
        try:
            empty = (float(phys_min[i]) == float(phys_max[i])
                     or int(dig_min[i]) >= int(dig_max[i]))
        except ValueError:
            empty = True
        if empty:
            bad.append(label)
    return bad


def surplus_data_note(path) -> str | None:
    """A note for the manifest when an EDF/BDF file holds more data than its header promises.

    The header's record count is then wrong (a recorder that did not close the file, a tool
    that appended data); the reader infers the length from the file size and reads every whole
    record, with only a warning. The manifest's ``report`` keeps the fact.

    Parameters
    ----------
    path : path-like
        An ``.edf`` or ``.bdf`` file (any case).

    Returns
    -------
    str or None
        None when the file size matches the header (or the header cannot be judged: reading
        the file reports that).
    """
    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(256)
        try:
            header_bytes = int(head[184:192].decode("ascii").strip())
            n_records = int(head[236:244].decode("ascii").strip())
            record_seconds = float(head[244:252].decode("ascii").strip())
            n_signals = int(head[252:256].decode("ascii").strip())
            f.seek(256 + 216 * max(n_signals, 0))
            samples = [int(f.read(8).decode("ascii").strip() or 0) for _ in range(n_signals)]
        except ValueError:
            return None
    record_bytes = sum(samples) * (3 if head[:1] == b"\xff" else 2)
    if n_records < 0 or record_bytes <= 0:
        return None
    held = (size - header_bytes) // record_bytes
    if held <= n_records:
        return None
    return (f"the header promises {n_records} data records ({n_records * record_seconds:g} s) "
            f"but the file holds {held} ({held * record_seconds:g} s): all {held} were read; "
            "check that the data after the promised records belong to the recording, and fix "
            "the header's record count")
