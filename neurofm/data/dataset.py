"""A PyTorch ``Dataset`` over windows, and a collate that lets one batch mix montages.

Items are dicts::

    {"x": float32 [C, N, P], "sensors": SensorBatch (B=1), "patch_valid": bool [N],
     "y": int64 [] (only when the windows have labels)}

:func:`collate_windows` pads channels with zero rows up to the largest C in the batch; the
padded rows have ``sensors.chan_mask`` False, so models ignore them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from neurofm.data.errors import RecordingError
from neurofm.data.io import is_epochs_file, read_epochs, read_raw
from neurofm.data.preprocess import PreprocessConfig, preprocess_raw
from neurofm.data.windows import Windows, epochs_to_windows, window_recording
from neurofm.progress import progress_bar
from neurofm.sensors import SensorBatch


def load_windows(path, config: PreprocessConfig | None = None, *, window_seconds: float = 30.0,
                 patch_seconds: float = 1.0, stride_seconds: float | None = None,
                 max_abs: float | None = None, epoch_rule: str = "pad",
                 n_patches: int | None = None) -> Windows:
    """Read, preprocess and window one file (continuous or ``-epo.fif``) or ``sample:NAME``.

    Epochs files give one window per epoch (``window_seconds``/``stride_seconds`` do not apply;
    ``epoch_rule`` and ``n_patches`` do). Errors propagate: in single-file mode a recording
    shorter than one window is a :class:`~neurofm.data.errors.RecordingTooShortError`.

    Returns
    -------
    Windows
        ``x [W, C, N, P]``.
    """
    if not str(path).startswith("sample:") and is_epochs_file(path):
        return epochs_to_windows(read_epochs(path), config, patch_seconds=patch_seconds,
                                 rule=epoch_rule, n_patches=n_patches, max_abs=max_abs)
    rec = preprocess_raw(read_raw(path), config)
    windows = window_recording(rec, window_seconds, patch_seconds, stride_seconds, max_abs)
    windows.report[:0] = rec.report
    return windows


class WindowDataset(Dataset):
    """Windows of one or more recordings (montages may differ between recordings).

    Parameters
    ----------
    windows : Windows or sequence of Windows

    Attributes
    ----------
    skipped : list of (str, str)
        Files left out by :meth:`from_files`, with the reason.
    """

    def __init__(self, windows: Windows | Sequence[Windows]):
        self.windows = [windows] if isinstance(windows, Windows) else list(windows)
        self.skipped: list[tuple[str, str]] = []
        labelled = {w.y is not None for w in self.windows if len(w)}
        if len(labelled) > 1:
            raise ValueError("Some recordings have labels (y) and some do not; give labels to "
                             "all of them or to none.")
        self._sensors = [SensorBatch.from_layout(w.sensors) for w in self.windows]
        counts = np.array([len(w) for w in self.windows], dtype=np.int64)
        self._offsets = np.concatenate([[0], np.cumsum(counts)])

    @classmethod
    def from_files(cls, paths, config: PreprocessConfig | None = None, *,
                   window_seconds: float = 30.0, patch_seconds: float = 1.0,
                   stride_seconds: float | None = None, max_abs: float | None = None,
                   epoch_rule: str = "pad", n_patches: int | None = None,
                   on_error: str = "skip", progress: bool = True) -> WindowDataset:
        """Windows of many files; unusable files are skipped with their reason (``.skipped``).

        Parameters
        ----------
        paths : iterable of str or path-like
        on_error : {"skip", "raise"}
            "skip" records the reason of a file that cannot be used (missing, truncated, too
            short, NaN, unknown channels …) and goes on; "raise" stops at the first one.
        progress : bool
            Show a tqdm progress bar.

        Raises
        ------
        RecordingError
            No file gave a single window (the message lists every reason).
        """
        if on_error not in ("skip", "raise"):
            raise ValueError(f"on_error must be 'skip' or 'raise', got {on_error!r}.")
        paths = list(paths)
        kept, skipped = [], []
        for path in progress_bar(paths, desc="recordings", unit="file", disable=not progress):
            try:
                windows = load_windows(path, config, window_seconds=window_seconds,
                                       patch_seconds=patch_seconds, stride_seconds=stride_seconds,
                                       max_abs=max_abs, epoch_rule=epoch_rule,
                                       n_patches=n_patches)
            except (RecordingError, FileNotFoundError) as err:
                if on_error == "raise":
                    raise
                skipped.append((str(path), str(err)))
                continue
            if len(windows) == 0:
                skipped.append((str(path), "no window left after rejection: "
                                + "; ".join(windows.report)))
                continue
            kept.append(windows)
        if not kept:
            reasons = "\n".join(f"  {p}: {r}" for p, r in skipped) or "  (no file given)"
            raise RecordingError(f"No usable window in {len(paths)} file(s):\n{reasons}")
        dataset = cls(kept)
        dataset.skipped = skipped
        return dataset

    def __len__(self) -> int:
        return int(self._offsets[-1])

    def __getitem__(self, index: int) -> dict:
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"window {index} out of range for {len(self)} windows")
        r = int(np.searchsorted(self._offsets, index, side="right") - 1)
        w, row = self.windows[r], index - int(self._offsets[r])
        item = {
            "x": torch.from_numpy(np.ascontiguousarray(w.x[row])),
            "sensors": self._sensors[r],
            "patch_valid": torch.from_numpy(np.ascontiguousarray(w.patch_valid[row])),
        }
        if w.y is not None:
            item["y"] = torch.tensor(int(w.y[row]), dtype=torch.long)
        return item


def collate_windows(items: Sequence[dict]) -> dict:
    """Batch window items, padding channels so recordings with different montages mix.

    Parameters
    ----------
    items : sequence of dict
        Items of :class:`WindowDataset` (``x [C_i, N, P]``).

    Returns
    -------
    dict
        ``x`` float32 [B, C_max, N, P] (padded rows are zero), ``sensors`` SensorBatch with
        ``chan_mask [B, C_max]`` False on padding, ``patch_valid`` bool [B, N], and ``y``
        int64 [B] when the items have labels.
    """
    if not items:
        raise ValueError("collate_windows needs at least one item.")
    shapes = {tuple(it["x"].shape[1:]) for it in items}
    if len(shapes) > 1:
        raise ValueError(f"Windows in one batch must share (N patches, P samples); got "
                         f"{sorted(shapes)}. Use the same window_seconds/patch_seconds for all "
                         "recordings (epochs: the same n_patches).")
    n, p = shapes.pop()
    c_max = max(it["x"].shape[0] for it in items)
    x = items[0]["x"].new_zeros(len(items), c_max, n, p)
    for b, it in enumerate(items):
        x[b, :it["x"].shape[0]] = it["x"]
    batch = {
        "x": x,
        "sensors": SensorBatch.collate([it["sensors"] for it in items]),
        "patch_valid": torch.stack([it["patch_valid"] for it in items]),
    }
    has_y = ["y" in it for it in items]
    if any(has_y):
        if not all(has_y):
            raise ValueError("Some windows in the batch have labels (y) and some do not.")
        batch["y"] = torch.stack([it["y"] for it in items])
    return batch
