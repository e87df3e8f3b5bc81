"""Deprecated alias of :mod:`neurofm.datasets.load` (removed in neurofm 0.3)."""

import warnings

from neurofm.datasets.load import list_datasets, load_dataset

warnings.warn("neurofm.datasets.registry moved to neurofm.datasets.load (or use "
              "neurofm.datasets.load_dataset); the old path will be removed in neurofm 0.3.",
              DeprecationWarning, stacklevel=2)

__all__ = ["list_datasets", "load_dataset"]
