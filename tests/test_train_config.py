"""Config loading, overrides and the learning-rate schedule."""

import pytest

from neurofm.train.config import load_config
from neurofm.train.schedule import warmup_cosine


def test_yaml_and_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("data: {path: /corpus, batch_size: 8}\n"
                    "model: {name: mamba_small, overrides: {dim: 32}}\n"
                    "optim: {lr: 3e-4}\n")
    cfg = load_config(path, ["run.steps=7", "model.overrides.depth=2", "optim.betas=[0.9, 0.98]",
                             "objective.mask_mode=block"])
    assert cfg.data.path == "/corpus" and cfg.data.batch_size == 8
    assert cfg.model.overrides == {"dim": 32, "depth": 2}
    assert cfg.optim.lr == pytest.approx(3e-4)  # YAML 1.1 reads 3e-4 as a string
    assert cfg.optim.betas == [0.9, 0.98]
    assert cfg.run.steps == 7 and cfg.objective.mask_mode == "block"
    assert cfg.run.precision == "fp32"  # default kept


@pytest.mark.parametrize("override, words", [
    ("run.stepz=3", ["run.stepz", "valid keys"]),
    ("run.steps=1.5", ["run.steps", "int"]),
    ("run.precision=fp16", ["run.precision", "bf16"]),
    ("optim.lr=fast", ["optim.lr", "float"]),
    ("steps", ["section.key=value"]),
])
def test_bad_overrides_name_the_key(override, words):
    with pytest.raises(ValueError) as err:
        load_config(None, [override])
    for word in words:
        assert word in str(err.value)


def test_missing_config_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="pretrain/configs"):
        load_config(tmp_path / "nope.yaml")


def test_shipped_configs_load():
    for name in ("sim_tiny", "sim_multimodal", "tueg_criss_cross_base", "tueg_mamba_base"):
        cfg = load_config(f"pretrain/configs/{name}.yaml")
        assert cfg.run.steps > 0 and cfg.data.batch_size > 0


def test_warmup_then_cosine():
    f = [warmup_cosine(s, total_steps=110, warmup_steps=10, min_ratio=0.1) for s in range(110)]
    assert f[0] == pytest.approx(0.1) and f[9] == pytest.approx(1.0)
    assert f[10] == pytest.approx(1.0)
    assert f[60] == pytest.approx(0.1 + 0.9 * 0.5)  # halfway through the cosine
    assert all(a >= b for a, b in zip(f[10:], f[11:]))
    assert warmup_cosine(110, total_steps=110, warmup_steps=10, min_ratio=0.1) == \
        pytest.approx(0.1)
