"""Small TUH-named EDF files, healthy and broken, for the corpus tests.

Healthy files carry the 19 channels of the 10-20 system under TUH's names (``EEG FP1-REF`` …)
with noise plus a 10 Hz alpha rhythm of about 20 µV, so no window exceeds the 100 µV rejection
threshold unless a test asks for an artefact. Broken files are made by editing the bytes of a
healthy file the way real copies break (cut short, header overwritten, bad physical range).
"""

from __future__ import annotations

from pathlib import Path

import mne
import numpy as np

TUH_19 = ["FP1", "FP2", "F7", "F3", "FZ", "F4", "F8", "T3", "C3", "CZ", "C4", "T4", "T5", "P3",
          "PZ", "P4", "T6", "O1", "O2"]


def tuh_channel_names(n_channels: int = 19, reference: str = "REF") -> list[str]:
    """First ``n_channels`` of the 19 10-20 channels, named as TUH names them."""
    return [f"EEG {name}-{reference}" for name in TUH_19[:n_channels]]


def write_tuh_edf(path, minutes: float, sfreq: float = 250.0, *, n_channels: int = 19,
                  extra_channels: tuple[str, ...] = (), seed: int = 0,
                  artefact_at: float | None = None) -> Path:
    """Write an EDF of ``minutes`` of EEG under TUH channel names.

    Parameters
    ----------
    path : path-like
        Output file; parents are created.
    minutes : float
        Duration.
    sfreq : float
        Sampling rate in Hz (TUEG has 250, 256, 400, 512 …).
    n_channels : int
        How many of the 19 10-20 channels to include.
    extra_channels : tuple of str
        Further channel names (e.g. ``"EEG EKG1-REF"``), filled with noise.
    seed : int
        Seed of the noise.
    artefact_at : float or None
        Time in seconds of a 1-s, 500 µV artefact on the first channel.

    Returns
    -------
    path : Path
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    names = tuh_channel_names(n_channels) + list(extra_channels)
    rng = np.random.default_rng(seed)
    n_times = round(minutes * 60 * sfreq)
    t = np.arange(n_times) / sfreq
    data = 8e-6 * rng.standard_normal((len(names), n_times))
    data += 20e-6 * np.sin(2 * np.pi * 10.0 * t + rng.uniform(0, 2 * np.pi, (len(names), 1)))
    if artefact_at is not None:
        i0 = int(artefact_at * sfreq)
        data[0, i0:i0 + int(sfreq)] += 500e-6
    info = mne.create_info(names, sfreq, "eeg")
    raw = mne.io.RawArray(data, info, verbose="error")
    mne.export.export_raw(path, raw, fmt="edf", physical_range=(-1000.0, 1000.0),
                          overwrite=True, verbose="error")
    return path


def write_annotations_only_edf(path) -> Path:
    """An EDF+ file with annotations and no signal at all (only the annotation channel)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    from edfio import Edf, EdfAnnotation, EdfSignal

    # edfio cannot build an annotations-only file directly; drop the only signal instead.
    edf = Edf(signals=[EdfSignal(np.zeros(10), sampling_frequency=1, label="x")],
              annotations=[EdfAnnotation(1.0, 2.0, "seizure")])
    edf.drop_signals(["x"])
    edf.write(path)
    return path


def truncate(path, keep_bytes: int) -> Path:
    """Cut ``path`` to its first ``keep_bytes`` bytes (a broken copy)."""
    data = Path(path).read_bytes()[:keep_bytes]
    Path(path).write_bytes(data)
    return Path(path)


def corrupt_header(path) -> Path:
    """Overwrite the header-size and record-count fields with text (a corrupt header)."""
    data = bytearray(Path(path).read_bytes())
    data[184:192] = b"garbage!"
    data[236:244] = b"xx-yy-zz"
    Path(path).write_bytes(bytes(data))
    return Path(path)


def break_physical_range(path) -> Path:
    """Set every signal's physical maximum equal to its physical minimum (a bad range)."""
    data = bytearray(Path(path).read_bytes())
    n_signals = int(data[252:256].decode().strip())
    phys_min = 256 + 104 * n_signals
    phys_max = 256 + 112 * n_signals
    data[phys_max:phys_max + 8 * n_signals] = data[phys_min:phys_min + 8 * n_signals]
    Path(path).write_bytes(bytes(data))
    return Path(path)


def tueg_path(subject: str, session: int, take: int, *, group: str = "000",
              date: str = "2015_01_01", montage: str = "01_tcp_ar", ext: str = ".edf") -> str:
    """Relative TUEG v2 path of one recording: ``edf/000/<subj>/s001_<date>/<montage>/<name>``."""
    return (f"edf/{group}/{subject}/s{session:03d}_{date}/{montage}/"
            f"{subject}_s{session:03d}_t{take:03d}{ext}")


#: Options the corpus tests prepare with: 10-s windows, 5-s trims, recordings of >= 1 min.
TEST_PREPARE = {"window_seconds": 10.0, "trim_seconds": 5.0, "min_minutes": 1.0}


def write_tueg_test_tree(root) -> dict[str, dict]:
    """A small TUEG-layout tree with healthy and broken files, and what should become of each.

    Returns
    -------
    expected : dict
        relpath -> {"status": ..., "reason": category, "n_windows": int (kept files, with
        :data:`TEST_PREPARE`)}.
    """
    root = Path(root)
    expected = {}

    def healthy(rel, minutes, sfreq, **kw):
        write_tuh_edf(root / rel, minutes, sfreq, **kw)
        usable = minutes * 60 - 2 * TEST_PREPARE["trim_seconds"]
        expected[rel] = {"status": "kept", "reason": "",
                         "n_windows": int(usable // TEST_PREPARE["window_seconds"])}

    def broken(rel, reason, make):
        make(root / rel)
        expected[rel] = {"status": "skipped", "reason": reason, "n_windows": 0}

    first = tueg_path("aaaaaaaa", 1, 0)
    healthy(first, 2.0, 250.0, seed=1)
    healthy(tueg_path("aaaaaaaa", 2, 0, date="2016_03_04"), 1.5, 250.0, seed=2)
    healthy(tueg_path("aaaaaaab", 1, 0, ext=".EDF"), 1.5, 256.0, seed=3)
    healthy(tueg_path("aaaaaaac", 1, 1, date="2017_ñandú_ü", group="001"), 1.25, 256.0, seed=4)
    broken(tueg_path("zzzzzzzz", 1, 0, group="999"), "duplicate",
           lambda p: (p.parent.mkdir(parents=True, exist_ok=True),
                      p.write_bytes((root / first).read_bytes())))
    broken(tueg_path("aaaaaaad", 1, 0), "empty-file",
           lambda p: (p.parent.mkdir(parents=True, exist_ok=True), p.write_bytes(b"")))
    broken(tueg_path("aaaaaaae", 1, 0), "unreadable-recording",
           lambda p: truncate(write_tuh_edf(p, 1.5, 250.0, seed=5), 40_000))
    broken(tueg_path("aaaaaaaf", 1, 0), "unreadable-recording",
           lambda p: corrupt_header(write_tuh_edf(p, 1.5, 250.0, seed=6)))
    broken(tueg_path("aaaaaaag", 1, 0), "bad-physical-range",
           lambda p: break_physical_range(write_tuh_edf(p, 1.5, 250.0, seed=7)))
    broken(tueg_path("aaaaaaah", 1, 0), "no-signal", write_annotations_only_edf)
    broken(tueg_path("aaaaaaai", 1, 0), "no-eeg-channels",
           lambda p: write_tuh_edf(p, 1.5, 250.0, n_channels=0,
                                   extra_channels=("ECG", "RESP", "EMG chin"), seed=8))
    broken(tueg_path("aaaaaaaj", 1, 0), "missing-channels",
           lambda p: write_tuh_edf(p, 1.5, 250.0, n_channels=15, seed=9))
    broken(tueg_path("aaaaaaak", 1, 0), "too-short",
           lambda p: write_tuh_edf(p, 0.5, 250.0, seed=10))
    return expected
