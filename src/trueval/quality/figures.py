"""Matplotlib figures of the report (Agg, no pyplot state: safe in any process) and their PNG/array forms."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np


def image_grid(rows: Sequence[Sequence[np.ndarray]], captions: Sequence[Sequence[str]], title: str,
               cell: float = 1.3) -> Any:
    """Images in rows (ragged rows allowed), a small caption under each."""
    from matplotlib.figure import Figure

    ncols = max((len(r) for r in rows), default=1)
    fig = Figure(figsize=(max(3.0, cell * ncols), cell * 1.25 * max(1, len(rows)) + 0.5), dpi=100)
    axes = fig.subplots(max(1, len(rows)), ncols, squeeze=False)
    for r, row in enumerate(rows):
        for c in range(ncols):
            ax = axes[r][c]
            ax.axis("off")
            if c < len(row):
                img = row[c]
                ax.imshow(img[..., 0] if img.shape[-1] == 1 else img, cmap="gray" if img.shape[-1] == 1 else None,
                          vmin=0, vmax=255, interpolation="nearest")
                ax.set_title(captions[r][c], fontsize=6)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def save_png(fig: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path


def to_array(fig: Any) -> np.ndarray:
    """H x W x 3 uint8 pixels of a figure (for TensorBoard)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()
