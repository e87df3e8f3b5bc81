"""Subject-level split: no subject on both sides, complete, stable."""

import numpy as np
import pytest

from neurofm.corpus import split_by_subject


def test_split_keeps_subjects_apart():
    rng = np.random.default_rng(0)
    subjects = rng.choice([f"s{i:02d}" for i in range(20)], size=500)
    train, val = split_by_subject(subjects, val_fraction=0.2, seed=1)
    assert len(np.intersect1d(train, val)) == 0 and len(train) + len(val) == 500
    assert set(subjects[train]).isdisjoint(subjects[val])
    assert len(set(subjects[val])) == 4


def test_split_is_stable_under_reordering_and_seed_changes_it():
    subjects = np.array([f"s{i}" for i in range(30)] * 3)
    _, val = split_by_subject(subjects, 0.1, seed=4)
    perm = np.random.default_rng(1).permutation(len(subjects))
    _, val_perm = split_by_subject(subjects[perm], 0.1, seed=4)
    assert set(subjects[val]) == set(subjects[perm][val_perm])
    others = [set(subjects[split_by_subject(subjects, 0.1, seed=s)[1]]) for s in range(5)]
    assert len({frozenset(o) for o in others}) > 1


def test_split_errors():
    with pytest.raises(ValueError, match="at least two subjects"):
        split_by_subject(["a", "a"], 0.5)
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        split_by_subject(["a", "b"], 1.0)
    train, val = split_by_subject(["a", "b"], 0.0)
    assert len(val) == 0 and list(train) == [0, 1]
