"""Imports of optional peers that are noisy at import time.

braindecode's model zoo builds MNE montages under names that MNE 1.13 deprecates when
``braindecode.models`` is imported, which prints ``FutureWarning``s the user cannot act on.
"""

from __future__ import annotations

import warnings


def braindecode_models():
    """``braindecode.models``, imported with its import-time deprecation warnings silenced.

    Only the import is quiet: warnings raised later by the models themselves still show.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning, module=r"braindecode(\..*)?")
        warnings.filterwarnings("ignore", category=FutureWarning, message=".*[Mm]ontage.*")
        from braindecode import models
    return models
