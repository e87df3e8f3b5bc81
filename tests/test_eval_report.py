"""Evaluation outputs (``neurofm.eval.report``): results.json, the markdown table, the figures.

Figures are checked through what they are drawn from (the arrays handed to matplotlib and MNE),
not pixels.
"""

import json
import math

import matplotlib.axes
import mne
import numpy as np
import pytest
from eval_helpers import CHANNELS, eeg_layout

from neurofm.eval.metrics import summarise
from neurofm.eval.report import (
    markdown_table,
    plot_confusion,
    plot_per_subject,
    plot_topomap,
    topomap_channels,
    write_json,
)
from neurofm.sensors import ChannelKind, SensorLayout


def test_write_json_converts_numpy_and_writes_nan_as_null(tmp_path):
    payload = {"scores": np.array([0.5, np.nan]), "n": np.int64(3), 4: (np.float32(0.25), math.inf),
               "nested": [{"x": np.bool_(True)}]}
    path = write_json(tmp_path / "deep" / "results.json", payload)
    assert json.loads(path.read_text()) == {"scores": [0.5, None], "n": 3, "4": [0.25, None],
                                            "nested": [{"x": True}]}


def test_markdown_table_has_one_row_per_method_with_mean_std_and_ci():
    good = {"balanced_accuracy": summarise([0.7, 0.8, 0.9]), "cohen_kappa": summarise([0.4])}
    table = markdown_table([{"method": "probe", "summary": good, "n_runs": 3},
                            {"method": "empty", "summary": {}, "n_runs": 0}],
                           "multiclass", title="MI", chance=0.25)
    lines = table.splitlines()
    assert lines[:2] == ["### MI", ""]
    assert lines[2] == "| Method | Runs | Balanced acc. | Cohen's κ | Weighted F1 |"
    half = 4.302653 * 0.1 / math.sqrt(3)  # t(0.975, 2) x std / sqrt(n)
    assert lines[4] == (f"| probe | 3 | 0.800 ± 0.100 [{0.8 - half:.3f}, {0.8 + half:.3f}]"
                        " | 0.400 ± 0.000 [0.400, 0.400] | n/a |")
    assert lines[5] == "| empty | 0 | n/a | n/a | n/a |"
    assert "Chance level (balanced accuracy): 0.250." in table
    assert "Chance level" not in markdown_table([], "regression", chance=math.nan)


@pytest.fixture
def drawn(monkeypatch):
    """What the figures were drawn from: imshow arrays and bar heights."""
    seen = {"imshow": [], "bar": []}
    imshow, bar = matplotlib.axes.Axes.imshow, matplotlib.axes.Axes.bar

    def imshow_spy(ax, X, *args, **kwargs):
        seen["imshow"].append(np.array(X))
        return imshow(ax, X, *args, **kwargs)

    def bar_spy(ax, x, height, *args, **kwargs):
        seen["bar"].append((kwargs.get("label"), list(height)))
        return bar(ax, x, height, *args, **kwargs)

    monkeypatch.setattr(matplotlib.axes.Axes, "imshow", imshow_spy)
    monkeypatch.setattr(matplotlib.axes.Axes, "bar", bar_spy)
    return seen


def test_confusion_matrix_is_normalised_per_true_class(tmp_path, drawn):
    y_true = [0, 0, 0, 0, 1, 1, 2]
    y_pred = [0, 0, 0, 1, 1, 0, 0]   # class 2 predicted as 0; nothing of class 2 right
    path = plot_confusion(y_true, y_pred, ["a", "b", "c"], tmp_path / "cm.png", title="t")
    assert path.read_bytes()[:4] == b"\x89PNG"
    np.testing.assert_allclose(drawn["imshow"][0], [[0.75, 0.25, 0], [0.5, 0.5, 0], [1, 0, 0]])
    plot_confusion([0, 0], [0, 0], ["a", "b"], tmp_path / "cm2.png")  # an empty row stays 0
    np.testing.assert_allclose(drawn["imshow"][1], [[1, 0], [0, 0]])


def test_per_subject_bars_follow_sorted_subjects_with_gaps_as_nan(tmp_path, drawn):
    scores = {"probe": {"S2": 0.7, "S1": 0.6}, "band power": {"S1": 0.55}}
    plot_per_subject(scores, tmp_path / "subjects.png", metric="balanced_accuracy", chance=0.5)
    (label_a, a), (label_b, b) = drawn["bar"]
    assert (label_a, a) == ("probe", [0.6, 0.7])
    assert label_b == "band power" and b[0] == 0.55 and math.isnan(b[1])
    assert (tmp_path / "subjects.png").stat().st_size > 1000


def _layout(kinds, n=None):
    n = n or len(kinds)
    eeg = eeg_layout()
    return SensorLayout(names=[f"X{i}" for i in range(n)], kinds=np.array(kinds),
                        pos=eeg.pos[:n], ori=np.zeros((n, 3)), pos_source=["test"] * n)


def test_topomap_shows_eeg_else_magnetometers_and_refuses_intracranial_contacts(tmp_path,
                                                                                 monkeypatch):
    eeg = eeg_layout()
    idx, label = topomap_channels(eeg)
    assert label == "eeg" and list(idx) == list(range(len(CHANNELS)))
    mag, grad, seeg = int(ChannelKind.MEG_MAG), int(ChannelKind.MEG_GRAD), int(ChannelKind.SEEG)
    idx, label = topomap_channels(_layout([grad, mag, mag, grad, mag]))
    assert label == "meg_mag" and list(idx) == [1, 2, 4]
    assert topomap_channels(_layout([seeg] * 4)) is None

    drawn = []
    real = mne.viz.plot_topomap

    def spy(values, info, **kwargs):
        drawn.append((np.array(values), list(info.ch_names)))
        return real(values, info, **kwargs)

    monkeypatch.setattr(mne.viz, "plot_topomap", spy)
    values = np.arange(5.0)
    plot_topomap(values, _layout([grad, mag, mag, grad, mag]), tmp_path / "topo.png")
    np.testing.assert_array_equal(drawn[0][0], [1.0, 2.0, 4.0])  # the magnetometers' values
    assert drawn[0][1] == ["X1", "X2", "X4"]
    with pytest.raises(ValueError, match=r"at least 3 EEG or magnetometer channels.*seeg"):
        plot_topomap(np.ones(4), _layout([seeg] * 4), tmp_path / "no.png")
