"""Clinical data sets that are not where the spec says: one error naming where to put them.

None of the clinical loaders downloads (TUH needs a registration; CHB-MIT, Sleep-EDF and SEED-V
are large, and evaluation never downloads). They check their folder first and stop with a
:class:`~neurofm.datasets.moabb_files.MissingDataError` that names the data set, the folder
looked in, the layout expected there and where the files are obtained.
"""

from __future__ import annotations

from pathlib import Path

from neurofm.datasets.moabb_files import MissingDataError


def missing_data(*, dataset: str, folder, layout: str, source: str) -> MissingDataError:
    """The error to raise when ``dataset`` is not in ``folder``.

    Parameters
    ----------
    dataset : str
        ``"TUAB"``, ``"CHB-MIT"`` ...
    folder : path-like
        Where the loader looked.
    layout : str
        The files expected there (``"edf/{train,eval}/{normal,abnormal}/01_tcp_ar/*.edf"``).
    source : str
        Where the data set is obtained.
    """
    folder = Path(folder).expanduser()
    return MissingDataError(
        dataset, str(folder), "", missing=f"expected {layout}",
        how=(f"obtain it from {source} and put it so that {folder} holds {layout} (or pass the "
             "folder that does), then run again."))
