"""Evaluation of segment sets: scores per contact (``--target channel``) or per recording.

:func:`run_segment_evaluation` is what ``neurofm probe`` / ``neurofm finetune`` run when the data
set is a :class:`~neurofm.datasets.segments.SegmentSet` (``omni-ieeg:``, ``ieeg-bids:``): the
recordings each keep their own contacts, and the labels belong to contacts or recordings.

* **Folds** are over units grouped by participant (:func:`unit_folds`): ``official`` (the
  release's split; its ``val`` part chooses the probe's penalty and early-stops fine-tuning, as
  the BCI ``official`` protocol does; a ``fold`` column instead gives one fold per value),
  ``cross-subject`` (participants shuffled into ``n_folds``) or ``loso``. Every fold is
  leak-checked: no participant on both sides.
* **Segments** (:mod:`neurofm.datasets.segments`): a training unit uses up to
  ``train_segments`` segments of its recording drawn at random (per seed, fold and recording),
  a validation or test unit every segment; a unit's score is the mean of its segments'
  positive-class probabilities.
* **Rows**: the frozen probe (:func:`neurofm.eval.probe.fit_probe`, logistic regression with
  balanced class weights) is fitted on one row per labelled training unit and segment — the
  contact's features averaged over the segment's patches, or the segment's embedding;
  fine-tuning (:mod:`neurofm.eval.segment_finetune`) trains a head on the same features with the
  backbone frozen, partly or wholly trained. Units without a label (contacts the SOZ rule
  excludes) are scored too: the predicted resection ratio sums over them.
* **Metrics** (:mod:`neurofm.eval.channel_metrics`): AUROC, AUC-PR; balanced accuracy and F1 at
  the training units' Youden threshold; the test-chosen Youden threshold and its figures (the
  authors', marked); the outcome AUROC of the predicted resection ratio (contacts). Per fold,
  and pooled over the folds of each seed.
* **Band**: ``results.json`` → ``preprocessing.band`` states the band the model saw and what
  the task loses by it (:func:`band_statement`): iEEG is recorded at 1–2 kHz, and high-frequency
  oscillations (ripples 80–250 Hz, fast ripples 250–500 Hz) lie above a 200-Hz model's band.
"""

from __future__ import annotations

import csv
import math
import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from neurofm._version import __version__
from neurofm.datasets.segments import SegmentSet
from neurofm.eval import report
from neurofm.eval.baselines import BANDS, log_band_power
from neurofm.eval.channel_metrics import (
    CONTACT_METRICS,
    HEADLINE,
    UNIT_METRICS,
    at_threshold,
    outcome_auroc,
    resection_ratio,
    unit_metrics,
    youden_threshold,
)
from neurofm.eval.metrics import format_summary, summarise_runs
from neurofm.eval.model_loading import load_model, model_record
from neurofm.eval.probe import fit_probe
from neurofm.eval.protocols import Fold, check_fold, fold_groups, make_folds
from neurofm.eval.segment_finetune import finetune_scorer
from neurofm.eval.segment_inputs import SegmentReader, segment_features
from neurofm.eval.settings import EvalSettings
from neurofm.eval.task_preprocessing import (
    PreprocessingPlan,
    TaskPreprocessing,
    butterworth_bandpass,
    plan_preprocessing,
)
from neurofm.logs import get_logger
from neurofm.models import create_model, list_models
from neurofm.output_folder import claim_output_folder, holds_json

logger = get_logger(__name__)

#: Protocols of segment sets (units are grouped by participant).
SEGMENT_PROTOCOLS = ("official", "cross-subject", "loso")
#: Baselines of segment sets.
SEGMENT_BASELINES = ("bandpower",)
#: What a results table shows, and its column titles.
TABLE_COLUMNS = {"auroc": "AUROC", "auc_pr": "AUC-PR", "balanced_accuracy": "Bal. acc.",
                 "f1": "F1", "f1_macro": "F1 macro",
                 "balanced_accuracy_test_threshold": "Bal. acc. (test thr.*)",
                 "f1_macro_test_threshold": "F1 macro (test thr.*)",
                 "outcome_auroc": "Outcome AUROC"}
#: Oscillations the field calls high-frequency (Hz).
HFO_BANDS = {"ripples": (80.0, 250.0), "fast ripples": (250.0, 500.0)}


@dataclass
class FoldPlan:
    """One fold of one seed and the segments its units use.

    Attributes
    ----------
    seed : int
    fold : Fold
        Over the units of the segment set.
    onsets : dict of int -> ndarray
        Segment starts (s) per recording: drawn for training recordings, the whole grid for
        validation and test recordings.
    """

    seed: int
    fold: Fold
    onsets: dict = field(default_factory=dict)


def check_target(data, target: str) -> None:
    """Refuse a target the data cannot give (naming what to pass instead)."""
    if isinstance(data, SegmentSet):
        if data.target == "channel" and target != "channel":
            raise ValueError(f"{data.name} labels contacts, not trials: pass --target channel "
                             "(task config: target: channel).")
        if data.target == "recording" and target == "channel":
            raise ValueError(f"{data.name} labels whole recordings; --target channel needs "
                             "contact labels (task=soz). Leave --target at trial.")
    elif target == "channel":
        raise ValueError(f"--target channel needs a data set that labels contacts "
                         f"(omni-ieeg:PATH?task=soz, ieeg-bids:PATH?task=soz); {data.name} "
                         "labels trials.")


def check_segment_settings(settings: EvalSettings, data: SegmentSet) -> None:
    """Reject options a segment set cannot run with, before any work is done."""
    check_target(data, settings.target)
    if settings.protocol not in SEGMENT_PROTOCOLS:
        raise ValueError(f"--protocol {settings.protocol} is not available for {data.name}, "
                         f"whose units are grouped by participant; use one of "
                         f"{', '.join(SEGMENT_PROTOCOLS)}.")
    if settings.pool != "mean":
        raise ValueError(f"--pool {settings.pool}: the recordings of {data.name} each have their "
                         "own contacts, so only the montage-free pooling works: --pool mean (a "
                         "contact's features averaged over patches, or the segment's "
                         "embedding).")
    unknown = sorted(set(settings.baselines) - set(SEGMENT_BASELINES))
    if unknown:
        raise ValueError(f"--baselines {', '.join(unknown)} need one fixed montage; "
                         f"{data.name} supports {', '.join(SEGMENT_BASELINES)} (or none).")


def unit_folds(data: SegmentSet, protocol: str, *, seed: int = 0, n_folds: int = 5
               ) -> list[Fold]:
    """Folds over the units of ``data``, grouped by participant (module docstring)."""
    participants = data.participants
    sessions = data.units["session"].to_numpy(dtype=str)
    fold_column = data.units["fold"].to_numpy(dtype=str) if "fold" in data.units else None
    if protocol == "official" and fold_column is not None and (fold_column != "").any():
        folds = []
        for value in sorted(set(fold_column) - {""}, key=lambda v: int(v)):
            test = np.flatnonzero(fold_column == value)
            train = np.flatnonzero((fold_column != value) & (fold_column != ""))
            subject_level = not set(participants[train]) & set(participants[test])
            folds.append(Fold(f"fold{value}", train, test, subject_level))
    else:
        folds = make_folds(protocol, y=data.units["label"].to_numpy(), subjects=participants,
                           split=data.split, sessions=sessions, seed=seed, n_folds=n_folds)
    for fold in folds:
        check_fold(fold, participants, sessions)
    return folds


def plan_folds(data: SegmentSet, folds: list[Fold], seed: int) -> list[FoldPlan]:
    """The segments of each fold: training recordings draw theirs with
    ``default_rng([seed, fold number, recording])``; the others use the whole grid."""
    rec = data.units["rec"].to_numpy(dtype=int)
    plans = []
    for k, fold in enumerate(folds):
        onsets = {}
        for r in np.unique(rec[fold.train]):
            onsets[int(r)] = data.training_onsets(int(r), np.random.default_rng([seed, k, r]))
        for side in (fold.test, fold.val if fold.val is not None else np.zeros(0, int)):
            for r in np.unique(rec[side]):
                onsets[int(r)] = data.grid_onsets(int(r))
        plans.append(FoldPlan(seed, fold, onsets))
    return plans


def needed_segments(plans) -> dict[int, np.ndarray]:
    """Every segment some fold uses, per recording (sorted onsets)."""
    needed: dict[int, set] = {}
    for plan in plans:
        for r, onsets in plan.onsets.items():
            needed.setdefault(r, set()).update(np.round(onsets, 6).tolist())
    return {r: np.array(sorted(v)) for r, v in needed.items()}


def unit_rows(data: SegmentSet, features: dict, needed: dict, units: np.ndarray,
              onsets: dict) -> tuple[np.ndarray, np.ndarray]:
    """Feature rows of ``units`` over their recordings' ``onsets``: ``z [m, D]`` and the
    position in ``units`` of each row ``[m]``."""
    rec = data.units["rec"].to_numpy(dtype=int)[units]
    contact = data.units["contact"].to_numpy(dtype=int)[units] if data.target == "channel" \
        else None
    zs, owners = [], []
    for r in np.unique(rec):
        lookup = {v: i for i, v in enumerate(np.round(needed[r], 6).tolist())}
        seg = np.array([lookup[v] for v in np.round(onsets[r], 6).tolist()], dtype=int)
        mine = np.flatnonzero(rec == r)
        block = features[r][seg]  # [k, C, D] or [k, D]
        if contact is not None:
            block = block[:, contact[mine]]  # [k, u, D]
            zs.append(block.reshape(-1, block.shape[-1]))
            owners.append(np.tile(mine, len(seg)))
        else:
            zs.append(block)
            owners.append(np.repeat(mine, len(seg)))
    return np.concatenate(zs), np.concatenate(owners)


def mean_by_unit(values: np.ndarray, owners: np.ndarray, n: int) -> np.ndarray:
    """The mean of ``values`` over the rows of each of ``n`` units."""
    counts = np.bincount(owners, minlength=n)
    return np.bincount(owners, weights=values, minlength=n) / np.maximum(counts, 1)


#: ``fit_score(plan) -> (train scores [n labelled train units], test scores [n test units],
#: info)``: a method that scores units (the probe, fine-tuning, a baseline).
FitScore = Callable[[FoldPlan], tuple[np.ndarray, np.ndarray, dict]]


def probe_scorer(data: SegmentSet, features_for_seed: Callable[[int], dict],
                 needed: dict) -> FitScore:
    """The frozen probe as a :data:`FitScore` over precomputed features."""
    labels = data.units["label"].to_numpy(dtype=int)
    participants = data.participants

    def fit_score(plan: FoldPlan):
        features = features_for_seed(plan.seed)
        train = plan.fold.train[labels[plan.fold.train] >= 0]
        z, owner = unit_rows(data, features, needed, train, plan.onsets)
        validation = None
        if plan.fold.val is not None:
            val = plan.fold.val[labels[plan.fold.val] >= 0]
            zv, ov = unit_rows(data, features, needed, val, plan.onsets)
            validation = (zv, labels[val][ov])
        fit = fit_probe(z, labels[train][owner], groups=participants[train][owner],
                        seed=plan.seed, validation=validation)
        positive = list(fit.pipeline.classes_).index(1)
        extra = {}
        if validation is not None:
            extra["val_scores"] = mean_by_unit(fit.predict(zv)[1][:, positive], ov, len(val))
        train_scores = mean_by_unit(fit.predict(z)[1][:, positive], owner, len(train))
        zt, ot = unit_rows(data, features, needed, plan.fold.test, plan.onsets)
        test_scores = mean_by_unit(fit.predict(zt)[1][:, positive], ot, len(plan.fold.test))
        return train_scores, test_scores, {"params": fit.params, "inner_cv": fit.inner_cv,
                                           "n_train_rows": len(z), **extra}

    return fit_score


@dataclass
class UnitResult:
    """Per-fold records, per-seed pooled metrics and unit scores of one method (a table row)."""

    name: str
    folds: list[dict] = field(default_factory=list)
    pooled: dict = field(default_factory=dict)
    scores: dict = field(default_factory=dict)  # seed -> [n_units] (NaN: not tested)
    errors: list[str] = field(default_factory=list)

    def summary(self) -> dict:
        return summarise_runs([f["metrics"] for f in self.folds]) if self.folds else {}


def score_units(name: str, data: SegmentSet, plans_by_seed: dict, fit_score: FitScore
                ) -> UnitResult:
    """Fit and score ``fit_score`` on every fold of every seed (module docstring)."""
    result = UnitResult(name)
    labels = data.units["label"].to_numpy(dtype=int)
    participants = data.participants
    sessions = data.units["session"].to_numpy(dtype=str)
    for seed, plans in plans_by_seed.items():
        scores = np.full(len(data), np.nan)
        chosen = np.full(len(data), -1)
        for plan in plans:
            fold = plan.fold
            train = fold.train[labels[fold.train] >= 0]
            try:
                train_scores, test_scores, info = fit_score(plan)
            except (ValueError, RuntimeError) as err:
                result.errors.append(f"seed {seed} {fold.name}: {err}")
                continue
            threshold, threshold_from = _training_threshold(labels, fold, train, train_scores,
                                                            info.pop("val_scores", None))
            scores[fold.test] = test_scores
            chosen[fold.test] = (test_scores >= threshold).astype(int)
            tested = fold.test[labels[fold.test] >= 0]
            metrics, undefined = unit_metrics(labels[tested], scores[tested], threshold)
            if data.target == "channel":
                ratios = participant_ratios(data, fold.test, scores)
                metrics["outcome_auroc"] = outcome_auroc(*zip(*ratios.values())) \
                    if ratios else math.nan
                if not math.isfinite(metrics["outcome_auroc"]):
                    undefined["outcome_auroc"] = ("fewer than one test participant with each "
                                                  "outcome (1 and 0) and resection labels")
                info = {**info, "resection_ratios": {p: r for p, (r, _) in ratios.items()}}
            record = {"seed": seed, "fold": fold.name, "threshold_from": threshold_from,
                      "n_train": int(train.size),
                      "n_test": int(tested.size), "n_test_scored": int(fold.test.size),
                      "train_groups": fold_groups(participants, sessions, train),
                      "test_groups": fold_groups(participants, sessions, fold.test)}
            if fold.val is not None:
                record.update(n_val=int(fold.val.size),
                              val_groups=fold_groups(participants, sessions, fold.val))
            result.folds.append({**record, "metrics": metrics, "undefined_metrics": undefined,
                                 **info})
        result.scores[seed] = scores
        tested = np.flatnonzero(np.isfinite(scores) & (labels >= 0))
        if tested.size:
            result.pooled[seed] = pooled_metrics(data, scores, chosen, tested)
    if not result.folds:
        raise ValueError(f"{name}: every fold failed; first error: "
                         f"{result.errors[0] if result.errors else 'no folds'}")
    return result


def _training_threshold(labels, fold, train, train_scores, val_scores):
    """The Youden threshold chosen without test labels: on the fold's labelled validation
    units when they hold both classes (their scores are out of sample), else on the training
    units' own (in-sample) scores. Returns the threshold and where it came from."""
    if val_scores is not None:
        val = fold.val[labels[fold.val] >= 0]
        if np.unique(labels[val]).size == 2:
            return youden_threshold(labels[val], val_scores), "validation units"
    return youden_threshold(labels[train], train_scores), "training units (in-sample)"


def participant_ratios(data: SegmentSet, units: np.ndarray, scores: np.ndarray) -> dict:
    """``{participant: (predicted resection ratio, outcome)}`` over ``units`` (contacts)."""
    table = data.units.iloc[units]
    out = {}
    for participant, rows in table.groupby("participant"):
        ratio = resection_ratio(scores[rows.index.to_numpy()], rows["resection"].to_numpy())
        out[str(participant)] = (ratio, int(rows["outcome"].iloc[0]))
    return out


def pooled_metrics(data: SegmentSet, scores: np.ndarray, chosen: np.ndarray,
                   tested: np.ndarray) -> dict:
    """Metrics over every labelled test unit of a seed's folds (each at its fold's training
    threshold for balanced accuracy and F1)."""
    from sklearn import metrics as skm

    y = data.units["label"].to_numpy(dtype=int)[tested]
    s, pred = scores[tested], chosen[tested]
    out = {"n_units": int(tested.size), "n_positive": int((y == 1).sum())}
    if np.unique(y).size == 2:
        out.update(auroc=float(skm.roc_auc_score(y, s)),
                   auc_pr=float(skm.average_precision_score(y, s)),
                   balanced_accuracy=float(skm.balanced_accuracy_score(y, pred)),
                   f1=float(skm.f1_score(y, pred, zero_division=0)),
                   f1_macro=float(skm.f1_score(y, pred, average="macro", zero_division=0)))
        chosen_on_test = youden_threshold(y, s)
        out["youden_threshold_test"] = chosen_on_test
        out.update({f"{k}_test_threshold": v
                    for k, v in at_threshold(y, s, chosen_on_test).items()})
    if data.target == "channel":
        ratios = participant_ratios(data, np.flatnonzero(np.isfinite(scores)), scores)
        out["outcome_auroc"] = outcome_auroc(*zip(*ratios.values())) if ratios else math.nan
    return out


def band_statement(spec, rates) -> dict:
    """The band the model saw and what an iEEG task loses by it (``results.json`` →
    ``preprocessing.band``)."""
    rates = sorted({float(r) for r in rates})
    top = min(spec.h_freq if spec.h_freq is not None else spec.sfreq / 2, spec.sfreq / 2)
    lost = [f"{name} ({lo:g}–{hi:g} Hz)" for name, (lo, hi) in HFO_BANDS.items()
            if hi > top and lo < max(rates) / 2]
    low = 0.0 if spec.l_freq is None else spec.l_freq
    text = (f"The model saw {low:g}–{top:g} Hz at {spec.sfreq:g} Hz; the recordings were made "
            f"at {', '.join(f'{r:g}' for r in rates)} Hz.")
    if lost:
        text += (" Lost: " + ", ".join(lost) + " — the high-frequency oscillations that mark "
                 "epileptogenic tissue; the task is scored on slower activity (spikes, slow "
                 "waves, rhythms below the band's top). A model pretrained at a higher rate "
                 "can be evaluated at its own rate (preprocessing: sfreq in the task config).")
    return {"model_sfreq": float(spec.sfreq), "l_freq": low, "h_freq": float(top),
            "recording_rates": rates, "lost": lost, "statement": text}


def band_power_features(reader: SegmentReader, needed: dict, per_contact: bool
                        ) -> dict[int, np.ndarray]:
    """The classic reference: log band power (:data:`~neurofm.eval.baselines.BANDS`) of each
    contact and segment at the model's rate (``[k, C, n_bands]``), or its mean and standard
    deviation over contacts per segment (``[k, 2 n_bands]``)."""
    out = {}
    for r, onsets in needed.items():
        x, _ = reader.segments(r, onsets)
        k, c = x.shape[:2]
        signal_ = x.reshape(k * c, 1, -1)[..., :reader.n_out].astype(np.float64)
        power, _ = log_band_power(signal_, reader.sfreq_out, BANDS)
        power = power.reshape(k, c, -1)
        out[r] = power if per_contact else np.concatenate([power.mean(1), power.std(1)], 1)
    return out


def run_segment_evaluation(settings: EvalSettings, data: SegmentSet,
                           task_preprocessing: TaskPreprocessing, *, overwrite: bool = False
                           ) -> dict:
    """Evaluate a model on a segment set (module docstring); write ``results.json``,
    ``results.md`` and ``unit_scores.csv`` into ``settings.out`` and return the results."""

    start = time.perf_counter()
    check_segment_settings(settings, data)
    out = Path(settings.out)
    model0, model_kind = load_model(settings.model, settings.model_overrides, seed=0,
                                    revision=settings.revision)
    arch = model0.model_name or type(model0).__name__
    plan = plan_preprocessing(model0.preprocessing, task_preprocessing, trials_band=None,
                              pretrained=model_kind == "pretrained", model_name=settings.model,
                              data_name=data.name)
    if plan.window is not None:
        raise ValueError(f"{data.name}: a window is not applied to segment sets; its segments "
                         "are set by the data spec (segment=, skip=).")
    reader = _reader(data, plan)
    claim_output_folder(out, f"neurofm {settings.mode}", asdict(settings), overwrite=overwrite,
                        recognise=holds_json("results.json", {"settings.mode": settings.mode}))
    plans_by_seed = {s: plan_folds(data, unit_folds(data, settings.protocol, seed=s,
                                                    n_folds=settings.n_folds), s)
                     for s in settings.seed_list}
    needed = needed_segments([p for plans in plans_by_seed.values() for p in plans])
    per_contact = data.target == "channel"
    logger.info("%s %s on %s: %d units, %s protocol, %d segments", settings.mode,
                settings.model, data.name, len(data), settings.protocol,
                sum(len(v) for v in needed.values()))

    def model_for_seed(seed: int):
        if model_kind == "pretrained" or seed == 0:
            return model0
        return load_model(settings.model, settings.model_overrides, seed)[0]

    def random_model(seed: int):
        torch.manual_seed(seed)
        return create_model(arch, **model0.config)

    timings: dict = {}

    def probe_row(label, make_model, same_every_seed):
        cache: dict = {}

        def features(seed):
            seed = 0 if same_every_seed else seed
            if seed not in cache:
                stats: dict = {}
                cache[seed] = segment_features(
                    make_model(seed), reader, needed, per_contact=per_contact,
                    batch_size=settings.batch_size, device=settings.device,
                    cache_dir=_cache_dir(settings), desc=f"{label} seed {seed}", stats=stats)
                timings.setdefault(label, []).append(stats)
            return cache[seed]

        return score_units(label, data, plans_by_seed, probe_scorer(data, features, needed))

    label = f"{arch} ({model_kind})"
    results = []
    with_reference = (model_kind == "pretrained" and settings.random_init_reference
                      and arch in list_models())
    if settings.mode == "probe":
        results.append(probe_row(f"{label} probe", model_for_seed, model_kind == "pretrained"))
        if with_reference:
            results.append(probe_row(f"{arch} (random-init) probe", random_model, False))
    elif settings.mode == "finetune":
        how = f"LoRA r={settings.lora}" if settings.lora else settings.freeze
        results.append(score_units(f"{label} finetune ({how})", data, plans_by_seed,
                                   finetune_scorer(data, reader, model_for_seed, settings)))
    else:
        raise ValueError(f"Unknown mode {settings.mode!r}; expected 'probe' or 'finetune'.")
    if "bandpower" in settings.baselines:
        power = band_power_features(reader, needed, per_contact)
        results.append(score_units("log band power + LR (classic)", data, plans_by_seed,
                                   probe_scorer(data, lambda seed: power, needed)))

    payload = _payload(settings, data, plan, reader, results, timings, arch, model_kind, model0,
                       needed)
    table = unit_table(payload)
    (out / "results.md").write_text(table)
    payload["table_markdown"] = table
    payload["figures"] = {}
    _write_scores(out / "unit_scores.csv", data, results)
    payload["seconds"] = time.perf_counter() - start
    report.write_json(out / "results.json", payload)
    return payload


def _reader(data: SegmentSet, plan: PreprocessingPlan) -> SegmentReader:
    """The reader of ``plan``'s preprocessing; an IIR band-pass runs on each whole block."""
    if plan.filter != "iir":
        return SegmentReader(data, plan.spec)

    def prefilter(block, sfreq):
        return butterworth_bandpass(block[None], sfreq, plan.spec.l_freq, plan.spec.h_freq,
                                    plan.filter_order)[0][0]

    return SegmentReader(data, replace(plan.spec, l_freq=None, h_freq=None),
                         prefilter=prefilter,
                         key={"iir": [plan.spec.l_freq, plan.spec.h_freq, plan.filter_order]})


def _cache_dir(settings: EvalSettings) -> Path:
    if settings.cache_dir:
        return Path(settings.cache_dir)
    return Path.home() / ".cache" / "neurofm" / "embeddings"


def _payload(settings, data: SegmentSet, plan, reader, results, timings, arch, model_kind,
             model0, needed) -> dict:
    folds = [f for r in results[:1] for f in r.folds]
    labels = data.units["label"].to_numpy(dtype=int)
    rates = [data.recordings[r].sfreq for r in data.used_recordings]
    positions = [data.recordings[r].layout.position_unknown for r in data.used_recordings]
    metric_names = UNIT_METRICS + (CONTACT_METRICS if data.target == "channel" else ())
    protocol = {"name": settings.protocol, "seeds": settings.seed_list,
                "subject_level": bool(folds) and all(
                    not set(map(tuple, f["train_groups"])) & set(map(tuple, f["test_groups"]))
                    for f in folds),
                "groups": "participant",
                "validation": ("the split's val part chooses the probe's penalty and "
                               "early-stops fine-tuning (as the BCI official protocol)")}
    return {
        "neurofm_version": __version__,
        "settings": asdict(settings),
        "model": model_record(settings.model, arch, model_kind, model0),
        "data": {"name": data.name, "target": data.target, "n_units": len(data),
                 "n_labelled": int((labels >= 0).sum()), "class_names": data.class_names,
                 "positive_class": data.class_names[1],
                 "counts": {c: int((labels == i).sum()) for i, c in
                            enumerate(data.class_names)},
                 "n_recordings": int(data.used_recordings.size),
                 "n_subjects": int(np.unique(data.participants).size),
                 "n_contacts_without_coordinates": int(sum(p.sum() for p in positions)),
                 "segment_seconds": data.segment_seconds, "skip_seconds": data.skip_seconds,
                 "train_segments": data.train_segments,
                 "n_segments": int(sum(len(v) for v in needed.values())),
                 "provenance": data.provenance,
                 "dropped_contacts": data.dropped.to_dict(orient="records"),
                 "dropped_trials": []},
        "preprocessing": {"settings": plan.spec.to_dict(), **plan.to_dict(),
                          "applied": reader.describe(), "band": band_statement(plan.spec, rates)},
        "protocol": protocol,
        "headline_metric": HEADLINE,
        "metrics": list(metric_names),
        "metric_notes": {"threshold": "Youden threshold chosen without test labels: on the "
                                      "fold's validation units when they hold both classes, "
                                      "else on the training units' in-sample scores (each "
                                      "fold's threshold_from says which)",
                         "youden_threshold_test": "chosen on the test units (the authors' "
                                                  "figure; optimistic)",
                         "outcome_auroc": "AUROC of the predicted resection ratio for a good "
                                          "outcome, over test participants"},
        "published": list(settings.published),
        "to_check": list(settings.to_check),
        "methods": [{"method": r.name, "n_runs": len(r.folds), "summary": r.summary(),
                     "pooled": r.pooled, "folds": r.folds, "skipped_folds": r.errors,
                     "per_participant": per_participant(data, r)} for r in results],
        "embedding_timing": timings,
        "environment": {"python": platform.python_version(), "torch": torch.__version__,
                        "device": settings.device},
    }


def per_participant(data: SegmentSet, result: UnitResult) -> dict:
    """The first seed's mean score of each participant's labelled units by class, and its
    predicted resection ratio (contacts)."""
    if not result.scores:
        return {}
    scores = next(iter(result.scores.values()))
    out = {}
    for participant, rows in data.units.groupby("participant"):
        s = scores[rows.index.to_numpy()]
        entry = {f"mean_score_{c}": _mean(s[rows["label"].to_numpy() == i])
                 for i, c in enumerate(data.class_names)}
        if data.target == "channel":
            entry["resection_ratio"] = resection_ratio(s, rows["resection"])
            entry["outcome"] = int(rows["outcome"].iloc[0])
        if np.isfinite(s).any():
            out[str(participant)] = entry
    return out


def _mean(values) -> float:
    values = np.asarray(values, float)
    values = values[np.isfinite(values)]
    return float(values.mean()) if values.size else math.nan


def unit_table(payload: dict) -> str:
    """The markdown table of a segment evaluation: each metric as mean ± std [95 % CI]."""
    columns = [c for c in TABLE_COLUMNS if c in payload["metrics"]]
    data = payload["data"]
    lines = [(f"### {data['name']} — {payload['protocol']['name']} ({data['target']} target, "
              f"positive class {data['positive_class']})"), "",
             "| Method | Runs | " + " | ".join(TABLE_COLUMNS[c] for c in columns) + " |",
             "|---|---:|" + "---:|" * len(columns)]
    for method in payload["methods"]:
        cells = [format_summary(method["summary"][c]) if c in method["summary"] else "n/a"
                 for c in columns]
        lines.append(f"| {method['method']} | {method['n_runs']} | " + " | ".join(cells) + " |")
    lines += ["", ("Balanced accuracy and F1 at the Youden threshold chosen on the training "
                   "side (validation units, else the training units); "
                   "*test thr.: at the Youden threshold chosen on the test units (the authors' "
                   "figure, optimistic). Values are mean ± std [95 % CI] over seeds x folds."),
              "", payload["preprocessing"]["band"]["statement"]]
    return "\n".join(lines) + "\n"


def _write_scores(path: Path, data: SegmentSet, results) -> None:
    """One row per method, seed and scored unit: participant, recording, contact, label,
    score."""
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["method", "seed", "participant", "recording", "contact", "label",
                         "score"])
        rec = data.units["rec"].to_numpy(dtype=int)
        names = data.units["name"].to_numpy(dtype=str) if "name" in data.units else \
            np.full(len(data), "")
        labels = data.units["label"].to_numpy(dtype=int)
        for result in results:
            for seed, scores in result.scores.items():
                for i in np.flatnonzero(np.isfinite(scores)):
                    writer.writerow([result.name, seed, data.participants[i],
                                     data.recordings[rec[i]].name, names[i], labels[i],
                                     f"{scores[i]:.6g}"])
