"""Errors the command line reports in one line (``--debug`` shows the traceback instead).

:data:`USER_ERRORS` are the exceptions whose message is meant for the user: a missing file or a
bad value (neurofm's messages name the file or key and say what to do), and operating-system
errors on files -- a permission denied, a full disk, a read-only file system -- which
:func:`one_line` turns into a sentence naming the file and the fix. ``neurofm`` and the training
worker (:mod:`neurofm.worker`) print them this way.
"""

from __future__ import annotations

import errno

#: Exceptions printed as one line.
USER_ERRORS = (FileNotFoundError, ValueError, OSError)

_DISK_FULL = {errno.ENOSPC, errno.EDQUOT}
_FIXES = {
    errno.EACCES: "check its permissions (ls -l, chmod) or run as a user who may use it",
    errno.EPERM: "check its permissions (ls -l, chmod) or run as a user who may use it",
    errno.EROFS: "the file system is read-only: write somewhere else",
    errno.EISDIR: "pass a file, not a folder",
    errno.ENOTDIR: "a part of the path is a file, not a folder: check the path",
}


def is_user_error(err: BaseException) -> bool:
    """True for errors :func:`one_line` describes; other OSErrors (a network timeout, a broken
    pipe without an errno) keep their traceback."""
    if isinstance(err, OSError) and not isinstance(err, FileNotFoundError):
        return err.errno is not None or is_disk_full(err)
    return isinstance(err, USER_ERRORS)


def one_line(err: BaseException) -> str:
    """The message of a user error in one line, naming the file and what to do.

    neurofm's own messages (a ValueError, a FileNotFoundError or a disk-full OSError raised with
    a whole sentence) are kept as they are.
    """
    if not isinstance(err, OSError) or err.errno is None and not is_disk_full(err):
        return str(err)
    what = f"{err.filename}: " if err.filename else ""
    reason = err.strerror or str(err)
    if is_disk_full(err):
        if err.strerror and len(err.strerror) > 40:  # neurofm's sentence (prepare, checkpoints)
            return err.strerror
        return (f"{what}{reason}: the disk (or your quota) is full. Free space and rerun the "
                "same command; it continues where it stopped.")
    if err.errno in _FIXES:
        return f"{what}{reason}; {_FIXES[err.errno]}."
    if isinstance(err, FileNotFoundError):
        return f"{what}{reason}; check the path."
    return f"{what}{reason}"


def is_disk_full(err: OSError) -> bool:
    """True for a full disk or quota (also when a library dropped the errno: pyarrow)."""
    return err.errno in _DISK_FULL or "No space left on device" in str(err)
