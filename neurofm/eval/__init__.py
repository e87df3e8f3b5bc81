"""Evaluation: frozen probe and fine-tuning with protocols that cannot leak.

- :mod:`~neurofm.eval.protocols`: cross-subject, leave-one-subject-out, cross-session,
  within-session, within-subject, few-shot and official folds; :func:`check_no_subject_leak`,
  :func:`check_no_session_leak`; :mod:`~neurofm.eval.splitters`: the same protocols behind
  MOABB's splitter interface.
- :mod:`~neurofm.eval.metrics`: the field's metrics and mean ± std / 95 % CI summaries.
- :mod:`~neurofm.eval.inputs`: trials -> patched model inputs with the model's preprocessing;
  :mod:`~neurofm.eval.task_preprocessing`: whose preprocessing applies (the paper's or the
  model's) and every difference from the model's.
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
    GroupLeakError,
    SessionLeakError,
    SubjectLeakError,
    check_no_session_leak,
    check_no_subject_leak,
    make_folds,
)

__all__ = [
    "METRICS",
    "PROTOCOLS",
    "Fold",
    "FrozenModelError",
    "GroupLeakError",
    "ProbeFit",
    "SessionLeakError",
    "SubjectLeakError",
    "check_no_session_leak",
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
