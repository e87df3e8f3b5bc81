"""iEEG contacts without coordinates: names -> shafts, the position-unknown flag through
``SensorBatch``, and what the sensor encoding guarantees for them (docs/sensors.md)."""

import zlib

import mne
import numpy as np
import pytest
import torch

from neurofm.models import create_model
from neurofm.sensors import (
    ChannelKind,
    Contact,
    SensorBatch,
    parse_contact,
    resolve_sensors,
    shaft_code,
)
from neurofm.tokenizer import SensorEncoding
from neurofm.tokenizer.sensor_encoding import N_CONTACT_FEATURES

SHAFTS = {"LA": 4, "RH": 3, "B'": 3}
NAMES = [f"{shaft}{i}" for shaft, n in SHAFTS.items() for i in range(1, n + 1)]


def _unplaced_info(names=NAMES, kind="seeg"):
    return mne.create_info(list(names), 200.0, kind)


@pytest.mark.parametrize(("label", "expected"), [
    ("LA3", Contact("LA", 3.0)), ("la03", Contact("LA", 3.0)),
    ("POL A'12", Contact("A'", 12.0)), ("EEG RH2-REF", Contact("RH", 2.0)),
    ("LA1-LA2", Contact("LA", 1.5)), ("G10", Contact("G", 10.0)), ("RAH-3", Contact("RAH", 3.0)),
    ("LA1-LB1", None), ("Ref", None), ("12", None), ("", None),
])
def test_contact_names_give_shaft_and_index(label, expected):
    assert parse_contact(label) == expected


def test_shaft_codes_are_fixed_and_case_free():
    assert shaft_code("LA") == shaft_code("la") == zlib.crc32(b"LA") & 0x7FFFFFFF
    assert shaft_code("LA") != shaft_code("LB")
    assert shaft_code(None) == shaft_code("") == 0
    assert 0 < shaft_code("A'") < 2**31


def test_contacts_without_positions_are_kept_flagged_and_named():
    layout = resolve_sensors(_unplaced_info())
    assert layout.names == NAMES and layout.pos_source == ["unknown"] * len(NAMES)
    batch = SensorBatch.from_layout(layout)
    assert batch.pos_unknown.all() and torch.all(batch.pos == 0)
    assert batch.shaft[0].tolist() == [shaft_code(n.rstrip("0123456789")) for n in NAMES]
    assert batch.contact_index[0].tolist() == [1, 2, 3, 4, 1, 2, 3, 1, 2, 3]
    assert batch.kind[0].tolist() == [ChannelKind.SEEG] * len(NAMES)


def test_a_recording_mixing_placed_and_unplaced_contacts():
    info = _unplaced_info(["LA1", "LA2", "G1"], ["seeg", "seeg", "ecog"])
    montage = mne.channels.make_dig_montage({"G1": [0.05, 0.0, 0.05]}, coord_frame="head")
    info.set_montage(montage, on_missing="ignore")
    layout = resolve_sensors(info)
    assert layout.pos_source == ["unknown", "unknown", "file"]
    batch = SensorBatch.from_layout(layout)
    assert batch.pos_unknown[0].tolist() == [True, True, False]
    # a placed channel needs no name features
    assert batch.shaft[0, 2] == 0 and batch.contact_index[0, 2] == -1
    torch.testing.assert_close(batch.pos[0, 2], torch.tensor([0.05, 0.0, 0.05]))


def test_every_way_of_building_a_batch_keeps_the_flags():
    unplaced = SensorBatch.from_info(_unplaced_info(["LA1", "LA2"]))
    placed = SensorBatch.from_info(mne.create_info(["Cz", "Pz", "Oz"], 200.0, "eeg"))
    batch = SensorBatch.collate([placed, unplaced])
    assert batch.pos_unknown.tolist() == [[False] * 3, [True, True, False]]
    assert batch.shaft[1, 2] == 0 and batch.contact_index[1, 2] == -1  # padding
    assert batch[1].pos_unknown.tolist() == [[True, True, False]]
    moved = batch.to(dtype=torch.float64)
    assert moved.contact_index.dtype == torch.float64 and moved.shaft.dtype == torch.int64
    assert torch.equal(moved.pos_unknown, batch.pos_unknown)
    expanded = unplaced.expand(4)
    assert expanded.batch_size == 4 and expanded.pos_unknown.all()
    assert torch.equal(expanded.shaft[3], unplaced.shaft[0])
    swapped = unplaced.permute_channels([1, 0])
    assert swapped.contact_index[0].tolist() == [2.0, 1.0]
    with pytest.raises(ValueError, match="batch of one"):
        batch.expand(2)
    # a NaN position given to the constructor is the flag (numpy layouts and corpora store NaN)
    pos = torch.tensor([[[0.01, 0.0, 0.05], [float("nan")] * 3]])
    direct = SensorBatch(pos=pos, ori=torch.zeros(1, 2, 3), kind=torch.full((1, 2), 3),
                         chan_mask=torch.ones(1, 2, dtype=torch.bool))
    assert direct.pos_unknown.tolist() == [[False, True]] and not torch.isnan(direct.pos).any()


def _encoding(seed=0, dim=16):
    torch.manual_seed(seed)
    enc = SensorEncoding(dim).eval()
    with torch.no_grad():  # as if trained: the position-unknown parameters start at zero
        enc.unknown_position.normal_()
        enc.contact_projection.normal_()
    return enc


def test_channels_with_positions_are_encoded_as_before():
    enc = _encoding()
    info = _unplaced_info(["LA1", "LA2", "G1"], ["seeg", "seeg", "ecog"])
    info.set_montage(mne.channels.make_dig_montage({"G1": [0.05, 0.0, 0.05]},
                                                   coord_frame="head"), on_missing="ignore")
    batch = SensorBatch.from_info(info)
    with torch.no_grad():
        out = enc(batch)
        # the formula of neurofm 0.1.0 for a placed channel: MLP of its features + kind
        feats = torch.cat([enc.position_features(batch.pos), batch.ori], dim=-1)
        before = enc.mlp(feats) + enc.kind_embedding(batch.kind)
    assert torch.equal(out[0, 2], before[0, 2])
    expected_unplaced = enc.kind_embedding.weight[ChannelKind.SEEG] + enc.unknown_position \
        + enc.contact_features(batch.shaft[0, :2], batch.contact_index[0, :2]) \
        @ enc.contact_projection.T
    torch.testing.assert_close(out[0, :2], expected_unplaced.detach())


def test_unplaced_codes_tell_shafts_and_depths_apart():
    enc = _encoding()
    batch = SensorBatch.from_info(_unplaced_info(["LA1", "LA2", "RH1", "RH2"]))
    with torch.no_grad():
        out = enc(batch)[0]
    distinct = {tuple(np.round(row.numpy(), 5)) for row in out}
    assert len(distinct) == 4  # shaft and index both change the code
    features = enc.contact_features(batch.shaft, batch.contact_index)
    assert features.shape == (1, 4, N_CONTACT_FEATURES)
    nameless = SensorBatch.from_info(_unplaced_info(["Ref", "Ground"]))
    assert torch.all(enc.contact_features(nameless.shaft, nameless.contact_index) == 0)


def test_weights_without_the_new_parameters_load_with_them_at_zero():
    enc = _encoding()
    old = {k: v for k, v in enc.state_dict().items()
           if k not in ("unknown_position", "contact_projection")}
    fresh = SensorEncoding(16)
    with torch.no_grad():
        fresh.unknown_position.fill_(1.0)
    fresh.load_state_dict(old, strict=True)  # no missing-key error
    assert torch.all(fresh.unknown_position == 0) and torch.all(fresh.contact_projection == 0)
    batch = SensorBatch.from_info(_unplaced_info(["LA1", "RH2"], "seeg"))
    with torch.no_grad():  # such a model encodes an unplaced contact by its kind alone
        torch.testing.assert_close(fresh(batch)[0], fresh.kind_embedding.weight[[3, 3]])
    with pytest.raises(RuntimeError, match="kind_embedding"):  # not its weights at all
        SensorEncoding(16).load_state_dict({"mlp.0.weight": old["mlp.0.weight"]})


def _model_with_trained_contact_codes():
    torch.manual_seed(0)
    model = create_model("criss_cross_small", dim=32, depth=2, n_heads=4).eval()
    enc = model.stem.sensor_encoding
    with torch.no_grad():
        enc.unknown_position.normal_()
        enc.contact_projection.normal_(std=0.5)
    return model


def test_order_free_without_positions_names_carry_the_structure():
    """Permuting channels (shafts, or contacts within a shaft) with their names changes no
    pooled embedding; giving two signals each other's names does."""
    model = _model_with_trained_contact_codes()
    names = ["LA1", "LA2", "LA3", "RH1", "RH2", "RH3"]
    sensors = SensorBatch.from_info(_unplaced_info(names))
    x = torch.randn(1, len(names), 3, model.patch_size, generator=torch.Generator()
                    .manual_seed(1))
    with torch.no_grad():
        z = model.embed(x, sensors)
        for perm in ([3, 4, 5, 0, 1, 2], [2, 0, 1, 3, 4, 5], [5, 1, 3, 0, 4, 2]):
            torch.testing.assert_close(model.embed(x[:, perm], sensors.permute_channels(perm)),
                                       z, atol=1e-5, rtol=1e-5)
        relabelled = SensorBatch.from_info(_unplaced_info(["LA2", "LA1", "LA3", "RH1", "RH2",
                                                           "RH3"]))
        assert not torch.allclose(model.embed(x, relabelled), z, atol=1e-4)
