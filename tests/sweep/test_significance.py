"""The sweep summary's uncertainty: bootstrap-interval columns, mean/std/t-interval over seeds and folds,
and the paired test of the best configuration against the runner-up."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from trueval.stats.predictions import write_predictions
from trueval.sweep.summary import build_summary, write_summary


def _job(sweep: Path, write_job, num: int, overrides: list[str], acc: float, correct: np.ndarray) -> None:
    name = ",".join(overrides)
    job = write_job(sweep, name, overrides, num=num, metrics={"val/acc_best": acc, "test/acc": float(correct.mean())})
    payload = json.loads((job / "metrics.json").read_text())
    payload["ci95"] = {"test/acc": [float(correct.mean()) - 0.05, float(correct.mean()) + 0.05]}
    (job / "metrics.json").write_text(json.dumps(payload))
    n = len(correct)
    target = np.arange(n) % 3
    write_predictions(job / "test_predictions.npz", [f"s{i}" for i in range(n)], [f"h{i}" for i in range(n)],
                      target, np.where(correct, target, (target + 1) % 3))


def test_folds_are_aggregated_like_seeds_and_best_is_tested_against_runner_up(make_sweep, write_job) -> None:
    sweep = make_sweep()
    rng = np.random.default_rng(0)
    num = 0
    for lr, p_right in (("0.01", 0.9), ("0.001", 0.6)):
        for fold in range(3):
            correct = rng.random(200) < p_right
            _job(sweep, write_job, num, [f"optimizer.lr={lr}", "data.folds=3", f"data.fold={fold}"],
                 p_right + 0.01 * fold, correct)
            num += 1
    summary = build_summary(sweep)
    write_summary(summary, plot=False)
    with (sweep / "summary.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert float(rows[0]["test/acc_ci95_lo"]) < float(rows[0]["test/acc"]) < float(rows[0]["test/acc_ci95_hi"])
    with (sweep / "summary_by_seed.csv").open() as handle:
        groups = list(csv.DictReader(handle))
    assert [g["optimizer.lr"] for g in groups] == ["0.01", "0.001"] and "data.fold" not in groups[0]
    best = groups[0]
    assert float(best["val/acc_best ci95_lo"]) < float(best["val/acc_best mean"]) < float(best["val/acc_best ci95_hi"])
    assert float(best["val/acc_best mean"]) == 0.91 and best["n_ok"] == "3"
    comparison = summary.comparison
    assert comparison.best == "optimizer.lr=0.01" and comparison.runner_up == "optimizer.lr=0.001"
    assert comparison.result.n == 200 and comparison.result.significant
    md = (sweep / "summary.md").read_text()
    assert "over folds" in md and "Best against runner-up" in md and "significant at 0.05" in md


def test_single_trials_compare_by_mcnemar_and_say_when_predictions_are_missing(make_sweep, write_job) -> None:
    sweep = make_sweep()
    base = np.random.default_rng(1).random(100) < 0.8
    _job(sweep, write_job, 0, ["optimizer=adam"], 0.8, base)
    flipped = base.copy()
    flipped[:2] = ~flipped[:2]
    _job(sweep, write_job, 1, ["optimizer=sgd"], 0.79, flipped)
    result = build_summary(sweep).comparison.result
    assert result.a_better + result.b_better == 2 and not result.significant
    (sweep / "optimizer=sgd" / "test_predictions.npz").unlink()
    comparison = build_summary(sweep).comparison
    assert comparison.result is None and "test_predictions.npz" in comparison.sentence()
