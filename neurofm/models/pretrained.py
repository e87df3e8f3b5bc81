"""Deprecated functions of neurofm 0.1.0, reached through ``neurofm.models.__getattr__``.

``neurofm.models.from_pretrained(directory)`` is now ``neurofm.from_pretrained(id_or_dir)`` and
``neurofm.models.save_pretrained(model, directory)`` is ``model.save_pretrained(directory)``.
Both keep their 0.1.0 signatures here for one release; ``neurofm.models`` warns on access.
"""

from __future__ import annotations

from neurofm.hub import from_pretrained as _load


def from_pretrained(directory, map_location="cpu"):
    """Deprecated: ``neurofm.from_pretrained(directory, map_location=...)``."""
    return _load(directory, map_location=map_location)


def save_pretrained(model, directory, preprocessing=None):
    """Deprecated: ``model.save_pretrained(directory, preprocessing=...)``."""
    return model.save_pretrained(directory, preprocessing=preprocessing)
