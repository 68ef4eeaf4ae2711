"""Copies with a caption or a logo drawn over them, planted across splits among distinct textured
images: found by scoring each close pair without one fixed region (``integrity.occlusion``)."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw
from synthetic import jpeg, photos

from trueval.core.samples import SampleSet
from trueval.integrity import IntegritySettings, occlusion, run_gate


def _caption(a: np.ndarray, word: str, top: bool) -> np.ndarray:
    """A word in white with a black outline along the top or bottom edge (PIL's default font)."""
    out = Image.fromarray(a).copy()
    draw = ImageDraw.Draw(out)
    y = 1 if top else a.shape[0] - 11
    for ox, oy in ((-1, 0), (1, 0), (0, -1), (0, 1)):
        draw.text((2 + ox, y + oy), word, fill=(0, 0, 0))
    draw.text((2, y), word, fill=(255, 255, 255))
    return np.asarray(out)


def _logo(a: np.ndarray, corner: int, colour: tuple[int, int, int]) -> np.ndarray:
    """A solid 9 x 9 badge with a white letter in one corner (0-3: top left, top right, bottom left,
    bottom right)."""
    out = Image.fromarray(a).copy()
    draw = ImageDraw.Draw(out)
    h, w = a.shape[:2]
    x = 1 if corner % 2 == 0 else w - 10
    y = 1 if corner < 2 else h - 10
    draw.rectangle((x, y, x + 8, y + 8), fill=colour)
    draw.text((x + 2, y - 1), "L", fill=(255, 255, 255))
    return np.asarray(out)


def _near_pairs(train: np.ndarray, test: np.ndarray) -> set:
    sets = {"train": SampleSet("train", np.zeros(len(train), np.int64), images=train, sources=["gen-train"], name="gen"),
            "test": SampleSet("test", np.zeros(len(test), np.int64), images=test, sources=["gen-test"], name="gen")}
    report = run_gate(sets, IntegritySettings.from_config({"cache": False}), cache_dir=None, dataset="gen")
    return {(p.a.index, p.b.index) for p in report.pairs if p.kind == "near"}


def _overlaid(train: np.ndarray) -> np.ndarray:
    words = ["SALE", "(c)2024", "photo", "HELLO"]
    captions = [_caption(train[i], words[i], top=i % 2 == 0) for i in range(4)]
    logos = [_logo(train[4 + i], i, ((200, 30, 30), (20, 160, 40), (30, 60, 200), (240, 200, 0))[i]) for i in range(4)]
    return np.stack(captions + logos)


def test_captioned_and_logo_copies_are_found(monkeypatch) -> None:
    train = photos(100, seed=71)
    test = np.concatenate([_overlaid(train), photos(20, seed=72)])
    planted = {(i, i) for i in range(8)}
    assert _near_pairs(train, test) == planted
    monkeypatch.setattr(occlusion, "GRID_AGREE", float("inf"))  # no pair is scored without a region
    assert len(_near_pairs(train, test)) <= 4  # before: half or more of these overlays hid their copy


def test_logo_copies_saved_as_jpeg_are_found_when_the_layout_check_refused_them() -> None:
    """A badge reorders the brightness ranks the layout check compares, so a copy can be refused
    outright at full resolution while its half-resolution score stays above the threshold: such a
    pair is rescored too (taking only pairs whose best score stayed below the threshold missed
    the second of these eight, and a CIFAR-10 cat with a red badge in a user's folder)."""
    train = photos(100, seed=81)
    colours = [(200, 20, 20), (20, 200, 20), (20, 20, 200), (230, 230, 20)] * 2
    logos = np.stack([jpeg(_logo(train[i], i % 4, colours[i]), quality=90) for i in range(8)])
    assert _near_pairs(train, np.concatenate([logos, photos(20, seed=82)])) == {(i, i) for i in range(8)}


def test_different_photos_under_the_same_overlay_are_not_paired() -> None:
    """The region is left out, never compared: two different photos carrying the same logo or caption
    agree only there."""
    train, test = photos(100, seed=73), photos(20, seed=74)
    marked_train = np.stack([_logo(train[i], 3, (200, 30, 30)) for i in range(4)]
                            + [_caption(train[4 + i], "SALE", top=False) for i in range(4)] + list(train[8:]))
    marked_test = np.stack([_logo(test[i], 3, (200, 30, 30)) for i in range(4)]
                           + [_caption(test[4 + i], "SALE", top=False) for i in range(4)] + list(test[8:]))
    assert _near_pairs(marked_train, marked_test) == set()


def test_regions_are_the_four_corners_and_two_bands() -> None:
    r = occlusion.regions(32)
    assert r.shape == (6, 32, 32)
    assert [int(x.sum()) for x in r] == [100, 100, 100, 100, 12 * 32, 12 * 32]
    assert r[0, 0, 0] == r[3, 31, 31] == r[4, 0, 16] == r[5, 31, 16] == 1
    assert r[:, 16, 16].sum() == 0  # the middle is never left out


def test_grids_agree_outside_the_region_an_overlay_covers() -> None:
    train = photos(10, seed=75).mean(-1).astype(np.float32)
    logo = train.copy()
    logo[:, 22:31, 22:31] = 255.0  # bottom-right badge
    agree = occlusion.agree_outside(train, logo, np.zeros(len(train), bool))
    assert (agree >= occlusion.GRID_AGREE).all()
    mirrored = occlusion.agree_outside(train, logo[:, :, ::-1], np.ones(len(train), bool))
    assert np.allclose(mirrored, agree, atol=1e-5)
    others = occlusion.agree_outside(train, np.roll(train, 1, 0), np.zeros(len(train), bool))
    assert (others < occlusion.GRID_AGREE).all()
