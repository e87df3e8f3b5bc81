"""Subject-level train/validation split: no subject has windows on both sides.

Subjects are ranked by a hash of ``(seed, subject id)``; the first ``ceil(val_fraction x
n_subjects)`` go to validation. The assignment of a subject depends only on the seed and its
id, not on the order of the windows or on which other subjects are present, so it stays stable
when a corpus grows (new subjects move others only through the count).
"""

from __future__ import annotations

import hashlib
import math

import numpy as np


def split_by_subject(subjects, val_fraction: float = 0.1, seed: int = 0
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Window indices of the training and validation sets.

    Parameters
    ----------
    subjects : sequence of str or pandas.Categorical, length n_windows
        Subject id of every window (``Corpus.window_subjects``, a categorical: the ids are
        compared once per subject, not once per window).
    val_fraction : float
        Fraction of subjects (not windows) for validation, in [0, 1).
    seed : int
        Changes which subjects are drawn.

    Returns
    -------
    train, val : ndarray of int64
        Sorted window indices; disjoint, together all windows.

    Raises
    ------
    ValueError
        ``val_fraction`` outside [0, 1), or a non-zero fraction with fewer than two subjects.
    """
    if not 0 <= val_fraction < 1:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}.")
    if hasattr(subjects, "codes") and hasattr(subjects, "categories"):  # pandas.Categorical
        codes, categories = np.asarray(subjects.codes), [str(c) for c in subjects.categories]
    else:
        categories, codes = np.unique(np.asarray(subjects, dtype=object).astype(str),
                                      return_inverse=True)
        categories = categories.tolist()
    used = np.zeros(len(categories), dtype=bool)
    used[codes] = True
    unique = sorted(c for c, u in zip(categories, used) if u)
    n_val = math.ceil(val_fraction * len(unique)) if val_fraction > 0 else 0
    if n_val and len(unique) < 2:
        raise ValueError(f"A subject-level split needs at least two subjects; the corpus has "
                         f"{len(unique)}. Add recordings of more subjects or use val_fraction=0.")
    ranked = sorted(unique, key=lambda s: hashlib.sha256(f"{seed}:{s}".encode()).hexdigest())
    val_subjects = set(ranked[:n_val])
    is_val = np.array([c in val_subjects for c in categories], dtype=bool)[codes]
    return np.flatnonzero(~is_val), np.flatnonzero(is_val)
