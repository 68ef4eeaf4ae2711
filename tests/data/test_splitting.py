"""Group-aware stratified splits: ratios, stratification, seeds, and groups never straddling splits."""

from __future__ import annotations

import numpy as np
import pytest

from trueval.data.splitting import group_stratified_split, groups_from_regex, stratified_subset
from trueval.core.errors import UserError


def test_ratios_and_stratification() -> None:
    targets = np.repeat(np.arange(4), 50)
    parts = group_stratified_split(targets, None, [0.8, 0.1, 0.1], seed=0)
    assert [len(p) for p in parts] == [160, 20, 20]
    for p in parts[1:]:
        assert np.bincount(targets[p]).tolist() == [5, 5, 5, 5]
    assert len(np.unique(np.concatenate(parts))) == 200


def test_groups_stay_whole_and_seed_matters() -> None:
    rng = np.random.default_rng(0)
    targets = rng.integers(0, 3, 300)
    groups = rng.integers(0, 60, 300)  # 60 groups of about 5, mixed classes
    parts = group_stratified_split(targets, groups, [0.7, 0.15, 0.15], seed=1)
    seen = [set(groups[p]) for p in parts]
    assert not (seen[0] & seen[1]) and not (seen[0] & seen[2]) and not (seen[1] & seen[2])
    assert abs(len(parts[0]) - 210) < 30
    again = group_stratified_split(targets, groups, [0.7, 0.15, 0.15], seed=1)
    other = group_stratified_split(targets, groups, [0.7, 0.15, 0.15], seed=2)
    assert all(np.array_equal(a, b) for a, b in zip(parts, again))
    assert not all(np.array_equal(a, b) for a, b in zip(parts, other))


def test_subset_is_stratified() -> None:
    targets = np.repeat(np.arange(5), 40)
    keep = stratified_subset(targets, 0.25, seed=0)
    assert np.bincount(targets[keep]).tolist() == [10] * 5
    assert len(stratified_subset(targets, 1.0, seed=0)) == 200


def test_group_regex() -> None:
    paths = ["/d/patient01_a.png", "/d/patient01_b.png", "/d/patient02_a.png", "/d/other.png"]
    ids = groups_from_regex(paths, r"(patient\d+)_")
    assert ids[0] == ids[1] != ids[2] and ids[3] not in ids[:3]
    with pytest.raises(UserError, match="data.group_regex"):
        groups_from_regex(paths, "(unclosed")


def test_groups_whole_and_stratified_with_duplicate_clusters() -> None:
    # 400 samples, 4 classes of 100; in each class 8 clusters of 4 copies, the rest singletons
    targets = np.repeat(np.arange(4), 100)
    groups = np.arange(400)
    for c in range(4):
        for k in range(8):
            groups[c * 100 + 4 * k: c * 100 + 4 * k + 4] = 1000 + 8 * c + k
    parts = group_stratified_split(targets, groups, [0.8, 0.1, 0.1], seed=0)
    where = np.empty(400, int)
    for i, p in enumerate(parts):
        where[p] = i
    for g in np.unique(groups):
        assert len(set(where[groups == g])) == 1  # no group straddles
    assert sorted(np.concatenate(parts).tolist()) == list(range(400))
    for i, share in enumerate([0.8, 0.1, 0.1]):
        per_class = np.bincount(targets[parts[i]], minlength=4)
        assert np.all(np.abs(per_class - share * 100) <= 4), per_class


def test_small_parts_never_empty() -> None:
    targets = np.array([0, 0, 0, 1, 1, 1, 0, 1])
    groups = np.array([0, 0, 0, 1, 1, 1, 2, 3])  # two big groups, two singletons
    parts = group_stratified_split(targets, groups, [0.8, 0.1, 0.1], seed=0)
    assert all(len(p) > 0 for p in parts)


def test_subset_keeps_groups_whole() -> None:
    targets = np.repeat(np.arange(2), 50)
    groups = np.arange(100) // 5  # groups of 5, one class each
    keep = stratified_subset(targets, 0.4, seed=0, groups=groups)
    assert set(np.flatnonzero(np.isin(groups, groups[keep]))) == set(keep)  # whole groups only
    assert np.bincount(targets[keep]).tolist() == [20, 20]
    with pytest.raises(UserError, match="data.fraction"):
        stratified_subset(targets, 0.0, seed=0)


def test_kfold_folds_are_disjoint_cover_everything_and_keep_groups_whole() -> None:
    from trueval.data.splitting import group_kfold_split

    rng = np.random.default_rng(0)
    targets = rng.integers(0, 3, 300)
    groups = rng.integers(0, 60, 300)
    vals = []
    for fold in range(5):
        train, val = group_kfold_split(targets, groups, folds=5, fold=fold, seed=3)
        assert not set(train) & set(val) and len(train) + len(val) == 300
        assert not set(groups[train]) & set(groups[val])
        vals.append(val)
    assert sorted(np.concatenate(vals).tolist()) == list(range(300))
    assert np.array_equal(group_kfold_split(targets, groups, 5, 2, seed=3)[1], vals[2])  # seeded


def test_kfold_refuses_a_fold_out_of_range_and_too_few_groups() -> None:
    from trueval.data.splitting import group_kfold_split

    targets = np.repeat(np.arange(2), 10)
    with pytest.raises(UserError, match="data.fold"):
        group_kfold_split(targets, None, folds=5, fold=5, seed=0)
    with pytest.raises(UserError, match="groups"):
        group_kfold_split(targets, np.arange(20) % 3, folds=5, fold=0, seed=0)
