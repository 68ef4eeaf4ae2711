"""Is one model better than another on the same test samples? McNemar's test and a paired bootstrap.

Both models are scored on the same samples, so the question is about the samples on which they
disagree. Each model's per-sample correctness may be averaged over several trials (seeds, folds)
of one configuration; the test is then the exact sign test on the per-sample differences, which
for single trials (correctness 0 or 1) is exactly McNemar's exact test on the discordant pairs
(``scipy.stats.binomtest``), with its mid-p value alongside (less conservative, Fagerland et al. 2013).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from trueval.core.errors import UserError
from trueval.stats.bootstrap import LEVEL, percentile_interval, resample_indices
from trueval.stats.predictions import Predictions

ALPHA = 0.05


@dataclass
class PairedResult:
    """Model A against model B on ``n`` shared test samples."""

    n: int
    acc_a: float
    acc_b: float
    a_better: int  # samples where A does better than B (A right, B wrong, for single trials)
    b_better: int
    p_exact: float
    p_mid: float
    diff_ci95: list[float]  # bootstrap interval of acc_a - acc_b over the shared samples

    @property
    def diff(self) -> float:
        return self.acc_a - self.acc_b

    @property
    def significant(self) -> bool:
        return self.p_exact < ALPHA

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "diff": self.diff, "significant": self.significant, "alpha": ALPHA}

    def sentence(self, name_a: str = "A", name_b: str = "B") -> str:
        verdict = "significant" if self.significant else "not significant"
        return (f"{name_a} vs {name_b}: accuracy {self.acc_a:.4f} vs {self.acc_b:.4f} on the same {self.n} test "
                f"samples, difference {self.diff:+.4f} [95% CI {self.diff_ci95[0]:+.4f}, {self.diff_ci95[1]:+.4f}]; "
                f"McNemar exact p = {self.p_exact:.3g} (mid-p {self.p_mid:.3g}; {self.a_better} samples favour "
                f"{name_a}, {self.b_better} favour {name_b}): {verdict} at {ALPHA}.")


def sign_test(a_better: int, b_better: int) -> tuple[float, float]:
    """Two-sided exact and mid-p values of the sign (McNemar) test on the discordant counts."""
    from scipy.stats import binom, binomtest

    n = a_better + b_better
    if n == 0:
        return 1.0, 1.0
    exact = float(binomtest(a_better, n, 0.5).pvalue)
    low = min(a_better, b_better)
    mid = 2 * (binom.cdf(low, n, 0.5) - 0.5 * binom.pmf(low, n, 0.5))
    return exact, float(min(1.0, mid))


def paired_test(correct_a: np.ndarray, correct_b: np.ndarray, resamples: int = 2000, seed: int = 0) -> PairedResult:
    """Compare per-sample correctness (0/1, or a mean over a configuration's trials) on the same samples."""
    a = np.asarray(correct_a, dtype=np.float64)
    b = np.asarray(correct_b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"paired test needs two equal-length vectors, got {a.shape} and {b.shape}")
    d = a - b
    a_better, b_better = int((d > 0).sum()), int((d < 0).sum())
    p_exact, p_mid = sign_test(a_better, b_better)
    ci = [float("nan"), float("nan")]
    if len(d):
        draws = np.concatenate([d[idx.numpy()].mean(1) for idx in resample_indices(len(d), resamples, seed)])
        ci = percentile_interval(draws, LEVEL)
    return PairedResult(n=len(d), acc_a=float(a.mean()) if len(a) else float("nan"),
                        acc_b=float(b.mean()) if len(b) else float("nan"), a_better=a_better, b_better=b_better,
                        p_exact=p_exact, p_mid=p_mid, diff_ci95=ci)


def align(a: Predictions, b: Predictions, name_a: str = "A", name_b: str = "B") -> tuple[np.ndarray, np.ndarray]:
    """Indices into ``a`` and ``b`` of the same test samples, in ``a``'s order; refuses different test sets."""
    keys_a, keys_b = a.keys(), b.keys()
    if sorted(keys_a) != sorted(keys_b):
        only_a = len(set(keys_a) - set(keys_b))
        only_b = len(set(keys_b) - set(keys_a))
        raise UserError(f"{name_a} and {name_b} were tested on different samples ({len(a)} and {len(b)} test "
                        f"samples; {only_a} only in {name_a}, {only_b} only in {name_b}): a paired comparison needs "
                        "the same test split (same data, data.split, seed and test limits)")
    where = {k: i for i, k in enumerate(keys_b)}
    ib = np.array([where[k] for k in keys_a], dtype=np.int64)
    ia = np.arange(len(keys_a))
    if not np.array_equal(a.target[ia], b.target[ib]):
        raise UserError(f"{name_a} and {name_b} have the same test images with different labels")
    return ia, ib


def compare_predictions(a: Predictions, b: Predictions, name_a: str = "A", name_b: str = "B") -> PairedResult:
    ia, ib = align(a, b, name_a, name_b)
    return paired_test(a.correct[ia], b.correct[ib])
