"""Policies: fail refuses with the summary and the config key, warn trains on, drop removes the
train/val side of every pair (never test) and records what it dropped."""

from __future__ import annotations

import numpy as np
import pytest

from synthetic import NEAR, photos
from trueval.core.samples import SampleSet
from trueval.integrity import IntegritySettings, apply_policy, content_hashes, run_gate
from trueval.integrity.policy import kept_indices
from trueval.core.errors import LeakError

NO_CACHE = IntegritySettings.from_config({"cache": False})


@pytest.fixture(scope="module")
def leaky():
    imgs = photos(70, seed=7)
    train = SampleSet("train", np.arange(40) % 3, images=imgs[:40], name="gen")
    val_imgs = np.concatenate([imgs[40:50], imgs[0:1], NEAR["flip"](imgs[1])[None]])  # val 10, 11 leak train 0, 1
    val = SampleSet("val", np.zeros(12, np.int64), images=val_imgs, name="gen")
    test_imgs = np.concatenate([imgs[50:70], NEAR["jpeg"](imgs[2])[None], imgs[45:46]])  # test 20 ~ train 2, 21 = val 5
    test = SampleSet("test", np.zeros(22, np.int64), images=test_imgs, name="gen")
    sets = {"train": train, "val": val, "test": test}
    return sets, run_gate(sets, NO_CACHE, dataset="gen")


def test_report_has_the_planted_pairs(leaky) -> None:
    _, report = leaky
    assert {(p.a.split, p.a.index, p.b.split, p.b.index) for p in report.pairs} == {
        ("train", 0, "val", 10), ("train", 1, "val", 11), ("train", 2, "test", 20), ("val", 5, "test", 21)}


def test_fail_raises_with_summary_and_key(leaky) -> None:
    sets, report = leaky
    with pytest.raises(LeakError) as err:
        apply_policy(sets, report, "fail")
    text = str(err.value)
    assert "data.integrity.policy" in text and err.value.exit_code != 0
    assert "val: 1 of 12 images are pixel-identical copies of images in train" in text
    assert "val: 1 of 12 images are near-duplicates of images in train" in text
    assert "test: 1 of 22 images are near-duplicates of images in train" in text


def test_warn_keeps_everything_and_flags(leaky) -> None:
    sets, report = leaky
    out, record = apply_policy(sets, report, "warn")
    assert all(out[k] is sets[k] for k in sets)
    assert record["leaky"] and record["pairs"] == 4 and record["dropped_count"] == 0


def test_drop_removes_train_val_side_never_test(leaky) -> None:
    sets, report = leaky
    out, record = apply_policy(sets, report, "drop")
    assert len(out["test"]) == len(sets["test"])  # test is never touched
    assert len(out["train"]) == 37 and len(out["val"]) == 11
    dropped = {(d["split"], d["index"]) for d in record["dropped"]}
    assert dropped == {("train", 0), ("train", 1), ("train", 2), ("val", 5)}
    assert record["dropped_count"] == 4
    assert all(d["origin"] == f"gen:{d['split']}:{d['index']}" for d in record["dropped"])
    # the reduced splits pass the gate, and the attached hashes follow the subset
    again = run_gate(out, NO_CACHE, dataset="gen")
    assert not again.has_leak
    assert content_hashes(out["train"]) == content_hashes(sets["train"].subset(np.arange(3, 40)))


def test_drop_refuses_to_empty_a_split() -> None:
    imgs = photos(12, seed=8)
    train = SampleSet("train", np.zeros(6, np.int64), images=imgs[:6], name="gen")
    val = SampleSet("val", np.zeros(6, np.int64), images=imgs[:6].copy(), name="gen")  # val is train
    test = SampleSet("test", np.zeros(6, np.int64), images=imgs[6:], name="gen")
    report = run_gate({"train": train, "val": val, "test": test}, NO_CACHE)
    with pytest.raises(LeakError, match="would remove all"):
        apply_policy({"train": train, "val": val, "test": test}, report, "drop")


def test_pairs_between_template_carved_splits_are_always_dropped(leaky) -> None:
    sets, report = leaky
    # train/val carved by the template: its leftovers go whatever the policy; the test leak still fails
    with pytest.raises(LeakError) as err:
        apply_policy(sets, report, "fail", carved=[("train", "val")])
    assert "val:" not in str(err.value).split("\n", 1)[1] and "test: 1 of 22" in str(err.value)
    out, record = apply_policy(sets, report, "warn", carved=[("train", "val")])
    assert {(d["split"], d["index"]) for d in record["carved_dropped"]} == {("train", 0), ("train", 1)}
    assert len(out["train"]) == 38 and len(out["val"]) == 12 and record["pairs"] == 2


def test_drop_with_carved_leftovers_removes_the_samples_the_pairs_name(leaky) -> None:
    """Carved leftovers and the other pairs are dropped in one step: the pairs' indices are into the
    splits as the gate saw them, so a second step on already reduced splits removed the wrong samples."""
    sets, report = leaky
    out, record = apply_policy(sets, report, "drop", carved=[("train", "val")])
    assert {(d["split"], d["index"]) for d in record["carved_dropped"]} == {("train", 0), ("train", 1)}
    assert {(d["split"], d["index"]) for d in record["dropped"]} == {("train", 2), ("val", 5)}
    assert content_hashes(out["train"]) == content_hashes(sets["train"].subset(np.arange(3, 40)))
    assert content_hashes(out["val"]) == content_hashes(sets["val"].subset(np.delete(np.arange(12), 5)))
    kept = kept_indices({s: len(ss) for s, ss in sets.items()}, record)
    assert content_hashes(out["train"]) == content_hashes(sets["train"].subset(kept["train"]))
