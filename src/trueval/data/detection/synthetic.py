"""A tiny YOLO dataset of coloured shapes on noise, written to disk in seconds.

For tests and smoke runs: the boxes are known exactly, the classes are easy to tell apart
(a filled rectangle, a filled ellipse, a filled triangle), so a detector learns them in a few
epochs on a CPU. Nothing is downloaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np
from PIL import Image, ImageDraw

SHAPES = ("rectangle", "ellipse", "triangle")
COLOURS = ((230, 60, 50), (60, 200, 70), (70, 90, 240))


def draw_sample(rng: np.random.Generator, size: int, max_objects: int = 3,
                num_classes: int = 3) -> tuple[Image.Image, list[tuple[int, float, float, float, float]]]:
    """One noise image with 1..max_objects non-overlapping shapes and their YOLO rows."""
    # a smooth random field plus fine noise: every image has its own large-scale look, so the
    # integrity gate's near-duplicate check (band-passed thumbnails) never mistakes two images
    # with similar shape layouts for one picture; everything stays darker than the shapes' colours
    field = Image.fromarray(rng.integers(0, 120, size=(4, 4, 3), dtype=np.uint8)).resize((size, size), Image.BICUBIC)
    pixels = np.asarray(field, dtype=np.int16) + rng.integers(0, 40, size=(size, size, 3))
    image = Image.fromarray(np.clip(pixels, 0, 159).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    rows: list[tuple[int, float, float, float, float]] = []
    taken: list[tuple[int, int, int, int]] = []
    for _ in range(int(rng.integers(1, max_objects + 1))):
        for _attempt in range(20):
            w, h = (int(v) for v in rng.integers(size // 5, size // 2, size=2))
            x0, y0 = int(rng.integers(0, size - w)), int(rng.integers(0, size - h))
            box = (x0, y0, x0 + w, y0 + h)
            if all(box[2] <= t[0] or box[0] >= t[2] or box[3] <= t[1] or box[1] >= t[3] for t in taken):
                break
        else:
            continue
        cls = int(rng.integers(0, num_classes))
        colour = COLOURS[cls % len(COLOURS)]
        # PIL's ellipse/rectangle fill the closed interval [x0, x1]; the box is x0..x0+w in pixels
        inner = (x0, y0, x0 + w - 1, y0 + h - 1)
        if SHAPES[cls % len(SHAPES)] == "rectangle":
            draw.rectangle(inner, fill=colour)
        elif SHAPES[cls % len(SHAPES)] == "ellipse":
            draw.ellipse(inner, fill=colour)
        else:
            draw.polygon([(x0, y0 + h - 1), (x0 + w - 1, y0 + h - 1), (x0 + w // 2, y0)], fill=colour)
        taken.append(box)
        rows.append((cls, (x0 + w / 2) / size, (y0 + h / 2) / size, w / size, h / size))
    return image, rows


def write_synthetic_yolo(root: str | Path, counts: Mapping[str, int] | None = None, size: int = 64,
                         num_classes: int = 3, seed: int = 0) -> Path:
    """``root/{images,labels}/<split>/`` plus ``root/data.yaml``; returns the yaml path."""
    counts = dict(counts or {"train": 16, "val": 8, "test": 8})
    root = Path(root)
    rng = np.random.default_rng(seed)
    for split, n in counts.items():
        (root / "images" / split).mkdir(parents=True, exist_ok=True)
        (root / "labels" / split).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            image, rows = draw_sample(rng, size, num_classes=num_classes)
            image.save(root / "images" / split / f"{split}_{i:04d}.png")
            text = "".join(f"{c} {cx:.6f} {cy:.6f} {w:.6f} {h:.6f}\n" for c, cx, cy, w, h in rows)
            (root / "labels" / split / f"{split}_{i:04d}.txt").write_text(text)
    names = "\n".join(f"  {k}: {SHAPES[k % len(SHAPES)]}{'' if k < len(SHAPES) else k}" for k in range(num_classes))
    splits = "\n".join(f"{split}: images/{split}" for split in counts)
    yaml_path = root / "data.yaml"
    yaml_path.write_text(f"path: .\n{splits}\nnames:\n{names}\n")
    return yaml_path
