"""Shared pytest fixtures. Tests build their own small recordings; nothing is downloaded."""

import os

os.environ.setdefault("MNE_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

torch.set_num_threads(1)
