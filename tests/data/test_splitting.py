"""Group-aware stratified splits: ratios, stratification, seeds, and groups never straddling splits."""

from __future__ import annotations

import numpy as np
import pytest

from trueval.data.splitting import group_stratified_split, groups_from_regex, stratified_subset
from trueval.utils.errors import UserError


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
