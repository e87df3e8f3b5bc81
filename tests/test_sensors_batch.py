"""SensorBatch: from_info for EEG (TUH labels), MEG and iEEG; collate padding; permutations."""

import warnings

import mne
import numpy as np
import pytest
import torch

from neurofm.sensors import ChannelKind, SensorBatch, mni_to_head, resolve_sensors


def _info(names, types="eeg"):
    return mne.create_info(names, 200.0, types)


@pytest.fixture(scope="module")
def eeg_batch():
    return SensorBatch.from_info(_info(["EEG FP1-REF", "EEG T3-REF", "EEG CZ-REF"]))


@pytest.fixture(scope="module")
def meg_batch():
    return SensorBatch.from_info(mne.channels.read_meg_canonical_info("neuromag"))


@pytest.fixture(scope="module")
def ieeg_batch():
    names = ["LA1", "LA2"]
    xyz = np.array([[-0.03, 0.01, 0.0], [-0.035, 0.01, 0.0]])
    raw = mne.io.RawArray(np.zeros((2, 10)), _info(names, "seeg"), verbose="error")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        raw.set_montage(mne.channels.make_dig_montage(dict(zip(names, xyz)),
                                                      coord_frame="mni_tal"))
    return SensorBatch.from_info(raw.info), mni_to_head(xyz)


def test_from_info_eeg_meg_ieeg_shapes_and_values(eeg_batch, meg_batch, ieeg_batch):
    assert eeg_batch.pos.shape == (1, 3, 3) and eeg_batch.kind.tolist() == [[0, 0, 0]]
    assert eeg_batch.pos.dtype == torch.float32 and eeg_batch.kind.dtype == torch.int64
    assert torch.all(eeg_batch.ori == 0) and torch.all(eeg_batch.chan_mask)
    assert meg_batch.pos.shape == (1, 306, 3)
    assert set(meg_batch.kind.unique().tolist()) == {ChannelKind.MEG_MAG, ChannelKind.MEG_GRAD}
    torch.testing.assert_close(meg_batch.ori.norm(dim=-1), torch.ones(1, 306))
    batch, expected = ieeg_batch
    assert batch.kind.tolist() == [[ChannelKind.SEEG] * 2]
    torch.testing.assert_close(batch.pos[0], torch.as_tensor(expected, dtype=torch.float32))


def test_from_info_passes_options_to_resolve_sensors():
    info = _info(["Cz", "Mystery"])
    with pytest.raises(ValueError, match="'Mystery'"):
        SensorBatch.from_info(info)
    assert SensorBatch.from_info(info, on_unknown="drop").n_channels == 1


def test_collate_pads_channels_and_masks_them(eeg_batch, meg_batch, ieeg_batch):
    batch = SensorBatch.collate([eeg_batch, meg_batch, ieeg_batch[0]])
    assert batch.pos.shape == (3, 306, 3) and batch.kind.shape == (3, 306)
    assert batch.chan_mask.sum(dim=1).tolist() == [3, 306, 2]
    torch.testing.assert_close(batch.pos[0, :3], eeg_batch.pos[0])
    torch.testing.assert_close(batch.ori[1], meg_batch.ori[0])
    assert torch.all(batch.pos[0, 3:] == 0) and torch.all(batch.kind[2, 2:] == 0)
    assert batch[1].n_channels == 306 and batch[1].batch_size == 1
    torch.testing.assert_close(batch[2].pos[0, :2], ieeg_batch[0].pos[0])
    with pytest.raises(ValueError, match="at least one"):
        SensorBatch.collate([])


def test_permute_channels_equals_batch_of_the_permuted_recording():
    names = ["EEG FP1-REF", "EEG T3-REF", "EEG CZ-REF", "EEG FP1-F7", "EEG O2-REF"]
    perm = [3, 0, 4, 2, 1]
    batch = SensorBatch.from_info(_info(names))
    permuted_info = SensorBatch.from_info(_info([names[i] for i in perm]))
    moved = batch.permute_channels(perm)
    for field in ("pos", "ori", "kind", "chan_mask"):
        torch.testing.assert_close(getattr(moved, field), getattr(permuted_info, field))


def test_batch_from_layout_round_trip_and_subset():
    layout = resolve_sensors(_info(["Cz", "Pz", "Oz"]))
    sub = layout.subset([2, 0])
    assert sub.names == ["Oz", "Cz"]
    np.testing.assert_array_equal(sub.pos, layout.pos[[2, 0]])
    assert layout.subset(np.array([True, False, True])).names == ["Cz", "Oz"]
    torch.testing.assert_close(SensorBatch.from_layout(layout).pos[0], torch.from_numpy(layout.pos))


def test_shape_mismatch_is_a_clear_error():
    with pytest.raises(ValueError, match=r"SensorBatch.pos has shape \(1, 2, 3\)"):
        SensorBatch(pos=torch.zeros(1, 2, 3), ori=torch.zeros(1, 3, 3),
                    kind=torch.zeros(1, 3, dtype=torch.long),
                    chan_mask=torch.ones(1, 3, dtype=torch.bool))


def test_to_changes_float_dtype_only():
    batch = SensorBatch.from_info(_info(["Cz", "Pz"])).to(dtype=torch.float64)
    assert batch.pos.dtype == torch.float64 and batch.ori.dtype == torch.float64
    assert batch.kind.dtype == torch.int64 and batch.chan_mask.dtype == torch.bool


def test_indexing_with_numpy_integers_keeps_the_batch_dimension(eeg_batch, meg_batch):
    batch = SensorBatch.collate([eeg_batch, meg_batch])
    item = batch[np.int64(1)]
    assert item.batch_size == 1
    torch.testing.assert_close(item.pos, meg_batch.pos)
    torch.testing.assert_close(batch[-1].pos, meg_batch.pos)
    torch.testing.assert_close(batch[-2].pos[:, :3], eeg_batch.pos)
    with pytest.raises(IndexError, match="batch index 2"):
        batch[2]
