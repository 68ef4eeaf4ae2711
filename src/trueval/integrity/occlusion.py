"""Copies with a caption or a logo drawn over them: the regions an overlay covers, and a cheap test
of whether a pair agrees everywhere but in one of them.

An overlay replaces part of the picture with something else (a word along the top or bottom, a
badge in a corner), and the band-pass correlation of the whole picture then falls below the
threshold (on the planted CIFAR-10 suites the gate found 0.30 of the captioned and 0.51 of the
logo copies). Leaving out the pixels where two aligned images differ most found most of them but
also let different photos of one silhouette through: the choice of pixels was free. Here the
choice is one of six fixed regions, the shapes overlays take: each corner (``_CORNER`` of the side
square) and the top and bottom bands (``_BAND`` of the height). The verifier inpaints the region in
both images and leaves it out of the comparison, as it does a rotation's black corners, and the
score, which only a near-exact match of the rest reaches, is held ``PENALTY`` higher (on the
airplane suite 13 of 334 close pairs that were not planted copies reached the threshold so with
no margin, 1 with 0.08, while the overlay copies scored 0.99-1.00). Only pairs that no stage, the
refinement included, verified are scored so (``Verifier.score``).

Scoring six region pairs costs as much as six verifications, so a pair is only scored when its
8 x 8 grids (``descriptors.pixel_descriptors``' resolution) already agree at ``GRID_AGREE`` or
better outside one of the regions: on the airplane suite 95 of 7,195 candidate pairs between
splits passed that test, every overlay copy among them.

The copies still missed (0.01-0.06 of them on the CIFAR-10 suites) were never proposed: the overlay
moved their 8 x 8 grid away from their original's. Asking the grid search also with each query's
grid without each region found 2 more of the tuning suites' 160 overlay copies (before pairs
refused outright were rescored too), for 7.7% more time on a cold MNIST audit (6 more query
views): not kept.
"""

from __future__ import annotations

import numpy as np
import torch

from trueval.integrity.descriptors import PIXEL_GRID, normalise_rows

_CORNER = 0.3  # side of a corner region, as a share of the thumbnail's side
_BAND = 0.375  # height of a top or bottom band (a caption's line of text and its outline)
GRID_AGREE = 0.98  # correlation of the 8 x 8 grids outside a region needed to score the pair
PENALTY = 0.08  # a score with a region left out is held this much higher than ``near``


def regions(size: int) -> np.ndarray:
    """(6, size, size) float32 masks, 1 inside the region: four corners, then the top and bottom bands."""
    c, band = int(round(_CORNER * size)), int(round(_BAND * size))
    out = np.zeros((6, size, size), np.float32)
    for k, (y0, x0) in enumerate(((0, 0), (0, size - c), (size - c, 0), (size - c, size - c))):
        out[k, y0:y0 + c, x0:x0 + c] = 1.0
    out[4, :band] = 1.0
    out[5, size - band:] = 1.0
    return out


def _grid_regions() -> torch.Tensor:
    """(6, 64) booleans: the 8 x 8 grid cells outside each region (a region covering part of a cell
    takes the whole cell)."""
    full = torch.from_numpy(regions(PIXEL_GRID * 4))
    cells = torch.nn.functional.avg_pool2d(full[:, None], 4)[:, 0]
    return (cells == 0).flatten(1)


def agree_outside(first: np.ndarray, second: np.ndarray, flip: np.ndarray) -> np.ndarray:
    """Per pair of thumbnails (``second`` mirrored where ``flip``), the best correlation of their
    8 x 8 grids over the cells outside one region (0 where one of them is flat there)."""
    if len(first) == 0:
        return np.zeros(0, np.float32)

    def grid(x: np.ndarray) -> torch.Tensor:
        t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
        return torch.nn.functional.adaptive_avg_pool2d(t[:, None], PIXEL_GRID)[:, 0]

    ga, gb = grid(first), grid(second)
    gb = torch.where(torch.from_numpy(np.asarray(flip, bool))[:, None, None], gb.flip(-1), gb)
    ga, gb = ga.flatten(1), gb.flatten(1)
    corr = [(normalise_rows(ga[:, keep]) * normalise_rows(gb[:, keep])).sum(1) for keep in _grid_regions()]
    return torch.stack(corr).amax(0).numpy()
