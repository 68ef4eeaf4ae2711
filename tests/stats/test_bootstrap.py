"""Bootstrap intervals: the same metrics as the module logs, seeded, honest coverage, detection over images."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from trueval.models.classifier import _metrics
from trueval.stats.bootstrap import (classification_draws, classification_intervals, detection_intervals,
                                     percentile_interval)


def _predictions(n: int, k: int, acc: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, k, (n,), generator=g)
    wrong = torch.randint(0, k, (n,), generator=g)
    p = torch.where(torch.rand(n, generator=g) < acc, y, wrong)
    p[y == 2] = 3  # a class never predicted: macro averages must treat it as torchmetrics does
    return y, p


def test_full_sample_draw_equals_the_logged_test_metrics() -> None:
    y, p = _predictions(500, 5, 0.8, seed=0)
    metrics = _metrics(5).clone(prefix="test/")
    logged = metrics(torch.nn.functional.one_hot(p, 5).float(), y)
    draws = classification_draws(metrics, y, p, 5, [torch.arange(500)[None]])
    assert set(draws) == set(logged) == {"test/acc", "test/acc_macro", "test/precision_macro", "test/recall_macro",
                                         "test/f1_macro"}
    for name, value in logged.items():
        assert float(draws[name][0]) == pytest.approx(float(value), abs=1e-6), name


def test_intervals_bracket_the_value_shrink_with_n_and_are_seeded() -> None:
    metrics = _metrics(5).clone(prefix="test/")
    small = classification_intervals(metrics, *_predictions(100, 5, 0.8, 1), 5, resamples=300, seed=0)
    y, p = _predictions(3000, 5, 0.8, 1)
    large = classification_intervals(metrics, y, p, 5, resamples=300, seed=0)
    acc = float((y == p).float().mean())
    assert large["test/acc"][0] < acc < large["test/acc"][1]
    width = {name: ci[1] - ci[0] for name, ci in large.items()}
    assert all(width[n] < small[n][1] - small[n][0] for n in width)
    assert classification_intervals(metrics, y, p, 5, resamples=300, seed=0) == large
    assert classification_intervals(metrics, y, p, 5, resamples=300, seed=1) != large


def test_accuracy_interval_covers_the_true_accuracy_about_95_percent_of_the_time() -> None:
    metrics = {"acc": _metrics(2)["acc"]}
    rng = np.random.default_rng(0)
    hits = 0
    for trial in range(40):
        y = rng.integers(0, 2, 150)
        p = np.where(rng.random(150) < 0.7, y, 1 - y)  # true accuracy 0.7
        lo, hi = classification_intervals(metrics, y, p, 2, resamples=200, seed=trial)["acc"]
        hits += lo <= 0.7 <= hi
    assert 34 <= hits <= 40  # expected 38; the trials are seeded


def test_percentile_interval_ignores_non_finite_draws() -> None:
    assert percentile_interval(np.array([np.nan, 1.0, 1.0])) == [1.0, 1.0]
    assert all(np.isnan(percentile_interval(np.array([np.nan]))))


def test_detection_interval_is_over_images() -> None:
    def box(x: float) -> torch.Tensor:
        return torch.tensor([[x, x, x + 10, x + 10]], dtype=torch.float32)

    targets = [{"boxes": box(i), "labels": torch.tensor([0])} for i in range(8)]
    # half the images detected exactly, half missed: mAP50 of a draw depends on which images it holds
    preds = [{"boxes": box(i if i % 2 else i + 40), "scores": torch.tensor([0.9]), "labels": torch.tensor([0])}
             for i in range(8)]
    ci = detection_intervals(preds, targets, resamples=20, seed=0)
    assert set(ci) == {"test/map50"}
    lo, hi = ci["test/map50"]
    assert 0.0 <= lo < 0.5 < hi <= 1.0
