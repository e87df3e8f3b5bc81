"""neurofm's protocols behind MOABB's splitter interface, to plug into MOABB evaluations.

MOABB's splitters (``moabb.evaluations.splitters``) take the labels and the metadata table a
paradigm returns (columns ``subject``, ``session``, ``run``) and yield ``(train, test)``
positions: ``split(y, metadata)``, ``get_n_splits(metadata)``. :class:`ProtocolSplitter` does
the same with any protocol of :data:`neurofm.eval.protocols.PROTOCOLS`, leak checks included,
so the same folds score a MOABB pipeline and a neurofm model::

    from moabb.evaluations import CrossSessionEvaluation

    class NeurofmCrossSession(CrossSessionEvaluation):
        def _create_splitter(self):          # MOABB's hook for an evaluation's splitter
            return ProtocolSplitter("cross-session")

An ``official`` split reads the metadata's ``split`` column (``"train"``/``"val"``/``"test"``);
the validation part is not yielded (MOABB pipelines fit on the training part). No MOABB import
is needed here.
"""

from __future__ import annotations

import numpy as np

from neurofm.eval.protocols import PROTOCOLS, Fold, make_folds


class ProtocolSplitter:
    """One neurofm protocol as a MOABB splitter.

    Parameters
    ----------
    protocol : str
        One of :data:`~neurofm.eval.protocols.PROTOCOLS`.
    n_folds : int
        Folds of ``cross-subject``, ``within-session`` and ``within-subject``.
    shots : int, optional
        K of ``few-shot``.
    random_state : int
        The seed of the random parts of the folds.
    """

    def __init__(self, protocol: str = "cross-session", n_folds: int = 5,
                 shots: int | None = None, random_state: int = 0):
        if protocol not in PROTOCOLS:
            raise ValueError(f"Unknown protocol {protocol!r}; expected one of: "
                             f"{', '.join(PROTOCOLS)}.")
        self.protocol, self.n_folds, self.shots = protocol, n_folds, shots
        self.random_state = random_state
        self._last: dict | None = None

    def folds(self, y, metadata) -> list[Fold]:
        """The folds of ``metadata`` (a DataFrame with ``subject`` and ``session`` columns)."""
        for column in ("subject", "session"):
            if column not in metadata:
                raise ValueError(f"The metadata has no {column!r} column; pass the metadata "
                                 "a MOABB paradigm's get_data returns.")
        split = metadata["split"].to_numpy(dtype=str) if "split" in metadata else None
        return make_folds(self.protocol, y=np.asarray(y),
                          subjects=metadata["subject"].to_numpy(dtype=str),
                          sessions=metadata["session"].to_numpy(dtype=str), split=split,
                          seed=self.random_state, n_folds=self.n_folds, shots=self.shots)

    def split(self, y, metadata):
        """Yield ``(train, test)`` positions into ``y`` / the rows of ``metadata``."""
        self._last = None
        for fold in self.folds(y, metadata):
            self._last = {"fold": fold.name}
            yield np.asarray(fold.train, int), np.asarray(fold.test, int)

    def get_n_splits(self, metadata=None, *args) -> int:
        """Number of folds of ``metadata``."""
        if metadata is None:
            raise ValueError("ProtocolSplitter.get_n_splits needs the metadata.")
        y = np.zeros(len(metadata))
        if self.protocol in ("within-session", "within-subject", "few-shot"):
            raise ValueError(f"The number of {self.protocol} folds depends on the labels; count "
                             "the folds of split(y, metadata).")
        return len(self.folds(y, metadata))

    def get_metadata(self) -> dict | None:
        """The name of the last fold yielded (MOABB records it beside the fold's score)."""
        return self._last
