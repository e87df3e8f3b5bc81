"""Reader for the ``.ts`` time-series format of the UEA/UCR archive (as used by aeon).

A ``.ts`` file is text: ``#`` comment lines, ``@`` header lines (``@problemName``,
``@timestamps``, ``@univariate``, ``@dimensions``, ``@equalLength``, ``@seriesLength``,
``@classLabel true a b`` or ``@targetLabel true``, ``@missing``), then ``@data`` and one case per
line: the dimensions (channels) separated by ``:``, each a comma-separated list of values
(``?`` for a missing value, read as NaN), and, when the file has labels, the label as the last
``:``-separated field. Timestamped series (``(t, v)`` pairs) are not supported.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass
class TsData:
    """Contents of one ``.ts`` file.

    Attributes
    ----------
    X : ndarray of float64, shape [n_cases, n_dims, series_length]
        Equal-length series (NaN where the file has ``?``). For unequal-length files, a list of
        ``[n_dims, length_i]`` arrays.
    labels : ndarray of str (class labels) or float64 (regression targets), shape [n_cases];
        empty when the file has no labels.
    class_labels : list of str
        Classes declared by ``@classLabel true ...`` (in declaration order), else empty.
    header : dict of str -> str
        The ``@`` header fields (lower-case keys, raw values).
    comments : str
        The ``#`` comment lines, without the ``#``.
    """

    X: np.ndarray | list
    labels: np.ndarray
    class_labels: list[str] = field(default_factory=list)
    header: dict = field(default_factory=dict)
    comments: str = ""


def read_ts(path) -> TsData:
    """Read a ``.ts`` file.

    Parameters
    ----------
    path : path-like

    Returns
    -------
    TsData

    Raises
    ------
    FileNotFoundError
        The file does not exist.
    ValueError
        The file breaks the format; the message names the file, the line and what is wrong.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No .ts file at {path}.")
    header, comments, cases, labels = {}, [], [], []
    in_data = False
    with open(path, encoding="utf-8", errors="replace") as fh:
        for lineno, raw_line in enumerate(fh, start=1):
            line = raw_line.strip()
            if not line:
                continue
            if not in_data and line.startswith("#"):
                comments.append(line[1:].strip())
                continue
            if not in_data and line.startswith("@"):
                key, _, value = line[1:].partition(" ")
                key = key.lower()
                if key == "data":
                    in_data = True
                    _check_header(header, path)
                else:
                    header[key] = value.strip()
                continue
            if not in_data:
                raise ValueError(f"{path}, line {lineno}: expected a '#' comment or an '@' header "
                                 f"before '@data', got {line[:40]!r}.")
            dims, label = _parse_case(line, header, path, lineno)
            cases.append(dims)
            if label is not None:
                labels.append(label)
    if not in_data:
        raise ValueError(f"{path}: no '@data' line; this is not a .ts file.")
    if not cases:
        raise ValueError(f"{path}: '@data' is followed by no cases.")
    n_dims = {len(c) for c in cases}
    if len(n_dims) > 1:
        raise ValueError(f"{path}: cases have different numbers of dimensions {sorted(n_dims)}.")
    lengths = {len(d) for c in cases for d in c}
    if len(lengths) == 1:
        X = np.asarray(cases, dtype=np.float64)
    else:
        X = [np.asarray(_pad_dims(c), dtype=np.float64) for c in cases]
    declared = int(header["dimensions"]) if header.get("dimensions", "").isdigit() else None
    if declared is not None and declared != n_dims.pop():
        raise ValueError(f"{path}: header says @dimensions {declared} but the cases have "
                         f"{len(cases[0])}.")
    class_labels = _class_labels(header)
    if class_labels:
        unknown = sorted(set(labels) - set(class_labels))
        if unknown:
            raise ValueError(f"{path}: labels {unknown} are not declared in @classLabel "
                             f"{class_labels}.")
        y = np.asarray(labels, dtype=str)
    elif _has_target(header):
        y = np.asarray(labels, dtype=np.float64)
    else:
        y = np.asarray([], dtype=str)
    return TsData(X=X, labels=y, class_labels=class_labels, header=header,
                  comments="\n".join(comments))


def _check_header(header: dict, path: Path) -> None:
    if header.get("timestamps", "false").lower() == "true":
        raise ValueError(f"{path}: timestamped .ts series (@timestamps true) are not supported; "
                         f"resample them to equal spacing first.")


def _class_labels(header: dict) -> list[str]:
    value = header.get("classlabel", "false").split()
    if value and value[0].lower() == "true":
        return value[1:]
    return []


def _has_target(header: dict) -> bool:
    value = header.get("targetlabel", "false").split()
    return bool(value) and value[0].lower() == "true"


def _parse_case(line: str, header: dict, path: Path, lineno: int):
    fields = line.split(":")
    label = None
    if _class_labels(header) or _has_target(header):
        if len(fields) < 2:
            raise ValueError(f"{path}, line {lineno}: expected values then ':<label>'.")
        label = fields.pop().strip()
        if _has_target(header):
            try:
                label = float(label)
            except ValueError:
                raise ValueError(f"{path}, line {lineno}: regression target {label!r} is not a "
                                 f"number.") from None
    dims = []
    for k, text in enumerate(fields):
        try:
            dims.append([np.nan if v.strip() == "?" else float(v) for v in text.split(",")])
        except ValueError:
            raise ValueError(f"{path}, line {lineno}, dimension {k}: values must be numbers or "
                             f"'?', got {text[:40]!r}.") from None
    return dims, label


def _pad_dims(dims: list[list[float]]) -> np.ndarray:
    """Dimensions of one case as ``[n_dims, max_len]``, NaN-padded at the end."""
    width = max(len(d) for d in dims)
    return np.array([d + [np.nan] * (width - len(d)) for d in dims])
