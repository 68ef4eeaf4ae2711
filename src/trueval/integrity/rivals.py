"""One source per copy: a later split's image is counted as a copy of its best match in an earlier
split and of that match's own copies, not of rival look-alikes that score clearly lower.

An image of a later split (val, test) that is a copy is a copy of one photo. When it passes the
threshold against several images of an earlier split that the gate did not find to be copies of
each other, they are rival explanations, and when one scores clearly higher the others are most
likely look-alikes of it: on the airplane suite, a planted copy of one bomber photo also passes
against other bomber photos on plain skies (0.90-0.96 against its source's 0.99-1.00). It is the
ratio test of keypoint matching (keep a match only when no unrelated match is clearly better),
applied to whole images.

A rival is not always a different photo: on all of CIFAR-10, by eye, 7 of the 8 are the same photo
as their test image, held twice in train without the search linking the two train copies. So
rivals are kept apart, not thrown away:
the report lists them as look-alikes, outside the pairs it counts, and ``policy=drop`` removes their
train/val side as well (a training image too many dropped costs little; a copy kept would leak).
The rule never touches an image's best match, so no image that is a copy stops being reported.
"""
from __future__ import annotations

import numpy as np


def rivals(a: np.ndarray, b: np.ndarray, score: np.ndarray, split_of: np.ndarray, cluster: np.ndarray,
           margin: float, identical: tuple[np.ndarray, np.ndarray] = (np.zeros(0, np.int64),) * 2) -> np.ndarray:
    """Which of the pairs ``a``-``b`` (similarity ``score``) are rivals (a boolean mask).

    ``split_of``: split rank per sample (train 0, val 1, test 2; -1 for a sample not in use).
    ``cluster``: per sample, its cluster of copies within its own split (linked by the pairs found
    there, identical pixels or the same file). ``identical``: pairs of samples across splits that
    are the same file or identical pixels: matches of score 1. A pair across splits is a rival when
    its later-split side has another match in the same earlier split, in another cluster there,
    that scores more than ``margin`` higher. Pairs within a split are never rivals.
    """
    rival = np.zeros(len(a), bool)
    cross = np.flatnonzero(split_of[a] != split_of[b])
    if len(cross) == 0 or margin >= 1.0:
        return rival
    pa, pb = np.r_[a[cross], identical[0]], np.r_[b[cross], identical[1]]
    s = np.r_[score[cross].astype(np.float64), np.ones(len(identical[0]))]
    later_is_b = split_of[pb] > split_of[pa]
    copy = np.where(later_is_b, pb, pa)
    match = np.where(later_is_b, pa, pb)
    # the best score per (copy, earlier split), and per (copy, earlier split, cluster there)
    _, per_split = np.unique(np.stack([copy, split_of[match]], 1), axis=0, return_inverse=True)
    _, per_cluster = np.unique(np.stack([copy, split_of[match], cluster[match]], 1), axis=0, return_inverse=True)
    per_split, per_cluster = per_split.ravel(), per_cluster.ravel()
    best_split = np.full(per_split.max() + 1, -np.inf)
    np.maximum.at(best_split, per_split, s)
    best_cluster = np.full(per_cluster.max() + 1, -np.inf)
    np.maximum.at(best_cluster, per_cluster, s)
    rival[cross] = (best_cluster[per_cluster] < best_split[per_split] - margin)[:len(cross)]
    return rival
