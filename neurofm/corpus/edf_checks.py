"""Header checks for EDF/BDF files that MNE reads without complaint but decodes into garbage.

MNE only warns when a signal's physical (or digital) minimum equals its maximum, and then
returns a constant; a corpus must skip such a file instead. Truncated files are caught by
:func:`neurofm.data.io.check_edf_size` when the file is read.
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
