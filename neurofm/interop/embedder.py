"""``Embedder``: a neurofm model as a scikit-learn transformer, for pipelines and MOABB.

::

    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score
    from sklearn.pipeline import make_pipeline

    pipe = make_pipeline(Embedder("runs/cc_base/model", info=epochs.info),
                         LogisticRegression(max_iter=1000))
    cross_val_score(pipe, epochs.get_data(), y, cv=5)

    # MOABB hands pipelines arrays in µV:
    pipelines = {"neurofm": make_pipeline(Embedder(model, info=info, units="uV"),
                                          LogisticRegression(max_iter=1000))}
"""

from __future__ import annotations

import mne
import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from neurofm.data.spec import as_spec
from neurofm.embedding import encode, load_encoder
from neurofm.interop.signals import UNITS, TrialPreprocessor


class Embedder(TransformerMixin, BaseEstimator):
    """Trials ``[n, C, T]`` to frozen embeddings ``[n, D]`` with a neurofm model.

    The model is stored as given and loaded in :meth:`fit`, so :func:`sklearn.base.clone` (and
    so ``cross_val_score``, grid search and MOABB) make independent copies. Its preprocessing
    (channel kinds, scale, band, notch, sampling rate) is applied inside, by the code evaluation
    runs (:func:`neurofm.eval.inputs.prepare_trials`). Nothing is fitted on the data: the
    embedding is the frozen model's.

    Parameters
    ----------
    model : BrainEncoder, str or path
        A model, or anything :func:`neurofm.from_pretrained` accepts (a folder, a Hub id,
        ``"cbramod:SRC"`` / ``"labram:SRC"``, a registered name for a random initialisation).
    info : mne.Info, optional
        The channels of the arrays (names, types, positions) and their sampling rate. May be
        left out when :meth:`fit` is given MNE Epochs (their ``info`` is used).
    pool : {"mean", None}
        ``"mean"``: the model's pooled embedding, ``[n, D]``. None: one vector per channel,
        concatenated in channel order, ``[n, C * D]``; for models that merge channels into K
        latent channels (``mamba_small``: 8) the K latents, ``[n, K * D]``.
    units : {"V", "uV"}
        Unit of the arrays' EEG values: "V" as MNE and braindecode keep them, "uV" for MOABB's
        arrays. Epochs are always read in volts.
    batch_size : int
        Trials per forward pass.
    device : str
    random_state : int or None
        Seed of the weights when ``model`` is a registered name (random initialisation), so that
        every clone embeds alike; None leaves torch's global generator as it is.

    Attributes
    ----------
    model_ : BrainEncoder
        The loaded model (set by :meth:`fit`).
    preprocessor_ : TrialPreprocessor
        The sensors and preprocessing applied to the arrays.
    n_features_out_ : int
        ``D``, or ``C' * D`` with ``pool=None``.
    """

    def __init__(self, model, info: mne.Info | None = None, pool: str | None = "mean",
                 units: str = "V", batch_size: int = 64, device: str = "cpu",
                 random_state: int | None = 0):
        self.model = model
        self.info = info
        self.pool = pool
        self.units = units
        self.batch_size = batch_size
        self.device = device
        self.random_state = random_state

    def fit(self, X, y=None):
        """Load the model and read the sensors; nothing is learned from ``X``.

        Parameters
        ----------
        X : array-like of shape [n, C, T], or mne.BaseEpochs
        y : ignored
        """
        info = X.info if isinstance(X, mne.BaseEpochs) else self.info
        if info is None:
            raise ValueError("Embedder needs the channels and sampling rate of the arrays: pass "
                             "info=epochs.info (an mne.Info), or fit on MNE Epochs.")
        if self.pool not in ("mean", None):
            raise ValueError(f"pool must be 'mean' or None (one vector per channel); got "
                             f"{self.pool!r}.")
        if self.units not in UNITS:
            raise ValueError(f"units must be one of {list(UNITS)}; got {self.units!r}.")
        with torch.random.fork_rng(enabled=self.random_state is not None):
            if self.random_state is not None:
                torch.manual_seed(self.random_state)
            self.model_ = load_encoder(self.model, device=self.device)
        spec = as_spec(self.model_.preprocessing, where="the model's preprocessing")
        self.preprocessor_ = TrialPreprocessor(info, spec, units=self.units,
                                               source="Embedder input")
        self.n_features_out_ = self._transform(X[:1]).shape[1]
        return self

    def transform(self, X) -> np.ndarray:
        """Embeddings of the trials.

        Parameters
        ----------
        X : array-like of shape [n, C, T], or mne.BaseEpochs
            The channels of ``info`` at its sampling rate.

        Returns
        -------
        ndarray of float32, shape [n, D] (``pool=None``: [n, C' * D])
        """
        check_is_fitted(self, "model_")
        return self._transform(X)

    def _transform(self, X) -> np.ndarray:
        if isinstance(X, mne.BaseEpochs):
            inputs = self.preprocessor_(X.get_data(copy=False), units="V")
        else:
            inputs = self.preprocessor_(X)
        z = encode(self.model_, inputs.x, inputs.patch_valid, inputs.sensors, pool=self.pool,
                   batch_size=self.batch_size, device=self.device)
        return z.reshape(len(z), -1)
