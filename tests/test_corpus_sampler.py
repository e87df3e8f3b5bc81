"""DistributedWindowSampler: global batches independent of world size, exact resume."""

import numpy as np
import pytest

from neurofm.corpus import DistributedWindowSampler


def global_batches(n, batch_size, world_size, seed=0, epoch=0, start_step=0):
    ranks = [list(DistributedWindowSampler(n, batch_size, r, world_size, seed, epoch, start_step))
             for r in range(world_size)]
    return [np.concatenate(parts) for parts in zip(*ranks)], ranks


@pytest.mark.parametrize("world_size", [2, 4])
def test_global_batches_do_not_depend_on_world_size(world_size):
    one, _ = global_batches(103, 8, 1, seed=7)
    many, ranks = global_batches(103, 8, world_size, seed=7)
    assert len(one) == len(many) == 103 // 8
    for a, b in zip(one, many):
        np.testing.assert_array_equal(a, b)
    for step in range(len(one)):  # ranks hold disjoint equal slices
        parts = [set(r[step]) for r in ranks]
        assert all(len(p) == 8 // world_size for p in parts)
        assert len(set.union(*parts)) == 8


def test_epoch_is_a_permutation_and_epochs_differ():
    s = DistributedWindowSampler(40, 10, seed=3, drop_last=False)
    e0 = np.concatenate(list(s))
    assert sorted(e0.tolist()) == list(range(40))
    s.set_epoch(1)
    e1 = np.concatenate(list(s))
    assert sorted(e1.tolist()) == list(range(40)) and not np.array_equal(e0, e1)
    assert np.array_equal(np.concatenate(list(DistributedWindowSampler(40, 10, seed=3))), e0)


def test_resume_from_epoch_and_step_is_exact():
    full = list(DistributedWindowSampler(50, 4, rank=1, world_size=2, seed=5, epoch=2))
    s = DistributedWindowSampler(50, 4, rank=1, world_size=2, seed=5, epoch=2)
    state = s.state_dict(steps_done=5)
    resumed = DistributedWindowSampler(50, 4, rank=1, world_size=2)
    resumed.load_state_dict(state)
    assert list(resumed) == full[5:] and len(resumed) == len(full) - 5
    end = s.state_dict(steps_done=s.steps_per_epoch)
    assert (end["epoch"], end["step"]) == (3, 0)
    with pytest.raises(ValueError, match="same corpus and global batch size"):
        DistributedWindowSampler(51, 4).load_state_dict(state)


def test_last_partial_batch_and_errors():
    s = DistributedWindowSampler(10, 4, drop_last=False, shuffle=False)
    assert [len(b) for b in s] == [4, 4, 2] and list(s)[-1] == [8, 9]
    assert len(DistributedWindowSampler(10, 4)) == 2
    with pytest.raises(ValueError, match="multiple of world_size"):
        DistributedWindowSampler(100, 6, rank=0, world_size=4)
    with pytest.raises(ValueError, match="rank 2"):
        DistributedWindowSampler(100, 4, rank=2, world_size=2)
    with pytest.raises(ValueError, match="Only 3 windows"):
        DistributedWindowSampler(3, 4)
