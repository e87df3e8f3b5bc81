"""Flags that mean the same in every command, and the old spellings of renamed flags.

One name per concept: ``--line-freq`` (mains frequency), ``--seed`` (random seed),
``--revision`` (Hub branch, tag or commit of ``--model``), ``--num-proc`` (worker processes that
read and preprocess data: ``prepare``) and ``--nproc`` (training processes launched through
torchrun: ``pretrain``, ``tokenizer train``, ``demo``), and the output flags of every command
(:func:`neurofm.logs.add_output_flags`).

A renamed flag keeps its old spelling for one release (:class:`DeprecatedFlag`): it works as the
new one and the command warns once (a ``FutureWarning``) when it runs.

This module imports no heavy library: ``neurofm CMD --help`` builds every parser without torch.
"""

from __future__ import annotations

import argparse
import warnings

#: The release that drops the deprecated spellings.
REMOVED_IN = "0.3"

NPROC_HELP = ("training processes on this machine, launched through torchrun (one per GPU, or "
              "CPU processes with gloo); not --num-proc, the data workers of `neurofm prepare`")
NUM_PROC_HELP = ("worker processes that read and preprocess recordings, one recording in memory "
                 "each; not --nproc, the training processes of `neurofm pretrain`")


def add_revision_flag(parser: argparse.ArgumentParser, what: str = "--model") -> None:
    """``--revision``: which version of a Hub repo ``what`` names."""
    parser.add_argument("--revision", default=None,
                        help=f"branch, tag or commit when {what} is a Hub repo id (default main)")


class DeprecatedFlag(argparse.Action):
    """The old spelling of a flag: stores its value like the new one and notes the deprecation.

    ``dest`` is the new flag's (the value lands where the new spelling puts it), or one of its
    own when the command resolves the two itself. :func:`warn_deprecated_flags` warns once the
    command runs, and refuses the old and the new spelling given with different values.

    Parameters
    ----------
    new : str
        The flag to use instead, e.g. ``"--line-freq"``.
    why : str
        Words appended to the warning (what the new name means).
    """

    def __init__(self, option_strings, dest, *, new: str, why: str = "",
                 default=argparse.SUPPRESS, **kwargs):
        kwargs.setdefault("help", f"deprecated spelling of {new} (removed in neurofm "
                                  f"{REMOVED_IN})")
        super().__init__(option_strings, dest, default=default, **kwargs)
        self.new, self.why = new, why

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, values)
        uses = list(getattr(namespace, "deprecated_flags", None) or [])
        uses.append((option_string, self.new, self.why, self.dest, values))
        namespace.deprecated_flags = uses


def warn_deprecated_flags(args: argparse.Namespace) -> None:
    """Warn (``FutureWarning``) for each old spelling in ``args``.

    Raises
    ------
    ValueError
        The old and the new spelling of one flag gave different values.
    """
    for option, new, why, dest, value in getattr(args, "deprecated_flags", None) or []:
        if getattr(args, dest, value) != value:
            raise ValueError(f"{option} is the old spelling of {new}, given with another value; "
                             f"give only {new}.")
        warnings.warn(f"{option} is deprecated and will be removed in neurofm {REMOVED_IN}; "
                      f"use {new}{why}.", FutureWarning, stacklevel=2)
