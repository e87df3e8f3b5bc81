"""Read any recording MNE can read, BIDS files through mne-bids, and named samples.

:func:`read_raw` is the single entry point the rest of neurofm uses:

* ``sample:NAME`` loads a named sample recording (:mod:`neurofm.data.samples`);
* a file inside a BIDS dataset (a parent folder holds ``dataset_description.json`` and the file
  name starts with ``sub-``) is read with :func:`mne_bids.read_raw_bids`, so channel types,
  line frequency and ``electrodes.tsv`` coordinates come from the BIDS side-car files;
* anything else goes to :func:`mne.io.read_raw`, which picks the reader from the extension
  (EDF, BDF, FIF, BrainVision, EEGLAB, GDF, CNT, …; extensions are matched case-insensitively).

Problems that MNE would pass over or report deep inside a reader are turned into
:class:`~neurofm.data.errors.RecordingError` messages that name the file and say what to do: a
missing file, a truncated EDF/BDF, duplicate channel names, an unsupported extension.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import mne

from neurofm.data.errors import RecordingError
from neurofm.data.samples import load_sample

SAMPLE_PREFIX = "sample:"
_DUPLICATE_WARNING = re.compile(r"Channel names are not unique, found duplicates for: \{(.*)\}")
_EPOCHS_SUFFIXES = ("-epo.fif", "_epo.fif", "-epo.fif.gz", "_epo.fif.gz")
#: Readers called directly for the formats of large corpora (what mne.io.read_raw picks too).
_DIRECT_READERS = {".edf": mne.io.read_raw_edf, ".bdf": mne.io.read_raw_bdf}


def read_raw(path, *, preload: bool = True, verbose=None) -> mne.io.BaseRaw:
    """Read one continuous recording.

    Parameters
    ----------
    path : str or path-like
        A file in any format :func:`mne.io.read_raw` knows, a file inside a BIDS dataset, or
        ``"sample:NAME"`` (see :func:`neurofm.data.samples.list_samples`).
    preload : bool
        Load the data into memory (default). Checks on the samples need it later anyway.
    verbose : bool, str, int or None
        MNE verbosity for the reader (default: warnings only).

    Returns
    -------
    raw : mne.io.BaseRaw

    Raises
    ------
    FileNotFoundError
        The file does not exist.
    RecordingError
        The file is truncated, has duplicate channel names, is an epochs file, or no reader
        could open it. The message names the file and says what to do.
    """
    if isinstance(path, str) and path.startswith(SAMPLE_PREFIX):
        return load_sample(path[len(SAMPLE_PREFIX):])
    path = _existing_file(path)
    if is_epochs_file(path):
        raise RecordingError(
            f"{path} is an epochs file (MNE Epochs), not a continuous recording. Read it with "
            "neurofm.data.read_epochs and window it with neurofm.data.epochs_to_windows.",
            source=str(path))
    # MNE only emits its warnings (duplicate names among them) at "warning" level or below, so
    # the reader always runs there; the user's verbosity decides whether they are shown again.
    quiet = _is_quiet(verbose)
    verbose = "warning" if verbose is None or quiet else verbose
    suffix = path.suffix.lower()
    if suffix in (".edf", ".bdf"):
        check_edf_size(path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            if find_bids_root(path) is not None:
                raw = _read_bids(path, verbose)
                if preload:
                    raw.load_data(verbose=verbose)
            elif suffix in _DIRECT_READERS:  # skips mne.io.read_raw's reader lookup (~7 ms)
                raw = _DIRECT_READERS[suffix](path, preload=preload, verbose=verbose)
            else:
                raw = mne.io.read_raw(path, preload=preload, verbose=verbose)
        except (RecordingError, FileNotFoundError):
            raise
        except Exception as err:  # a reader failed; say which file and what we know
            raise RecordingError(
                f"Could not read {path}: {type(err).__name__}: {err}. Check that the file is a "
                f"complete, valid {suffix or 'extension-less'} recording (re-copy or re-export "
                "it), or convert it to FIF/EDF with MNE.", source=str(path)) from err
    _raise_on_duplicate_names(caught, path)
    for warning in [] if quiet else caught:
        warnings.warn_explicit(warning.message, warning.category, warning.filename,
                               warning.lineno)
    return raw


def read_epochs(path, *, preload: bool = True, verbose=None) -> mne.Epochs:
    """Read an MNE epochs file (``*-epo.fif``).

    Parameters
    ----------
    path : str or path-like
        The ``-epo.fif`` file.

    Returns
    -------
    epochs : mne.Epochs
    """
    path = _existing_file(path)
    try:
        return mne.read_epochs(path, preload=preload,
                               verbose="warning" if verbose is None else verbose)
    except Exception as err:
        raise RecordingError(
            f"Could not read epochs from {path}: {type(err).__name__}: {err}. Epochs must be "
            "saved by mne.Epochs.save (a '-epo.fif' file); for a continuous recording use "
            "neurofm.data.read_raw.", source=str(path)) from err


def is_epochs_file(path) -> bool:
    """True for MNE epochs file names (``-epo.fif``, ``_epo.fif`` and their ``.gz``)."""
    return str(path).lower().endswith(_EPOCHS_SUFFIXES)


def find_bids_root(path) -> Path | None:
    """BIDS root that contains ``path``, or None when the file is not part of a BIDS dataset.

    A file is taken as BIDS when its name starts with ``sub-`` and a parent folder holds
    ``dataset_description.json``.
    """
    path = Path(path).resolve()
    if not path.name.startswith("sub-"):
        return None
    for parent in path.parents:
        if (parent / "dataset_description.json").is_file():
            return parent
    return None


def check_edf_size(path) -> None:
    """Raise if an EDF/BDF file is shorter than its header promises.

    MNE silently infers the length from the file size when the two disagree; for a corpus a
    truncated copy is almost always a broken transfer, so neurofm stops and says so.

    Parameters
    ----------
    path : path-like
        ``.edf`` or ``.bdf`` file.

    Raises
    ------
    RecordingError
        The header is incomplete or the data records are cut short.
    """
    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(256)
    if len(head) < 256:
        raise RecordingError(
            f"{path} is truncated: it has {size} bytes, less than the 256-byte EDF/BDF header. "
            "Re-copy or re-export the file.", source=str(path))
    try:
        header_bytes = int(head[184:192].decode("ascii").strip())
        n_records = int(head[236:244].decode("ascii").strip())
        record_seconds = float(head[244:252].decode("ascii").strip())
        n_signals = int(head[252:256].decode("ascii").strip())
    except ValueError as err:
        raise RecordingError(
            f"{path} does not have a valid EDF/BDF header ({err}). Check that it really is an "
            "EDF/BDF file; re-export it if it was written by a broken tool.",
            source=str(path)) from None
    with open(path, "rb") as f:
        f.seek(256 + 216 * n_signals)
        per_record_field = f.read(8 * n_signals)
    if size < header_bytes or len(per_record_field) < 8 * n_signals:
        raise RecordingError(
            f"{path} is truncated: its header is {header_bytes} bytes but the file has only "
            f"{size} bytes. Re-copy or re-export the file.", source=str(path))
    samples_per_record = [int(per_record_field[i * 8:(i + 1) * 8].decode("ascii").strip() or 0)
                          for i in range(n_signals)]
    bytes_per_sample = 3 if head[0:1] == b"\xff" else 2  # BDF marks its header with 0xFF
    record_bytes = sum(samples_per_record) * bytes_per_sample
    if n_records < 0 or record_bytes == 0:
        return  # -1: length unknown (recording not closed); MNE infers it from the file size
    expected = header_bytes + n_records * record_bytes
    if size < expected:
        complete = (size - header_bytes) // record_bytes
        raise RecordingError(
            f"{path} is truncated: the header promises {n_records} data records "
            f"({n_records * record_seconds:g} s, {expected} bytes) but the file has {size} "
            f"bytes ({complete} complete records, {complete * record_seconds:g} s). Re-copy or "
            "re-export the file; if the shorter recording is all there is, rewrite it with a "
            "correct header (e.g. read it with mne.io.read_raw_edf and export it again).",
            source=str(path))


def _is_quiet(verbose) -> bool:
    """True when an MNE ``verbose`` value hides warnings (False, "error", "critical", >= 40)."""
    if verbose is False:
        return True
    if isinstance(verbose, str):
        return verbose.lower() in ("error", "critical")
    return isinstance(verbose, int) and not isinstance(verbose, bool) and verbose >= 40


def _existing_file(path) -> Path:
    path = Path(path).expanduser()
    if not path.exists():
        hint = ""
        if not path.parent.exists():
            hint = f" (the folder {path.parent} does not exist either)"
        raise FileNotFoundError(
            f"Recording {path} not found{hint}. Check the path, or use 'sample:emotiv14' to try "
            "a shipped sample.")
    if path.is_dir() and path.suffix.lower() not in (".ds", ".mff", ".mefd"):
        raise RecordingError(
            f"{path} is a folder; pass one recording file inside it (for BIDS: the "
            "sub-*_eeg/_meg/_ieeg file).", source=str(path))
    return path


def _read_bids(path: Path, verbose) -> mne.io.BaseRaw:
    import mne_bids

    bids_path = mne_bids.get_bids_path_from_fname(path)
    return mne_bids.read_raw_bids(bids_path, verbose=verbose)


def _raise_on_duplicate_names(caught, path: Path) -> None:
    for warning in caught:
        match = _DUPLICATE_WARNING.search(str(warning.message))
        if match:
            names = match.group(1)
            raise RecordingError(
                f"{path} has duplicate channel names: {names}. neurofm cannot tell which "
                "position belongs to which copy. Rename or drop the duplicates in the file "
                "(e.g. raw.rename_channels / raw.drop_channels in MNE, then save it) and "
                "read it again.", source=str(path))
