"""Generated test images: textured, photo-like, all different from each other.

Each image is a sum of random smooth noise at three scales in random colours, so distinct images
share no structure (unlike flat colours or shapes, which would all look alike), and copies of one
stay recognisable after the transforms the gate must see through.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance


def photos(n: int, seed: int, size: int = 32, cells: tuple[int, ...] = (4, 8, 16)) -> np.ndarray:
    """(n, size, size, 3) uint8 distinct textured images (noise on grids of ``cells`` a side)."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, size, size, 3), np.uint8)
    for i in range(n):
        img = np.zeros((size, size, 3))
        for grid_cells, weight in zip(cells, (1.0, 0.6, 0.35)):
            grid = rng.normal(size=(grid_cells, grid_cells, 3)) * weight
            up = Image.fromarray(((grid - grid.min()) / (np.ptp(grid) + 1e-9) * 255).astype(np.uint8))
            img += (np.asarray(up.resize((size, size), Image.BICUBIC), dtype=np.float64) / 255 - 0.5) * weight
        img = (img - img.min()) / (np.ptp(img) + 1e-9)
        out[i] = np.clip(img * 255, 0, 255).astype(np.uint8)
    return out


def save(images: np.ndarray, folder: Path, prefix: str = "img", fmt: str = "PNG", **kw) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, a in enumerate(images):
        p = folder / f"{prefix}_{i:04d}.{'jpg' if fmt == 'JPEG' else 'png'}"
        Image.fromarray(a).save(p, fmt, **kw)
        paths.append(str(p.resolve()))
    return paths


def jpeg(a: np.ndarray, quality: int = 50) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, "JPEG", quality=quality)
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))


def shift(a: np.ndarray, dy: int, dx: int) -> np.ndarray:
    out = np.zeros_like(a)
    h, w = a.shape[:2]
    out[max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = a[max(-dy, 0):h - max(dy, 0), max(-dx, 0):w - max(dx, 0)]
    return out


def crop(a: np.ndarray, keep: float = 0.88) -> np.ndarray:
    h, w = a.shape[:2]
    ch, cw = round(h * keep), round(w * keep)
    return np.asarray(Image.fromarray(a).crop((1, 2, 1 + cw, 2 + ch)).resize((w, h), Image.BICUBIC))


def brighter(a: np.ndarray, factor: float = 1.3) -> np.ndarray:
    return np.asarray(ImageEnhance.Brightness(Image.fromarray(a)).enhance(factor))


def flip(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a[:, ::-1])


def gray(a: np.ndarray) -> np.ndarray:
    return np.asarray(Image.fromarray(a).convert("L").convert("RGB"))


NEAR = {"jpeg": jpeg, "shift": lambda a: shift(a, 3, -2), "crop": crop, "brighter": brighter, "flip": flip,
        "gray": gray}
