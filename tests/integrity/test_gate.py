"""The gate on generated images: planted same-source, exact and near leaks are found with the right
pairs; a clean split passes; within-split duplicates are counted, not refused; results are cached."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from synthetic import NEAR, photos, save
from trueval.core.samples import SampleSet
from trueval.integrity import IntegritySettings, print_report, run_gate

NO_CACHE = IntegritySettings.from_config({"cache": False})


def _arrays(split: str, images: np.ndarray) -> SampleSet:
    return SampleSet(split, np.zeros(len(images), np.int64), images=images, sources=[f"gen:{split}"], name="gen")


def _files(split: str, paths: list[str], folder: str) -> SampleSet:
    return SampleSet(split, np.zeros(len(paths), np.int64), paths=paths, sources=[folder], name="gen")


def _pairs(report, kind=None) -> set[tuple[str, int, str, int]]:
    return {(p.a.split, p.a.index, p.b.split, p.b.index) for p in report.pairs if kind in (None, p.kind)}


def test_clean_split_passes() -> None:
    imgs = photos(90, seed=1)
    report = run_gate({"train": _arrays("train", imgs[:60]), "val": _arrays("val", imgs[60:75]),
                       "test": _arrays("test", imgs[75:])}, NO_CACHE, dataset="gen")
    assert not report.has_leak and report.pairs == []
    assert report.within_split_duplicates == 0
    d = report.to_dict()
    assert set(d) == {"dataset", "splits", "pairs", "within_split_duplicates", "seconds", "policy", "look_alikes"}
    assert d["look_alikes"] == []
    assert d["splits"] == {"train": 60, "val": 15, "test": 15}


def test_planted_exact_and_near_copies_are_paired(tmp_path: Path) -> None:
    imgs = photos(80, seed=2)
    train, rest = imgs[:50], imgs[50:]
    planted = {}  # test index -> (train index, transform)
    test = list(rest)
    for k, (name, fn) in enumerate(NEAR.items()):
        planted[len(test)] = (k, name)
        test.append(fn(train[k]))
    # an exact copy saved with other bytes: a PNG with different compression
    train_paths = save(train, tmp_path / "train")
    exact_path = tmp_path / "test_extra" / "resaved.png"
    exact_path.parent.mkdir()
    Image.fromarray(train[20]).save(exact_path, "PNG", compress_level=0)
    assert exact_path.read_bytes() != Path(train_paths[20]).read_bytes()
    test_paths = save(np.stack(test), tmp_path / "test") + [str(exact_path)]
    report = run_gate({"train": _files("train", train_paths, str(tmp_path / "train")),
                       "test": _files("test", test_paths, str(tmp_path / "test"))}, NO_CACHE, dataset="gen")
    found = _pairs(report)
    assert ("train", 20, "test", len(test_paths) - 1) in _pairs(report, "exact")
    for j, (i, name) in planted.items():
        assert ("train", i, "test", j) in _pairs(report, "near"), name
    # nothing else: the other 30 test photos are unrelated
    assert len(found) == len(planted) + 1
    near = [p for p in report.pairs if p.kind == "near"]
    assert all(0 <= p.distance <= 0.1 for p in near)
    assert all(p.a.path and p.b.path for p in report.pairs)
    lines = report.summary_lines()
    assert f"test: {len(planted)} of {len(test_paths)} images are near-duplicates of images in train" in lines
    assert f"test: 1 of {len(test_paths)} images are pixel-identical copies of images in train" in lines


def test_a_photo_stored_sideways_with_an_orientation_tag_is_the_upright_photo(tmp_path: Path) -> None:
    """A phone's copy: the pixels stored turned by 90 degrees, an EXIF tag saying how to turn them
    back. Every viewer shows the upright photo; the gate now sees it too (it reported nothing)."""
    imgs = photos(40, seed=5, size=48)
    train_paths = save(imgs[:30], tmp_path / "train")
    test_paths = save(imgs[30:], tmp_path / "test")
    exif = Image.Exif()
    exif[0x0112] = 6  # display: turn 90 degrees clockwise
    for k, i in enumerate((3, 17)):
        path = tmp_path / "test" / f"phone_{k}.png"
        Image.fromarray(imgs[i]).transpose(Image.Transpose.ROTATE_90).save(path, exif=exif.tobytes())
        test_paths.append(str(path))
    report = run_gate({"train": _files("train", train_paths, str(tmp_path / "train")),
                       "test": _files("test", test_paths, str(tmp_path / "test"))}, NO_CACHE, dataset="gen")
    assert _pairs(report) == {("train", 3, "test", 10), ("train", 17, "test", 11)}
    assert all(p.kind == "exact" for p in report.pairs)  # upright, the pixels are identical


def test_a_similarity_rounded_above_one_is_not_a_negative_distance(monkeypatch) -> None:
    """On the H200 a float32 correlation of identical content came out 1 + 1e-7, and the report said
    distance -1e-7; every distance is in [0, 1]."""
    from trueval.integrity import near_duplicates

    real = near_duplicates._search

    def rounded_up(*args, **kwargs):
        a, b, score, near, level = real(*args, **kwargs)
        return a, b, np.where(score >= 0.999, score + 2e-7, score), near, level

    monkeypatch.setattr(near_duplicates, "_search", rounded_up)
    imgs = photos(80, seed=2)
    mirrored = NEAR["flip"](imgs[3])  # the same content: scored 1
    report = run_gate({"train": _arrays("train", imgs[:50]),
                       "test": _arrays("test", np.concatenate([imgs[50:], np.asarray(mirrored)[None]]))},
                      NO_CACHE, dataset="gen")
    near = [p for p in report.pairs if p.kind == "near"]
    assert near and all(0.0 <= p.distance <= 1.0 for p in near)


def test_same_source_found_before_decoding(tmp_path: Path) -> None:
    # files no decoder can read: the same-source check must not need their pixels
    folder = tmp_path / "data"
    folder.mkdir()
    paths = []
    for i in range(6):
        p = folder / f"x{i}.png"
        p.write_bytes(b"not an image %d" % i)
        paths.append(str(p))
    link = tmp_path / "alias"
    link.symlink_to(folder)
    relative = [os.path.relpath(str(link / f"x{i}.png")) for i in range(6)]
    settings = IntegritySettings.from_config({"cache": False, "exact": False, "near": False})
    report = run_gate({"train": _files("train", paths, str(folder)), "val": _files("val", relative, str(link))},
                      settings, dataset="gen")
    assert _pairs(report, "source") == {("train", i, "val", i) for i in range(6)}
    assert "val: 6 of 6 images are also in train (the same files)" in report.summary_lines()


def test_array_sources_exact_copies_and_within_split_duplicates(capsys) -> None:
    imgs = photos(40, seed=3)
    train = _arrays("train", np.concatenate([imgs[:30], imgs[:2]]))  # two repeated inside train
    test_imgs = np.concatenate([imgs[30:], imgs[5:7]])
    test = SampleSet("test", np.zeros(len(test_imgs), np.int64), images=test_imgs, name="gen",
                     origin=[f"gen:test:{i}" for i in range(10)] + ["gen:train:5", "gen:train:6"])
    report = run_gate({"train": train, "test": test}, NO_CACHE, dataset="gen")
    # the origin ids say "the same sample": reported once, as the same source
    assert _pairs(report) == {("train", 5, "test", 10), ("train", 6, "test", 11)}
    assert {p.kind for p in report.pairs} == {"source"}
    assert all(p.a.path is None for p in report.pairs)
    assert report.within_split_duplicates == 2 and report.within_by_split == {"train": 2, "test": 0}
    only_within = run_gate({"train": train, "test": _arrays("test", imgs[30:])}, NO_CACHE, dataset="gen")
    assert not only_within.has_leak and only_within.within_split_duplicates == 2
    print_report(report)
    assert "LEAK" in capsys.readouterr().out


def test_cached_result_is_reused_and_invalidated(tmp_path: Path) -> None:
    imgs = photos(30, seed=4)
    paths = save(imgs[:20], tmp_path / "train")
    test_imgs = np.concatenate([imgs[20:], NEAR["jpeg"](imgs[3])[None]])
    test_paths = save(test_imgs, tmp_path / "test")
    settings = IntegritySettings.from_config({})

    def sets():
        return {"train": _files("train", paths, "t"), "test": _files("test", test_paths, "s")}

    first = run_gate(sets(), settings, cache_dir=tmp_path / "cache", dataset="gen")
    again = run_gate(sets(), settings, cache_dir=tmp_path / "cache", dataset="gen")
    assert not first.cached and again.cached
    assert json.dumps(first.to_dict()["pairs"]) == json.dumps(again.to_dict()["pairs"])
    assert _pairs(again) == {("train", 3, "test", 10)}
    stricter = run_gate(sets(), IntegritySettings.from_config({"thresholds": {"near": 0.999}}),
                        cache_dir=tmp_path / "cache", dataset="gen")
    assert not stricter.cached  # other settings, other key
    Image.fromarray(imgs[25]).save(test_paths[-1])  # the leaked file replaced by an unrelated picture
    st = os.stat(test_paths[-1])
    os.utime(test_paths[-1], ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    changed = run_gate(sets(), settings, cache_dir=tmp_path / "cache", dataset="gen")
    assert not changed.cached and not changed.has_leak


@pytest.mark.parametrize("tiny", [True])
def test_tiny_images_only_match_exactly(tiny) -> None:
    # 8x8 images hold too few pixels to tell a copy from a look-alike: exact matches only
    rng = np.random.default_rng(5)
    imgs = rng.integers(0, 256, (30, 8, 8, 1), dtype=np.uint8)
    test = np.concatenate([imgs[20:], imgs[:1], np.clip(imgs[1:2].astype(int) + 3, 0, 255).astype(np.uint8)])
    report = run_gate({"train": _arrays("train", imgs[:20]), "test": _arrays("test", test)}, NO_CACHE)
    assert _pairs(report) == {("train", 0, "test", 10)}
