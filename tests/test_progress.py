"""Progress bars: few lines in a log file, none with NEUROFM_PROGRESS=0 or TQDM_DISABLE=1."""

import io
import os
import subprocess
import sys

import pytest

from neurofm.progress import ENV_VAR, progress_bar


class TerminalStream(io.StringIO):
    def isatty(self):
        return True


class FakeClock:
    """Stands in for ``time.time`` in tqdm; the loop under test advances it."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def redraws(stream, monkeypatch, steps=1000, seconds_per_step=0.1, **kwargs) -> int:
    """Bar redraws written to ``stream`` by a ``steps`` loop of simulated duration."""
    clock = FakeClock()
    monkeypatch.setattr("tqdm.std.time", clock)
    for _ in progress_bar(range(steps), file=stream, **kwargs):
        clock.now += seconds_per_step
    return stream.getvalue().count("\r")


@pytest.fixture(autouse=True)
def progress_on(monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)


def test_log_file_gets_a_few_lines_and_a_terminal_the_usual_bar(monkeypatch):
    log = io.StringIO()
    in_log = redraws(log, monkeypatch)  # 100 s of work
    assert 2 <= in_log <= 6  # start, every 30 s, end
    assert "1000/1000" in log.getvalue().splitlines()[-1]
    on_terminal = redraws(TerminalStream(), monkeypatch)
    assert on_terminal > 100  # tqdm's own 0.1-s interval: the case progress_bar avoids in logs


def test_transient_bars_stay_out_of_logs_unless_slow(monkeypatch):
    assert redraws(io.StringIO(), monkeypatch, seconds_per_step=0.01, leave=False) == 0
    assert redraws(io.StringIO(), monkeypatch, leave=False) > 0  # 100 s: it shows


@pytest.mark.parametrize("value", ["0", "false", "off"])
def test_env_var_turns_bars_off(monkeypatch, value):
    monkeypatch.setenv(ENV_VAR, value)
    for stream in (io.StringIO(), TerminalStream()):
        bar = progress_bar(total=1000, file=stream, disable=False)
        for _ in range(1000):
            bar.update(1)
        bar.close()
        assert bar.disable and stream.getvalue() == ""


def test_explicit_settings_win(monkeypatch):
    assert redraws(io.StringIO(), monkeypatch, mininterval=0.1, maxinterval=10) > 100
    assert redraws(io.StringIO(), monkeypatch, disable=True) == 0


def test_training_bar_writes_two_lines_to_a_log(tmp_path, capsys):
    """The pretraining loop's per-step loss postfix must not force a redraw per step."""
    from test_train_loop import in_memory, tiny_config

    from neurofm.train import train

    train(tiny_config(tmp_path / "run", "run.progress=true"), data=in_memory())
    err = capsys.readouterr().err
    assert err.count("\r") == 2 and "6/6" in err  # start and end, not one line per step


def test_tqdm_disable_env_still_applies():
    code = ("import io; from neurofm.progress import progress_bar; s = io.StringIO(); "
            "[0 for _ in progress_bar(range(50), file=s, disable=False)]; "
            "print(repr(s.getvalue()))")
    env = {**os.environ, "TQDM_DISABLE": "1"}
    env.pop(ENV_VAR, None)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "''"
