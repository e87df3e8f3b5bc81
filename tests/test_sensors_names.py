"""Channel-name normalisation: TUH labels, old 10-20 aliases, case, references, bipolar pairs."""

import pytest

from neurofm.sensors import get_montage, normalise_channel_name


@pytest.mark.parametrize(
    ("label", "canonical"),
    [
        ("EEG FP1-REF", "Fp1"),
        ("EEG T3-LE", "T7"),
        ("EEG A1-REF", "A1"),
        ("EEG FZ-AVG", "Fz"),
        ("EEG C3-AR", "C3"),
        ("EEG O2-CAR", "O2"),
        ("FP1", "Fp1"),
        ("CZ", "Cz"),
        ("FPZ", "Fpz"),
        ("fp2", "Fp2"),
        ("T3", "T7"),
        ("T4", "T8"),
        ("T5", "P7"),
        ("T6", "P8"),
        ("EEG T6-REF", "P8"),
        ("C3-M2", "C3"),
        ("C4-A1", "C4"),
        ("AFF1H", "AFF1h"),
        ("EEG-Fp1", "Fp1"),
        ("POL Cz", "Cz"),
        ("  Pz  ", "Pz"),
    ],
)
def test_single_electrode_labels_map_to_1005_spelling(label, canonical):
    norm = normalise_channel_name(label)
    assert norm.canonical == canonical
    assert norm.parts == (canonical,)
    assert norm.label == canonical
    assert not norm.bipolar
    assert norm.known
    assert norm.original == label


@pytest.mark.parametrize(
    ("label", "parts"),
    [
        ("FP1-F7", ("Fp1", "F7")),
        ("EEG FP1-F7", ("Fp1", "F7")),
        ("EEG T3-T5", ("T7", "P7")),
        ("EEG Fpz-Cz", ("Fpz", "Cz")),
        ("fp2-f8", ("Fp2", "F8")),
    ],
)
def test_bipolar_pairs_are_split_and_flagged(label, parts):
    norm = normalise_channel_name(label)
    assert norm.bipolar
    assert norm.canonical is None
    assert norm.parts == parts
    assert norm.label == "-".join(parts)
    assert norm.known


def test_names_outside_1005_keep_the_cleaned_label_and_are_not_known():
    assert normalise_channel_name("EEG T1-REF").canonical == "T1"
    assert not normalise_channel_name("EEG T1-REF").known
    numbered = normalise_channel_name("EEG 26-REF")
    assert (numbered.canonical, numbered.bipolar, numbered.known) == ("26", False, False)
    seeg_pair = normalise_channel_name("LA1-LA2")
    assert seeg_pair.bipolar and not seeg_pair.known and seeg_pair.parts == ("LA1", "LA2")


def test_mne_renamed_duplicates_are_recognised():
    norm = normalise_channel_name("EEG FP1-REF-1")
    assert norm.renamed_duplicate and norm.canonical == "Fp1"
    assert not normalise_channel_name("EEG FP1-REF").renamed_duplicate


def test_every_1005_name_is_a_fixed_point_in_any_case():
    for name in get_montage("colin27_1005").ch_names:
        expected = {"T3": "T7", "T4": "T8", "T5": "P7", "T6": "P8"}.get(name, name)
        assert normalise_channel_name(name).canonical == expected
        assert normalise_channel_name(name.upper()).canonical == expected


def test_non_string_label_is_a_clear_type_error():
    with pytest.raises(TypeError, match="must be a str"):
        normalise_channel_name(3)
