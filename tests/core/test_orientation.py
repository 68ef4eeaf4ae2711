"""Images are seen upright: every decoder and size reader applies a file's EXIF orientation.

A phone stores a photo sideways and tags how to turn it; viewers, Ultralytics and PIL's
``exif_transpose`` show it upright. Before, the template read the stored pixels: such a photo and
the same photo saved upright were two different images to the integrity gate (a copy in test went
unreported), and YOLO labels written on the upright photo fell on the wrong pixels.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from trueval.core.samples import displayed_size, load_image
from trueval.data.detection.dataset import read_rgb
from trueval.integrity.fingerprints import decode_file, decode_files

T = Image.Transpose
# how to store an upright image so that a viewer, applying the tag, shows it upright again
_STORE = {1: None, 2: T.FLIP_LEFT_RIGHT, 3: T.ROTATE_180, 4: T.FLIP_TOP_BOTTOM, 5: T.TRANSPOSE,
          6: T.ROTATE_90, 7: T.TRANSVERSE, 8: T.ROTATE_270}


def upright_photo() -> Image.Image:
    """A smooth 40 x 24 picture with a bright corner, so every turn and mirror of it differs."""
    y, x = np.mgrid[0:24, 0:40]
    a = np.stack([x * 6, y * 10, (x + y) * 3], -1).astype(np.uint8)
    a[:6, :8] = 255
    return Image.fromarray(a)


def stored(path: Path, orientation: int, fmt: str) -> np.ndarray:
    up = upright_photo()
    im = up if _STORE[orientation] is None else up.transpose(_STORE[orientation])
    exif = Image.Exif()
    exif[0x0112] = orientation
    im.save(path, fmt, exif=exif.tobytes(), **({"quality": 95} if fmt == "JPEG" else {}))
    return np.asarray(up)


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_every_reader_sees_the_photo_upright(tmp_path: Path, orientation: int, fmt: str) -> None:
    path = tmp_path / f"photo.{fmt.lower()}"
    up = stored(path, orientation, fmt)
    tolerance = 4.0 if fmt == "JPEG" else 0.0  # mean absolute error of a q95 JPEG
    for name, pixels in (("PIL", load_image(str(path), "RGB")), ("torchvision", decode_file(str(path), "RGB")),
                         ("batched", decode_files([str(path)] * 2, "RGB")[0]),
                         ("detection", read_rgb(str(path)).permute(1, 2, 0).numpy())):
        assert pixels.shape == up.shape, (name, pixels.shape)
        assert np.abs(pixels.astype(float) - up).mean() <= tolerance, name
    assert displayed_size(str(path)) == (40, 24)
