"""The demo's stages in order, each skipped when its outputs exist for the same settings.

Stage          Writes (under the demo folder)
-------------  ---------------------------------------------------------------------------
simulate       ``recordings/*.fif``: resting EEG (several caps), MEG, clinical EEG; one subject each
prepare        ``corpus/``: Arrow shards, ``manifest.parquet``, ``corpus.json``
pretrain       ``runs/<model>/``: config, checkpoint, ``metrics.jsonl``, ``loss.png``, ``model/``
publish        ``models/<model>/``: Hub-style folder, loaded back with ``from_pretrained``
evaluate       ``tasks/<task>/``: probe / fine-tune runs and ``summary.json`` per task
report         ``results.md`` (the table) and ``report.md`` with the figures

A finished stage leaves ``stages/<name>.json`` (its settings fingerprint, seconds and facts);
a rerun skips every stage whose record matches the current settings, so an interrupted demo
resumes where it stopped (an interrupted stage continues: recordings already written, prepared
files, the newest pretraining checkpoint and scored tasks are kept). Changed settings redo the
stages they affect and all after them; their old outputs are deleted first only when the caller
says so (``overwrite=True``, ``neurofm demo --overwrite``), else the run stops and names them.
"""

from __future__ import annotations

import json
import shutil
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from neurofm.demo.corpus import prepare_demo_corpus, simulate_corpus_recordings
from neurofm.demo.evaluation import evaluate_task, read_summary, write_summary
from neurofm.demo.pretraining import default_nproc, pretrain_model, publish_model
from neurofm.demo.report import write_report
from neurofm.demo.results import results_table
from neurofm.demo.settings import DemoSettings
from neurofm.logs import get_logger, verbose
from neurofm.output_folder import claim_output_folder
from neurofm.progress import progress_bar
from neurofm.train.metrics import read_metrics

logger = get_logger(__name__)

#: Settings sections each stage depends on (a stage also depends on every earlier stage).
STAGE_SECTIONS = {
    "simulate": ("corpus", "seconds", "sfreq", "seed"),
    "prepare": ("window_seconds",),
    "pretrain": ("models",),
    "publish": (),
    "evaluate": ("tasks", "seeds", "n_folds", "finetune_epochs"),
    "report": ("preset",),
}
#: Folders each stage writes (deleted before the stage reruns with other settings).
STAGE_OUTPUTS = {
    "simulate": ("recordings",),
    "prepare": ("corpus",),
    "pretrain": ("runs",),
    "publish": ("models",),
    "evaluate": ("tasks", "cache"),
    "report": (),
}


@dataclass
class DemoRun:
    """State shared by the stages of one demo run.

    Attributes
    ----------
    settings : DemoSettings
    out : Path
        Demo folder.
    nproc : int
        Pretraining processes.
    progress : bool
        Show progress bars.
    facts : dict
        Stage name -> what the stage reported (read back from ``stages/`` for skipped stages).
    seconds : dict
        Stage name -> seconds the stage took (when it ran in an earlier invocation, that time).
    """

    settings: DemoSettings
    out: Path
    nproc: int
    progress: bool = True
    facts: dict = field(default_factory=dict)
    seconds: dict = field(default_factory=dict)

    @property
    def recordings(self) -> Path:
        return self.out / "recordings"

    @property
    def corpus(self) -> Path:
        return self.out / "corpus"

    def run_dir(self, label: str) -> Path:
        return self.out / "runs" / label

    def model_dir(self, label: str) -> Path:
        return self.out / "models" / label

    def task_dir(self, label: str) -> Path:
        return self.out / "tasks" / label


def stage_fingerprint(settings: DemoSettings, name: str) -> str:
    """Hash of the settings that ``name`` and every stage before it depend on."""
    sections: list[str] = []
    for stage, own in STAGE_SECTIONS.items():
        sections += own
        if stage == name:
            break
    return settings.fingerprint(*sections)


def _simulate(run: DemoRun) -> dict:
    paths = simulate_corpus_recordings(run.settings, run.recordings, progress=run.progress)
    return {"n_recordings": len(paths)}


def _prepare(run: DemoRun) -> dict:
    summary = prepare_demo_corpus(run.settings, run.recordings, run.corpus,
                                  progress=run.progress)
    return {"n_windows": summary.n_windows, "n_kept": summary.n_kept,
            "hours": summary.hours_kept}


def _pretrain(run: DemoRun) -> dict:
    losses = {}
    for i, plan in enumerate(run.settings.models):
        pretrain_model(plan, run.corpus, run.run_dir(plan.label), nproc=run.nproc,
                       stage_label=f"3/6 pretrain [{i + 1}/{len(run.settings.models)}]",
                       progress=run.progress)
        losses[plan.label] = _loss_trace(run.run_dir(plan.label))
    return {"nproc": run.nproc, "loss": losses}


def _loss_trace(run_dir: Path) -> dict:
    records = [r for r in read_metrics(run_dir / "metrics.jsonl") if "loss" in r]
    return {"first": records[0]["loss"], "last": records[-1]["loss"],
            "steps": records[-1]["step"]} if records else {}


def _publish(run: DemoRun) -> dict:
    params = {}
    for plan in progress_bar(run.settings.models, desc="4/6 publish models", unit="model",
                             disable=not run.progress):
        model = publish_model(run.run_dir(plan.label) / "model", run.model_dir(plan.label))
        params[plan.label] = int(sum(p.numel() for p in model.parameters()))
    return {"parameters": params}


def _evaluate(run: DemoRun) -> dict:
    model_dirs = {p.label: run.model_dir(p.label) for p in run.settings.models}
    done = []
    fingerprint = stage_fingerprint(run.settings, "evaluate")
    for task in progress_bar(run.settings.tasks, desc="5/6 evaluate tasks", unit="task",
                             disable=not run.progress):
        previous = read_summary(run.task_dir(task.label))
        if previous and previous.get("fingerprint") == fingerprint:
            done.append(task.label)
            continue
        summary = evaluate_task(task, run.settings, model_dirs, run.task_dir(task.label),
                                cache_dir=run.out / "cache" / "embeddings")
        write_summary(run.task_dir(task.label), {**summary, "fingerprint": fingerprint})
        done.append(task.label)
    return {"tasks": done}


def _report(run: DemoRun) -> dict:
    summaries = [read_summary(run.task_dir(t.label)) for t in run.settings.tasks]
    table = results_table(summaries)
    (run.out / "results.md").write_text(table)
    seconds = {k: v for k, v in run.seconds.items() if k != "report"}
    corpus_facts = {**run.facts.get("simulate", {}), **run.facts.get("prepare", {}),
                    "nproc": run.facts.get("pretrain", {}).get("nproc", run.nproc)}
    write_report(run.out, run.settings, summaries, seconds,
                 {p.label: run.run_dir(p.label) for p in run.settings.models}, corpus_facts)
    return {"table": table}


#: Stage name -> function doing it, in order.
STAGES: dict[str, Callable[[DemoRun], dict]] = {
    "simulate": _simulate,
    "prepare": _prepare,
    "pretrain": _pretrain,
    "publish": _publish,
    "evaluate": _evaluate,
    "report": _report,
}


def stage_record(out: str | Path, name: str) -> dict | None:
    """The record ``stages/<name>.json`` of a finished stage, or None."""
    path = Path(out) / "stages" / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else None


@verbose
def run_demo(settings: DemoSettings, out: str | Path, *, nproc: int | None = None,
             progress: bool = True, until: str | None = None,
             log: Callable[[str], None] | None = None, overwrite: bool = False,
             verbose=None) -> DemoRun:
    """Run (or resume) the demo's stages.

    Parameters
    ----------
    settings : DemoSettings
    out : path
        Demo folder (created); rerunning with the same folder skips finished stages.
    nproc : int, optional
        Pretraining processes (default :func:`neurofm.demo.pretraining.default_nproc`).
    progress : bool
        Show progress bars.
    until : str, optional
        Stop after this stage (default: run all).
    log : callable, optional
        Deprecated (removed in neurofm 0.3): the line of each stage (run or skipped, and its
        time) is logged at INFO level by the ``neurofm.demo.pipeline`` logger.
    overwrite : bool
        Delete the outputs of stages whose settings changed (else refuse), and write into a
        folder that holds files the demo did not write.
    verbose : bool, str, int or None
        Log level of the run (:func:`neurofm.logs.log_level`; None: the package's). Above INFO
        no progress bars show either.

    Returns
    -------
    DemoRun
        With ``facts`` and ``seconds`` of every stage.

    Raises
    ------
    ValueError
        Unknown stage name in ``until``; settings changed since a stage ran (without
        ``overwrite``); ``out`` holds files the demo did not write.
    """
    if until is not None and until not in STAGES:
        raise ValueError(f"Unknown demo stage {until!r}; stages are {', '.join(STAGES)}.")
    if log is not None:
        warnings.warn("run_demo(log=...) is deprecated and will be removed in neurofm 0.3; the "
                      "stage lines are logged by the 'neurofm.demo.pipeline' logger.",
                      FutureWarning, stacklevel=3)
    log = log or logger.info
    out = Path(out)
    claim_output_folder(out, "neurofm demo", settings.to_dict(), overwrite=overwrite)
    (out / "stages").mkdir(parents=True, exist_ok=True)
    (out / "demo.json").write_text(json.dumps(settings.to_dict(), indent=1))
    run = DemoRun(settings, out, nproc or settings.nproc or default_nproc(), progress)
    stale = False
    for index, (name, function) in enumerate(STAGES.items(), start=1):
        fingerprint = stage_fingerprint(settings, name)
        record = stage_record(out, name)
        current = record is not None and record["fingerprint"] == fingerprint and not stale
        if current:
            run.facts[name], run.seconds[name] = record["facts"], record["seconds"]
            log(f"[{index}/{len(STAGES)}] {name}: done earlier ({record['seconds']:.0f} s), "
                "skipped")
        else:
            stale = True  # every later stage must be redone with this one's new outputs
            _run_stage(run, index, name, function, fingerprint, log, overwrite)
        if name == until:
            break
    return run


def _run_stage(run: DemoRun, index: int, name: str, function, fingerprint: str, log,
               overwrite: bool) -> None:
    """Run one stage, then record it atomically in ``stages/<name>.json``.

    ``stages/<name>.started`` holds the fingerprint the stage last started with: when it
    differs (the settings changed since), the stage's old outputs are deleted first if
    ``overwrite``, else the run stops naming them; when it matches (an interrupted run), they
    are kept and the stage continues from them.
    """
    started = run.out / "stages" / f"{name}.started"
    if started.is_file() and started.read_text().strip() != fingerprint:
        outputs = [f for f in STAGE_OUTPUTS[name] if (run.out / f).exists()]
        if outputs and not overwrite:
            raise ValueError(
                f"The demo settings changed since the {name} stage ran in {run.out}; running it "
                f"again replaces {', '.join(f + '/' for f in outputs)} there. Pass --overwrite "
                "(overwrite=True) to replace them, or choose another --out.")
        for folder in STAGE_OUTPUTS[name]:
            shutil.rmtree(run.out / folder, ignore_errors=True)
    started.write_text(fingerprint)
    log(f"[{index}/{len(STAGES)}] {name} ...")
    start = time.perf_counter()
    facts = function(run)
    run.seconds[name] = time.perf_counter() - start
    run.facts[name] = facts
    tmp = run.out / "stages" / f"{name}.json.tmp"
    tmp.write_text(json.dumps({"fingerprint": fingerprint, "seconds": run.seconds[name],
                               "facts": facts}, indent=1))
    tmp.replace(run.out / "stages" / f"{name}.json")
    log(f"[{index}/{len(STAGES)}] {name}: {run.seconds[name]:.0f} s")
