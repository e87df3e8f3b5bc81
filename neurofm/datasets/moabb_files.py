"""MOABB's files on disk: find them without downloading, or download them on request.

Evaluation never downloads. :func:`check_moabb_files` asks each subject's
``dataset.data_path(subject)`` (the dataset's own file list, MOABB's code) while
:func:`no_downloads` is active: MOABB's file fetcher (``pooch.retrieve``, as
``moabb.datasets.download.data_dl`` calls it) only answers for files already on disk, NEMAR
fetches and any network connection raise instead. A missing file stops the check with one
:class:`MissingDataError` that names the dataset, the folder looked in and the command that
downloads it (``neurofm datasets download moabb:NAME``, MOABB's own download, with
``--accept`` where the dataset needs its licence accepted). Loading runs under the same guard,
so a dataset whose loader would still reach the network fails the same way instead of
downloading.

MOABB may keep a dataset in two places: where its upstream URLs are stored
(``<MNE data>/MNE-<sign>-data/...``) and, for datasets mirrored on NEMAR, a NEMAR store
(``<MNE data>/NEMAR/<id>/sourcedata``). Both count; files found in the NEMAR store are linked to
the upstream place by MOABB's own code, as its loader would.

MOABB is an optional extra: :func:`require_moabb` names it when it is missing.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import os
import socket
from pathlib import Path

from neurofm.compat import MissingExtraError  # re-exported: neurofm.datasets.MissingExtraError

#: The pip command that installs MOABB for neurofm.
MOABB_EXTRA = "pip install 'neurofm[moabb]'"


class MissingDataError(FileNotFoundError):
    """A data set is not on disk, and evaluation does not download.

    Attributes
    ----------
    dataset : str
        The data set (``"moabb:BNCI2014_001"``).
    folder : str
        The folder looked in.
    command : str
        The command that downloads it ("" when no command does: ``how`` says what to do).
    how : str, optional
        What to do instead of running ``command`` (where to obtain the files and where to put
        them), for data sets that need a registration or a manual download.
    """

    def __init__(self, dataset: str, folder: str, command: str, missing: str = "",
                 how: str | None = None):
        self.dataset, self.folder, self.command = dataset, folder, command
        what = f" ({missing})" if missing else ""
        todo = how or (f"download it once with `{command}` (MOABB's own download) and run "
                       "again.")
        super().__init__(f"{dataset} is not on disk: looked in {folder}{what}. neurofm does not "
                         f"download data while evaluating; {todo}")


class _Blocked(Exception):
    """Raised inside :func:`no_downloads` where MOABB would download (not an ``OSError``, so
    network code neither retries nor wraps it)."""

    def __init__(self, what: str, folder: str | None = None):
        super().__init__(what)
        self.what, self.folder = what, folder


def require_moabb():
    """The ``moabb`` module.

    Raises
    ------
    MissingExtraError
        MOABB is not installed (the message gives the pip command of the ``moabb`` extra).
    """
    try:
        return importlib.import_module("moabb")
    except ImportError:
        raise MissingExtraError(f"MOABB data sets (moabb:NAME) need the optional dependency "
                                f"MOABB; install it with `{MOABB_EXTRA}` (or `pip install "
                                "moabb`).") from None


def mne_data_folder() -> Path:
    """Where MNE and MOABB keep data sets: ``MNE_DATA`` (environment or MNE config), else
    ``~/mne_data``."""
    import mne

    folder = mne.get_config("MNE_DATA")
    return Path(folder).expanduser() if folder else Path.home() / "mne_data"


def download_command(name: str, dataset=None) -> str:
    """``neurofm datasets download moabb:NAME`` (with ``--accept`` when the licence must be
    accepted)."""
    accept = " --accept" if dataset is not None and needs_licence(dataset) else ""
    return f"neurofm datasets download moabb:{name}{accept}"


def needs_licence(dataset) -> bool:
    """Whether MOABB downloads ``dataset`` only with ``accept=True`` (its licence accepted)."""
    return "accept" in inspect.signature(dataset.data_path).parameters or \
        "accept" in inspect.signature(type(dataset).__init__).parameters


@contextlib.contextmanager
def no_downloads():
    """Within this block MOABB finds files on disk but cannot download.

    ``pooch.retrieve`` (MOABB's fetcher) returns a file that exists and raises for one that
    does not; NEMAR downloads, host-name lookups and internet connections raise; MOABB's
    download provider is ``upstream`` (no NEMAR prefetch). Yields the list of refused attempts
    (``(what, folder)``), so a caller notices one that the loader caught and swallowed.
    """
    require_moabb()
    import pooch
    from moabb.datasets import base as moabb_base
    from moabb.datasets import download as moabb_download

    refused: list[tuple[str, str | None]] = []

    def refuse(what: str, folder=None):
        refused.append((what, None if folder is None else str(folder)))
        raise _Blocked(what, None if folder is None else str(folder))

    def retrieve_local(url, known_hash=None, fname=None, path=None, *args, **kwargs):
        if path is not None and fname is not None and (Path(path) / fname).is_file():
            return str(Path(path) / fname)
        return refuse(f"{fname or url} (from {url})", path)

    def refuse_nemar(*args, **kwargs):
        return refuse("the NEMAR mirror")

    def refuse_lookup(host, *args, **kwargs):
        return refuse(f"a network connection to {host}")

    real_connect = socket.socket.connect

    def connect_local(sock, address):
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            return refuse(f"a network connection to {address}")
        return real_connect(sock, address)

    patches = [(pooch, "retrieve", retrieve_local), (moabb_download, "retrieve", retrieve_local),
               (moabb_download, "nemar_dl", refuse_nemar),
               (moabb_download, "nemar_sourcedata_dl", refuse_nemar),
               (moabb_base, "nemar_dl", refuse_nemar),
               (moabb_base, "nemar_sourcedata_dl", refuse_nemar),
               (socket, "getaddrinfo", refuse_lookup), (socket, "create_connection", refuse_lookup),
               (socket.socket, "connect", connect_local)]
    saved = [(owner, attr, getattr(owner, attr)) for owner, attr, _ in patches]
    provider = os.environ.get("MOABB_DOWNLOAD_PROVIDER")
    os.environ["MOABB_DOWNLOAD_PROVIDER"] = "upstream"
    for owner, attr, replacement in patches:
        setattr(owner, attr, replacement)
    try:
        yield refused
    finally:
        for owner, attr, original in saved:
            setattr(owner, attr, original)
        if provider is None:
            os.environ.pop("MOABB_DOWNLOAD_PROVIDER", None)
        else:
            os.environ["MOABB_DOWNLOAD_PROVIDER"] = provider


def check_moabb_files(dataset, subjects, *, name: str) -> dict[int, list[Path]]:
    """The files of each subject of ``dataset``, checked to be on disk, nothing downloaded.

    Parameters
    ----------
    dataset : moabb.datasets.base.BaseDataset
    subjects : list of int
    name : str
        The dataset's name in messages and in the download command (``"BNCI2014_001"``).

    Returns
    -------
    dict of int -> list of Path
        ``dataset.data_path(subject)`` per subject (empty for data made in memory, such as
        ``FakeDataset``'s).

    Raises
    ------
    MissingDataError
        The first subject with a file not on disk: the dataset, the folder looked in and the
        download command.
    """
    files = {}
    for subject in subjects:
        with _nemar_store(dataset, subject), no_downloads() as refused:
            try:
                found = dataset.data_path(subject)
            except _Blocked as blocked:
                raise missing_data_error(dataset, name, blocked.what, blocked.folder) from None
        if refused:
            raise missing_data_error(dataset, name, *refused[0])
        files[subject] = [Path(p) for p in _flatten(found)]
    return files


def missing_data_error(dataset, name: str, what: str, folder: str | None) -> MissingDataError:
    """The :class:`MissingDataError` for ``dataset`` when ``what`` could not be found."""
    where = folder if folder else str(mne_data_folder())
    return MissingDataError(f"moabb:{name}", where, download_command(name, dataset),
                            missing=f"missing: {what}")


@contextlib.contextmanager
def _nemar_store(dataset, subject):
    """Serve files from the dataset's NEMAR store when it holds ``subject`` (MOABB links them to
    the upstream place); otherwise nothing."""
    from moabb.datasets import download as moabb_download

    nemar_id = getattr(dataset, "nemar_id", None)
    store = None
    if nemar_id is not None:
        root = moabb_download.nemar_store(dataset.code, nemar_id)
        if moabb_download.nemar_sourcedata_is_local(root, subject):
            store = root / "sourcedata"
    with moabb_download.active_sourcedata_store(store):
        yield


def _flatten(found) -> list:
    if found is None:
        return []
    if isinstance(found, (str, os.PathLike)):
        return [found]
    out = []
    for item in found:
        out += _flatten(item)
    return out


def download_moabb(dataset, name: str, *, subjects=None, accept: bool = False) -> dict:
    """Download ``dataset`` with MOABB's own download, then check every file is on disk.

    Parameters
    ----------
    dataset : moabb.datasets.base.BaseDataset
    name : str
        Its name (``"BNCI2014_001"``), for messages.
    subjects : list of int, optional
        Default: every subject.
    accept : bool
        Accept the dataset's licence (datasets that need it refuse without).

    Returns
    -------
    dict of int -> list of Path
        The files of each subject.

    Raises
    ------
    ValueError
        A dataset that needs its licence accepted, without ``accept``.
    """
    subjects = list(dataset.subject_list if subjects is None else subjects)
    if needs_licence(dataset) and not accept:
        doi = f" (doi:{dataset.doi})" if getattr(dataset, "doi", None) else ""
        raise ValueError(f"{name} may only be downloaded after accepting its licence{doi}; read "
                         f"it, then run `neurofm datasets download moabb:{name} --accept`.")
    dataset.download(subject_list=subjects, accept=accept)
    return check_moabb_files(dataset, subjects, name=name)
