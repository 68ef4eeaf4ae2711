"""``summary.png``: the optimised metric against the learning rate, per optimizer and batch size.

One panel per batch size, one line per optimizer, the learning rate on a log axis. Trials that
repeat a configuration (seeds) are drawn as their mean with a standard-deviation bar; failed
trials as black crosses on the bottom edge. A sweep without learning rates gets a ranked bar chart.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING

from trueval.sweep.trials import FAILED, OK, TrialRecord

if TYPE_CHECKING:
    from trueval.sweep.summary import SweepSummary

LR_KEY, BATCH_KEY, OPTIMIZER_KEY = "optimizer.lr", "data.batch_size", "optimizer"


def _number(text: str | None) -> float | None:
    try:
        value = float(text) if text is not None else None
    except ValueError:
        return None
    return value if value is not None and math.isfinite(value) and value > 0 else None


def _batch_order(value: str) -> tuple[float, str]:
    number = _number(value)
    return (number if number is not None else math.inf, value)


def plot_summary(summary: "SweepSummary", path: Path) -> Path:
    """Draw the summary figure to ``path`` (PNG) and return the path."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    lrs = {id(t): _number(t.lookup(LR_KEY)) for t in summary.trials}
    if any(v is not None for v in lrs.values()):
        figure = _plot_against_lr(plt, summary, lrs)
    else:
        figure = _plot_ranking(plt, summary)
    figure.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(figure)
    return path


def _plot_against_lr(plt, summary: "SweepSummary", lrs: dict[int, float | None]):  # noqa: ANN001, ANN202
    # (batch size, optimizer, lr) -> finite metric values of the ok trials
    points: dict[tuple[str, str, float], list[float]] = defaultdict(list)
    failures: dict[str, list[float]] = defaultdict(list)
    for trial in summary.trials:
        lr = lrs[id(trial)]
        if lr is None:
            continue
        batch = trial.lookup(BATCH_KEY) or "?"
        value = trial.metric(summary.metric)
        if trial.status == OK and math.isfinite(value):
            points[(batch, trial.lookup(OPTIMIZER_KEY) or "default", lr)].append(value)
        elif trial.status == FAILED:
            failures[batch].append(lr)

    batches = sorted({b for b, _, _ in points} | set(failures), key=_batch_order) or ["?"]
    optimizers = sorted({o for _, o, _ in points})
    colors = {o: plt.get_cmap("tab10")(i % 10) for i, o in enumerate(optimizers)}
    figure, axes = plt.subplots(1, len(batches), figsize=(4.2 * len(batches) + 1, 3.6), sharey=True, squeeze=False)
    for axis, batch in zip(axes[0], batches):
        for optimizer in optimizers:
            series = sorted((lr, vals) for (b, o, lr), vals in points.items() if b == batch and o == optimizer)
            if not series:
                continue
            xs = [lr for lr, _ in series]
            means = [statistics.fmean(vals) for _, vals in series]
            stds = [statistics.stdev(vals) if len(vals) > 1 else 0.0 for _, vals in series]
            axis.errorbar(xs, means, yerr=stds, marker="o", ms=4, lw=1.2, capsize=3,
                          color=colors[optimizer], label=optimizer)
        if failures.get(batch):
            axis.plot(failures[batch], [0.0] * len(failures[batch]), "x", color="black", ms=8, mew=2,
                      transform=axis.get_xaxis_transform(), clip_on=False, label="failed")
        axis.set_xscale("log")
        axis.set_xlabel("learning rate (optimizer.lr)")
        axis.set_title(f"batch size {batch}")
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
    figure.suptitle(f"{summary.sweep_dir.name}: {summary.count(OK)} ok, {summary.count(FAILED)} failed")
    figure.tight_layout()
    return figure


def _plot_ranking(plt, summary: "SweepSummary"):  # noqa: ANN001, ANN202
    keys = summary.varying_keys or summary.override_keys

    def label(trial: TrialRecord) -> str:
        return ",".join(f"{k}={trial.overrides.get(k, '')}" for k in keys) or trial.name

    shown = [t for t in summary.trials if t.status == OK and math.isfinite(t.metric(summary.metric))][:25]
    figure, axis = plt.subplots(figsize=(8, 0.35 * max(len(shown), 3) + 1))
    axis.barh([label(t) for t in shown][::-1], [t.metric(summary.metric) for t in shown][::-1], color="tab:blue")
    axis.set_xlabel(f"{summary.metric} ({summary.direction})")
    axis.set_title(f"{summary.sweep_dir.name}: {summary.count(OK)} ok, {summary.count(FAILED)} failed")
    figure.tight_layout()
    return figure
