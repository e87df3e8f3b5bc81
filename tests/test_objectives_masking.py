"""Masks over (channel, patch) tokens: ratio, padding, blocks, determinism."""

import pytest
import torch

from neurofm.objectives import batch_patch_mask, real_tokens, sample_window_mask, window_generator


def test_bernoulli_mask_hits_the_ratio():
    gen = window_generator(0, 0, 0)
    mask = sample_window_mask(64, 100, ratio=0.3, generator=gen)
    assert mask.shape == (64, 100) and mask.dtype == torch.bool
    assert abs(mask.float().mean().item() - 0.3) < 0.02


def test_block_mask_masks_whole_aligned_runs():
    mask = sample_window_mask(32, 30, ratio=0.5, mode="block", block_size=5,
                              generator=window_generator(1, 0, 7))
    blocks = mask.reshape(32, 6, 5)
    # every block is all masked or all visible, and about half of them are masked
    assert torch.equal(blocks.all(dim=-1), blocks.any(dim=-1))
    assert 0.35 < blocks[..., 0].float().mean().item() < 0.65


def test_block_mask_with_a_partial_last_block():
    mask = sample_window_mask(4, 7, ratio=0.5, mode="block", block_size=3,
                              generator=window_generator(0, 0, 1))
    assert mask.shape == (4, 7)  # blocks [0, 3), [3, 6), [6, 7)
    assert torch.equal(mask[:, 0], mask[:, 2]) and torch.equal(mask[:, 3], mask[:, 5])


def test_padding_channels_and_patches_are_never_masked():
    chan_mask = torch.tensor([[True, True, True, False, False], [True, True, True, True, True]])
    patch_valid = torch.tensor([[True] * 6 + [False] * 2, [True] * 8])
    mask = batch_patch_mask(chan_mask, patch_valid, [3, 9], seed=0, epoch=0, ratio=0.9)
    assert mask.shape == (2, 5, 8)
    assert not mask[0, 3:].any() and not mask[0, :, 6:].any()
    assert mask[1].any()
    assert not (mask & ~real_tokens(chan_mask, patch_valid)).any()


def test_a_window_gets_the_same_mask_in_any_batch():
    """Masks follow the window (seed, epoch, index), not its row, batch or padding."""
    c_mask = torch.tensor([[True] * 3 + [False] * 2])
    alone = batch_patch_mask(c_mask, torch.ones(1, 6, dtype=torch.bool), [42], seed=5, epoch=2)
    wide = torch.tensor([[True] * 5, [True] * 3 + [False] * 2])
    in_batch = batch_patch_mask(wide, torch.ones(2, 6, dtype=torch.bool), [7, 42], seed=5,
                                epoch=2)
    assert torch.equal(alone[0], in_batch[1])
    other_epoch = batch_patch_mask(c_mask, torch.ones(1, 6, dtype=torch.bool), [42], seed=5,
                                   epoch=3)
    assert not torch.equal(alone, other_epoch)


@pytest.mark.parametrize("kwargs, word", [({"ratio": 0.0}, "mask_ratio"),
                                          ({"ratio": 1.0}, "mask_ratio"),
                                          ({"mode": "span"}, "mask_mode"),
                                          ({"mode": "block", "block_size": 0}, "block_size")])
def test_bad_mask_settings_name_the_setting(kwargs, word):
    with pytest.raises(ValueError, match=word):
        sample_window_mask(2, 4, **kwargs)
