"""Mean, standard deviation and a t-interval over repeated trials (seeds, cross-validation folds)."""

from __future__ import annotations

import math
import statistics
from typing import Sequence

from trueval.stats.bootstrap import LEVEL


def t_interval(values: Sequence[float], level: float = LEVEL) -> list[float]:
    """[lo, hi] of the mean: mean +- t_{(1+level)/2, n-1} * std / sqrt(n); NaN for fewer than two values.

    Over folds of one cross-validation the folds share training data, so this interval is narrower
    than the truth (Bengio and Grandvalet, 2004: no unbiased estimator of that variance exists).
    """
    from scipy.stats import t

    finite = [float(v) for v in values if math.isfinite(v)]
    if len(finite) < 2:
        return [math.nan, math.nan]
    mean = statistics.fmean(finite)
    half = float(t.ppf((1 + level) / 2, len(finite) - 1)) * statistics.stdev(finite) / math.sqrt(len(finite))
    return [mean - half, mean + half]


def format_interval(value: float, interval: Sequence[float] | None, digits: int = 4) -> str:
    """``0.9630 [0.9410, 0.9810]`` (the value alone when there is no interval)."""
    text = f"{value:.{digits}f}"
    if interval and len(interval) == 2 and all(isinstance(v, (int, float)) and math.isfinite(v) for v in interval):
        text += f" [{interval[0]:.{digits}f}, {interval[1]:.{digits}f}]"
    return text
