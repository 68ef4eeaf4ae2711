"""The report's pictures: image grids drawn with PIL (one image, fast), charts with matplotlib (Agg, no pyplot).

A matplotlib grid of 32 thumbnails is 32 axes with titles and took 5 s to lay out on the 2-core
machine; pasting the thumbnails into one PIL image takes milliseconds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
from PIL import Image, ImageDraw

_CELL = 72
_CAPTION = 12
_TITLE = 16


def image_grid(rows: Sequence[Sequence[np.ndarray]], captions: Sequence[Sequence[str]], title: str,
               cell: int = _CELL) -> Image.Image:
    """Images in rows (ragged rows allowed), each scaled to ``cell`` pixels with a caption under it."""
    ncols = max((len(r) for r in rows), default=1)
    width = max(ncols * cell, 8 * len(title) + 8)
    height = _TITLE + max(1, len(rows)) * (cell + _CAPTION)
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    draw.text((4, 2), title, fill="black")
    for r, row in enumerate(rows):
        for c, img in enumerate(row):
            tile = Image.fromarray(img[..., 0] if img.shape[-1] == 1 else img).convert("RGB")
            tile.thumbnail((cell - 4, cell - 4), Image.NEAREST if max(tile.size) < cell else Image.BILINEAR)
            if max(tile.size) < cell - 4:
                scale = (cell - 4) // max(tile.size)
                tile = tile.resize((tile.size[0] * scale, tile.size[1] * scale), Image.NEAREST)
            x, y = c * cell + 2, _TITLE + r * (cell + _CAPTION)
            canvas.paste(tile, (x, y))
            draw.text((x, y + cell - 2), str(captions[r][c])[: cell // 6], fill="black")
    return canvas


def save_png(fig: Any, path: Path) -> Path:
    """A matplotlib Figure or a PIL image as PNG."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(fig, Image.Image):
        fig.save(path)
    else:
        fig.savefig(path)
    return path
