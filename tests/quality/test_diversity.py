"""Diversity: a repeated frame sequence (one scene, slightly shifted frames) is one within-split cluster."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from integrity.synthetic import photos, shift
from trueval.core.samples import SampleSet
from trueval.integrity import IntegritySettings
from trueval.quality.diversity import diversity_section, split_clusters


def test_frame_sequence_found_as_one_cluster(tmp_path: Path) -> None:
    distinct = photos(40, seed=3)
    scene = photos(1, seed=99)[0]
    frames = np.stack([shift(scene, 0, k) for k in range(6)])  # a camera panning one pixel per frame
    images = np.concatenate([distinct[:20], frames, distinct[20:]])
    train = SampleSet("train", np.zeros(len(images), int), images=images, name="t")
    test = SampleSet("test", np.zeros(10, int), images=photos(10, seed=4), name="t")
    sets = {"train": train, "test": test}
    clusters = {s: split_clusters(ss, IntegritySettings(), tmp_path / "cache") for s, ss in sets.items()}
    section = diversity_section(sets, clusters, None, max_repeat_fraction=0.05)
    d = section.data["splits"]
    assert d["train"]["clusters"] == 1 and d["train"]["repeats"] == 5
    assert sorted(d["train"]["largest"][0]) == sorted(f"train/{i}" for i in range(20, 26))
    assert d["test"]["clusters"] == 0
    assert section.flagged  # 5 of 46 train images repeat
    assert "clusters_train" in section.figures and "clusters_test" not in section.figures
