"""The files neurofm 0.1.0 wrote (``tests/fixtures/v0_1_0``) and the inputs they were scored on."""

from __future__ import annotations

from pathlib import Path

import torch

from neurofm.sensors import SensorBatch

FIXTURES = Path(__file__).parent / "fixtures" / "v0_1_0"
MODEL_FOLDERS = sorted(p for p in (FIXTURES / "models").iterdir() if p.is_dir()) + [
    FIXTURES / "cbramod_converted"]
TOLERANCE = 1e-5


def recorded_inputs(expected):
    """The input ``x [B, C, N, P]`` and its sensors stored beside a fixture's outputs."""
    x = torch.from_numpy(expected["x"])
    sensors = SensorBatch(pos=torch.from_numpy(expected["pos"]),
                          ori=torch.from_numpy(expected["ori"]),
                          kind=torch.from_numpy(expected["kind"]),
                          chan_mask=torch.from_numpy(expected["chan_mask"]))
    return x, sensors
