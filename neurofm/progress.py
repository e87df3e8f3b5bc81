"""Progress bars that stay readable in log files (CI, SLURM) as well as on a terminal.

On a terminal tqdm redraws its bar in place about ten times a second. Written to a file, every
redraw is a new line, so a long loop floods the log. :func:`progress_bar` gives the usual bar on
a terminal (or in Jupyter) and, when its stream is not a terminal, one that redraws at most every
:data:`LOG_INTERVAL_S` seconds; transient bars (``leave=False``) then only appear once they have
run that long. ``NEUROFM_PROGRESS=0`` turns every neurofm bar off, and so does a log level above
INFO (``verbose=False``, ``neurofm CMD --quiet``: :mod:`neurofm.logs`); tqdm's own
``TQDM_DISABLE=1`` works too.
"""

from __future__ import annotations

import sys

from tqdm.auto import tqdm
from tqdm.autonotebook import tqdm as _auto_tqdm
from tqdm.std import tqdm as _std_tqdm

from neurofm.logs import PROGRESS_ENV_VAR, shows_progress

#: Environment variable; ``0`` (or ``false``/``no``/``off``) disables all neurofm progress bars.
ENV_VAR = PROGRESS_ENV_VAR

#: Seconds between redraws of a bar whose stream is not a terminal.
LOG_INTERVAL_S = 30.0


def progress_bar(iterable=None, **kwargs) -> tqdm:
    """A tqdm bar whose redraw rate suits where it writes.

    Parameters
    ----------
    iterable : iterable, optional
        Wrapped as by ``tqdm(iterable)``; leave out for a manual bar (``total=``, ``update()``).
    **kwargs
        Any tqdm argument. ``disable=True`` hides the bar; ``disable=False`` defers to tqdm's
        default, so ``TQDM_DISABLE=1`` still applies. Explicit ``mininterval``, ``maxinterval``
        or ``delay`` win over the log-file settings.

    Returns
    -------
    tqdm
        Disabled when ``NEUROFM_PROGRESS=0`` or neurofm logs above INFO. When the stream
        (``file``, default stderr) is not a terminal: redrawn at most every
        :data:`LOG_INTERVAL_S` s, and a ``leave=False`` bar stays hidden for its first
        :data:`LOG_INTERVAL_S` s.
    """
    if not shows_progress():
        kwargs["disable"] = True
    elif not kwargs.get("disable"):
        kwargs.pop("disable", None)  # an explicit False would override TQDM_DISABLE
        if not _interactive(kwargs.get("file")):
            kwargs.setdefault("mininterval", LOG_INTERVAL_S)
            # tqdm's monitor thread forces a redraw after maxinterval: keep it no shorter.
            kwargs.setdefault("maxinterval", max(LOG_INTERVAL_S, kwargs["mininterval"]))
            if kwargs.get("leave") is False:
                kwargs.setdefault("delay", LOG_INTERVAL_S)
    return tqdm(iterable, **kwargs)


def _interactive(stream) -> bool:
    """Whether a bar written to ``stream`` (None: stderr) redraws in place."""
    if _auto_tqdm is not _std_tqdm:  # Jupyter: a widget, updated in place
        return True
    stream = sys.stderr if stream is None else stream
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False
