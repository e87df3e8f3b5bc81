"""TensorBoard is an extra: written when installed, an error naming the extra when required."""

import pytest

from neurofm.compat import MissingExtraError
from neurofm.train import metrics
from neurofm.train.metrics import MetricsLog, read_metrics


def test_default_writes_tensorboard_only_when_installed(tmp_path, monkeypatch):
    monkeypatch.setattr(metrics, "tensorboard_installed", lambda: False)
    log = MetricsLog(tmp_path / "run")
    log.log({"step": 1, "loss": 0.5})
    log.close()
    assert log.writer is None and not (tmp_path / "run" / "tensorboard").exists()
    assert read_metrics(tmp_path / "run" / "metrics.jsonl") == [{"step": 1, "loss": 0.5}]


def test_tensorboard_asked_for_without_it_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setattr(metrics, "tensorboard_installed", lambda: False)
    with pytest.raises(MissingExtraError, match=r"pip install 'neurofm\[tensorboard\]'.*"
                                                r"run\.tensorboard=false"):
        MetricsLog(tmp_path / "run", tensorboard=True)
    assert not (tmp_path / "run").exists()  # refused before writing anything


@pytest.mark.skipif(not metrics.tensorboard_installed(), reason="needs neurofm[tensorboard]")
def test_default_writes_tensorboard_when_installed(tmp_path):
    log = MetricsLog(tmp_path / "run")
    log.log({"step": 1, "loss": 0.5})
    log.close()
    assert list((tmp_path / "run" / "tensorboard").iterdir())
