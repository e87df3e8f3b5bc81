"""End-to-end evaluation runs behind ``neurofm probe`` and ``neurofm finetune``.

:func:`run_evaluation` loads a data set and a model, prepares the trials the way the model was
pretrained (overridable), builds leak-free folds for every seed, scores the requested rows
(frozen probe, fine-tuning, random-init reference, baselines) on the same folds, and writes
``results.json``, ``results.md`` and the figures into the output directory.

Seeds: a registry name (``--model criss_cross_small``) is a random-init model, re-initialised
with each seed; a pretrained model is the same for every seed. Seeds also drive the random parts
of the folds (cross-subject subject shuffling, few-shot draws, validation splits).
"""

from __future__ import annotations

import platform
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from neurofm._version import __version__
from neurofm.datasets import load_dataset
from neurofm.datasets.segments import SegmentSet
from neurofm.datasets.trials import TrialSet
from neurofm.eval import baselines as bl
from neurofm.eval import report
from neurofm.eval.embeddings import extract_embeddings
from neurofm.eval.finetune import finetune_fold
from neurofm.eval.harness import MethodResult, TaskInfo, run_method
from neurofm.eval.importance import channel_occlusion_importance
from neurofm.eval.inputs import ModelInputs
from neurofm.eval.metrics import METRICS, chance_level, task_kind
from neurofm.eval.model_loading import load_model, model_record
from neurofm.eval.probe import fit_probe, fit_probe_on_fold
from neurofm.eval.protocols import make_folds, split_from_groups
from neurofm.eval.segment_eval import check_target, run_segment_evaluation
from neurofm.eval.settings import EvalSettings, SplitConfig, check_settings
from neurofm.eval.task_preprocessing import (
    PreprocessingPlan,
    TaskPreprocessing,
    plan_preprocessing,
    prepare_inputs,
)
from neurofm.eval.training import FinetuneConfig
from neurofm.logs import get_logger, verbose
from neurofm.models import create_model, list_models
from neurofm.output_folder import claim_output_folder, holds_json

logger = get_logger(__name__)

#: Probe heads trained by gradient descent on the frozen backbone, and their row names.
TRAINED_HEADS = {"attention": "attention", "patches": "patch-MLP"}


def encode_labels(trials) -> tuple[np.ndarray, list[str] | None]:
    """Class indices ``[n]`` (0 .. K-1) and class names; regression targets as float."""
    y = np.asarray(trials.y)
    if trials.task == "regression":
        return y.astype(np.float64), None
    names = list(trials.class_names) if trials.class_names is not None else None
    if y.dtype.kind in "iu":
        k = len(names) if names else int(y.max()) + 1
        if y.min() < 0 or y.max() >= k:
            raise ValueError(f"{trials.name}: labels must be class indices 0..{k - 1}; found "
                             f"{int(y.min())}..{int(y.max())}.")
        return y.astype(np.int64), names or [str(i) for i in range(k)]
    labels = y.astype(str)
    names = names or sorted(set(labels))
    unknown = sorted(set(labels) - set(names))
    if unknown:
        raise ValueError(f"{trials.name}: labels {unknown} are not in class_names {names}.")
    lookup = {n: i for i, n in enumerate(names)}
    return np.array([lookup[v] for v in labels], np.int64), names


def _cache_dir(settings: EvalSettings) -> Path:
    if settings.cache_dir:
        return Path(settings.cache_dir)
    return Path.home() / ".cache" / "neurofm" / "embeddings"


def _probe_rows(label: str, model_for_seed, inputs: ModelInputs, task: TaskInfo,
                folds_by_seed, settings: EvalSettings, timings: dict, *,
                same_model_every_seed: bool) -> MethodResult:
    """Frozen probe of one model family: embeddings per model (cached), probe per fold.

    ``same_model_every_seed``: a pretrained model is embedded once; a random-init family once
    per seed.
    """
    embeddings: dict[int, np.ndarray] = {}

    def features(seed: int) -> np.ndarray:
        seed = 0 if same_model_every_seed else seed
        if seed not in embeddings:
            stats: dict = {}
            embeddings[seed] = extract_embeddings(
                model_for_seed(seed), inputs.x, inputs.sensors, inputs.patch_valid,
                batch_size=settings.batch_size, pool=settings.pool, device=settings.device,
                cache_dir=_cache_dir(settings), preprocessing=inputs.preprocessing,
                desc=f"{label} seed {seed}", stats=stats)
            timings.setdefault(label, []).append(stats)
        return embeddings[seed]

    def fit_predict(seed, fold):
        z = features(seed)
        fit = fit_probe_on_fold(z, task.y, task.subjects, fold,
                                regression=task.kind == "regression", seed=seed)
        pred, proba = fit.predict(z[fold.test])
        return pred, proba, {"params": fit.params, "inner_cv": fit.inner_cv}

    return run_method(label, fit_predict, task, folds_by_seed)


@verbose
def run_evaluation(settings: EvalSettings, trials=None, *, overwrite: bool = False,
                   verbose=None) -> dict:
    """Run every row of the table for ``settings``; write outputs; return the results dict.

    ``trials`` (a :class:`~neurofm.datasets.trials.TrialSet`) replaces loading
    ``settings.data`` through the data set registry. ``settings.out`` must be new, empty or an
    earlier output of the same mode (``overwrite``: write into it anyway;
    :func:`neurofm.output_folder.claim_output_folder`). ``verbose`` sets the log level of the
    run (:func:`neurofm.logs.log_level`; None: the package's; above INFO no progress bars).
    """
    start = time.perf_counter()
    check_settings(settings)
    task_preprocessing = TaskPreprocessing.from_dict(settings.preprocessing,
                                                     where="preprocessing settings")
    out = Path(settings.out)
    if trials is None:
        trials = load_dataset(settings.data)
    check_target(trials, settings.target)
    if isinstance(trials, SegmentSet):  # intracranial: each recording has its own contacts
        return run_segment_evaluation(settings, trials, task_preprocessing, overwrite=overwrite)
    trials = evaluation_trials(trials, settings, task_preprocessing)
    check_baselines(trials, settings.baselines)
    y, class_names = encode_labels(trials)
    subjects, sessions = trials.subject, trials.session
    kind = task_kind(trials.task, len(class_names) if class_names else None)
    task = TaskInfo(y, subjects, kind, len(class_names) if class_names else None, class_names,
                    sessions)

    model0, model_kind = load_model(settings.model, settings.model_overrides, seed=0,
                                    revision=settings.revision)
    arch = model0.model_name or type(model0).__name__
    plan = plan_preprocessing(model0.preprocessing, task_preprocessing,
                              trials_band=trials.band, pretrained=model_kind == "pretrained",
                              model_name=settings.model, data_name=trials.name)
    inputs = prepare_inputs(trials, plan)
    claim_output_folder(out, f"neurofm {settings.mode}", asdict(settings), overwrite=overwrite,
                        recognise=holds_json("results.json", {"settings.mode": settings.mode}))

    folds_by_seed = {s: make_folds(settings.protocol, y=y, subjects=subjects, split=trials.split,
                                   sessions=sessions, seed=s, n_folds=settings.n_folds,
                                   shots=settings.shots, task=trials.task)
                     for s in settings.seed_list}
    n_folds = sum(len(f) for f in folds_by_seed.values())
    logger.info("%s %s on %s: %d trials, %s protocol, %d run(s) (seeds %s)", settings.mode,
                settings.model, trials.name, len(y), settings.protocol, n_folds,
                ", ".join(map(str, settings.seed_list)))

    def model_for_seed(seed: int):
        return model0 if model_kind == "pretrained" or seed == 0 else \
            load_model(settings.model, settings.model_overrides, seed)[0]

    def random_model(seed: int):
        torch.manual_seed(seed)
        return create_model(arch, **model0.config)

    # imported architectures that are not in the registry cannot be rebuilt at random init
    with_reference = (model_kind == "pretrained" and settings.random_init_reference
                      and arch in list_models())
    label = f"{arch} ({model_kind})"
    results: list[MethodResult] = []
    timings: dict = {}
    train_config = FinetuneConfig.from_dict(settings.train)

    def finetune_row(name, freeze, pooling, make_model):
        return run_method(name, lambda seed, fold: finetune_fold(
            make_model(seed), inputs.x, inputs.patch_valid, inputs.sensors, y, subjects, fold,
            n_outputs=1 if kind == "regression" else task.n_classes,
            regression=kind == "regression", freeze=freeze, config=train_config,
            pooling=pooling, lora_rank=settings.lora if settings.mode == "finetune" else None,
            seed=seed, device=settings.device), task, folds_by_seed)

    if settings.mode == "probe" and settings.pool in TRAINED_HEADS:
        # Attention pooling and the patch MLP have weights of their own: train the head by
        # gradient descent on the frozen backbone.
        head = TRAINED_HEADS[settings.pool]
        results.append(finetune_row(f"{label} {head} probe", "backbone", settings.pool,
                                    model_for_seed))
        if with_reference:
            results.append(finetune_row(f"{arch} (random-init) {head} probe", "backbone",
                                        settings.pool, random_model))
    elif settings.mode == "probe":
        results.append(_probe_rows(f"{label} probe", model_for_seed, inputs, task, folds_by_seed,
                                   settings, timings,
                                   same_model_every_seed=model_kind == "pretrained"))
        if with_reference:
            results.append(_probe_rows(f"{arch} (random-init) probe", random_model, inputs, task,
                                       folds_by_seed, settings, timings,
                                       same_model_every_seed=False))
    elif settings.mode == "finetune":
        how = f"LoRA r={settings.lora}" if settings.lora else settings.freeze
        results.append(finetune_row(f"{label} finetune ({how})", settings.freeze,
                                    settings.pool, model_for_seed))
    else:
        raise ValueError(f"Unknown mode {settings.mode!r}; expected 'probe' or 'finetune'.")

    results += _baseline_rows(settings, trials, inputs, task, folds_by_seed)

    payload = _payload(settings, trials, task, inputs, plan, results, timings, arch,
                       model_kind, model0, folds_by_seed)
    _write_outputs(out, payload, results, task, inputs, settings, model0, folds_by_seed)
    payload["seconds"] = time.perf_counter() - start
    report.write_json(out / "results.json", payload)
    return payload


def evaluation_trials(trials: TrialSet, settings: EvalSettings,
                      preprocessing: TaskPreprocessing) -> TrialSet:
    """The trials an evaluation scores: cut to the stated window, trials with NaN/Inf samples
    refused or dropped (``settings.on_nan``), and a paper's split (``settings.split``) put in
    the split column for ``protocol="official"``.

    Raises
    ------
    ValueError
        NaN/Inf trials with ``on_nan="error"`` (each named by file, subject and onset), or a
        split that leaves trials of the data in no part.
    """
    if preprocessing.window is not None:
        trials = trials.crop(*preprocessing.window)
    bad = trials.nonfinite()
    if bad.size and settings.on_nan == "drop":
        trials = trials.drop(bad, reason="NaN/Inf samples")
    elif bad.size:
        named = "; ".join(trials.describe_trial(i) for i in bad[:5])
        more = f" and {bad.size - 5} more" if bad.size > 5 else ""
        raise ValueError(f"{bad.size} trial(s) of {trials.name} contain NaN/Inf samples: "
                         f"{named}{more}. Repair them, or pass --on-nan drop to leave them out "
                         "(results.json lists the trials dropped).")
    if settings.split is not None and settings.protocol == "official":
        split = SplitConfig.from_dict(settings.split)
        trials = trials.with_split(split_from_groups(trials.subject, trials.session,
                                                     split.parts(), by=split.by))
    return trials


def check_baselines(trials: TrialSet, baselines) -> None:
    """Refuse baselines that need every trial in memory for a trial set left on disk.

    Raises
    ------
    ValueError
        Naming the baseline, the trial set and what to do instead.
    """
    refused = [b for b in baselines if b in bl.IN_MEMORY_ONLY]
    if trials.lazy and refused:
        raise ValueError(
            f"--baselines {', '.join(refused)}: filter-bank CSP filters and holds every trial "
            f"in memory, but {trials.name} has {len(trials)} windows left on disk (read batch "
            "by batch). Drop it from the baselines (bandpower, eegnet and shallow read batch "
            "by batch), or, if the windows fit in memory, add lazy=false to the data spec "
            "(tuab:PATH?lazy=false).")


def _baseline_rows(settings, trials, inputs, task, folds_by_seed) -> list[MethodResult]:
    rows = []
    regression = task.kind == "regression"
    train_cfg = FinetuneConfig.from_dict({**settings.train, "lr_head": 1e-3,
                                          **({"label_smoothing": 0.0} if regression else {})})
    for name in settings.baselines:
        skipped = bl.skipped_row(name)  # e.g. EEGNet without braindecode: says what to install
        if skipped is not None:
            rows.append(skipped)
            continue
        if name == "bandpower":
            fp = bl.bandpower_method(trials, trials.sfreq, task.y, task.subjects,
                                     regression=regression)
            label = "log band power + LR (classic)"
        elif name == "fbcsp":
            if regression:
                raise ValueError("fbcsp is a classification baseline; drop it for regression.")
            fp = bl.fbcsp_method(trials.X, trials.sfreq, task.y, task.subjects)
            label = "filter-bank CSP + LR (classic)"
        elif name in ("eegnet", "shallow"):
            fp = bl.supervised_method(name, inputs.continuous(), inputs.sfreq, task.y,
                                      task.subjects, n_outputs=1 if regression else task.n_classes,
                                      regression=regression, config=train_cfg,
                                      device=settings.device)
            label = bl.SUPERVISED_LABELS[name]
        else:
            raise ValueError(f"Unknown baseline {name!r}; choose from {', '.join(bl.BASELINES)}.")
        rows.append(run_method(label, fp, task, folds_by_seed))
    return rows


def _payload(settings, trials, task, inputs, plan: PreprocessingPlan, results, timings, arch,
             model_kind, model0, folds_by_seed) -> dict:
    folds = [f for seed_folds in folds_by_seed.values() for f in seed_folds]
    protocol = {"name": settings.protocol,
                "subject_level": bool(folds) and all(f.subject_level for f in folds),
                "session_level": bool(folds) and all(f.session_level for f in folds),
                "seeds": settings.seed_list,
                "n_folds_per_seed": len(folds) // max(settings.seeds, 1),
                "shots": settings.shots}
    if settings.split is not None and settings.protocol == "official":
        protocol["split"] = SplitConfig.from_dict(settings.split).__dict__
    metadata = trials.metadata
    return {
        "neurofm_version": __version__,
        "settings": asdict(settings),
        "model": model_record(settings.model, arch, model_kind, model0),
        "data": {"name": trials.name, "n_trials": len(task.y),
                 "n_subjects": int(np.unique(task.subjects).size),
                 "n_sessions": len(metadata.groupby(["subject", "session"])),
                 "task": task.kind, "class_names": task.class_names, "sfreq": float(trials.sfreq),
                 "channels": list(trials.sensors.names),
                 "trial_seconds": float(trials.n_times / trials.sfreq),
                 "split_counts": {k: int(v) for k, v in
                                  metadata["split"].value_counts().items() if k},
                 "provenance": trials.provenance,
                 "dropped_trials": trials.dropped.to_dict(orient="records")},
        "preprocessing": {"settings": inputs.preprocessing.to_dict(), **plan.to_dict(),
                          "applied": inputs.applied, "input_shape": list(inputs.x.shape)},
        "protocol": protocol,
        "chance": chance_level(task.kind, task.y),
        "headline_metric": METRICS[task.kind][0],
        "published": list(settings.published),
        "to_check": list(settings.to_check),
        "methods": [{"method": r.name, "n_runs": len(r.folds), "summary": r.summary(),
                     "folds": r.folds, "skipped_folds": r.errors,
                     "per_subject": r.per_subject(task)} for r in results],
        "embedding_timing": timings,
        "environment": {"python": platform.python_version(), "torch": torch.__version__,
                        "device": settings.device},
    }


def _write_outputs(out: Path, payload, results, task, inputs, settings, model0, folds_by_seed):
    rows = [{"method": m["method"], "n_runs": m["n_runs"], "summary": m["summary"]}
            for m in payload["methods"]]
    title = (f"{payload['data']['name']} — {settings.protocol}"
             + (f" ({settings.shots}-shot)" if settings.shots else ""))
    table = report.markdown_table(rows, task.kind, title=title, chance=payload["chance"])
    (out / "results.md").write_text(table)
    payload["table_markdown"] = table
    figures = {}
    main = results[0]
    if task.kind != "regression":
        pooled = main.pooled()
        figures["confusion"] = str(report.plot_confusion(
            pooled["y_true"], pooled["y_pred"], task.class_names, out / "confusion.png",
            title=main.name))
    figures["per_subject"] = str(report.plot_per_subject(
        {r.name: r.per_subject(task) for r in results}, out / "per_subject.png",
        metric=METRICS[task.kind][0], chance=payload["chance"]))
    if (settings.mode == "probe" and settings.pool in ("mean", "channels")
            and settings.importance and report.topomap_channels(inputs.sensors) is not None):
        seed = 0
        fold = folds_by_seed[seed][0]
        z_train = extract_embeddings(model0, _rows(inputs.x, fold.train), inputs.sensors,
                                     inputs.patch_valid[fold.train], pool=settings.pool,
                                     batch_size=settings.batch_size, device=settings.device,
                                     cache_dir=_cache_dir(settings),
                                     preprocessing=inputs.preprocessing)
        fit = fit_probe(z_train, task.y[fold.train], groups=task.subjects[fold.train],
                        regression=task.kind == "regression", seed=seed)
        test = fold.test[:settings.importance_trials]
        importance = channel_occlusion_importance(
            model0, inputs.x[test], inputs.patch_valid[test], inputs.sensors, fit,
            remove=getattr(model0, "needs_sensors", True) and settings.pool == "mean",
            pool=settings.pool, batch_size=settings.batch_size,
            device=settings.device)
        payload["channel_importance"] = {"fold": fold.name, "n_trials": int(test.size),
                                         "channels": list(inputs.sensors.names),
                                         "importance": importance}
        figures["topomap"] = str(report.plot_topomap(importance, inputs.sensors,
                                                     out / "topomap.png"))
    payload["figures"] = figures


def _rows(x, index):
    """Trials ``index`` of model inputs: a copy for an array, a view (nothing read) for windows
    left on disk."""
    return x.subset(index) if hasattr(x, "subset") else x[index]
