"""``summary.png``: the optimised metric of every configuration of a sweep.

A configuration is a value of every swept key but the seed; the trials that differ only by seed
are its repeats, drawn as their mean with a standard-deviation bar (never two different networks
averaged together). When the learning rate is swept the metric is drawn against it on a log axis,
one panel per batch size when that is swept too, one line per combination of the other swept keys;
otherwise a ranked bar chart of the configurations. Bars of a metric bounded by [0, 1] (accuracies)
stop at its bounds. Failed trials are black crosses on the bottom edge.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from trueval.sweep.trials import FAILED, OK

if TYPE_CHECKING:
    from trueval.sweep.summary import SweepSummary

LR_KEY, BATCH_KEY, SEED_KEY = "optimizer.lr", "data.batch_size", "seed"


def _number(text: str | None) -> float | None:
    try:
        value = float(text) if text is not None else None
    except ValueError:
        return None
    return value if value is not None and math.isfinite(value) and value > 0 else None


def _order(value: str) -> tuple[float, str]:
    number = _number(value)
    return (number if number is not None else math.inf, value)


def config_keys(summary: "SweepSummary") -> list[str]:
    """The keys that tell configurations apart: every swept key but the seed."""
    return [k for k in summary.varying_keys if k != SEED_KEY]


def _label(keys: Sequence[str], values: Sequence[str | None]) -> str:
    return ", ".join(f"{k}={v}" for k, v in zip(keys, values) if v is not None) or "all trials"


def error_bars(values: Sequence[float], bounded: bool) -> tuple[float, float, float]:
    """(mean, lower, upper) of repeats: one standard deviation, cut at [0, 1] for bounded metrics."""
    mean = statistics.fmean(values)
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    if not bounded:
        return mean, std, std
    return mean, min(std, max(mean, 0.0)), min(std, max(1.0 - mean, 0.0))


def _bounded(summary: "SweepSummary") -> bool:
    values = [t.metric(summary.metric) for t in summary.trials if math.isfinite(t.metric(summary.metric))]
    return bool(values) and all(0.0 <= v <= 1.0 for v in values)


def plot_summary(summary: "SweepSummary", path: Path) -> Path:
    """Draw the summary figure to ``path`` (PNG) and return the path."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    if LR_KEY in config_keys(summary):
        figure = _plot_against_lr(plt, summary)
    else:
        figure = _plot_ranking(plt, summary)
    figure.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(figure)
    return path


def _plot_against_lr(plt, summary: "SweepSummary"):  # noqa: ANN001, ANN202
    keys = config_keys(summary)
    panel_key = BATCH_KEY if BATCH_KEY in keys else None
    line_keys = [k for k in keys if k not in (LR_KEY, panel_key)]
    bounded = _bounded(summary)
    # (panel, line, lr) -> finite metric values of the ok trials (the seeds of one configuration)
    points: dict[tuple[str, tuple, float], list[float]] = defaultdict(list)
    failures: dict[str, list[float]] = defaultdict(list)
    for trial in summary.trials:
        lr = _number(trial.overrides.get(LR_KEY))
        if lr is None:
            continue
        panel = trial.overrides.get(panel_key, "") if panel_key else ""
        value = trial.metric(summary.metric)
        if trial.status == OK and math.isfinite(value):
            points[(panel, tuple(trial.overrides.get(k) for k in line_keys), lr)].append(value)
        elif trial.status == FAILED:
            failures[panel].append(lr)

    panels = sorted({p for p, _, _ in points} | set(failures), key=_order) or [""]
    lines = sorted({line for _, line, _ in points}, key=lambda line: [_order(v or "") for v in line])
    colors = {line: plt.get_cmap("tab10")(i % 10) for i, line in enumerate(lines)}
    figure, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels) + 1, 3.6), sharey=True, squeeze=False)
    for axis, panel in zip(axes[0], panels):
        for line in lines:
            series = sorted((lr, vals) for (p, ln, lr), vals in points.items() if p == panel and ln == line)
            if not series:
                continue
            bars = [error_bars(vals, bounded) for _, vals in series]
            axis.errorbar([lr for lr, _ in series], [m for m, _, _ in bars],
                          yerr=[[lo for _, lo, _ in bars], [hi for _, _, hi in bars]], marker="o", ms=4, lw=1.2,
                          capsize=3, color=colors[line], label=_label(line_keys, line))
        if failures.get(panel):
            axis.plot(failures[panel], [0.0] * len(failures[panel]), "x", color="black", ms=8, mew=2,
                      transform=axis.get_xaxis_transform(), clip_on=False, label="failed")
        axis.set_xscale("log")
        axis.set_xlabel(f"learning rate ({LR_KEY})")
        if panel_key:
            axis.set_title(f"{panel_key}={panel}")
        axis.grid(True, which="both", alpha=0.3)
    axes[0][0].set_ylabel(f"{summary.metric} ({summary.direction})")
    handles, labels = [], []
    for axis in axes[0]:
        for handle, label in zip(*axis.get_legend_handles_labels()):
            if label not in labels:
                handles.append(handle)
                labels.append(label)
    if handles:
        figure.legend(handles, labels, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    figure.suptitle(_title(summary))
    figure.tight_layout()
    return figure


def _plot_ranking(plt, summary: "SweepSummary"):  # noqa: ANN001, ANN202
    keys = config_keys(summary)
    bounded = _bounded(summary)
    groups: dict[tuple, list[float]] = defaultdict(list)
    for trial in summary.trials:
        value = trial.metric(summary.metric)
        if trial.status == OK and math.isfinite(value):
            groups[tuple(trial.overrides.get(k) for k in keys) if keys else (trial.name,)].append(value)
    sign = -1.0 if summary.direction == "maximize" else 1.0
    ranked = sorted(groups.items(), key=lambda item: sign * statistics.fmean(item[1]))[:25]
    bars = [error_bars(values, bounded) for _, values in ranked]
    labels = [(_label(keys, values) if keys else values[0]) + (f"  (n={len(v)})" if len(v) > 1 else "")
              for (values, v) in ranked]
    figure, axis = plt.subplots(figsize=(8, 0.35 * max(len(ranked), 3) + 1))
    axis.barh(labels[::-1], [m for m, _, _ in bars][::-1], color="tab:blue",
              xerr=[[lo for _, lo, _ in bars][::-1], [hi for _, _, hi in bars][::-1]], capsize=3)
    axis.set_xlabel(f"{summary.metric} ({summary.direction})")
    axis.set_title(_title(summary))
    figure.tight_layout()
    return figure


def _title(summary: "SweepSummary") -> str:
    return f"{summary.sweep_dir.name}: {summary.count(OK)} ok, {summary.count(FAILED)} failed"


