"""Shared pytest fixtures. Tests build their own small recordings; nothing is downloaded."""

import os

os.environ.setdefault("MNE_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

torch.set_num_threads(1)

# Look-alike clinical releases (TUAB, TUEV, CHB-MIT, Sleep-EDF), written once per session.
from tests.clinical_trees import (  # noqa: F401
    chbmit_root,
    sleep_edf_root,
    tuab_root,
    tuev_root,
)
