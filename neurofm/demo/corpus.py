"""Stages 1-2 of the demo: simulate a small multi-montage pretraining corpus, then prepare it.

The recordings are unlabelled: mostly resting state (1/f background, posterior alpha,
sensorimotor mu/beta) seen through several EEG caps and a MEG helmet, plus a few clinical EEG
recordings (the ``abnormal`` task's normal and abnormal backgrounds), as in a clinical archive
such as TUEG; one simulated subject per recording.
They are written as FIF files and turned into a corpus by :func:`neurofm.corpus.prepare_corpus`
exactly as ``neurofm prepare`` would do with real recordings.
"""

from __future__ import annotations

from pathlib import Path

from neurofm.corpus import PrepareOptions, prepare_corpus
from neurofm.demo.settings import DemoSettings
from neurofm.progress import progress_bar
from neurofm.simulate import simulate_recording

#: Mains frequency of the simulated recordings (also notched by the preparation).
LINE_FREQ = 50.0


def recording_plan(settings: DemoSettings) -> list[tuple[str, dict]]:
    """File names and :func:`neurofm.simulate.simulate_recording` arguments of every recording.

    Subjects are numbered across the corpus parts, so no two recordings share a simulated
    subject; the demo's evaluation tasks use another seed, hence other subjects.
    """
    plan, subject = [], 0
    for part in settings.corpus:
        for _ in range(part.subjects):
            task = "" if part.task == "resting" else f"_task-{part.task}"
            name = f"sub-{subject:03d}_{part.modality}-{part.montage}{task}_raw.fif"
            plan.append((name, {"modality": part.modality, "montage": part.montage,
                                "subject": subject, "pick": part.pick, "task": part.task}))
            subject += 1
    return plan


def simulate_corpus_recordings(settings: DemoSettings, folder: str | Path, *,
                               progress: bool = True) -> list[Path]:
    """Write the recordings of the pretraining corpus as FIF files.

    Files already present are kept (a rerun after an interruption simulates only the missing
    ones; each file is written under a temporary name and renamed).

    Parameters
    ----------
    settings : DemoSettings
    folder : path
        Output folder (created).
    progress : bool
        Show a progress bar over recordings.

    Returns
    -------
    list of Path
        The FIF files, in plan order.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    plan = recording_plan(settings)
    for name, spec in progress_bar(plan, desc="1/6 simulate corpus", unit="rec",
                                   disable=not progress):
        path = folder / name
        paths.append(path)
        if path.is_file():
            continue
        rec = simulate_recording(spec["task"], spec["modality"], montage=spec["montage"],
                                 duration=settings.seconds, sfreq=settings.sfreq,
                                 subject=spec["subject"], seed=settings.seed,
                                 line_freq=LINE_FREQ, grid_mm=20.0)
        raw = rec.raw.pick(spec["pick"]) if spec["pick"] else rec.raw
        tmp = folder / f"tmp-{name}"
        raw.save(tmp, overwrite=True, verbose="error")
        tmp.replace(path)
    return paths


def prepare_options(settings: DemoSettings):
    """The :class:`neurofm.corpus.PrepareOptions` of the demo corpus.

    Short simulated recordings: no trimming, no minimum length, no amplitude rejection (there
    are no artefacts to reject), EEG and MEG channels kept (``channels="all"``).
    """
    return PrepareOptions(sfreq=settings.sfreq, window_seconds=settings.window_seconds,
                          patch_seconds=1.0, channels="all", max_abs_uv=None, trim_seconds=0.0,
                          min_minutes=0.0, dtype="float32", line_freq=LINE_FREQ)


def prepare_demo_corpus(settings: DemoSettings, recordings: str | Path, corpus: str | Path, *,
                        progress: bool = True):
    """Prepare the simulated recordings into a corpus (``neurofm prepare`` with the demo's options).

    Returns
    -------
    neurofm.corpus.PrepareSummary

    Raises
    ------
    ValueError
        No recording was kept (the skip reasons are in the message).
    """
    summary = prepare_corpus(recordings, corpus, prepare_options(settings), progress=progress)
    if summary.n_kept == 0:
        reasons = "; ".join(f"{count} x {reason}" for reason, count in summary.reasons.items())
        raise ValueError(f"The demo corpus in {corpus} kept no recording ({reasons}); see "
                         f"{Path(corpus) / 'manifest.parquet'}.")
    return summary
