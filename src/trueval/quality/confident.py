"""Confident learning (Northcutt et al., 2021), written here because cleanlab is AGPL-licensed.

Given out-of-sample predicted probabilities, each class c gets a threshold t_c: the mean predicted
probability of c among samples labelled c (how confident the model is on its own class). A sample
labelled y counts for class j* = the most probable class among those reaching their threshold; it
is a likely label error when j* is not y (an off-diagonal entry of the paper's "confident joint").
That covers the sample whose probability of y is below t_y while another class reaches its own, and
also the one where both reach their thresholds but the other class is more probable. Per-class
thresholds keep a hard class (low confidence everywhere) from filling the ranking, which a single
global cut would do.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

RANKINGS = ("self_confidence", "margin")


@dataclass
class LabelIssues:
    """Per sample: flagged or not, the suspicion score (higher: more suspicious), the likely true label."""

    flagged: np.ndarray
    score: np.ndarray
    predicted: np.ndarray


def class_thresholds(probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """t_c = mean of p_c over samples labelled c (1.0 for a class nobody carries: never reached)."""
    k = probs.shape[1]
    out = np.ones(k)
    for c in range(k):
        mask = labels == c
        if mask.any():
            out[c] = probs[mask, c].mean()
    return out


def find_label_issues(probs: np.ndarray, labels: np.ndarray, thresholds: np.ndarray,
                      rank_by: str = "self_confidence") -> LabelIssues:
    """Flag samples as confident learning does and score them.

    ``self_confidence``: 1 - p_y (cleanlab's default label-quality score, inverted);
    ``margin``: max_{j != y} p_j - p_y (the normalised margin, negated).
    """
    if rank_by not in RANKINGS:
        raise ValueError(f"rank_by must be one of {RANKINGS}, got {rank_by!r}")
    n = len(labels)
    rows = np.arange(n)
    given = probs[rows, labels]
    others = probs.copy()
    others[rows, labels] = -np.inf
    confident = probs >= thresholds[None, :]
    # the likely label: the most probable class among those reaching their threshold, else the argmax
    best = np.where(confident, probs, -np.inf).argmax(axis=1)
    counted = confident.any(axis=1)
    flagged = counted & (best != labels)
    predicted = np.where(counted, best, probs.argmax(axis=1))
    score = others.max(axis=1) - given if rank_by == "margin" else 1.0 - given
    return LabelIssues(flagged=flagged, score=score, predicted=predicted)
