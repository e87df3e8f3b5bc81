"""Optional peers: the extras that hold them, and imports that say what to install.

The core of neurofm needs neither braindecode nor torchaudio (``pip install neurofm`` keeps the
torch a machine has). What uses braindecode - the EEGNet / ShallowFBCSPNet baselines,
:class:`neurofm.interop.NeuroFM`, the parity references of :mod:`neurofm.hub.parity`, the
``braindecode:`` data spec, the benchmarks' peers - imports it through :func:`require_braindecode`
or :func:`braindecode_models`, which raise :class:`MissingExtraError` naming the extra when it is
missing or cannot load. braindecode imports torchaudio, which fails to load beside any torch but
the one it was built for with an ``OSError``, not an ``ImportError`` (torchaudio 2.11.1 beside
torch 2.11.0, torchaudio 2.11.0 beside 2.13); both count as missing here.

braindecode's model zoo also builds MNE montages under names that MNE 1.13 deprecates when
``braindecode.models`` is imported, which prints ``FutureWarning``s the user cannot act on:
:func:`braindecode_models` silences them.
"""

from __future__ import annotations

import functools
import importlib
import warnings


class MissingExtraError(ImportError, ValueError):
    """An optional dependency is not installed (the message names the extra to install)."""


def install_hint(extra: str) -> str:
    """``pip install 'neurofm[EXTRA]'``."""
    return f"pip install 'neurofm[{extra}]'"


def needs_extra(extra: str) -> str:
    """The one-line note of a feature that is skipped without its extra:
    ``"needs neurofm[braindecode]"``."""
    return f"needs neurofm[{extra}]"


@functools.cache
def braindecode_import_error() -> str | None:
    """Why braindecode cannot be used here (``None`` when ``braindecode.models`` imports).

    Imports it once (a few seconds) and remembers the answer.
    """
    try:
        _import_braindecode_models()
    except (ImportError, OSError) as err:  # OSError: torchaudio's library beside another torch
        return f"{type(err).__name__}: {err}"
    return None


def braindecode_available() -> bool:
    """Whether braindecode (and the torchaudio it imports) load beside this torch."""
    return braindecode_import_error() is None


def require_braindecode(feature: str):
    """The ``braindecode`` module, or :class:`MissingExtraError` naming ``feature`` and the extra.

    Parameters
    ----------
    feature : str
        What needs it, for the message (``"the EEGNet baseline"``).
    """
    reason = braindecode_import_error()
    if reason is not None:
        import torch

        raise MissingExtraError(
            f"{feature} needs braindecode, which is not usable here ({reason}). Install the "
            f"extra: {install_hint('braindecode')}, which installs the tested pair torch 2.11.0 "
            f"+ torchaudio 2.11.0 (braindecode imports torchaudio, which loads only beside the "
            f"torch it was built for; this torch is {torch.__version__}).")
    return importlib.import_module("braindecode")


def braindecode_models(feature: str = "this feature"):
    """``braindecode.models``, imported with its import-time deprecation warnings silenced.

    Only the import is quiet: warnings raised later by the models themselves still show.

    Raises
    ------
    MissingExtraError
        braindecode is not installed or cannot load beside this torch.
    """
    require_braindecode(feature)
    return _import_braindecode_models()


def _import_braindecode_models():
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning, module=r"braindecode(\..*)?")
        warnings.filterwarnings("ignore", category=FutureWarning, message=".*[Mm]ontage.*")
        from braindecode import models
    return models
