"""Domain: a target taken under other conditions is told apart from train; an i.i.d. one is not."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from integrity.synthetic import photos
from trueval.core.errors import UserError
from trueval.core.samples import SampleSet
from trueval.quality.domain import domain_section, read_target


def _set(images: np.ndarray, split: str) -> SampleSet:
    return SampleSet(split, np.arange(len(images)) % 2, images=images, name="t")


def test_shifted_target_detected_and_iid_target_not() -> None:
    pool = photos(240, seed=5, size=16)
    train, same = _set(pool[:160], "train"), _set(pool[160:], "test")
    # another camera: darker, lower contrast, with sensor noise
    noise = np.random.default_rng(0).normal(0, 12, size=pool[160:].shape)
    shifted = _set(np.clip(pool[160:] * 0.6 + 20 + noise, 0, 255).astype(np.uint8), "test")
    far = domain_section(train, shifted, "test", ["a", "b"], None, max_auc=0.75, seed=0)
    near = domain_section(train, same, "test", ["a", "b"], None, max_auc=0.75, seed=0)
    assert far.flagged and far.data["auc"] > 0.9
    assert not near.flagged and near.data["auc"] < 0.7
    assert {d["class"] for d in far.data["per_class"]} == {"a", "b"}
    assert len(far.data["most_out_of_domain"]) == 16 and "domain_outliers" in far.figures


def test_target_folder_labelled_by_class_folders_or_not(tmp_path: Path) -> None:
    imgs = photos(4, seed=8, size=16)
    for i, img in enumerate(imgs):
        folder = tmp_path / "labelled" / ("a" if i % 2 else "b")
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(folder / f"{i}.png")
        (tmp_path / "loose").mkdir(exist_ok=True)
        Image.fromarray(img).save(tmp_path / "loose" / f"{i}.png")
    labelled = read_target(str(tmp_path / "labelled"), ["a", "b"], channels=1)
    assert sorted(labelled.targets.tolist()) == [0, 0, 1, 1] and labelled.load(0).shape == (16, 16, 1)
    assert read_target(str(tmp_path / "loose"), ["a", "b"], channels=3).targets.tolist() == [-1] * 4
    with pytest.raises(UserError, match="quality.target"):
        read_target(str(tmp_path / "missing"), ["a", "b"], channels=3)
