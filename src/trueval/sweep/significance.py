"""Is the sweep's best configuration really better than the runner-up? A paired test on test samples.

A configuration is a trial, or, when the sweep repeats seeds or cross-validation folds, the trials
that differ only by ``seed`` / ``data.fold``. Each configuration's per-sample test correctness comes
from its trials' ``test_predictions.npz`` (averaged over its trials, per sample); the two are
compared on the samples both were tested on, by McNemar's exact test (trueval.stats.paired).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from trueval.core.errors import UserError
from trueval.stats.paired import PairedResult, paired_test
from trueval.stats.predictions import load_predictions
from trueval.sweep.trials import OK, TrialRecord


@dataclass
class Comparison:
    """The outcome, or why there is none (``note``)."""

    best: str
    runner_up: str
    result: PairedResult | None = None
    note: str | None = None

    def sentence(self) -> str:
        if self.result is None:
            return f"Best `{self.best}` against runner-up `{self.runner_up}`: no paired test ({self.note})."
        return self.result.sentence(f"best `{self.best}`", f"runner-up `{self.runner_up}`")

    def to_dict(self) -> dict[str, Any]:
        return {"best": self.best, "runner_up": self.runner_up, "note": self.note,
                **(self.result.to_dict() if self.result else {})}


def per_sample_correctness(trials: Sequence[TrialRecord]) -> dict[str, float]:
    """{sample key: mean correctness over the trials that tested it}; raises UserError without predictions."""
    total: dict[str, float] = {}
    count: dict[str, int] = {}
    for trial in trials:
        predictions = load_predictions(trial.job_dir)
        for key, right in zip(predictions.keys(), predictions.correct.tolist()):
            total[key] = total.get(key, 0.0) + float(right)
            count[key] = count.get(key, 0) + 1
    return {key: total[key] / count[key] for key in total}


def compare_configurations(best: tuple[str, Sequence[TrialRecord]],
                           runner_up: tuple[str, Sequence[TrialRecord]]) -> Comparison:
    """Paired test of two configurations (name, ok trials) on the test samples they share."""
    (name_a, trials_a), (name_b, trials_b) = best, runner_up
    try:
        a, b = per_sample_correctness(trials_a), per_sample_correctness(trials_b)
    except UserError:
        return Comparison(name_a, name_b, note="a trial has no readable test_predictions.npz")
    shared = [k for k in a if k in b]
    if not shared:
        return Comparison(name_a, name_b, note="they were tested on different test samples")
    result = paired_test(np.array([a[k] for k in shared]), np.array([b[k] for k in shared]))
    note = None
    if len(shared) < max(len(a), len(b)):
        note = f"on the {len(shared)} test samples both were tested on ({len(a)} and {len(b)} in all)"
    return Comparison(name_a, name_b, result=result, note=note)


def configurations(summary: Any) -> list[tuple[str, list[TrialRecord]]]:
    """(name, ok trials) per configuration, best first: seed/fold groups when there are, else trials."""
    if summary.groups:
        out = []
        for group in summary.groups:
            members = [t for t in group.members if t.status == OK]
            if members and math.isfinite(group.mean.get(summary.metric, math.nan)):
                name = ", ".join(f"{k}={v}" for k, v in group.overrides.items()) or "all trials"
                out.append((name, members))
        return out
    keys = summary.varying_keys
    return [(", ".join(f"{k}={t.overrides.get(k, '')}" for k in keys) or t.name, [t]) for t in summary.trials
            if t.status == OK and math.isfinite(t.metric(summary.metric))]


def compare_best(summary: Any) -> Comparison | None:
    """Best against runner-up of a sweep summary; None with fewer than two configurations."""
    ranked = configurations(summary)
    if len(ranked) < 2:
        return None
    return compare_configurations(ranked[0], ranked[1])
