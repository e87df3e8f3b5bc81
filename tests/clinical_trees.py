"""Look-alike clinical releases for the tests, written once per test session.

The trees (TUAB, TUEV, CHB-MIT, Sleep-EDF) come from :mod:`neurofm.datasets.clinical_standins`;
each is written the first time a test asks for it and shared by every later test of the session
(tests must not modify them).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from neurofm.datasets import clinical_standins as standins

#: Subjects whose recordings lack a channel of the papers' montage (the loaders skip them).
TUAB_INCOMPLETE = {"aaaaaabt": "EEG T5-REF"}      # an eval normal subject
TUEV_INCOMPLETE = {"aaaaaaaf": "EEG O1-REF"}      # a training subject
CHBMIT_INCOMPLETE = {3: "P8-O2"}

_TREES: dict[str, Path] = {}


def _tree(factory, name: str, write) -> Path:
    if name not in _TREES:
        root = factory.mktemp(name)
        write(root)
        _TREES[name] = root
    return _TREES[name]


@pytest.fixture
def tuab_root(tmp_path_factory) -> Path:
    """TUAB v3.0.1 look-alike: 3+3 training and 2+1 eval subjects (normal+abnormal), 40 s each;
    one eval subject lacks a channel."""
    return _tree(tmp_path_factory, "tuab", lambda root: standins.write_tuab(
        root, train=(3, 3), evaluation=(2, 1), missing_channel=TUAB_INCOMPLETE))


@pytest.fixture
def tuev_root(tmp_path_factory) -> Path:
    """TUEV v2.0.1 look-alike: 5 training and 2 eval recordings with .rec files."""
    return _tree(tmp_path_factory, "tuev", lambda root: standins.write_tuev(
        root, train=5, evaluation=2, seconds=30.0, missing_channel=TUEV_INCOMPLETE))


@pytest.fixture
def chbmit_root(tmp_path_factory) -> Path:
    """CHB-MIT look-alike: cases 1, 3, 21 and 23, two 60-s files each, a seizure in the first."""
    return _tree(tmp_path_factory, "chbmit", lambda root: standins.write_chbmit(
        root, patients=(1, 3, 21, 23), files=2, seconds=60.0,
        seizures={(p, 1): [(22, 41)] for p in (1, 3, 21, 23)},
        missing_channel=CHBMIT_INCOMPLETE))


@pytest.fixture
def sleep_edf_root(tmp_path_factory) -> Path:
    """Sleep-EDF look-alike: subjects 0-2, one night of 4 wake + 12 + 4 wake epochs each."""
    return _tree(tmp_path_factory, "sleep", lambda root: standins.write_sleep_edf(
        root, subjects=(0, 1, 2), epochs=12, wake_epochs=4))
