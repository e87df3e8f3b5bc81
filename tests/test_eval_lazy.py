"""Windows left on disk through evaluation: each recording preprocessed whole then cut (equal to
what ``neurofm prepare`` makes, lazy or in memory), embeddings cached by file signatures,
probing and fine-tuning batch by batch, memory flat in the number of windows."""

import json
import os
import subprocess
import sys
import textwrap

import mne
import numpy as np
import pytest

from neurofm.data.preprocess import PreprocessConfig, preprocess_raw
from neurofm.data.spec import PreprocessSpec
from neurofm.datasets import load_dataset
from neurofm.datasets.recordings import RecordingWindows
from neurofm.eval import window_inputs
from neurofm.eval.embeddings import extract_embeddings
from neurofm.eval.run import run_evaluation
from neurofm.eval.settings import EvalSettings
from neurofm.eval.task_preprocessing import TaskPreprocessing, plan_preprocessing, prepare_inputs
from neurofm.eval.window_inputs import RecordingInputs
from neurofm.models import create_model

pytestmark = pytest.mark.filterwarnings("ignore:.*skipped .* recording")
TINY = {"dim": 32, "depth": 2, "n_heads": 4, "ffn_dim": 64}
SPEC = PreprocessSpec(l_freq=0.3, h_freq=75.0, line_freq=60.0)


def _plan(trials, **stated):
    task = TaskPreprocessing.from_dict(stated)
    return plan_preprocessing(SPEC, task, trials_band=None, pretrained=False, model_name="m",
                              data_name=trials.name)


def test_windows_are_cut_from_each_recording_preprocessed_whole(tuab_root):
    lazy = load_dataset(f"tuab:{tuab_root}?lazy=true")
    eager = load_dataset(f"tuab:{tuab_root}?lazy=false")
    a, b = prepare_inputs(lazy, _plan(lazy)), prepare_inputs(eager, _plan(eager))
    assert isinstance(a.x, RecordingInputs) and isinstance(b.x, np.ndarray)
    assert a.x.shape == b.x.shape == (len(lazy), 16, 10, 200)
    read = np.concatenate([a.x[i:i + 7] for i in range(0, len(lazy), 7)])
    np.testing.assert_array_equal(read, b.x)                          # lazy == in memory
    np.testing.assert_array_equal(a.x[np.array([9, 2, 30])], b.x[[9, 2, 30]])
    assert any(s.startswith("preprocessed per recording") for s in a.applied)
    assert [s for s in a.applied if not s.startswith("signals left on disk")] == b.applied
    # ... and equal, edges included, to what neurofm prepare makes of the derived recording
    windows: RecordingWindows = lazy.signals
    for r in (0, 3):
        rec = windows.recordings[r]
        raw = mne.io.RawArray(windows.read_recording(r),
                              mne.create_info(list(lazy.sensors.names), rec.sfreq, "eeg"),
                              verbose="error")
        prepared = preprocess_raw(raw, PreprocessConfig(SPEC, on_units="report")).data
        for i in np.flatnonzero(windows.rec == r):
            start = round(windows.onset[i] * 200)
            np.testing.assert_array_equal(b.x[i].reshape(16, -1), prepared[:, start:start + 2000])


def test_a_papers_iir_band_runs_on_whole_recordings_lazy_or_not(tuab_root):
    lazy = load_dataset(f"tuab:{tuab_root}?lazy=true")
    eager = load_dataset(f"tuab:{tuab_root}?lazy=false")
    stated = {"source": "a paper", "l_freq": 1.0, "h_freq": 40.0, "filter": "iir"}
    a, b = prepare_inputs(lazy, _plan(lazy, **stated)), prepare_inputs(eager, _plan(eager,
                                                                                    **stated))
    np.testing.assert_array_equal(a.x[0:len(lazy)], b.x)
    assert any("IIR Butterworth order 4, zero-phase, on each whole recording" in s
               for s in a.applied)
    plain = prepare_inputs(eager, _plan(eager))
    assert not np.allclose(plain.x, b.x, atol=1e-3)                   # the band did change


def test_embedding_cache_keys_lazy_windows_by_their_files(tuab_root, tmp_path, monkeypatch):
    trials = load_dataset(f"tuab:{tuab_root}?lazy=true")
    inputs = prepare_inputs(trials, _plan(trials))
    model = create_model("criss_cross_small", **TINY)
    calls = []
    real = window_inputs.preprocess_recording
    monkeypatch.setattr(window_inputs, "preprocess_recording",
                        lambda *a, **k: calls.append(1) or real(*a, **k))
    kwargs = {"cache_dir": tmp_path, "preprocessing": inputs.preprocessing, "batch_size": 8}
    stats = {}
    z = extract_embeddings(model, inputs.x, inputs.sensors, inputs.patch_valid, stats=stats,
                           **kwargs)
    assert z.shape == (len(trials), 32) and not stats["cached"]
    assert len(calls) == len(set(trials.metadata["source"]))       # each recording once
    eager = prepare_inputs(load_dataset(f"tuab:{tuab_root}?lazy=false"), _plan(trials))
    np.testing.assert_allclose(z, extract_embeddings(model, eager.x, eager.sensors,
                                                     eager.patch_valid, batch_size=8),
                               rtol=1e-5, atol=1e-6)
    calls.clear()
    again = {}
    fresh = prepare_inputs(trials, _plan(trials))
    np.testing.assert_array_equal(extract_embeddings(
        model, fresh.x, fresh.sensors, fresh.patch_valid, stats=again, **kwargs), z)
    assert again["cached"] and not calls                            # the key read no sample
    # a file that changes (modification time) is a new key
    path = trials.metadata["source"][0]
    stat = os.stat(path)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    try:
        changed = {}
        extract_embeddings(model, prepare_inputs(trials, _plan(trials)).x, fresh.sensors,
                           fresh.patch_valid, stats=changed, **kwargs)
        assert not changed["cached"]
    finally:
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def _settings(tmp_path, data, **kw):
    base = {"model": "criss_cross_small", "data": data, "out": str(tmp_path / "out"),
            "protocol": "official", "seeds": 1, "model_overrides": TINY, "importance": False,
            "cache_dir": str(tmp_path / "cache"), "baselines": ["bandpower"],
            "preprocessing": {"line_freq": 60.0}, "batch_size": 8}
    return EvalSettings(**{**base, **kw})


def test_probe_of_lazy_windows_scores_as_in_memory(tuab_root, tmp_path):
    lazy = run_evaluation(_settings(tmp_path / "a", f"tuab:{tuab_root}?lazy=true"))
    eager = run_evaluation(_settings(tmp_path / "b", f"tuab:{tuab_root}?lazy=false"))
    for a, b in zip(lazy["methods"], eager["methods"]):
        assert a["method"] == b["method"]
        assert a["folds"][0]["metrics"] == pytest.approx(b["folds"][0]["metrics"], abs=1e-6)
        assert a["folds"][0]["test_groups"] == b["folds"][0]["test_groups"]
    assert set(lazy["methods"][0]["summary"]) >= {"balanced_accuracy", "auroc", "auc_pr"}
    assert lazy["data"]["provenance"]["lazy"] and not eager["data"]["provenance"]["lazy"]
    assert any(s.startswith("signals left on disk") for s in lazy["preprocessing"]["applied"])
    with pytest.raises(ValueError, match="fbcsp.*left on disk.*lazy=false"):
        run_evaluation(_settings(tmp_path / "c", f"tuab:{tuab_root}?lazy=true",
                                 baselines=["fbcsp"]))


def test_finetuning_reads_lazy_windows_through_a_dataloader(tuab_root, tmp_path, monkeypatch):
    calls = []
    real = window_inputs.preprocess_recording
    monkeypatch.setattr(window_inputs, "preprocess_recording",
                        lambda *a, **k: calls.append(k["source"]) or real(*a, **k))
    payload = run_evaluation(_settings(
        tmp_path, f"tuab:{tuab_root}?lazy=true", mode="finetune", pool="patches",
        baselines=["eegnet"], train={"epochs": 2, "min_steps_per_epoch": 1, "batch_size": 8}))
    (model, eegnet) = payload["methods"]
    assert model["method"] == "criss_cross_small (random-init) finetune (none)"
    assert len(model["folds"][0]["history"]["train_loss"]) == 2
    assert eegnet["method"] == "EEGNet (supervised)" and eegnet["folds"]
    # 8 recordings, a few passes (train, validation, test; two models): each recording is
    # preprocessed a handful of times, not once per window
    assert len(calls) <= 8 * 12 < len(load_dataset(f"tuab:{tuab_root}")) * 4


def test_shuffling_keeps_windows_of_a_recording_in_blocks(tuab_root):
    trials = load_dataset(f"tuab:{tuab_root}?lazy=true")
    inputs = prepare_inputs(trials, _plan(trials)).x
    index = np.arange(len(trials))
    order = inputs.shuffled(index, np.random.default_rng(0))
    assert sorted(order) == list(index) and not np.array_equal(order, index)
    recs = trials.signals.rec[order]
    blocks = [set(recs[i:i + 16]) for i in range(0, len(recs), 16)]
    assert all(len(b) <= window_inputs.SHUFFLE_BLOCK for b in blocks)


_PROBE = textwrap.dedent("""
    import json, resource, sys
    import numpy as np
    from neurofm.datasets import load_dataset
    from neurofm.data.spec import PreprocessSpec
    from neurofm.eval.window_inputs import recording_inputs
    from neurofm.eval.embeddings import extract_embeddings
    from neurofm.models import create_model
    import torch
    torch.set_num_threads(1)
    root, stride = sys.argv[1], sys.argv[2]
    def peak_mb():  # this process image's own peak (ru_maxrss includes the parent's at fork)
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    trials = load_dataset(f"tuab:{root}?lazy=true&window=5&stride={stride}")
    model = create_model("criss_cross_small", dim=16, depth=1, n_heads=2, ffn_dim=32)
    inputs = recording_inputs(trials, PreprocessSpec(line_freq=60.0))
    before = peak_mb()
    z = extract_embeddings(model, inputs.x, inputs.sensors, inputs.patch_valid,
                           batch_size=64)
    after = peak_mb()
    print(json.dumps({"n": len(trials), "mb": after, "before_mb": before,
                      "signal_mb": len(trials) * 16 * 1000 * 4 / 2**20}))
""")


def _peak(root, stride) -> dict:
    done = subprocess.run([sys.executable, "-W", "ignore", "-c", _PROBE, str(root), str(stride)],
                          capture_output=True, text=True, check=False, env={**os.environ,
                                                               "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_probing_many_lazy_windows_keeps_memory_flat(tuab_root):
    few, many = _peak(tuab_root, 3.0), _peak(tuab_root, 0.1)
    assert many["n"] >= 25 * few["n"] and many["signal_mb"] > 150
    # the large set's windows would take > 150 MB in memory (more in model units); probed
    # lazily its peak RSS stays within a quarter of that of the small set's (measured: ~20 MB,
    # allocator noise; the embeddings are 16 floats per window)
    assert many["mb"] - few["mb"] < 0.25 * many["signal_mb"], (few, many)
