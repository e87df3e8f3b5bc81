"""Where neurofm keeps files it can rebuild: ``$NEUROFM_CACHE``, default ``~/.cache/neurofm``."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir(*parts: str) -> Path:
    """``$NEUROFM_CACHE/<parts...>`` (default ``~/.cache/neurofm/<parts...>``), read at each call
    so that a changed environment variable takes effect (tests, one process per cache)."""
    root = os.environ.get("NEUROFM_CACHE", Path.home() / ".cache" / "neurofm")
    return Path(root).joinpath(*parts)
