"""Duplicate clusters for group splitting: copies share a group, and a template-made split of a pool
with copies passes the gate."""

from __future__ import annotations

import numpy as np

from synthetic import NEAR, photos
from trueval.core.samples import SampleSet
from trueval.data.splitting import group_stratified_split
from trueval.integrity import IntegritySettings, duplicate_groups, run_gate


def test_copies_share_a_group_and_group_split_is_clean(tmp_path) -> None:
    imgs = photos(60, seed=11)
    copies = [NEAR["jpeg"](imgs[0]), NEAR["flip"](imgs[0]), NEAR["crop"](imgs[1]), imgs[2].copy()]
    pool_imgs = np.concatenate([imgs, np.stack(copies)])
    targets = np.arange(len(pool_imgs)) % 2
    pool = SampleSet("all", targets, images=pool_imgs, name="gen")
    settings = IntegritySettings.from_config({})
    groups = duplicate_groups(pool, settings, cache_dir=tmp_path)
    assert groups[0] == groups[60] == groups[61] and groups[1] == groups[62] and groups[2] == groups[63]
    assert len(np.unique(groups)) == 60
    assert np.array_equal(duplicate_groups(pool, settings, cache_dir=tmp_path), groups)  # cached
    parts = group_stratified_split(targets, groups, [0.6, 0.2, 0.2], seed=0)
    sets = {name: pool.subset(p, split=name) for name, p in zip(("train", "val", "test"), parts)}
    report = run_gate(sets, IntegritySettings.from_config({"cache": False}))
    assert not report.has_leak
    assert report.within_split_duplicates == 4
