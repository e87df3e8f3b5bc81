"""neurofm prepare: manifest reasons, window arithmetic, duplicates, resume, parts, disk full."""

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from neurofm.corpus import (
    Corpus,
    PrepareOptions,
    merge_corpora,
    prepare_corpus,
    read_manifest,
    verify_corpus,
)
from neurofm.corpus import prepare as prepare_module
from neurofm.corpus import shards as shards_module
from neurofm.corpus.progress import PrepareState
from neurofm.corpus.shards import ShardFile
from neurofm.data import preprocess_raw, read_raw, window_recording
from tests.corpus_edf_files import TEST_PREPARE, tueg_path, write_tueg_test_tree, write_tuh_edf

OPTIONS = PrepareOptions(**TEST_PREPARE)


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("tueg")
    return root, write_tueg_test_tree(root)


@pytest.fixture(scope="module")
def corpus_dir(tree, tmp_path_factory):
    out = tmp_path_factory.mktemp("corpus") / "c"
    prepare_corpus(tree[0], out, OPTIONS, progress=False)
    return out


def windows_of(corpus):
    return [(it["source"], it["start"], it["x"].numpy()) for it in (corpus[i]
                                                                   for i in range(len(corpus)))]


def assert_same_corpus(a, b):
    wa, wb = windows_of(Corpus(a)), windows_of(Corpus(b))
    assert len(wa) == len(wb)
    for (sa, ta, xa), (sb, tb, xb) in zip(wa, wb):
        assert (sa, ta) == (sb, tb)
        np.testing.assert_array_equal(xa, xb)


def test_manifest_reasons_and_window_counts(tree, corpus_dir):
    _, expected = tree
    manifest = read_manifest(corpus_dir)
    assert list(manifest["path"]) == sorted(expected)
    for row in manifest.itertuples():
        want = expected[row.path]
        assert row.status == want["status"], row.path
        assert row.reason.split(":", 1)[0] == want["reason"], (row.path, row.reason)
        assert row.n_windows == want["n_windows"], row.path
        if row.status == "kept":
            assert row.n_rejected == 0 and row.shard and len(row.sha256) == 64
    dup = manifest[manifest["reason"].str.startswith("duplicate")].iloc[0]
    assert tueg_path("aaaaaaaa", 1, 0) in dup["reason"]
    config = json.loads((corpus_dir / "corpus.json").read_text())
    assert config["options"]["window_seconds"] == 10.0 and config["neurofm_version"]
    assert config["n_windows"] == sum(e["n_windows"] for e in expected.values())
    assert not (corpus_dir / "_progress").exists()
    shards = sorted(set(manifest.loc[manifest["status"] == "kept", "shard"]))
    assert shards == ["000-00000.arrow"]  # 2.5 MB of windows: one packed shard
    assert sorted(p.name for p in (corpus_dir / "shards").iterdir()) == shards
    assert config["format"] == 3 and config["n_recordings"] == 4
    assert [s["name"] for s in config["shards"]] == shards
    assert config["shards"][0]["n_windows"] == config["n_windows"]
    assert config["shards"][0]["bytes"] == (corpus_dir / "shards" / shards[0]).stat().st_size
    kept = manifest[manifest["status"] == "kept"]
    assert list(kept["shard_row"]) == list(np.cumsum(kept["n_windows"]) - kept["n_windows"])
    assert set(kept["layout"]) == {0}  # tueg19: one sensor set, stored once
    assert set(manifest.loc[manifest["status"] == "skipped", "shard_row"]) == {-1}


def test_windows_equal_the_data_pipeline(tree, corpus_dir):
    """A stored window is what read_raw -> preprocess_raw -> window_recording gives."""
    root, _ = tree
    rel = tueg_path("aaaaaaab", 1, 0, ext=".EDF")
    raw = read_raw(root / rel, verbose="error")
    raw.pick(list(range(19)))
    raw.crop(5.0, raw.times[-1] + 1 / raw.info["sfreq"] - 5.0, include_tmax=False)
    rec = preprocess_raw(raw, OPTIONS.preprocess_config(), source=rel)
    win = window_recording(rec, 10.0, 1.0, max_abs=1.0)
    corpus = Corpus(corpus_dir)
    items = [corpus[i] for i in range(len(corpus)) if corpus[i]["source"] == rel]
    assert len(items) == len(win.x) == 8
    for k, item in enumerate(items):
        assert item["start"] == pytest.approx(5.0 + 10.0 * k)
        np.testing.assert_allclose(item["x"].numpy(), win.x[k], atol=2e-3, rtol=1e-3)  # float16
        assert item["subject"] == "aaaaaaab" and item["session"] == "s001"
        assert item["channels"][7] == "T7"


def test_amplitude_rejection_is_counted(tmp_path):
    write_tuh_edf(tmp_path / "src" / tueg_path("aaaaaaaa", 1, 0), 2.0, 250.0, artefact_at=65.5)
    prepare_corpus(tmp_path / "src", tmp_path / "c", OPTIONS, progress=False)
    row = read_manifest(tmp_path / "c").iloc[0]
    assert row.n_rejected >= 1 and row.n_windows + row.n_rejected == 11
    starts = [Corpus(tmp_path / "c")[i]["start"] for i in range(row.n_windows)]
    assert 65.0 not in starts  # the window holding the 500 µV artefact is gone


def test_all_eeg_keeps_files_with_fewer_channels(tree, tmp_path):
    root, _ = tree
    rel = tueg_path("aaaaaaaj", 1, 0)
    options = PrepareOptions(**TEST_PREPARE, channels="all-eeg")
    prepare_corpus(root / rel, tmp_path / "c", options, progress=False)
    corpus = Corpus(tmp_path / "c")
    assert len(corpus) == 8 and corpus[0]["x"].shape == (15, 10, 200)


def test_unreadable_file_is_skipped(tmp_path, monkeypatch):
    """Tests run as root, so permissions are simulated by a read that raises PermissionError."""
    src = tmp_path / "src"
    locked = write_tuh_edf(src / tueg_path("aaaaaaab", 1, 0), 1.5, 250.0, seed=1)
    write_tuh_edf(src / tueg_path("aaaaaaaa", 1, 0), 1.5, 250.0, seed=2)
    real = prepare_module.file_sha256

    def sha256(path):
        if path == locked:
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(prepare_module, "file_sha256", sha256)
    prepare_corpus(src, tmp_path / "c", OPTIONS, progress=False)
    manifest = read_manifest(tmp_path / "c").set_index("path")
    assert manifest.loc[tueg_path("aaaaaaab", 1, 0), "reason"].startswith(
        "unreadable: PermissionError: Permission denied")
    assert manifest.loc[tueg_path("aaaaaaaa", 1, 0), "status"] == "kept"


@pytest.mark.parametrize("shard_size_mb, committed", [(256.0, 0), (1.0, 2)])
def test_resume_after_interrupt_gives_the_same_corpus(tree, corpus_dir, tmp_path, monkeypatch,
                                                      shard_size_mb, committed):
    """Interrupted at the 4th recording: the recordings of the shard being written are redone.

    The first three recordings are kept ones. With 256-MB shards they are all in the open shard
    (none committed); with 1-MB shards each has a shard of its own and the first two were closed
    (a shard closes when the next recording does not fit), so only the third is redone.
    """
    root, _ = tree
    real, calls = prepare_module.prepare_file, []

    def counted(*args, **kwargs):
        calls.append(args[0].relpath)
        if len(calls) == 4 and interrupt:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    interrupt = True
    monkeypatch.setattr(prepare_module, "prepare_file", counted)
    with pytest.raises(KeyboardInterrupt):
        prepare_corpus(root, tmp_path / "c", OPTIONS, shard_size_mb=shard_size_mb,
                       progress=False)
    assert not (tmp_path / "c" / "manifest.parquet").exists()
    assert not list((tmp_path / "c" / "shards").glob(".tmp-*"))
    first_run, calls[:], interrupt = list(calls[:3]), [], False
    summary = prepare_corpus(root, tmp_path / "c", OPTIONS, shard_size_mb=shard_size_mb,
                             progress=False)
    kept_first = [p for p in first_run if read_manifest(corpus_dir).set_index("path").loc[
        p, "status"] == "kept"]
    skipped_first = len(first_run) - len(kept_first)
    # two skipped before preparing (duplicate, empty), the skipped ones prepared, the committed
    assert summary.n_resumed == 2 + skipped_first + committed
    assert set(calls) & set(first_run) == set(kept_first[committed:])
    assert_same_corpus(corpus_dir, tmp_path / "c")
    again = prepare_corpus(root, tmp_path / "c", OPTIONS, progress=False)
    assert again.n_resumed == again.n_files


def test_a_journal_line_cut_by_a_kill_is_dropped(tree, corpus_dir, tmp_path, monkeypatch):
    root, _ = tree
    real = prepare_module.prepare_file
    calls = []

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(prepare_module, "prepare_file", interrupted)
    with pytest.raises(KeyboardInterrupt):
        prepare_corpus(root, tmp_path / "c", OPTIONS, shard_size_mb=1.0, progress=False)
    journal = tmp_path / "c" / "_progress" / "part-000.jsonl"
    whole = journal.read_text()
    with open(journal, "a") as fh:
        fh.write('{"shard": {"name": "000-00001.arrow", "n_wind')  # killed mid-line
    settings = {"options": OPTIONS.to_dict(), "part": {"index": 0, "count": 1}}
    PrepareState.start(tmp_path / "c", settings).close()
    assert journal.read_text() == whole  # cut off, so the next line starts on its own
    monkeypatch.setattr(prepare_module, "prepare_file", real)
    summary = prepare_corpus(root, tmp_path / "c", OPTIONS, shard_size_mb=1.0, progress=False)
    assert summary.n_resumed == 2 + 1  # the two skipped before preparing, the first shard's
    assert_same_corpus(corpus_dir, tmp_path / "c")
    assert whole.count("\n") == 3  # duplicate, empty file, first shard: all lines complete


def test_disk_full_stops_cleanly_and_resumes(tree, corpus_dir, tmp_path, monkeypatch):
    """1.5-MB shards: the first (two recordings) is in place and journaled, the disk fills up
    while the second is flushed; no partial file stays, the re-run completes the corpus."""
    root, _ = tree
    real_fsync, calls = os.fsync, []

    def full(fd):
        calls.append(fd)
        if len(calls) == 3:  # shard 1, its journal line, shard 2
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_fsync(fd)

    monkeypatch.setattr(shards_module.os, "fsync", full)
    with pytest.raises(OSError, match="Disk full.*re-run the same command"):
        prepare_corpus(root, tmp_path / "c", OPTIONS, shard_size_mb=1.5, progress=False)
    shards = list((tmp_path / "c" / "shards").iterdir())
    assert [s.name for s in shards] == ["000-00000.arrow"]  # only the complete one
    monkeypatch.setattr(shards_module.os, "fsync", real_fsync)
    summary = prepare_corpus(root, tmp_path / "c", OPTIONS, shard_size_mb=1.5, progress=False)
    assert summary.n_resumed == summary.n_files - 2  # only the second shard's recordings
    assert_same_corpus(corpus_dir, tmp_path / "c")


def test_shards_are_bounded_and_the_window_order_does_not_depend_on_them(tree, corpus_dir,
                                                                        tmp_path):
    """1.5-MB shards: two files of about 1.4 MB hold the four recordings; the corpus lists the
    same windows in the same order as with one 256-MB shard, and every row is where the
    manifest says."""
    root, _ = tree
    prepare_corpus(root, tmp_path / "c", OPTIONS, shard_size_mb=1.5, progress=False)
    manifest = read_manifest(tmp_path / "c")
    kept = manifest[manifest["status"] == "kept"]
    shards = sorted((tmp_path / "c" / "shards").iterdir())
    assert [s.name for s in shards] == ["000-00000.arrow", "000-00001.arrow"]
    for shard in shards:
        rows = kept[kept["shard"] == shard.name]
        assert len(rows) == 2 and shard.stat().st_size <= 1.5e6
        assert list(rows["shard_row"]) == [0, rows["n_windows"].iloc[0]]
        stored = ShardFile(shard)
        assert stored.sources() == [p for p, n in zip(rows["path"], rows["n_windows"])
                                    for _ in range(n)]
    assert_same_corpus(corpus_dir, tmp_path / "c")
    assert verify_corpus(tmp_path / "c").ok


def test_a_recording_larger_than_a_shard_gets_one_of_its_own(tree, tmp_path):
    root, _ = tree
    prepare_corpus(root, tmp_path / "c", OPTIONS, shard_size_mb=0.1, progress=False)
    manifest = read_manifest(tmp_path / "c")
    kept = manifest[manifest["status"] == "kept"]
    assert kept["shard"].is_unique and (kept["shard_row"] == 0).all()
    assert len(list((tmp_path / "c" / "shards").iterdir())) == 4


def test_files_added_to_the_sources_go_into_new_shards(tree, corpus_dir, tmp_path):
    """Re-running on a finished corpus after files were added prepares only those; the corpus
    then lists every window in sorted path order."""
    root, _ = tree
    src = tmp_path / "src"
    shutil.copytree(root, src)
    added = tueg_path("aaaaaaaa", 1, 5)  # sorts between two kept files
    prepare_corpus(src, tmp_path / "c", OPTIONS, progress=False)
    write_tuh_edf(src / added, 1.5, 250.0, seed=11)
    summary = prepare_corpus(src, tmp_path / "c", OPTIONS, progress=False)
    assert summary.n_resumed == summary.n_files - 1
    manifest = read_manifest(tmp_path / "c").set_index("path")
    assert manifest.loc[added, "shard"] == "000-00001.arrow"
    assert manifest.loc[added, "shard_row"] == 0 and manifest.loc[added, "layout"] == 0
    prepare_corpus(src, tmp_path / "once", OPTIONS, progress=False)
    assert_same_corpus(tmp_path / "once", tmp_path / "c")
    assert verify_corpus(tmp_path / "c").ok


def test_other_settings_in_the_same_folder_are_refused(tree, corpus_dir):
    with pytest.raises(ValueError, match="trim_seconds: 5.0 then, 6.0 now"):
        prepare_corpus(tree[0], corpus_dir, PrepareOptions(**{**TEST_PREPARE,
                                                               "trim_seconds": 6.0}),
                       progress=False)


def test_parts_are_disjoint_and_read_as_one_corpus(tree, corpus_dir, tmp_path):
    root, expected = tree
    parts = [tmp_path / f"part{i}" for i in range(3)]
    for i, part in enumerate(parts):
        prepare_corpus(root, part, OPTIONS, part_index=i, num_parts=3, progress=False)
    paths = [set(read_manifest(p)["path"]) for p in parts]
    assert all(paths) and sum(map(len, paths)) == len(set.union(*paths)) == len(expected)
    full = read_manifest(corpus_dir).set_index("path")
    for part in parts:  # duplicates meet in one part, so every verdict equals the full run's
        for row in read_manifest(part).itertuples():
            assert (row.status, row.reason) == tuple(full.loc[row.path, ["status", "reason"]])
    wa, wb = windows_of(Corpus(corpus_dir)), windows_of(Corpus(parts))
    assert [w[:2] for w in wa] == [w[:2] for w in wb]
    for i, part in enumerate(parts):  # shard names carry the part: parts never collide
        assert {s.name[:4] for s in (part / "shards").iterdir()} == {f"{i:03d}-"}
    merged = merge_corpora(parts, tmp_path / "merged")
    assert_same_corpus(corpus_dir, merged)
    assert verify_corpus(merged).ok
    assert len(list((merged / "shards").iterdir())) == 3
    with pytest.raises(ValueError, match="parts 0..2"):
        merge_corpora(parts[:2], tmp_path / "incomplete")


@pytest.mark.slow
def test_two_processes_give_the_same_corpus(tree, corpus_dir, tmp_path):
    prepare_corpus(tree[0], tmp_path / "c", OPTIONS, num_proc=2, progress=False)
    assert read_manifest(tmp_path / "c").equals(read_manifest(corpus_dir))
    assert_same_corpus(corpus_dir, tmp_path / "c")


@pytest.mark.slow
def test_sigkill_mid_run_then_resume(tree, corpus_dir, tmp_path):
    """kill -9 of the whole process group mid-run (1-MB shards: one shard per recording, the
    first in place); the re-run completes the same corpus, no window missing or twice."""
    root, _ = tree
    out = tmp_path / "c"
    cmd = [sys.executable, "-m", "neurofm", "prepare", str(root), "--out", str(out),
           "--window-seconds", "10", "--trim-seconds", "5", "--min-minutes", "1",
           "--num-proc", "2", "--shard-size-mb", "1", "--quiet"]
    proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if len(list((out / "shards").glob("*.arrow"))) >= 1:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "prepare finished before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (out / "manifest.parquet").exists()
    journaled = 0
    for line in (out / "_progress" / "part-000.jsonl").read_text().splitlines():
        try:
            journaled += len(json.loads(line).get("rows", [None]))  # skipped: one file
        except json.JSONDecodeError:  # the line the kill cut short does not count
            pass
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert f"({journaled} files done in an earlier run" in done.stdout  # all of them kept
    assert_same_corpus(corpus_dir, out)
    assert not list((out / "shards").glob(".tmp-*"))


@pytest.mark.slow
def test_simulated_tueg_tree(tmp_path):
    """The simulator's TUEG tree (TUH labels, -REF/-LE montages, an EKG lead) prepares fully.

    Slow because of the simulation; test_manifest_reasons_and_window_counts covers the path.
    """
    from neurofm.simulate.tueg import simulate_tueg_tree

    files = simulate_tueg_tree(tmp_path / "tueg", n_subjects=2, minutes=(1.2, 1.4),
                               max_sessions=1, max_tokens=1, seed=3, grid_mm=40.0)
    options = PrepareOptions(**TEST_PREPARE, max_abs_uv=None)  # simulated blinks exceed 100 µV
    prepare_corpus(tmp_path / "tueg", tmp_path / "c", options, progress=False)
    manifest = read_manifest(tmp_path / "c")
    assert len(manifest) == len(files) and (manifest["status"] == "kept").all()
    for row in manifest.itertuples():
        assert row.n_windows + row.n_rejected == int((row.hours * 3600 - 10.0) // 10.0)
        assert row.path.startswith("v2.0.1/edf/000/") and row.session == "s001"
    corpus = Corpus(tmp_path / "c")
    assert corpus[0]["channels"] == list(prepare_module.TUEG19)  # EKG1 dropped, fixed order


def _write_edf_with_flat(path, n_flat, *, n_channels=4, minutes=1.5):
    """A TUH-named EDF whose last ``n_flat`` channels are zero (``n_flat=n_channels``: all)."""
    import mne

    from tests.corpus_edf_files import tuh_channel_names

    rng = np.random.default_rng(3)
    sfreq, names = 250.0, tuh_channel_names(n_channels)
    data = 20e-6 * rng.standard_normal((n_channels, int(minutes * 60 * sfreq)))
    if n_flat:
        data[-n_flat:] = 0.0
    raw = mne.io.RawArray(data, mne.create_info(names, sfreq, "eeg"), verbose="error")
    path.parent.mkdir(parents=True, exist_ok=True)
    mne.export.export_raw(path, raw, fmt="edf", physical_range=(-1000.0, 1000.0),
                          overwrite=True, verbose="error")


@pytest.mark.parametrize("on_flat", ["drop", "report"])
def test_flat_channels_are_dropped_and_listed_and_a_mostly_flat_recording_skipped(tmp_path,
                                                                                  on_flat):
    """Dropping flat channels is prepare's default; a recording left with fewer than half its
    channels (an all-zero one has none) is skipped as flat-signal."""
    for name, n_flat in (("aaaaaaaa", 0), ("aaaaaaab", 2), ("aaaaaaac", 3), ("aaaaaaad", 4)):
        _write_edf_with_flat(tmp_path / "src" / f"{name}_s001_t000.edf", n_flat)
    options = PrepareOptions(**TEST_PREPARE, channels="all-eeg", on_flat=on_flat)
    assert PrepareOptions().on_flat == "drop"
    prepare_corpus(tmp_path / "src", tmp_path / "c", options, progress=False)
    rows = read_manifest(tmp_path / "c").set_index("path")
    channels = {item["source"]: item["x"].shape[0] for item in Corpus(tmp_path / "c")}
    assert rows.loc["aaaaaaaa_s001_t000.edf", "report"] == ""
    if on_flat == "drop":
        half = rows.loc["aaaaaaab_s001_t000.edf"]
        assert half["status"] == "kept" and channels["aaaaaaab_s001_t000.edf"] == 2
        assert half["report"] == "flat channels dropped: EEG F7-REF, EEG F3-REF"
        for path, flat in (("aaaaaaac_s001_t000.edf", "3 of 4"), ("aaaaaaad_s001_t000.edf",
                                                                  "every channel")):
            assert rows.loc[path, "status"] == "skipped"
            assert rows.loc[path, "reason"].startswith("flat-signal: ")
            assert flat in rows.loc[path, "reason"]
    else:
        assert set(rows["status"]) == {"kept"} and set(channels.values()) == {4}
        assert rows.loc["aaaaaaad_s001_t000.edf", "report"].startswith("flat channels (kept")


def test_an_edf_holding_more_records_than_its_header_says_gets_a_manifest_note(tmp_path):
    path = write_tuh_edf(tmp_path / "src" / tueg_path("aaaaaaaa", 1, 0), 1.5, 250.0)
    data = bytearray(path.read_bytes())
    records = int(data[236:244])
    data[236:244] = str(records - 30).encode().ljust(8)
    path.write_bytes(bytes(data))
    prepare_corpus(tmp_path / "src", tmp_path / "c", OPTIONS, progress=False)
    row = read_manifest(tmp_path / "c").iloc[0]
    assert row.status == "kept" and row.n_windows == 8  # every record read, as MNE does
    assert row.report.startswith(f"the header promises {records - 30} data records "
                                 f"({records - 30} s) but the file holds {records} "
                                 f"({records} s)")


def test_every_input_file_gets_a_row_even_a_symbolic_link_loop(tree, tmp_path):
    src = tmp_path / "src"
    write_tuh_edf(src / tueg_path("aaaaaaaa", 1, 0), 1.5, 250.0)
    (src / "loop.edf").symlink_to("loop.edf")
    (src / "gone.edf").symlink_to("nowhere.edf")
    (tmp_path / "list.txt").write_text(f"{src / 'loop.edf'}\n"
                                       f"{src / tueg_path('aaaaaaaa', 1, 0)}\n")
    for source, out in ((src, "c"), (tmp_path / "list.txt", "listed")):
        prepare_corpus(source, tmp_path / out, OPTIONS, progress=False)
        rows = read_manifest(tmp_path / out).set_index("path")
        loop = next(p for p in rows.index if p.endswith("loop.edf"))
        assert rows.loc[loop, "reason"] == ("unreadable: a symbolic link that leads back to "
                                            "itself (a loop); fix or remove the link")
    assert read_manifest(tmp_path / "c").set_index("path").loc["gone.edf", "reason"] == (
        "unreadable: a symbolic link to nowhere.edf, which does not exist; fix or remove the "
        "link")
