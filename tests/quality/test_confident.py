"""Confident learning on hand-made probabilities: thresholds per class, flags, scores, rankings."""

from __future__ import annotations

import numpy as np
import pytest

from trueval.quality.confident import class_thresholds, find_label_issues


def test_per_class_thresholds_flag_confidently_other_samples() -> None:
    probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7],  # labelled 0; the third looks like a 1
                      [0.4, 0.6], [0.45, 0.55], [0.5, 0.5]])  # labelled 1, a hard class
    labels = np.array([0, 0, 0, 1, 1, 1])
    t = class_thresholds(probs, labels)
    assert t == pytest.approx([(0.9 + 0.8 + 0.3) / 3, (0.6 + 0.55 + 0.5) / 3])
    found = find_label_issues(probs, labels, t)
    # sample 2: p(0)=0.3 < t0 and p(1)=0.7 >= t1; the hard class's low-confidence members stay unflagged
    assert found.flagged.tolist() == [False, False, True, False, False, False]
    assert found.predicted[2] == 1
    assert found.score[2] == pytest.approx(1 - 0.3)
    assert find_label_issues(probs, labels, t, "margin").score[2] == pytest.approx(0.7 - 0.3)


def test_a_class_nobody_carries_is_never_predicted_as_the_true_label() -> None:
    probs = np.array([[0.6, 0.0, 0.4], [0.7, 0.0, 0.3]])
    labels = np.array([0, 0])
    t = class_thresholds(probs, labels)
    assert t[1] == 1.0 and t[2] == 1.0
    assert not find_label_issues(probs, labels, t).flagged.any()
    with pytest.raises(ValueError):
        find_label_issues(probs, labels, t, "loss")
