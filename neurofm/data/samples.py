"""Named sample recordings shipped inside PyPI packages (``sample:NAME`` paths).

``sample:emotiv14`` is 16 s of 14-channel Emotiv EEG at 128 Hz in µV that ``spkit==0.0.9.7``
ships as ``spkit/data/files/EEG16SecData.pkl`` (a pickled ``(X [2048, 14], ch_names)``). The file
is located with :func:`importlib.util.find_spec` without importing spkit (its own dependencies
are heavy and not needed), so ``pip install --no-deps spkit==0.0.9.7`` is enough.
"""

from __future__ import annotations

import importlib.util
import pickle
from dataclasses import dataclass
from pathlib import Path

import mne
import numpy as np

from neurofm.data.errors import RecordingError


@dataclass(frozen=True)
class Sample:
    """A sample recording that lives inside an installed package."""

    name: str
    description: str
    package: str
    install: str
    relative_path: str

    def locate(self) -> Path:
        """Path of the sample file; raises with the install command when it is missing."""
        spec = importlib.util.find_spec(self.package)
        if spec is None or not spec.submodule_search_locations:
            raise RecordingError(
                f"sample:{self.name} needs the '{self.package}' package, which is not installed. "
                f"Install it with: {self.install}", source=f"sample:{self.name}")
        for root in spec.submodule_search_locations:
            path = Path(root) / self.relative_path
            if path.is_file():
                return path
        raise RecordingError(
            f"sample:{self.name}: the installed '{self.package}' has no {self.relative_path}. "
            f"Reinstall the pinned version with: {self.install}", source=f"sample:{self.name}")


SAMPLES = {
    "emotiv14": Sample(
        name="emotiv14",
        description="16 s of 14-channel Emotiv EPOC EEG, 128 Hz, µV (from spkit 0.0.9.7)",
        package="spkit",
        install="pip install --no-deps spkit==0.0.9.7",
        relative_path="data/files/EEG16SecData.pkl",
    ),
}

_EMOTIV_SFREQ = 128.0


def list_samples() -> list[Sample]:
    """The named samples, usable as ``read_raw("sample:NAME")``."""
    return list(SAMPLES.values())


def load_sample(name: str) -> mne.io.RawArray:
    """Load ``sample:NAME`` as an MNE raw object (data in volts, as MNE stores EEG).

    Parameters
    ----------
    name : str
        Sample name without the ``sample:`` prefix, e.g. ``"emotiv14"``.

    Returns
    -------
    raw : mne.io.RawArray
        No positions are stored; they come from the 10-20 montage by channel name.
    """
    if name not in SAMPLES:
        known = ", ".join(f"sample:{s}" for s in SAMPLES)
        raise RecordingError(f"Unknown sample 'sample:{name}'. Known samples: {known}.",
                             source=f"sample:{name}")
    path = SAMPLES[name].locate()
    with open(path, "rb") as f:
        samples_by_channel, ch_names = pickle.load(f)
    data_uv = np.asarray(samples_by_channel, dtype=np.float64).T  # [C, T] µV
    info = mne.create_info([str(c) for c in ch_names], _EMOTIV_SFREQ, "eeg")
    info["description"] = f"sample:{name} ({SAMPLES[name].description}; file {path})"
    return mne.io.RawArray(data_uv * 1e-6, info, verbose="error")
