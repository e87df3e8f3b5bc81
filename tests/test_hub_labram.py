"""labram_base: channel lookup by name in LaBraM's 128-name table, and its input checks."""

import pytest
import torch
from extras import needs_braindecode
from hub_helpers import tiny_model

from neurofm.models.labram import LABRAM_CHANNELS, labram_channel_ids


@needs_braindecode
def test_table_has_128_unique_names_matching_braindecode():
    import warnings

    warnings.filterwarnings("ignore", category=FutureWarning)
    from braindecode.models.labram import LABRAM_CHANNEL_ORDER

    assert len(LABRAM_CHANNELS) == 128 == len(set(LABRAM_CHANNELS))
    assert list(LABRAM_CHANNELS) == [n.upper() for n in LABRAM_CHANNEL_ORDER]


@pytest.mark.parametrize("label, row_name", [
    ("Fp1", "FP1"), ("EEG FP1-REF", "FP1"), ("EEG Fz-LE", "FZ"), ("cz", "CZ"),
    ("EEG T3-REF", "T3"), ("T7", "T7"), ("EEG T7-REF", "T7"), ("T5", "T5"),
    ("FP1-F7", "FP1-F7"), ("Fp1-F7", "FP1-F7"), ("EEG FP2-F8", "FP2-F8"), ("FTT9h", "FTT9H"),
    ("A1", "A1"),
])
def test_recording_labels_find_their_row(label, row_name):
    assert labram_channel_ids([label]) == [LABRAM_CHANNELS.index(row_name)]


def test_unknown_channels_are_listed():
    with pytest.raises(ValueError, match=r"\['LA3', 'EKG'\].*drop or rename|LA3.*EKG"):
        labram_channel_ids(["Cz", "LA3", "EKG"])


def test_channel_names_select_embeddings():
    model = tiny_model("labram_base")
    x = torch.randn(1, 3, 2, 200)
    with torch.no_grad():
        named = model.set_channel_names(["Cz", "Pz", "Oz"])(x)
        ids = torch.tensor(labram_channel_ids(["Cz", "Pz", "Oz"]))
        explicit = model(x, channel_ids=ids)
        swapped = model(x, channel_ids=ids.flip(0))
    assert torch.equal(named, explicit)
    assert not torch.allclose(named, swapped)


def test_full_table_in_order_needs_no_names():
    model = tiny_model("labram_base")
    x = torch.randn(1, 128, 1, 200)
    with torch.no_grad():
        assert torch.equal(model(x), model(x, channel_ids=torch.arange(128)))


def test_inputs_it_cannot_handle_are_explained():
    model = tiny_model("labram_base")
    with pytest.raises(ValueError, match="set_channel_names"):
        model(torch.randn(1, 3, 2, 200))
    model.set_channel_names(["Cz", "Pz", "Oz"])
    with pytest.raises(ValueError, match="at most 4"):
        model(torch.randn(1, 3, 5, 200))
    with pytest.raises(ValueError, match="no mask token"):
        model(torch.randn(1, 3, 2, 200), patch_mask=torch.zeros(1, 3, 2, dtype=torch.bool))
    with pytest.raises(ValueError, match="2 channel ids for x with 3"):
        model(torch.randn(1, 3, 2, 200), channel_ids=torch.tensor([0, 1]))


def test_padded_tokens_are_not_attended():
    """Tokens of padded channels/patches are excluded as keys: real tokens ignore them.

    (LaBraM's group norm in the patch embedding still pools over padding, as in the original.)
    """
    from neurofm.models.labram import LabramBlock

    torch.manual_seed(0)
    block = LabramBlock(40, 4, qkv_bias=True).eval()
    tokens = torch.randn(1, 7, 40)
    padded = torch.cat([tokens, 9 * torch.randn(1, 3, 40)], dim=1)
    valid = torch.tensor([[True] * 7 + [False] * 3])
    with torch.no_grad():
        alone = block(tokens)
        masked = block(padded, valid)[:, :7]
    assert torch.allclose(alone, masked, atol=1e-5)
