"""What neurofm shows while it works: log messages, progress bars, and the flags that choose them.

Library code logs through :mod:`logging`, one logger per module, all below the package logger
``"neurofm"``::

    from neurofm.logs import get_logger, verbose

    logger = get_logger(__name__)          # "neurofm.corpus.prepare", ...

    @verbose
    def prepare_corpus(..., *, verbose=None):
        logger.info("Preparing %d file(s) into %s", n, out)

Long-running functions take MNE's ``verbose=`` (:func:`verbose`): ``True`` (INFO), ``False``
(WARNING: warnings and errors only, no progress bars), a level name (``"DEBUG"``) or number,
or ``None``: the package level, :func:`set_log_level`'s (initially ``NEUROFM_LOGGING_LEVEL``,
else INFO). Library code never adds handlers: in a script, ``logging.basicConfig()`` shows
neurofm's messages. Progress bars (:mod:`neurofm.progress`) show only while INFO messages do.

The command line adds one handler for a command's run (:func:`command_output`): messages go to
stderr (results go to stdout), ``--verbose`` shows DEBUG, ``--quiet`` only warnings and errors
and no bars, ``--no-progress`` hides the bars and keeps the messages, ``--debug`` shows the
traceback of an error. :func:`add_output_flags` puts these flags on a parser.
"""

from __future__ import annotations

import argparse
import functools
import inspect
import logging
import os
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

#: The package logger; every module logs to a child of it.
PACKAGE = "neurofm"
#: Environment variable with the package's default level (a level name, e.g. ``WARNING``).
LEVEL_ENV_VAR = "NEUROFM_LOGGING_LEVEL"
#: Environment variable that turns progress bars off (:mod:`neurofm.progress`).
PROGRESS_ENV_VAR = "NEUROFM_PROGRESS"

_package_logger = logging.getLogger(PACKAGE)


def log_level(verbose) -> int:
    """The :mod:`logging` level that a ``verbose`` argument asks for.

    Parameters
    ----------
    verbose : bool, str, int or None
        ``True``: INFO; ``False``: WARNING; a level name (``"debug"``, ``"WARNING"``) or number;
        ``None``: the package default (``NEUROFM_LOGGING_LEVEL``, else INFO).

    Raises
    ------
    ValueError
        An unknown level name.
    """
    if verbose is None:
        verbose = os.environ.get(LEVEL_ENV_VAR, "").strip() or logging.INFO
    if isinstance(verbose, bool):
        return logging.INFO if verbose else logging.WARNING
    if isinstance(verbose, int):
        return verbose
    level = logging.getLevelNamesMapping().get(str(verbose).strip().upper())
    if level is None:
        where = f" (from {LEVEL_ENV_VAR})" if verbose == os.environ.get(LEVEL_ENV_VAR) else ""
        raise ValueError(f"Unknown log level {verbose!r}{where}; use DEBUG, INFO, WARNING, ERROR "
                         "or CRITICAL, or verbose=True/False.")
    return level


def set_log_level(verbose=None) -> int:
    """Set the level of every neurofm logger (see :func:`log_level`); returns the previous one."""
    previous = _package_logger.level
    _package_logger.setLevel(log_level(verbose))
    return previous


@contextmanager
def use_log_level(verbose) -> Iterator[None]:
    """Log at the level ``verbose`` asks for inside the block (None: leave it as it is)."""
    if verbose is None:
        yield
        return
    previous = set_log_level(verbose)
    try:
        yield
    finally:
        _package_logger.setLevel(previous)


def verbose(function):
    """Decorator: ``function``'s keyword-only ``verbose`` argument sets the log level of its run.

    ``verbose=None`` (the default) keeps the package level. Not thread-safe: the level is the
    package logger's for the time of the call, as in MNE.
    """
    parameter = inspect.signature(function).parameters.get("verbose")
    if parameter is None or parameter.kind is not inspect.Parameter.KEYWORD_ONLY:
        raise TypeError(f"{function.__qualname__} needs a keyword-only verbose=None argument.")

    @functools.wraps(function)
    def with_level(*args, **kwargs):
        with use_log_level(kwargs.get("verbose")):
            return function(*args, **kwargs)

    return with_level


def get_logger(name: str = PACKAGE) -> logging.Logger:
    """The logger of a neurofm module (``get_logger(__name__)``), below the package logger."""
    if name != PACKAGE and not name.startswith(PACKAGE + "."):
        name = f"{PACKAGE}.{name}"
    return logging.getLogger(name)


def shows_progress() -> bool:
    """Whether progress bars may show: INFO messages do and ``NEUROFM_PROGRESS`` is not off."""
    if os.environ.get(PROGRESS_ENV_VAR, "").strip().lower() in ("0", "false", "no", "off"):
        return False
    return _package_logger.isEnabledFor(logging.INFO)


if _package_logger.level == logging.NOTSET:  # the package default, until set_log_level
    try:
        _package_logger.setLevel(log_level(None))
    except ValueError as err:
        warnings.warn(f"{err} Using INFO.", stacklevel=1)
        _package_logger.setLevel(logging.INFO)


# -- the command line ---------------------------------------------------------------------------
def add_output_flags(parser: argparse.ArgumentParser) -> None:
    """Add ``--verbose``/``--quiet``, ``--no-progress`` and ``--debug`` to a command's parser."""
    group = parser.add_argument_group("what the command shows")
    level = group.add_mutually_exclusive_group()
    level.add_argument("-v", "--verbose", action="store_true",
                       help="show debug messages too")
    level.add_argument("-q", "--quiet", action="store_true",
                       help="show only warnings and errors (and the result), no progress bars")
    group.add_argument("--no-progress", action="store_true",
                       help="hide progress bars, keep the messages")
    group.add_argument("--debug", action="store_true",
                       help="show the traceback of an error instead of a one-line message")


def output_flags_argv(args: argparse.Namespace) -> list[str]:
    """The flags of :func:`add_output_flags` that ``args`` sets, as a command line."""
    return [flag for flag, dest in (("--verbose", "verbose"), ("--quiet", "quiet"),
                                    ("--no-progress", "no_progress"), ("--debug", "debug"))
            if getattr(args, dest, False)]


def level_argv() -> list[str]:
    """``--verbose`` or ``--quiet`` for a child ``neurofm`` command that is to log at this
    process's level (nothing at INFO)."""
    if _package_logger.isEnabledFor(logging.DEBUG):
        return ["--verbose"]
    return [] if _package_logger.isEnabledFor(logging.INFO) else ["--quiet"]


def command_log_level(args: argparse.Namespace) -> int:
    """The level a command's flags ask for: DEBUG (``--verbose``), WARNING (``--quiet``), else
    the package default."""
    if getattr(args, "verbose", False):
        return logging.DEBUG
    if getattr(args, "quiet", False):
        return logging.WARNING
    return log_level(None)


@contextmanager
def command_output(args: argparse.Namespace) -> Iterator[None]:
    """Set up what a command shows, for the time of its run, and undo it afterwards.

    Messages of level :func:`command_log_level` and above go to stderr (``warning: ...`` for
    warnings, the message alone for INFO); Python warnings are printed as one ``warning: ...``
    line (``--verbose`` adds their category and origin); ``--no-progress`` and ``--quiet`` set
    ``NEUROFM_PROGRESS=0``, which processes started by the command (torchrun workers,
    ``prepare``'s workers) inherit.
    """
    handler = _StderrHandler()
    handler.setFormatter(_CommandFormatter())
    level = command_log_level(args)
    previous_level = set_log_level(level)
    previous_format = warnings.formatwarning
    previous_progress = os.environ.get(PROGRESS_ENV_VAR)
    _package_logger.addHandler(handler)
    warnings.formatwarning = _warning_with_origin if level <= logging.DEBUG else _one_line_warning
    if getattr(args, "no_progress", False) or getattr(args, "quiet", False):
        os.environ[PROGRESS_ENV_VAR] = "0"
    try:
        yield
    finally:
        _package_logger.removeHandler(handler)
        _package_logger.setLevel(previous_level)
        warnings.formatwarning = previous_format
        if previous_progress is None:
            os.environ.pop(PROGRESS_ENV_VAR, None)
        else:
            os.environ[PROGRESS_ENV_VAR] = previous_progress


class _StderrHandler(logging.StreamHandler):
    """Writes to the ``sys.stderr`` of the moment (pytest and notebooks replace it)."""

    def __init__(self):
        super().__init__(sys.stderr)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):  # StreamHandler.__init__ sets it; the property always reads stderr
        pass


class _CommandFormatter(logging.Formatter):
    """``message`` for INFO, ``warning: message`` (``debug:``, ``error:`` ...) for the others."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        if record.levelno == logging.INFO:
            return text
        return f"{record.levelname.lower()}: {text}"


def _one_line_warning(message, category, filename, lineno, line=None) -> str:
    return f"warning: {message}\n"


def _warning_with_origin(message, category, filename, lineno, line=None) -> str:
    return f"warning: {message} ({category.__name__} at {filename}:{lineno})\n"
