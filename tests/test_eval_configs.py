"""Every shipped task config parses into valid evaluation settings."""

from pathlib import Path

import pytest

from neurofm.commands.probe import read_task_config
from neurofm.eval.baselines import BASELINES
from neurofm.eval.protocols import PROTOCOLS
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
    assert config["task"] == path.stem
    assert config["data"] and config["protocol"] in PROTOCOLS
    assert set(config.get("baselines", [])) <= set(BASELINES)
    assert config.get("pool", "mean") in ("mean", "channels", "attention")
    FinetuneConfig.from_dict(config.get("train"))
    assert set(config.get("preprocessing", {})) <= {"sfreq", "l_freq", "h_freq", "notch",
                                                    "line_freq", "scales", "patch_size"}


def test_unknown_config_key_is_named(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("task: x\ndata: aeon:FingerMovements\nprotocl: loso\n")
    with pytest.raises(ValueError, match="protocl"):
        read_task_config(bad)
