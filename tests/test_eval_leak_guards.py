"""Leak guards: every fitting step of an evaluation touches only its fold's training part.

A spy follows the trial indices each step reads, at the level that sees indices:

- the linear probe (``fit_probe``; its rows are mapped back to trials by their features), the
  fits and scores of its inner penalty search (``Pipeline.fit`` / ``Pipeline.predict`` inside
  it), and its test predictions;
- the training loop shared by fine-tuning and the supervised baselines
  (``neurofm.eval.training._batches``: the fit batches, the early-stopping loss, the
  predictions), which is also how windows left on disk are read;
- the filter-bank CSP fits.

Each run goes through :func:`neurofm.eval.run.run_evaluation`, so the wiring from the folds to
each step is what is checked. Then every step must stay inside the fold's training part (and its
validation part where the protocol has one), early stopping must see other subjects (or trials)
than the fit when the fold has no validation part, and the predictions must be the test side.
A leaky fold handed to the harness raises before anything is fitted.
"""

from __future__ import annotations

import functools
import sys
from collections import defaultdict

import numpy as np
import pytest
import sklearn.pipeline
from eval_helpers import alpha_trials

import neurofm.eval.baselines as baselines_module
import neurofm.eval.probe as probe_module
import neurofm.eval.run as run_module
import neurofm.eval.training as training_module
from neurofm import compat
from neurofm.datasets.trials import TrialSet
from neurofm.eval.harness import TaskInfo, run_method
from neurofm.eval.protocols import Fold, SessionLeakError, SubjectLeakError, split_from_groups
from neurofm.eval.run import EvalSettings

TINY = {"dim": 16, "depth": 1, "n_heads": 2, "ffn_dim": 32}
TRAIN = {"epochs": 2, "min_steps_per_epoch": 2, "patience": 1, "batch_size": 8}
LOOP_STEPS = {"_epoch_batches": "fit", "evaluate_loss": "early stopping", "predict": "predict"}


class FitSpy:
    """Records ``(method, fold, step, trial indices)`` for every fitting step of a run."""

    def __init__(self, monkeypatch):
        self.events: list[tuple[str, Fold, str, np.ndarray]] = []
        self.method: str | None = None
        self.fold: Fold | None = None
        self.rows: dict[bytes, int] = {}
        self.in_probe = False
        self._spy_harness(monkeypatch)
        self._spy_probe(monkeypatch)
        self._spy_training_loop(monkeypatch)
        self._spy_csp(monkeypatch)

    def record(self, step: str, index) -> None:
        self.events.append((self.method, self.fold, step, np.sort(np.asarray(index, int))))

    def ids(self, features) -> np.ndarray:
        """The trials whose probe features are the rows of ``features``."""
        return np.array([self.rows[np.asarray(r, np.float64).tobytes()] for r in features])

    def _spy_harness(self, monkeypatch):
        real = run_module.run_method

        def run_method_spied(name, fit_predict, task, folds_by_seed, **kwargs):
            def spied(seed, fold):
                self.method, self.fold = name, fold
                return fit_predict(seed, fold)
            return real(name, spied, task, folds_by_seed, **kwargs)

        monkeypatch.setattr(run_module, "run_method", run_method_spied)

    def _spy_probe(self, monkeypatch):
        on_fold, fit_probe = probe_module.fit_probe_on_fold, probe_module.fit_probe
        pipeline_fit, pipeline_predict = sklearn.pipeline.Pipeline.fit, \
            sklearn.pipeline.Pipeline.predict

        def on_fold_spied(z, y, subjects, fold, **kwargs):
            self.rows = {np.asarray(r, np.float64).tobytes(): i for i, r in enumerate(z)}
            assert len(self.rows) == len(z), "probe features must identify their trials"
            return on_fold(z, y, subjects, fold, **kwargs)

        def fit_probe_spied(z, y, *, validation=None, **kwargs):
            self.record("probe fit", self.ids(z))
            if validation is not None:
                self.record("probe validation", self.ids(validation[0]))
            self.in_probe = True
            try:
                return fit_probe(z, y, validation=validation, **kwargs)
            finally:
                self.in_probe = False

        @functools.wraps(pipeline_fit)  # sklearn looks the methods up by their names
        def fit_spied(pipeline, X, y=None, **params):
            if self.in_probe:
                self.record("search fit", self.ids(X))
            return pipeline_fit(pipeline, X, y, **params)

        @functools.wraps(pipeline_predict)
        def predict_spied(pipeline, X, **params):
            self.record("search score" if self.in_probe else "probe predict", self.ids(X))
            return pipeline_predict(pipeline, X, **params)

        for module in (run_module, baselines_module):
            monkeypatch.setattr(module, "fit_probe_on_fold", on_fold_spied)
        monkeypatch.setattr(probe_module, "fit_probe", fit_probe_spied)
        monkeypatch.setattr(sklearn.pipeline.Pipeline, "fit", fit_spied)
        monkeypatch.setattr(sklearn.pipeline.Pipeline, "predict", predict_spied)

    def _spy_training_loop(self, monkeypatch):
        real = training_module._batches

        def batches_spied(arrays, index, *args, **kwargs):
            caller = sys._getframe(1).f_code.co_name  # may carry a prefix (mutation tools)
            self.record(next(step for name, step in LOOP_STEPS.items() if name in caller), index)
            return real(arrays, index, *args, **kwargs)

        monkeypatch.setattr(training_module, "_batches", batches_spied)

    def _spy_csp(self, monkeypatch):
        from mne.decoding import CSP

        real = CSP.fit

        def fit_spied(csp, X, y, *args, **kwargs):
            self.record("csp fit", np.arange(len(X)))  # rows only: filtered trials carry no id
            return real(csp, X, y, *args, **kwargs)

        monkeypatch.setattr(CSP, "fit", fit_spied)

    def by_run(self) -> dict[tuple[str, str], list[tuple[str, np.ndarray]]]:
        runs = defaultdict(list)
        for method, fold, step, index in self.events:
            runs[method, fold.name].append((step, index))
        return runs


def _groups(subjects, sessions, index) -> set:
    return set(zip(subjects[index], sessions[index]))


def check_every_step(spy: FitSpy, trials: TrialSet, *, level: str) -> dict[str, set]:
    """Assert the fold rules on every recorded step; returns the steps seen per method."""
    subjects, sessions = np.asarray(trials.subject), np.asarray(trials.session)
    unit = (lambda i: set(subjects[i])) if level == "subject" else \
        (lambda i: _groups(subjects, sessions, i))
    folds = {(m, f.name): f for m, f, _, _ in spy.events}
    seen: dict[str, set] = defaultdict(set)
    for key, events in spy.by_run().items():
        fold, where = folds[key], f"{key[0]} {key[1]}"
        train, test = set(fold.train), set(fold.test)
        val = set() if fold.val is None else set(fold.val)
        assert not train & val and not train & test, f"{where}: train overlaps val or test"
        fitted: set = set()
        search_fit: set | None = None
        for step, index in events:
            seen[key[0]].add(step)
            idx = set(index.tolist())
            if step == "probe fit":
                assert idx == train, f"{where}: the probe was fitted on other trials than train"
            elif step == "probe validation":
                assert val and idx == val, f"{where}: the penalty was chosen off the val part"
            elif step == "search fit":
                assert idx <= train, f"{where}: the penalty search fitted outside train"
                search_fit = idx
            elif step == "search score":
                assert idx <= (val or train), f"{where}: the penalty search scored outside " \
                                               "the fold's fitting part"
                assert search_fit is not None and not idx & search_fit, where
                if not val and len(unit(fold.train)) >= 3:
                    assert not unit(index) & unit(np.array(sorted(search_fit))), \
                        f"{where}: an inner validation fold shares {level}s with its fit"
            elif step == "fit":
                assert idx <= train, f"{where}: training batches outside the training part"
                fitted |= idx
            elif step == "early stopping":
                if val:
                    assert idx == val, f"{where}: early stopping off the validation part"
                else:
                    assert idx <= train and not idx & fitted, \
                        f"{where}: early stopping on trials that are not held-out train trials"
                    fit_units, val_units = unit(np.array(sorted(fitted))), unit(index)
                    if len(unit(fold.train)) >= 3:  # whole held-out subjects, the smaller part
                        assert not fit_units & val_units, where
                        assert len(val_units) < len(fit_units), \
                            f"{where}: the validation part is larger than the fit part"
            elif step in ("predict", "probe predict"):
                assert idx == test, f"{where}: predictions are not the test side"
            elif step == "csp fit":
                assert len(idx) == len(train), f"{where}: CSP fitted on {len(idx)} trials, " \
                                               f"the training part has {len(train)}"
            else:
                raise AssertionError(f"unknown step {step}")
    return seen


def _trials(n_subjects=6, sessions=False, split=None, per_class=4) -> TrialSet:
    base = alpha_trials(n_subjects=n_subjects, per_class=per_class, seed=3)
    session = None
    if sessions:  # each class of each subject: half its trials in session A, half in B
        session = np.array([("A", "B")[i % 4 >= 2] for i in range(len(base))])
    return TrialSet(base.name, base.X, base.y, base.subject, base.sfreq, base.sensors,
                    class_names=base.class_names, split=split, session=session)


def _official_split(trials: TrialSet) -> np.ndarray:
    return split_from_groups(trials.subject, trials.session,
                             {"train": ["S00", "S01", "S02"], "val": ["S03"],
                              "test": ["S04", "S05"]})


def _run(tmp_path, trials, *, mode, protocol, baselines=(), **extra):
    settings = EvalSettings(model="criss_cross_small", data="synthetic", out=str(tmp_path / "o"),
                            mode=mode, protocol=protocol, seeds=1, n_folds=2, pool="mean",
                            model_overrides=TINY, baselines=list(baselines), importance=False,
                            cache_dir=str(tmp_path / "cache"), train=TRAIN, **extra)
    return run_module.run_evaluation(settings, trials=trials)


SUPERVISED = ["eegnet"] if compat.braindecode_available() else []


@pytest.mark.parametrize("protocol", ["cross-subject", "official"])
def test_probe_and_baselines_fit_inside_the_training_part(protocol, tmp_path, monkeypatch):
    trials = _trials()
    if protocol == "official":
        trials = trials.with_split(_official_split(trials))
    spy = FitSpy(monkeypatch)
    payload = _run(tmp_path, trials, mode="probe", protocol=protocol,
                   baselines=["bandpower", "fbcsp", *SUPERVISED])
    assert not [e for m in payload["methods"] for e in m["skipped_folds"]]
    seen = check_every_step(spy, trials, level="subject")
    probe_steps = {"probe fit", "probe predict", "search fit", "search score"}
    if protocol == "official":
        probe_steps.add("probe validation")
    assert seen["criss_cross_small (random-init) probe"] == probe_steps
    assert seen["log band power + LR (classic)"] == probe_steps
    assert seen["filter-bank CSP + LR (classic)"] == probe_steps | {"csp fit"}
    for name in SUPERVISED:
        assert seen[baselines_module.SUPERVISED_LABELS[name]] == \
            {"fit", "early stopping", "predict"}


@pytest.mark.parametrize("protocol", ["cross-subject", "official"])
def test_finetuning_fits_and_early_stops_inside_the_training_part(protocol, tmp_path,
                                                                 monkeypatch):
    trials = _trials()
    if protocol == "official":
        trials = trials.with_split(_official_split(trials))
    spy = FitSpy(monkeypatch)
    _run(tmp_path, trials, mode="finetune", protocol=protocol, freeze="none")
    seen = check_every_step(spy, trials, level="subject")
    assert seen == {"criss_cross_small (random-init) finetune (none)":
                    {"fit", "early stopping", "predict"}}
    assert len(spy.by_run()) == (2 if protocol == "cross-subject" else 1)


def test_cross_session_runs_never_fit_on_the_tested_session(tmp_path, monkeypatch):
    trials = _trials(n_subjects=2, sessions=True)
    spy = FitSpy(monkeypatch)
    _run(tmp_path, trials, mode="probe", protocol="cross-session", baselines=["bandpower"])
    seen = check_every_step(spy, trials, level="session")
    assert seen["criss_cross_small (random-init) probe"] >= {"probe fit", "probe predict"}
    assert len(spy.by_run()) == 2 * 4  # two rows x (2 subjects x 2 sessions)


def test_cross_session_finetuning_never_early_stops_on_the_tested_session(tmp_path,
                                                                           monkeypatch):
    trials = _trials(n_subjects=2, sessions=True, per_class=8)
    spy = FitSpy(monkeypatch)
    _run(tmp_path, trials, mode="finetune", protocol="cross-session", freeze="none")
    seen = check_every_step(spy, trials, level="session")
    assert seen == {"criss_cross_small (random-init) finetune (none)":
                    {"fit", "early stopping", "predict"}}
    subjects, sessions = np.asarray(trials.subject), np.asarray(trials.session)
    for (_, fold_name), events in spy.by_run().items():
        tested = {s for step, i in events if step == "predict" for s in sessions[i]}
        for step, index in events:
            if step != "predict":
                assert len(set(subjects[index])) == 1, fold_name  # one subject's own sessions
                assert not set(sessions[index]) & tested, (fold_name, step)


# ---- the harness refuses leaky folds -----------------------------------------------------------

def _never_called(seed, fold):
    raise AssertionError(f"{fold.name} was fitted although it leaks")


SUBJECTS = np.repeat(["S1", "S2", "S3"], 4)
SESSIONS = np.tile(np.repeat(["a", "b"], 2), 3)
TASK = TaskInfo(np.tile([0, 1], 6), SUBJECTS, "binary", 2, sessions=SESSIONS)


@pytest.mark.parametrize("skip_errors", [True, False])
def test_a_fold_with_a_subject_on_both_sides_raises_in_the_harness(skip_errors):
    leaky = Fold("leaky", np.arange(0, 6), np.arange(4, 12), subject_level=True)  # S2 both sides
    with pytest.raises(SubjectLeakError, match=r"Subject leak in leaky.*S2"):
        run_method("m", _never_called, TASK, {0: [leaky]}, skip_errors=skip_errors)


def test_a_validation_part_sharing_a_subject_with_the_test_side_raises_in_the_harness():
    leaky = Fold("val-leak", np.arange(0, 4), np.arange(8, 12), subject_level=True,
                 val=np.arange(6, 10))  # S3 in val and test
    with pytest.raises(SubjectLeakError, match="S3"):
        run_method("m", _never_called, TASK, {0: [leaky]})


def test_a_cross_session_fold_with_a_session_on_both_sides_raises_in_the_harness():
    train = np.array([0, 1, 2])  # S1 session a (0, 1) and b (2)
    leaky = Fold("S1-session-b", train, np.array([3]), subject_level=False, session_level=True)
    with pytest.raises(SessionLeakError, match="S1 session b"):
        run_method("m", _never_called, TASK, {0: [leaky]})
    clean = Fold("S1-session-b", np.array([0, 1]), np.array([2, 3]), False, session_level=True)
    result = run_method("m", lambda seed, fold: (TASK.y[fold.test], None, {}), TASK, {0: [clean]})
    assert result.folds[0]["metrics"]["balanced_accuracy"] == 1.0


def test_the_harness_scores_truth_against_prediction():
    """Balanced accuracy of (truth, prediction): recall per true class. Swapped, it would be
    recall per predicted class, another number for these predictions."""
    from sklearn.metrics import balanced_accuracy_score

    fold = Fold("S3", np.arange(0, 8), np.arange(8, 12), subject_level=True)
    truth = TASK.y[fold.test]                      # [0, 1, 0, 1]
    pred = np.array([0, 0, 0, 1])
    proba = np.eye(2)[pred]
    result = run_method("m", lambda seed, f: (pred, proba, {}), TASK, {0: [fold]})
    want = balanced_accuracy_score(truth, pred)
    assert want != balanced_accuracy_score(pred, truth)
    assert result.folds[0]["metrics"]["balanced_accuracy"] == pytest.approx(want)  # 0.75


# ---- the fold builders refuse the leaky folds they would build ---------------------------------

@pytest.mark.parametrize("protocol", ["cross-subject", "loso"])
def test_a_fold_builder_that_put_a_test_trial_in_training_raises(protocol, monkeypatch):
    """A builder bug that puts a test trial on the training side too (simulated by building
    each fold with the first test trial added to its training part) is refused where the folds
    are built, before the harness sees them."""
    from neurofm.eval import protocols

    real = protocols.Fold

    def leaky_fold(name, train, test, *args, **kwargs):
        return real(name, np.append(train, test[:1]), test, *args, **kwargs)

    monkeypatch.setattr(protocols, "Fold", leaky_fold)
    with pytest.raises(SubjectLeakError, match="Subject leak"):
        protocols.make_folds(protocol, y=TASK.y, subjects=SUBJECTS, seed=0, n_folds=3)
