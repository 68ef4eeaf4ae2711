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


def test_a_fingerprint_made_before_photos_were_read_upright_warns_about_tagged_ones(tmp_path: Path, caplog) -> None:
    """A version 1 fingerprint holds the stored pixels of a photo with an EXIF orientation tag; the
    test split is now read upright, so such a photo can go unmatched: said when the split holds one."""
    import logging

    from PIL import Image

    imgs = photos(30, seed=4)
    train = SampleSet("train", np.zeros(20, np.int64), images=imgs[:20], name="gen")
    settings = IntegritySettings.from_config({"cache": False})
    fp = train_fingerprint(train, settings)
    assert fp["version"] == 2
    paths = save(imgs[20:], tmp_path / "test")
    test = SampleSet("test", np.zeros(len(paths), np.int64), paths=paths, name="gen")
    with caplog.at_level(logging.WARNING, logger="trueval"):
        match_fingerprint({**fp, "version": 1}, test, settings)  # no tagged photo: nothing to say
        assert "orientation" not in caplog.text
        exif = Image.Exif()
        exif[0x0112] = 6
        Image.fromarray(imgs[3]).transpose(Image.Transpose.ROTATE_90).save(tmp_path / "phone.png", exif=exif.tobytes())
        tagged = SampleSet("test", np.zeros(len(paths) + 1, np.int64), paths=paths + [str(tmp_path / "phone.png")],
                           name="gen")
        match_fingerprint(fp, tagged, settings)  # a version 2 fingerprint: read upright on both sides
        assert "orientation" not in caplog.text
        match_fingerprint({**fp, "version": 1}, tagged, settings)
        assert "1 of the 11 test images carry an orientation tag" in caplog.text and "phone.png" in caplog.text
