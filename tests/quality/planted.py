"""Planted defects on small data: flipped digits labels, digits written as class folders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def digits(noise: float = 0.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(uint8 N x 8 x 8 x 1 images, labels with ``noise`` of them flipped to another class, flipped indices)."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = np.round(bunch.images * (255.0 / 16.0)).astype(np.uint8)[:, :, :, None]
    labels = bunch.target.copy()
    rng = np.random.default_rng(seed)
    flipped = np.sort(rng.choice(len(labels), size=int(round(noise * len(labels))), replace=False))
    labels[flipped] = (labels[flipped] + rng.integers(1, 10, size=len(flipped))) % 10
    return images, labels, flipped


def write_digits_tree(root: Path, images: np.ndarray, labels: np.ndarray, prefix: str) -> list[str]:
    """``root/<label>/<prefix>_<i>.png``; returns the relative paths in sample order."""
    out = []
    for i, (img, y) in enumerate(zip(images, labels)):
        folder = root / str(int(y))
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img[:, :, 0]).save(folder / f"{prefix}_{i:04d}.png")
        out.append(f"{root.name}/{int(y)}/{prefix}_{i:04d}.png")
    return out
