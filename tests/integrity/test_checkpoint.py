"""The train fingerprint travels in a checkpoint (weights_only load) and finds the checkpoint's own
training images, exact or transformed, in another split."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from synthetic import NEAR, photos, save
from trueval.core.samples import SampleSet
from trueval.integrity import (IntegritySettings, content_hashes, find_overlap, match_fingerprint,
                               train_fingerprint)


def test_fingerprint_round_trip_and_matches(tmp_path: Path) -> None:
    imgs = photos(60, seed=9)
    train = SampleSet("train", np.zeros(40, np.int64), images=imgs[:40], name="gen")
    settings = IntegritySettings.from_config({"cache": False})
    fp = train_fingerprint(train, settings)
    torch.save({"trueval": {"train_fingerprint": fp}}, tmp_path / "x.ckpt")
    loaded = torch.load(tmp_path / "x.ckpt", weights_only=True)["trueval"]["train_fingerprint"]
    assert loaded["count"] == 40 and len(loaded["hashes"]) == 40
    # test: 15 unrelated, one exact copy saved as a file, one brighter, one shifted copy
    test_imgs = np.concatenate([imgs[40:55], imgs[7:8], NEAR["brighter"](imgs[8])[None], NEAR["shift"](imgs[9])[None]])
    paths = save(test_imgs, tmp_path / "test")
    test = SampleSet("test", np.zeros(len(paths), np.int64), paths=paths, name="gen")
    assert match_fingerprint(loaded, test, settings) == [15, 16, 17]
    assert find_overlap(content_hashes(train), test, settings) == [15]  # hashes only: exact matches
    exact_only = IntegritySettings.from_config({"cache": False, "fingerprint_size": 0})
    assert "thumbs" not in train_fingerprint(train, exact_only)
    assert match_fingerprint(train_fingerprint(train, exact_only), test, settings) == [15]


def test_content_hashes_are_of_pixels_not_bytes(tmp_path: Path) -> None:
    imgs = photos(3, seed=10)
    a = save(imgs, tmp_path / "a")
    b = save(imgs, tmp_path / "b")
    from PIL import Image

    Image.fromarray(imgs[0]).save(b[0], "PNG", compress_level=0)
    arrays = SampleSet("x", np.zeros(3, np.int64), images=imgs)
    files_a = SampleSet("x", np.zeros(3, np.int64), paths=a)
    files_b = SampleSet("x", np.zeros(3, np.int64), paths=b)
    assert content_hashes(arrays) == content_hashes(files_a) == content_hashes(files_b)
    assert len(set(content_hashes(arrays))) == 3
