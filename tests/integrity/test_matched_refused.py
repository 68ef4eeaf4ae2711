"""Pairs refused outright at full resolution whose half-resolution score reached the threshold get the
resolution and sharpness matching too (gate version 18): the layout check refused some blurred and
shrunk copies whose finer detail no longer ranks as their original's; matched, they pass."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageFilter
from synthetic import photos

from trueval.core.samples import SampleSet
from trueval.integrity.fingerprints import compute_prints
from trueval.integrity.verify import Verifier


def _verifier() -> Verifier:
    imgs = photos(2, seed=21)
    blurred = np.asarray(Image.fromarray(imgs[0]).filter(ImageFilter.GaussianBlur(1.5)))
    images = np.stack([imgs[0], blurred, imgs[1]])
    prints = compute_prints(SampleSet("x", np.zeros(3, np.int64), images=images, sources=["gen"]))
    return Verifier(prints.thumbs, prints.boxes, 0.25, 0.5, layout_from=0.9, sides=prints.side)


def test_a_refused_pair_that_came_close_at_half_resolution_is_matched_again() -> None:
    v = _verifier()
    a, b = np.array([0, 0]), np.array([1, 1])  # two hypotheses of the blurred copy's pair
    flip, scale, aligned = np.zeros(2, bool), np.ones(2), np.ones(2, bool)
    refused = np.array([-1.0, -1.0])  # as the layout check leaves them
    quick = np.array([0.95, 0.93], np.float32)
    assert (v._matched_scores(a, b, flip, scale, aligned, refused, 0.9) == -1).all()  # version 17: not looked at
    again = v._matched_scores(a, b, flip, scale, aligned, refused, 0.9, quick)
    assert again[0] > 0.5 and again[1] == -1  # the pair's best hypothesis, the original blurred to match
    # only between splits (``refinable``), and only where the half-resolution score reached the threshold
    assert (v._matched_scores(a, b, flip, scale, aligned, refused, 0.9, quick, np.zeros(2, bool)) == -1).all()
    assert (v._matched_scores(a, b, flip, scale, aligned, refused, 0.9, quick - 0.1) == -1).all()
    # a pair already verified by another hypothesis is not scored again
    verified = np.array([-1.0, 0.95])
    assert v._matched_scores(a, b, flip, scale, aligned, verified, 0.9, quick)[0] == -1
