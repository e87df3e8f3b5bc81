"""Evaluation: frozen probe and fine-tuning with protocols that cannot leak.

- :mod:`~neurofm.eval.protocols`: cross-subject, leave-one-subject-out, within-subject,
  few-shot and official folds; :func:`check_no_subject_leak`.
- :mod:`~neurofm.eval.metrics`: the field's metrics and mean ± std / 95 % CI summaries.
- :mod:`~neurofm.eval.inputs`: trials -> patched model inputs with the model's preprocessing.
- :mod:`~neurofm.eval.embeddings`: frozen, verified, cached embedding extraction.
- :mod:`~neurofm.eval.probe`: standardised logistic/ridge probe with inner-CV penalty search.
- :mod:`~neurofm.eval.finetune` / :mod:`~neurofm.eval.training`: fine-tuning and the shared
  early-stopping training loop.
- :mod:`~neurofm.eval.baselines`: log band power, filter-bank CSP, EEGNet, ShallowFBCSPNet.
- :mod:`~neurofm.eval.harness`: one method over seeds x folds; :mod:`~neurofm.eval.report`:
  results.json, markdown table, figures; :mod:`~neurofm.eval.run`: the whole run, set up by
  :mod:`~neurofm.eval.settings` (task configs, defaults < task config < flags).
"""

from neurofm.eval.embeddings import FrozenModelError, extract_embeddings, frozen
from neurofm.eval.metrics import (
    METRICS,
    classification_metrics,
    compute_metrics,
    regression_metrics,
    summarise,
)
from neurofm.eval.probe import ProbeFit, fit_probe
from neurofm.eval.protocols import (
    PROTOCOLS,
    Fold,
    SubjectLeakError,
    check_no_subject_leak,
    make_folds,
)

__all__ = [
    "METRICS",
    "PROTOCOLS",
    "Fold",
    "FrozenModelError",
    "ProbeFit",
    "SubjectLeakError",
    "check_no_subject_leak",
    "classification_metrics",
    "compute_metrics",
    "extract_embeddings",
    "fit_probe",
    "frozen",
    "make_folds",
    "regression_metrics",
    "summarise",
]
