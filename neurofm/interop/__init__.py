"""neurofm models inside the tools BCI researchers already use.

- :class:`~neurofm.interop.embedder.Embedder`: a scikit-learn transformer, ``[n, C, T]`` arrays
  (or MNE Epochs) to embeddings ``[n, D]``, for ``Pipeline``, ``cross_val_score`` and MOABB
  evaluations.
- :class:`~neurofm.interop.braindecode_model.NeuroFM`: a braindecode model (``EEGModuleMixin``),
  ``[B, C, T]`` to ``[B, n_outputs]``, trainable in braindecode's ``EEGClassifier``. It needs the
  ``braindecode`` extra; this package imports without it, and ``neurofm.interop.NeuroFM`` says
  what to install.

Both take ``model=`` as everything else does: a model object, a folder, a Hub id,
``"cbramod:SRC"`` / ``"labram:SRC"``, or a registered name (random initialisation), and apply the
model's preprocessing (channel kinds, scale, band, notch, sampling rate) inside, through the code
evaluation uses (:func:`neurofm.eval.inputs.prepare_trials`).
"""

from neurofm.interop.embedder import Embedder
from neurofm.interop.signals import TrialPreprocessor, info_from_chs

__all__ = ["Embedder", "NeuroFM", "TrialPreprocessor", "info_from_chs"]


def __getattr__(name):
    """``NeuroFM`` on first use: importing it needs braindecode (the ``braindecode`` extra)."""
    if name == "NeuroFM":
        from neurofm.interop.braindecode_model import NeuroFM

        return NeuroFM
    raise AttributeError(f"module 'neurofm.interop' has no attribute {name!r}")
