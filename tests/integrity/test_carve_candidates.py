"""Validation carved from train: only the candidates drawn for it are searched hard against the rest
of train, and validation is made of candidates alone, never of an image whose copy stays in train."""

from __future__ import annotations

import numpy as np
import pytest
from synthetic import photos
from test_robust_copies import _crop, _rotate
from test_step import ArrayData, _pool_with_copies

from trueval.core.samples import SampleSet
from trueval.integrity import IntegritySettings, gate_step
from trueval.integrity.fingerprints import compute_prints
from trueval.integrity.near_duplicates import near_pairs


def _prints_with_rotated_copies():
    """One split of 100 textured photos and two rotated copies of photos 0 and 1 (rows 100, 101),
    and a second split of 20 others."""
    train = photos(100, seed=11, cells=(3, 6, 10))
    train = np.concatenate([train, np.stack([_rotate(train[0], 6), _rotate(train[1], -9)])])
    test = photos(20, seed=12, cells=(3, 6, 10))
    prints = compute_prints(SampleSet("all", np.zeros(len(train) + len(test), np.int64),
                                      images=np.concatenate([train, test])))
    groups = np.r_[np.zeros(len(train), np.int64), np.ones(len(test), np.int64)]
    return prints, groups


def _pairs(prints, groups, thorough) -> dict:
    settings = IntegritySettings.from_config({"cache": False})
    r = near_pairs(prints, groups, settings, thorough=thorough)
    return {(int(a), int(b)): float(s) for a, b, s in zip(r.a, r.b, r.score)}


def test_a_mask_of_every_sample_or_of_none_searches_as_the_flag_does() -> None:
    prints, groups = _prints_with_rotated_copies()
    n = len(groups)
    assert _pairs(prints, groups, np.ones(n, bool)) == _pairs(prints, groups, True)
    assert _pairs(prints, groups, np.zeros(n, bool)) == _pairs(prints, groups, False)


def test_a_rotated_copy_inside_a_split_is_found_next_to_a_candidate_only() -> None:
    """Within a split only a candidate's pairs are refined (the rotation needs the refinement)."""
    prints, groups = _prints_with_rotated_copies()
    n = len(groups)
    assert not {(0, 100), (1, 101)} & set(_pairs(prints, groups, False))
    assert {(0, 100), (1, 101)} <= set(_pairs(prints, groups, True))
    original_is_candidate, copy_is_candidate, unrelated = (np.zeros(n, bool) for _ in range(3))
    original_is_candidate[[0, 1]] = True
    copy_is_candidate[[100, 101]] = True
    unrelated[[5, 6, 7]] = True
    assert {(0, 100), (1, 101)} <= set(_pairs(prints, groups, original_is_candidate))
    assert {(0, 100), (1, 101)} <= set(_pairs(prints, groups, copy_is_candidate))
    assert not {(0, 100), (1, 101)} & set(_pairs(prints, groups, unrelated))


def test_a_deep_crop_inside_a_split_is_found_next_to_a_candidate_only() -> None:
    """Crops keeping 70% (beyond max_scale: the deep-crop search) of photos of the same split."""
    train = photos(100, seed=21, cells=(3, 6, 10))
    anchors = [(0.0, 0.0), (1.0, 0.0), (0.5, 0.5), (0.0, 1.0), (1.0, 1.0), (0.5, 0.0), (0.0, 0.5), (0.8, 0.2)]
    crops = np.stack([_crop(train[i], 0.7, x, y) for i, (x, y) in enumerate(anchors)])
    test = photos(20, seed=22, cells=(3, 6, 10))
    images = np.concatenate([train, crops, test])
    prints = compute_prints(SampleSet("all", np.zeros(len(images), np.int64), images=images))
    groups = np.r_[np.zeros(len(train) + len(crops), np.int64), np.ones(len(test), np.int64)]
    planted = {(i, 100 + i) for i in range(len(anchors))}
    originals, copies = np.zeros(len(groups), bool), np.zeros(len(groups), bool)
    originals[:len(anchors)] = True
    copies[100:100 + len(anchors)] = True
    assert len(planted & set(_pairs(prints, groups, False))) <= 3  # no deep-crop search inside a split
    assert planted <= set(_pairs(prints, groups, originals))
    assert planted <= set(_pairs(prints, groups, copies))


def test_validation_is_carved_from_free_candidates_only() -> None:
    from trueval.data.splitting import carve_from_candidates

    targets = np.arange(60) % 3
    groups = np.arange(60)
    groups[[1, 40]] = 1  # a cluster of a candidate and a non-candidate
    groups[[2, 3]] = 2  # a cluster of two candidates
    candidates = np.zeros(60, bool)
    candidates[:24] = True
    tr, va, free = carve_from_candidates(targets, groups, candidates, 12, seed=0)
    assert free == 23 and len(va) == 12
    assert candidates[va].all() and 1 not in va
    assert ({2, 3} <= set(va)) or not ({2, 3} & set(va))  # a cluster of candidates stays whole
    assert sorted(np.r_[tr, va].tolist()) == list(range(60))
    # too few free candidates: all of them, and the caller is told how many were free
    _, va, free = carve_from_candidates(targets, groups, candidates, 30, seed=0)
    assert free == 23 and len(va) == 23
    # a class of one image stays in train, even when it was drawn as a candidate
    lone = np.r_[targets, 9]
    _, va, _ = carve_from_candidates(lone, np.arange(61), np.r_[candidates, True], 12, seed=0)
    assert 60 not in va


def test_the_datamodule_carves_validation_from_the_candidates_the_gate_searched_hard() -> None:
    train = np.concatenate([_pool_with_copies(12, seed=21), photos(160, seed=23)])  # 5 copies of 2 photos
    dm = ArrayData({"train": train, "test": photos(30, seed=22)}, val_fraction=0.3, integrity={"cache": False})
    inputs = dm.gate_inputs()
    candidates = inputs["candidates"]["train"]
    assert 0.3 * len(train) < candidates.sum() < 0.4 * len(train)
    out = gate_step(settings=dm.integrity_settings(), enforce=False, **inputs)
    row_of = {img.tobytes(): i for i, img in enumerate(train)}
    val_rows = [row_of[img.tobytes()] for img in out.sets["val"].images]
    assert len(val_rows) > 0.25 * len(train) and candidates[val_rows].all()
    assert not any({p.a.split, p.b.split} == {"train", "val"} for p in out.report.pairs)


def test_with_too_few_candidates_free_of_copies_every_training_image_is_searched_hard(caplog) -> None:
    """A dataset where most images have copies (the candidates' copies stay in train with them)."""
    dm = ArrayData({"train": _pool_with_copies(120, seed=21), "test": photos(30, seed=22)}, val_fraction=0.3,
                   integrity={"cache": False})
    with caplog.at_level("INFO", logger="trueval"):
        out = gate_step(settings=dm.integrity_settings(), enforce=False, **dm.gate_inputs())
    assert "searching every sample of the split as hard instead" in caplog.text
    assert len(out.sets["val"]) == round(0.3 * 170)
    assert not any({p.a.split, p.b.split} == {"train", "val"} for p in out.report.pairs)


def test_a_cut_that_moves_a_sample_not_searched_hard_is_refused() -> None:
    imgs = photos(40, seed=3)
    sets = {"train": SampleSet("train", np.arange(30) % 3, images=imgs[:30], name="gen"),
            "test": SampleSet("test", np.arange(10) % 3, images=imgs[30:], name="gen")}
    candidates = np.zeros(30, bool)
    candidates[:5] = True

    def cut(clusters, hard):
        return {"train": ("train", np.arange(6, 30)), "val": ("train", np.arange(6)), "test": ("test", np.arange(10))}

    with pytest.raises(RuntimeError, match="not candidates"):
        gate_step(sets, IntegritySettings.from_config({"cache": False}), cut=cut, candidates={"train": candidates},
                  enforce=False)


def test_each_mask_of_candidates_has_its_own_cache_entry(tmp_path) -> None:
    from trueval.integrity.gate import find_duplicates

    imgs = photos(60, seed=5)
    sets = {"train": SampleSet("train", np.arange(50) % 3, images=imgs[:50], name="gen"),
            "test": SampleSet("test", np.arange(10) % 3, images=imgs[50:], name="gen")}
    settings = IntegritySettings.from_config({})
    one, other = np.zeros(50, bool), np.zeros(50, bool)
    one[:8], other[8:16] = True, True
    assert not find_duplicates(sets, settings, tmp_path, thorough={"train": one}).cached
    assert find_duplicates(sets, settings, tmp_path, thorough={"train": one}).cached
    assert not find_duplicates(sets, settings, tmp_path, thorough={"train": other}).cached
    assert not find_duplicates(sets, settings, tmp_path, thorough=True).cached
