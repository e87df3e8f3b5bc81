"""Every shipped task config parses into valid evaluation settings."""

from pathlib import Path

import pytest

from neurofm.cli import build_parser
from neurofm.commands.probe import settings_from_args
from neurofm.eval.baselines import BASELINES
from neurofm.eval.protocols import PROTOCOLS
from neurofm.eval.settings import POOLINGS, TaskConfig, evaluation_settings, read_task_config
from neurofm.eval.task_preprocessing import TASK_KEYS
from neurofm.eval.training import FinetuneConfig

CONFIGS = sorted((Path(__file__).parents[1] / "finetune").glob("*.yaml"))
REQUIRED = {"bcic_iv_2a", "physionet_mi", "tuab", "tuev", "seed_v", "sleep_edf", "chb_mit",
            "finger_movements", "eyes_open_shut", "sim_motor_imagery_eeg",
            "sim_motor_imagery_meg", "sim_motor_imagery_ieeg"}


def test_every_benchmark_has_a_config():
    assert REQUIRED <= {p.stem for p in CONFIGS}


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_config_is_valid(path):
    config = read_task_config(path)
    assert config.task == path.stem
    assert config.data and config.protocol in PROTOCOLS
    assert set(config.baselines or []) <= set(BASELINES)
    assert (config.pool or "mean") in POOLINGS["finetune"]
    FinetuneConfig.from_dict(config.train)
    assert set(config.preprocessing) <= {"sfreq", "l_freq", "h_freq", "notch", "line_freq",
                                         "scales", "patch_size", *TASK_KEYS}
    assert set(config.also_protocols or []) <= set(PROTOCOLS)
    for entry in config.published_results():
        assert entry.model and entry.source and 0 <= entry.value <= 1


def test_unknown_config_key_is_named(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("task: x\ndata: aeon:FingerMovements\nprotocl: loso\n")
    with pytest.raises(ValueError, match="protocl"):
        read_task_config(bad)


def test_settings_merge_defaults_then_task_config_then_flags(tmp_path):
    path = tmp_path / "task.yaml"
    path.write_text("task: task\ndata: ~/eeg-bids\nprotocol: loso\nseeds: 3\n"
                    "preprocessing: {sfreq: 200, notch: 50}\ntrain: {epochs: 9, lr_head: 0.01}\n"
                    "baselines: [bandpower, fbcsp]\n")
    flags = TaskConfig(seeds=2, preprocessing={"line_freq": 60.0}, train={"epochs": 3})
    settings = evaluation_settings("finetune", read_task_config(path).merged(flags),
                                   model="criss_cross_small", out="out", device="cuda")
    assert settings.data == str(Path.home() / "eeg-bids")
    assert (settings.protocol, settings.seeds, settings.n_folds) == ("loso", 2, 5)
    # the flag's line_freq replaces the config's deprecated notch
    assert settings.preprocessing == {"sfreq": 200, "line_freq": 60.0}
    assert settings.train == {"epochs": 3, "lr_head": 0.01}
    assert settings.baselines == ["bandpower", "fbcsp"] and settings.device == "cuda"
    assert settings.pool == "mean" and settings.freeze == "none"         # defaults


def test_flags_alone_make_settings_and_bad_values_are_named():
    settings = evaluation_settings("probe", TaskConfig(data="aeon:EyesOpenShut", baselines="none"),
                                   model="m", out="o")
    assert settings.baselines == [] and settings.protocol == "cross-subject"
    assert evaluation_settings("probe", TaskConfig(data="x", baselines="fbcsp, eegnet"),
                               model="m", out="o").baselines == ["fbcsp", "eegnet"]
    with pytest.raises(ValueError, match="No data set"):
        evaluation_settings("probe", TaskConfig(), model="m", out="o")
    with pytest.raises(ValueError, match=r"Unknown baseline\(s\) \['csp'\]"):
        evaluation_settings("probe", TaskConfig(data="x", baselines="csp"), model="m", out="o")
    with pytest.raises(ValueError, match="unknown key.*epochs"):
        evaluation_settings("probe", TaskConfig(data="x"), model="m", out="o", epochs=3)


def test_lora_flag_freezes_the_backbone_unless_freeze_is_given(tmp_path):
    common = ["--model", "criss_cross_small", "--out", str(tmp_path), "--config",
              "finetune/finger_movements.yaml"]
    args = build_parser().parse_args(["finetune", *common, "--lora", "4", "--epochs", "2"])
    settings = settings_from_args(args, "finetune", lora=args.lora)
    assert (settings.freeze, settings.lora, settings.train["epochs"]) == ("backbone", 4, 2)
    args = build_parser().parse_args(["finetune", *common, "--lora", "4", "--freeze", "none"])
    assert settings_from_args(args, "finetune", lora=args.lora).freeze == "none"


def test_published_split_and_protocol_entries_are_checked(tmp_path):
    def config(text):
        path = tmp_path / "task.yaml"
        path.write_text("task: task\ndata: aeon:FingerMovements\n" + text)
        return read_task_config(path)

    good = config("published:\n  - {model: M, metric: cohen_kappa, value: 0.3, source: p}\n")
    assert good.published_results()[0].value == 0.3
    with pytest.raises(ValueError, match=r"published\[0\]: metric 'kappa' is not one"):
        config("published:\n  - {model: M, metric: kappa, value: 0.3, source: p}\n")
    with pytest.raises(ValueError, match=r"published\[0\].*unknown key.*table"):
        config("published:\n  - {model: M, metric: r2, value: 0.3, source: p, table: 3}\n")
    with pytest.raises(ValueError, match=r"published\[0\] must be a mapping"):
        config("published: ['CBraMod 0.51']\n")
    with pytest.raises(ValueError, match=r"split: by must be 'subject' or 'session'"):
        config("split: {by: run, train: [1], test: [2]}\n")
    with pytest.raises(ValueError, match=r"split: train and test must each list"):
        config("split: {train: [1], test: []}\n")
    with pytest.raises(ValueError, match=r"also_protocols \['leave-one-out'\]"):
        config("also_protocols: [leave-one-out]\n")
    with pytest.raises(ValueError, match=r"preprocessing: filter must be one of"):
        config("preprocessing: {filter: bessel}\n")
