"""The one worker entry point of both training jobs, and the names that moved in 0.2."""

import importlib
import sys

import pytest

from neurofm import worker
from neurofm.train.config import load_config
from neurofm.train.tokenizer_jobs import TokenizerRun
from neurofm.train.tokenizer_loop import TokenizerTrainConfig


@pytest.mark.parametrize("argv", [
    ["pretrain", "--config", "c.yaml"],
    ["pretrain", "--config", "c.yaml", "--out", "runs/x", "--set", "run.steps=3", "--set",
     "optim.lr=1e-3", "--resume"],
    ["tokenizer", "--data", "sim:tiny", "--out", "runs/tok"],
    ["tokenizer", "--data", "a.edf", "b.fif", "--config", "base", "--out", "o", "--steps", "5",
     "--batch-size", "8", "--lr", "0.002", "--seed", "3", "--device", "cpu", "--cache-dir", "c",
     "--no-progress"],
])
def test_a_job_command_line_survives_the_round_trip_through_torchrun(argv):
    """What ``--nproc N`` hands each torchrun rank parses to the arguments it was made from."""
    args = worker.build_parser().parse_args(argv)
    again = worker.build_parser().parse_args([args.job, *worker.JOBS[args.job].argv(args)])
    assert vars(again) == vars(args)


def test_the_cli_commands_take_the_worker_arguments():
    from neurofm.cli import build_parser

    pretrain = build_parser().parse_args(["pretrain", "--config", "c.yaml", "--nproc", "2"])
    assert worker.pretrain_argv(pretrain) == ["--config", "c.yaml"]
    tokenizer = build_parser().parse_args(["tokenizer", "train", "--data", "sim:tiny", "--out",
                                           "o", "--nproc", "2"])
    assert worker.tokenizer_argv(tokenizer) == ["--data", "sim:tiny", "--config", "small",
                                                "--out", "o", "--device", "auto"]


def test_worker_errors_name_the_job_and_rank(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("RANK", "1")
    assert worker.main(["pretrain", "--config", str(tmp_path / "none.yaml")]) == 2
    err = capsys.readouterr().err
    assert "neurofm pretrain (rank 1): error:" in err and "none.yaml does not exist" in err
    assert worker.main(["tokenizer", "--data", "x", "--out", "o", "--config", "nope"]) == 2
    assert "neurofm tokenizer (rank 1): error:" in capsys.readouterr().err


def test_python_m_neurofm_pretrain_is_the_pretraining_worker(tmp_path, capsys):
    from neurofm.pretrain import main

    assert main(["--config", str(tmp_path / "none.yaml")]) == 2
    assert "neurofm pretrain (rank 0): error:" in capsys.readouterr().err


def test_worker_pretrain_config_applies_out_and_resume():
    args = worker.build_parser().parse_args(
        ["pretrain", "--config", "pretrain/configs/sim_tiny.yaml", "--out", "runs/elsewhere",
         "--set", "run.steps=9", "--resume"])
    config = worker.pretrain_config(args)
    expected = load_config("pretrain/configs/sim_tiny.yaml",
                           ["run.steps=9", "run.out_dir=runs/elsewhere", "run.resume=always"])
    assert config == expected


def _fresh_import(module: str):
    sys.modules.pop(module, None)
    return importlib.import_module(module)


def test_old_tokenizer_job_paths_warn_and_give_the_moved_objects():
    from neurofm.train import tokenizer_jobs, tokenizer_loop

    with pytest.warns(DeprecationWarning, match="neurofm.train.tokenizer_jobs"):
        pipeline = _fresh_import("neurofm.tokenizer.pipeline")
    assert pipeline.TokenizerRun is TokenizerRun
    assert pipeline.encode_recording is tokenizer_jobs.encode_recording
    assert pipeline.run_tokenizer_training is tokenizer_jobs.run_tokenizer_training
    with pytest.warns(DeprecationWarning, match="TrainConfig is now TokenizerTrainConfig"):
        train = _fresh_import("neurofm.tokenizer.train")
    assert train.TrainConfig is TokenizerTrainConfig
    assert train.train_tokenizer is tokenizer_loop.train_tokenizer


def test_old_finetune_config_name_warns():
    from neurofm.eval import training

    with pytest.warns(DeprecationWarning, match="FinetuneConfig"):
        from neurofm.eval.training import TrainConfig
    assert TrainConfig is training.FinetuneConfig
    with pytest.raises(AttributeError):
        training.NoSuchName  # noqa: B018


def test_flat_objective_keys_of_0_1_map_onto_terms():
    flat = ["objective.reconstruction_weight=0.5", "objective.reconstruction_loss=smooth_l1",
            "objective.visible_weight=0.1", "objective.smooth_l1_beta=0.3",
            "objective.reconstruction_target=both", "objective.spectral_weight=2e-1",
            "objective.spectral_phase_weight=0.05", "objective.code_prediction_weight=0.25",
            "objective.tokenizer=runs/tok", "objective.mask_ratio=0.4"]
    with pytest.warns(DeprecationWarning, match="objective.visible_weight -> "
                                                "objective.terms.reconstruction.visible_weight"):
        old = load_config(None, flat)
    terms = ("{reconstruction: {weight: 0.5, loss: smooth_l1, visible_weight: 0.1, "
             "smooth_l1_beta: 0.3, target: both, spectral_weight: 0.2, "
             "spectral_phase_weight: 0.05}, code_prediction: {weight: 0.25, tokenizer: runs/tok}}")
    new = load_config(None, ["objective.mask_ratio=0.4", f"objective.terms={terms}"])
    assert old == new
    # 0.1's defaults: reconstruction on, code prediction off unless its weight is set
    with pytest.warns(DeprecationWarning):
        only_tokenizer = load_config(None, ["objective.tokenizer=runs/tok"]).objective.terms
    assert only_tokenizer["reconstruction"].weight == 1.0
    assert only_tokenizer["code_prediction"].weight == 0.0
    with pytest.raises(ValueError, match="both terms and the flat key"):
        load_config(None, ["objective.terms={reconstruction: {}}",
                           "objective.visible_weight=0.1"])
