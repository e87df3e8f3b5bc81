"""The command line reports errors on files in one line that names the file and the fix."""

import builtins
import errno
from pathlib import Path

import pytest

from neurofm import worker
from neurofm.cli import main
from neurofm.user_errors import one_line
from tests.data_recordings import TUH_NAMES, make_raw, write_edf


@pytest.fixture
def unreadable(tmp_path, monkeypatch):
    """An EDF with mode 000; reading it is refused (also for root, whom chmod does not stop)."""
    path = Path(write_edf(make_raw(TUH_NAMES, sfreq=250.0, seconds=3.0), tmp_path / "locked.edf"))
    path.chmod(0)
    real_open = builtins.open

    def guarded(file, *args, **kwargs):
        if str(file) == str(path):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", guarded)
    yield path
    path.chmod(0o644)


def test_a_permission_error_is_one_line_naming_the_file(unreadable, capsys):
    assert main(["info", str(unreadable)]) == 2
    err = capsys.readouterr().err
    assert err == (f"neurofm info: error: {unreadable}: Permission denied; check its permissions "
                   "(ls -l, chmod) or run as a user who may use it.\n")
    with pytest.raises(PermissionError):
        main(["info", str(unreadable), "--debug"])


def test_a_full_disk_is_one_line_naming_the_file_and_saying_to_rerun(monkeypatch, capsys,
                                                                     tmp_path):
    import neurofm.corpus.prepare

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "c" / "x.arrow"))

    monkeypatch.setattr(neurofm.corpus.prepare, "prepare_corpus", full)
    assert main(["prepare", str(tmp_path), "--out", str(tmp_path / "c")]) == 2
    assert capsys.readouterr().err == (
        f"neurofm prepare: error: {tmp_path / 'c' / 'x.arrow'}: No space left on device: the "
        "disk (or your quota) is full. Free space and rerun the same command; it continues "
        "where it stopped.\n")


def test_the_training_worker_reports_os_errors_in_one_line(monkeypatch, capsys, tmp_path):
    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system", str(tmp_path / "run"))

    monkeypatch.setattr("neurofm.train.loop.train", read_only)
    config = tmp_path / "c.yaml"
    config.write_text("run: {steps: 1}\n")
    assert worker.main(["pretrain", "--config", str(config)]) == 2
    assert capsys.readouterr().err == (
        f"neurofm pretrain (rank 0): error: {tmp_path / 'run'}: Read-only file system; the file "
        "system is read-only: write somewhere else.\n")


def test_neurofms_own_messages_are_kept_and_other_errors_keep_their_traceback(monkeypatch):
    from neurofm.commands import info

    own = OSError(errno.ENOSPC, "Disk full while writing the corpus (...). No partial shard "
                                "was kept; free space and re-run the same command to resume.")
    assert one_line(own) == own.strerror
    assert one_line(ValueError("bad value; do this")) == "bad value; do this"

    def failing(args):
        raise ConnectionError("peer went away")  # no errno: not about a file

    monkeypatch.setattr(info, "run", failing)
    with pytest.raises(ConnectionError):
        main(["info", "x"])


def test_a_model_path_that_does_not_exist_is_reported_as_a_missing_folder(tmp_path):
    from neurofm.eval.model_loading import load_model

    for spec in ("path/that/does/not/exist", str(tmp_path / "nope"), "./runs/model"):
        with pytest.raises(FileNotFoundError, match="that folder does not exist"):
            load_model(spec, {}, seed=0)
