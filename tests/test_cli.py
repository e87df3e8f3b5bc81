"""The command line as people expect it: ``--help`` at once (no torch), the same flags in every
command, one name per concept, old spellings that still work with a note, and logging that
``--verbose``/``--quiet`` steer while results still reach stdout."""

import argparse
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from neurofm.cli import build_parser, command_parsers, main
from neurofm.commands.flags import warn_deprecated_flags
from neurofm.logs import PROGRESS_ENV_VAR, command_output, log_level, use_log_level, verbose
from neurofm.progress import progress_bar
from tests.corpus_edf_files import tueg_path, write_tuh_edf

ROOT = Path(__file__).resolve().parents[1]
#: Libraries that building the parser must not import (torch alone takes seconds).
HEAVY = ("torch", "numpy", "scipy", "mne", "pandas", "pyarrow", "sklearn", "datasets",
         "huggingface_hub")
OUTPUT_FLAGS = ("-v", "--verbose", "-q", "--quiet", "--no-progress", "--debug")
#: Commands with randomness (``--seed``) and commands given a model that may be a Hub repo id.
SEEDED = {"corpus stats", "pretrain", "probe", "finetune", "simulate", "tokenizer train", "demo"}
WITH_REVISION = {"probe", "finetune", "convert", "tokenizer encode", "hub push"}


def commands() -> dict[str, argparse.ArgumentParser]:
    """``"corpus stats"`` -> its parser, for every parser that runs a command."""
    return {parser.prog.removeprefix("neurofm "): parser
            for parser in command_parsers(build_parser())}


def _python(code: str, *args: str, **kwargs) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          timeout=300, check=False, env=env, cwd=ROOT, **kwargs)


HELP_IMPORTS = """
import json, sys
from neurofm.cli import build_parser, command_parsers, main
argv = sys.argv[1:]
try:
    main(argv)
except SystemExit as stop:
    assert stop.code == 0, stop.code
if not argv:  # every command's help too
    for parser in command_parsers(build_parser()):
        parser.format_help()
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in {heavy!r})),
      file=sys.stderr)
"""


@pytest.mark.parametrize("argv", [["--help"], ["probe", "--help"], []],
                         ids=["neurofm --help", "neurofm probe --help", "every command's help"])
def test_help_imports_no_torch_nor_other_heavy_library(argv):
    result = _python(HELP_IMPORTS.format(heavy=set(HEAVY)), *argv)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stderr.splitlines()[-1]) == []
    if argv:
        assert result.stdout.startswith("usage: neurofm")


def test_every_command_has_help_and_the_shared_flags(capsys):
    parsers = commands()
    assert {"info", "prepare", "corpus stats", "corpus verify", "pretrain", "probe", "finetune",
            "datasets list", "datasets download", "simulate", "tokenizer train",
            "tokenizer encode", "hub push", "convert", "demo"} <= set(parsers)
    for name, parser in parsers.items():
        with pytest.raises(SystemExit) as stop:
            main([*name.split(), "--help"])
        assert stop.value.code == 0, name
        shown = capsys.readouterr().out
        assert shown.startswith(f"usage: neurofm {name}"), name
        flags = parser._option_string_actions
        for flag in OUTPUT_FLAGS:
            assert flag in flags and flag in shown, (name, flag)
        assert ("--seed" in flags) == (name in SEEDED), name
        assert ("--revision" in flags) == (name in WITH_REVISION), name
        with pytest.raises(SystemExit):  # one level at a time
            parser.parse_args(["--verbose", "--quiet"])
        capsys.readouterr()


def test_data_workers_and_training_processes_are_two_flags_that_say_so():
    parsers = commands()
    for name, parser in parsers.items():
        flags = parser._option_string_actions
        if "--num-proc" in flags:
            assert name == "prepare"
            assert "not --nproc" in flags["--num-proc"].help
        if "--nproc" in flags:
            assert name in ("pretrain", "tokenizer train", "demo")
            assert "torchrun" in flags["--nproc"].help and "not --num-proc" in flags["--nproc"].help
    line_freq = [n for n, p in parsers.items() if "--line-freq" in p._option_string_actions]
    assert sorted(line_freq) == ["finetune", "info", "prepare", "probe", "simulate"]


def test_the_flags_defaults_and_choices_are_the_librarys():
    from dataclasses import asdict

    from neurofm.commands import info, prepare, probe, simulate
    from neurofm.corpus.prepare import CHANNEL_MODES, PrepareOptions
    from neurofm.corpus.shards import DEFAULT_SHARD_MB
    from neurofm.data.preprocess import DEFAULT_RECORDING_SPEC
    from neurofm.eval.baselines import BASELINES
    from neurofm.eval.protocols import PROTOCOLS
    from neurofm.eval.settings import POOLINGS, TARGETS
    from neurofm.simulate.artefacts import ARTEFACTS
    from neurofm.simulate.sensor_sets import MODALITY_DEFAULTS
    from neurofm.simulate.tasks import list_tasks
    from neurofm.simulate.writers import FORMATS

    parsers = commands()
    assert vars(prepare.DEFAULTS) == asdict(PrepareOptions())
    for dest, value in asdict(PrepareOptions()).items():
        assert parsers["prepare"].get_default(dest) == value, dest
    assert (prepare.CHANNEL_MODES, prepare.DEFAULT_SHARD_MB) == (CHANNEL_MODES, DEFAULT_SHARD_MB)
    spec = DEFAULT_RECORDING_SPEC
    assert (info.DEFAULT_SFREQ, info.DEFAULT_L_FREQ, info.DEFAULT_H_FREQ) == (
        spec.sfreq, spec.l_freq, spec.h_freq)
    assert (probe.PROTOCOLS, probe.BASELINES) == (tuple(PROTOCOLS), tuple(BASELINES))
    assert all(tuple(pools) == probe.POOLINGS for pools in POOLINGS.values())
    assert probe.TARGETS == TARGETS
    assert (list(simulate.TASKS), simulate.MODALITY_DEFAULTS) == (list_tasks(), MODALITY_DEFAULTS)
    assert (simulate.ARTEFACTS, simulate.FORMATS) == (tuple(ARTEFACTS), tuple(FORMATS))


# -- old spellings --------------------------------------------------------------------------------
def test_notch_is_line_freq_with_a_deprecation_warning():
    from neurofm.commands.probe import settings_from_args

    common = ["probe", "--model", "criss_cross_small", "--data", "sim:motor_imagery", "--out",
              "o"]
    new = build_parser().parse_args([*common, "--line-freq", "50"])
    old = build_parser().parse_args([*common, "--notch", "50"])
    warn_deprecated_flags(new)  # nothing to say
    with pytest.warns(FutureWarning, match=r"^--notch is deprecated and will be removed in "
                                           r"neurofm 0\.3; use --line-freq\.$"):
        warn_deprecated_flags(old)
    assert settings_from_args(old, "probe") == settings_from_args(new, "probe")
    assert settings_from_args(old, "probe").preprocessing == {"line_freq": 50.0}
    both = build_parser().parse_args([*common, "--notch", "50", "--line-freq", "60"])
    with pytest.raises(ValueError, match="--notch is the old spelling of --line-freq"):
        warn_deprecated_flags(both)


def test_the_command_line_prints_each_deprecation_once_in_one_line(tmp_path):
    argv = ["prepare", str(tmp_path / "none"), "--out", str(tmp_path / "c"), "--shard-index", "0",
            "--num-shards", "1", "--quiet"]
    result = _python("import sys; from neurofm.cli import main; sys.exit(main(sys.argv[1:]))",
                     *argv)
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert [line.split(";")[0] for line in lines if line.startswith("warning:")] == [
        "warning: --shard-index is deprecated and will be removed in neurofm 0.3",
        "warning: --num-shards is deprecated and will be removed in neurofm 0.3"]
    assert lines[-1].startswith("neurofm prepare: error:") and len(lines) == 3


# -- seeds ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(("flags", "seeds"), [([], [0, 1, 2, 3, 4]), (["--seed", "7"], [7]),
                                              (["--seeds", "2"], [0, 1]),
                                              (["--seed", "3", "--seeds", "2"], [3, 4])])
def test_seed_is_the_first_seed_and_seeds_their_number(flags, seeds):
    from neurofm.commands.probe import settings_from_args

    args = build_parser().parse_args(["probe", "--model", "criss_cross_small", "--data",
                                      "sim:motor_imagery", "--out", "o", *flags])
    assert settings_from_args(args, "probe").seed_list == seeds


def test_pretrain_seed_sets_run_seed_and_reaches_the_torchrun_ranks():
    from neurofm import worker

    args = build_parser().parse_args(["pretrain", "--config", "pretrain/configs/sim_tiny.yaml",
                                      "--seed", "11", "--quiet", "--nproc", "2"])
    assert worker.pretrain_config(args).run.seed == 11
    assert worker.pretrain_argv(args) == ["--config", "pretrain/configs/sim_tiny.yaml",
                                          "--seed", "11", "--quiet"]


# -- logging --------------------------------------------------------------------------------------
@verbose
def _chatty(*, verbose=None):
    log = logging.getLogger("neurofm.tests.chatty")
    log.debug("debug line")
    log.info("info line")
    log.warning("warning line")
    return progress_bar(range(2)).disable


@pytest.mark.parametrize(("level", "shown", "bars"), [
    (None, ["INFO", "WARNING"], False), (True, ["INFO", "WARNING"], False),
    (False, ["WARNING"], True), ("debug", ["DEBUG", "INFO", "WARNING"], False),
    (logging.ERROR, [], True)])
def test_verbose_sets_the_level_of_one_call(caplog, monkeypatch, level, shown, bars):
    monkeypatch.delenv(PROGRESS_ENV_VAR, raising=False)
    caplog.set_level(logging.NOTSET, logger="neurofm.tests")
    before = logging.getLogger("neurofm").level
    assert _chatty(verbose=level) is bars
    assert [r.levelname for r in caplog.records] == shown
    assert logging.getLogger("neurofm").level == before


def test_verbose_needs_a_keyword_only_argument_and_known_level_names():
    with pytest.raises(TypeError, match="keyword-only verbose=None"):
        verbose(lambda verbose=None: None)
    with pytest.raises(ValueError, match="Unknown log level 'loud'"):
        log_level("loud")
    assert (log_level(True), log_level(False), log_level("Warning")) == (20, 30, 30)


def test_command_output_is_undone_after_the_command():
    handlers = list(logging.getLogger("neurofm").handlers)
    level = logging.getLogger("neurofm").level
    progress = os.environ.get(PROGRESS_ENV_VAR)
    with command_output(argparse.Namespace(verbose=True, quiet=False, no_progress=True)):
        assert logging.getLogger("neurofm").level == logging.DEBUG
        assert os.environ[PROGRESS_ENV_VAR] == "0"
        assert len(logging.getLogger("neurofm").handlers) == len(handlers) + 1
    assert logging.getLogger("neurofm").handlers == handlers
    assert logging.getLogger("neurofm").level == level
    assert os.environ.get(PROGRESS_ENV_VAR) == progress


@pytest.fixture(scope="module")
def recordings(tmp_path_factory):
    """Two short TUEG-named EDF files and one too short to keep."""
    src = tmp_path_factory.mktemp("src")
    for k, minutes in enumerate((1.25, 1.25, 0.3)):
        write_tuh_edf(src / tueg_path(f"aaaaaaa{'abc'[k]}", 1, 0), minutes, 250.0, seed=k)
    return src


PREPARE = ["--window-seconds", "10", "--trim-seconds", "5", "--min-minutes", "1",
           "--shard-size-mb", "0.5"]


def test_a_library_function_logs_at_the_levels_verbose_chooses(recordings, tmp_path, caplog):
    from neurofm.corpus.prepare import PrepareOptions, prepare_corpus

    options = PrepareOptions(window_seconds=10.0, trim_seconds=5.0, min_minutes=1.0)
    caplog.set_level(logging.NOTSET, logger="neurofm")
    with use_log_level("DEBUG"):
        prepare_corpus(recordings, tmp_path / "c", options, shard_size_mb=0.5)
    records = [(r.name, r.levelname, r.getMessage()) for r in caplog.records
               if r.name == "neurofm.corpus.prepare"]
    assert records[0] == ("neurofm.corpus.prepare", "INFO",
                          (f"Preparing 3 recording file(s) into {tmp_path / 'c'} with 1 "
                           "process(es); 0 done in an earlier run."))
    debug = sorted(m.split(" ")[0] for _, level, m in records if level == "DEBUG")
    assert debug == ["kept", "kept", "skipped"]
    caplog.clear()
    prepare_corpus(recordings, tmp_path / "c", options, shard_size_mb=0.5, verbose=False)
    assert [r for r in caplog.records if r.name.startswith("neurofm")] == []
    prepare_corpus(recordings, tmp_path / "c", options, shard_size_mb=0.5, verbose=True)
    assert [r.getMessage().split(";")[1] for r in caplog.records] == [" 3 done in an earlier run."]


def test_quiet_silences_messages_and_bars_but_not_the_result(recordings, tmp_path, capsys):
    out = str(tmp_path / "c")
    assert main(["prepare", str(recordings), *PREPARE, "--out", out]) == 0
    shown = capsys.readouterr()
    assert shown.err.splitlines()[0].startswith("Preparing 3 recording file(s) into")
    assert shown.out.startswith(f"Corpus {out}: 2 of 3 files kept")
    assert main(["prepare", str(recordings), *PREPARE, "--out", out, "--quiet"]) == 0
    shown = capsys.readouterr()
    assert shown.err == ""
    assert shown.out.startswith(f"Corpus {out}: 2 of 3 files kept")
    assert main(["prepare", str(recordings), *PREPARE, "--out", out, "--verbose"]) == 0
    assert "debug: " not in capsys.readouterr().err  # nothing left to do: no file named
    assert main(["prepare", str(recordings), *PREPARE, "--out", str(tmp_path / "d"),
                 "--verbose", "--no-progress"]) == 0
    err = capsys.readouterr().err.splitlines()
    assert sorted(line.split(" ")[1] for line in err if line.startswith("debug: ")) == [
        "kept", "kept", "skipped"]
    assert not any("it/s" in line or "file/s" in line for line in err)  # no bars
