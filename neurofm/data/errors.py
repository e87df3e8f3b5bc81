"""Errors raised for recordings that cannot be used as they are.

Every message names the file (and channel, when one is at fault) and says what to do. All
classes derive from :class:`ValueError`, so the command line prints them without a traceback and
long jobs can catch them, record the reason and go on with the next file.
"""

from __future__ import annotations


class RecordingError(ValueError):
    """A recording is unreadable or unusable; the message says which file and what to do.

    Parameters
    ----------
    message : str
        Full user-facing message.
    source : str or None
        The file (or ``sample:NAME``) the problem is about, for manifests of skipped files.
    """

    def __init__(self, message: str, *, source: str | None = None):
        super().__init__(message)
        self.source = source


class RecordingTooShortError(RecordingError):
    """A recording is shorter than one window. List-of-files jobs skip it with this reason."""


class FlatSignalError(RecordingError):
    """Too few channels of a recording carry signal (the rest are flat and were dropped).

    Raised with ``on_flat="drop"`` (:data:`neurofm.data.checks.MIN_SIGNAL_FRACTION`);
    ``neurofm prepare`` skips such a file with the reason ``flat-signal``.
    """
