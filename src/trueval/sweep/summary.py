"""The summary of a sweep: ``summary.csv``, ``summary.md``, ``summary.png`` and a rich leaderboard.

One row per trial (override values as columns, final metrics, seconds, status ``ok``/``failed``/
``incomplete`` and the error), sorted by the optimised metric; failed trials come last, with their
error; test metrics with their 95% bootstrap intervals (``test/acc_ci95_lo``/``_hi``). When the sweep
repeats seeds (``seed=0,1,2``) or cross-validation folds (``data.fold=range(5)``) the trials that
differ only by those are also grouped (mean, standard deviation and 95% t-interval,
``summary_by_seed.csv``). The best configuration is tested against the runner-up on the same test
samples (trueval.sweep.significance). Works on partial sweeps.
"""

from __future__ import annotations

import csv
import io
import math
import os
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import yaml

from trueval.sweep.trials import FAILED, INCOMPLETE, OK, TrialRecord, collect_trials
from trueval.core.errors import UserError
from trueval.utils.resolvers import sweep_plan

MAXIMIZE, MINIMIZE = "maximize", "minimize"
DEFAULT_METRIC = "val/acc_best"
SEED_KEY = "seed"
# keys whose trials repeat one configuration: seeds, and the folds of a cross-validation
REPLICATE_KEYS = (SEED_KEY, "data.fold")
# Words that mark a metric that is better when lower, for sweeps that declare no direction.
_LOWER_IS_BETTER = ("loss", "error", "err", "mse", "mae", "rmse", "nll", "perplexity", "time", "seconds")


@dataclass
class SeedGroup:
    """Trials that differ only by their seed."""

    overrides: dict[str, str]
    n_ok: int
    n_total: int
    mean: dict[str, float]
    std: dict[str, float]
    #: 95% t-interval of the mean over the group's trials (trueval.stats.intervals)
    ci95: dict[str, list[float]] = field(default_factory=dict)
    members: list[TrialRecord] = field(default_factory=list)


@dataclass
class SweepSummary:
    """Everything the writers need, computed once."""

    sweep_dir: Path
    metric: str
    direction: str
    trials: list[TrialRecord]
    override_keys: list[str]
    varying_keys: list[str]
    metric_keys: list[str]
    groups: list[SeedGroup] = field(default_factory=list)
    #: test metrics with bootstrap intervals in some trial's metrics.json
    ci_keys: list[str] = field(default_factory=list)
    #: best configuration against the runner-up (trueval.sweep.significance.Comparison)
    comparison: Any = None

    def count(self, status: str) -> int:
        return sum(t.status == status for t in self.trials)

    @property
    def headline_metrics(self) -> list[str]:
        """The optimised metric and up to two test metrics, for the tables meant for reading."""
        others = [k for k in self.metric_keys if k != self.metric and k.startswith("test/")]
        return [self.metric, *others[:2]]


def infer_direction(metric: str) -> str:
    """``minimize`` for loss-like metric names, ``maximize`` otherwise."""
    name = metric.lower().replace("/", "_")
    return MINIMIZE if any(word in name.split("_") or name.endswith(word) for word in _LOWER_IS_BETTER) else MAXIMIZE


def read_objective(sweep_dir: Path) -> tuple[str | None, str | None]:
    """``optimized_metric`` and ``hydra.sweeper.direction`` from the sweep's ``multirun.yaml``."""
    path = sweep_dir / "multirun.yaml"
    if not path.is_file():
        return None, None
    try:
        cfg = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError:
        return None, None
    metric = cfg.get("optimized_metric")
    direction = ((cfg.get("hydra") or {}).get("sweeper") or {}).get("direction")
    if isinstance(direction, list):  # multi-objective: the first objective orders the table
        direction = direction[0] if direction else None
    metric = metric if isinstance(metric, str) and "${" not in metric else None
    direction = str(direction).lower() if direction in (MAXIMIZE, MINIMIZE) else None
    return metric, direction


def resolved_objective(trials: Sequence[TrialRecord]) -> str | None:
    """``optimized_metric`` as the jobs resolved it (config.yaml), when multirun.yaml holds an
    interpolation (its default follows the data's task)."""
    for trial in trials:
        path = trial.job_dir / "config.yaml"
        try:
            metric = (yaml.safe_load(path.read_text()) or {}).get("optimized_metric") if path.is_file() else None
        except (OSError, yaml.YAMLError):
            continue
        if isinstance(metric, str) and "${" not in metric:
            return metric
    return None


def build_summary(sweep_dir: str | os.PathLike[str], metric: str | None = None, direction: str | None = None) -> SweepSummary:
    """Collect the trials of ``sweep_dir`` and order them by ``metric``."""
    sweep_path = Path(sweep_dir)
    if not sweep_path.is_dir():
        raise UserError("sweep directory does not exist", path=str(sweep_path))
    trials = collect_trials(sweep_path)
    if not trials:
        raise UserError("no job directories (with metrics.json or .hydra/overrides.yaml) found", path=str(sweep_path))
    declared_metric, declared_direction = read_objective(sweep_path)
    declared_metric = declared_metric or resolved_objective(trials)
    metric = metric or declared_metric or DEFAULT_METRIC
    direction = direction or declared_direction or infer_direction(metric)
    if direction not in (MAXIMIZE, MINIMIZE):
        raise UserError(f"direction must be {MAXIMIZE} or {MINIMIZE}, got {direction!r}", key="direction")

    override_keys = sorted({key for t in trials for key in t.overrides})
    varying = [k for k in override_keys if len({t.overrides.get(k) for t in trials}) > 1]
    # in the order the user wrote them (the job names' order), then any other that happens to differ
    written = [k for k in sweep_plan(sweep_path)[0] if k in varying]
    varying = written + [k for k in varying if k not in written]
    metric_keys = sorted({key for t in trials for key in t.metrics} | {metric}, key=lambda k: (k != metric, k))
    ordered = sort_trials(trials, metric, direction)
    summary = SweepSummary(sweep_path, metric, direction, ordered, override_keys, varying, metric_keys)
    summary.groups = group_seeds(summary)
    summary.ci_keys = sorted({key for t in trials for key in t.ci95})
    from trueval.sweep.significance import compare_best

    summary.comparison = compare_best(summary)
    return summary


def sort_trials(trials: Iterable[TrialRecord], metric: str, direction: str) -> list[TrialRecord]:
    """Best first; trials without a finite metric after, then incomplete, then failed ones."""
    sign = -1.0 if direction == MAXIMIZE else 1.0
    status_rank = {OK: 0, INCOMPLETE: 1, FAILED: 2}

    def key(trial: TrialRecord) -> tuple[int, int, float, str]:
        value = trial.metric(metric)
        finite = math.isfinite(value) and trial.status == OK
        return (status_rank[trial.status], 0 if finite else 1, sign * value if finite else 0.0, trial.name)

    return sorted(trials, key=key)


def group_seeds(summary: SweepSummary) -> list[SeedGroup]:
    """Mean, standard deviation and 95% t-interval over seeds and folds, when the sweep varies them."""
    from trueval.stats.intervals import t_interval

    if not set(REPLICATE_KEYS) & set(summary.varying_keys):
        return []
    keys = _group_keys(summary)
    buckets: dict[tuple[str | None, ...], list[TrialRecord]] = {}
    for trial in summary.trials:
        buckets.setdefault(tuple(trial.overrides.get(k) for k in keys), []).append(trial)
    groups = []
    for values, members in buckets.items():
        ok = [t for t in members if t.status == OK]
        mean, std, ci95 = {}, {}, {}
        for metric in summary.metric_keys:
            numbers = [t.metric(metric) for t in ok if math.isfinite(t.metric(metric))]
            mean[metric] = statistics.fmean(numbers) if numbers else math.nan
            std[metric] = statistics.stdev(numbers) if len(numbers) > 1 else math.nan
            ci95[metric] = t_interval(numbers)
        overrides = {k: v for k, v in zip(keys, values) if v is not None}
        groups.append(SeedGroup(overrides, len(ok), len(members), mean, std, ci95, members))
    sign = -1.0 if summary.direction == MAXIMIZE else 1.0

    def key(group: SeedGroup) -> tuple[bool, float]:
        value = group.mean[summary.metric]
        return (not math.isfinite(value), sign * value if math.isfinite(value) else 0.0)

    return sorted(groups, key=key)


def _group_keys(summary: SweepSummary) -> list[str]:
    """The keys that name a configuration: every varying key but seeds and folds."""
    return [k for k in summary.varying_keys if k not in REPLICATE_KEYS]


def _replicates(summary: SweepSummary) -> str:
    names = {SEED_KEY: "seeds", "data.fold": "folds"}
    return " and ".join(names[k] for k in REPLICATE_KEYS if k in summary.varying_keys)


# ----------------------------------------------------------------------------------------- writers


def _fmt(value: float | None, digits: int = 4) -> str:
    if value is None:
        return ""
    if math.isnan(value):
        return "nan"
    return f"{value:.{digits}g}" if abs(value) < 1e-3 and value != 0 else f"{value:.{digits}f}"


def _with_ci(value: float | None, ci: Sequence[float] | None) -> str:
    """``0.9630 [0.9410, 0.9810]``: a value with its bootstrap interval when it has one."""
    return _fmt(value) + (f" [{_fmt(ci[0])}, {_fmt(ci[1])}]" if value is not None and ci else "")


def _mean_std_ci(group: SeedGroup, metric: str) -> str:
    lo, hi = group.ci95.get(metric, (math.nan, math.nan))
    ci = f" [{_fmt(lo)}, {_fmt(hi)}]" if math.isfinite(lo) else ""
    return f"{_fmt(group.mean[metric])} ± {_fmt(group.std[metric])}{ci}"


def summary_rows(summary: SweepSummary) -> list[dict[str, Any]]:
    """The rows of ``summary.csv``: rank, job, status, overrides, metrics, seconds, error."""
    rows = []
    for rank, trial in enumerate(summary.trials, start=1):
        row: dict[str, Any] = {"rank": rank, "job": trial.name, "status": trial.status}
        row.update({key: trial.overrides.get(key, "") for key in summary.override_keys})
        row.update({key: trial.metrics.get(key, "") for key in summary.metric_keys})
        for key in summary.ci_keys:
            lo, hi = trial.ci95.get(key, ("", ""))
            row.update({f"{key}_ci95_lo": lo, f"{key}_ci95_hi": hi})
        row["seconds"] = "" if trial.seconds is None else round(trial.seconds, 2)
        row["error"] = trial.error or ""
        rows.append(row)
    return rows


def _csv_text(header: Sequence[str], rows: Iterable[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(header), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def render_csv(summary: SweepSummary) -> str:
    ci = [f"{key}_ci95_{end}" for key in summary.ci_keys for end in ("lo", "hi")]
    header = ["rank", "job", "status", *summary.override_keys, *summary.metric_keys, *ci, "seconds", "error"]
    return _csv_text(header, summary_rows(summary))


def render_seed_csv(summary: SweepSummary) -> str:
    keys = _group_keys(summary)
    header = [*keys, "n_ok", "n_total"]
    for metric in summary.metric_keys:
        header += [f"{metric} mean", f"{metric} std", f"{metric} ci95_lo", f"{metric} ci95_hi"]
    rows = []
    for group in summary.groups:
        row: dict[str, Any] = {k: group.overrides.get(k, "") for k in keys}
        row.update(n_ok=group.n_ok, n_total=group.n_total)
        for metric in summary.metric_keys:
            row[f"{metric} mean"] = group.mean[metric]
            row[f"{metric} std"] = group.std[metric]
            row[f"{metric} ci95_lo"], row[f"{metric} ci95_hi"] = group.ci95.get(metric, (math.nan, math.nan))
        rows.append(row)
    return _csv_text(header, rows)


def _md_table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    def cell(text: str) -> str:
        return str(text).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(cell(h) for h in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _shown_keys(summary: SweepSummary) -> list[str]:
    return summary.varying_keys or summary.override_keys


def render_markdown(summary: SweepSummary) -> str:
    keys = _shown_keys(summary)
    metrics = summary.headline_metrics
    out = [
        f"# Sweep summary: `{summary.sweep_dir}`",
        "",
        f"Ordered by **{summary.metric}** ({summary.direction}). "
        f"{len(summary.trials)} trials: {summary.count(OK)} ok, {summary.count(FAILED)} failed, "
        f"{summary.count(INCOMPLETE)} incomplete.",
    ]
    fixed = [k for k in summary.override_keys if k not in keys]
    if fixed:
        first = summary.trials[0].overrides
        out += ["", "Same in every trial: " + ", ".join(f"`{k}={first.get(k, '')}`" for k in fixed)]
    rows = []
    for rank, trial in enumerate(summary.trials, start=1):
        values = [_with_ci(trial.metrics.get(m), trial.ci95.get(m)) for m in metrics]
        seconds = "" if trial.seconds is None else f"{trial.seconds:.1f}"
        rows.append([str(rank), trial.status, *(trial.overrides.get(k, "") for k in keys), *values, seconds])
    out += ["", _md_table(["rank", "status", *keys, *metrics, "seconds"], rows)]
    if summary.groups:
        group_keys = _group_keys(summary)
        group_rows = [
            [*(g.overrides.get(k, "") for k in group_keys), f"{g.n_ok}/{g.n_total}",
             *(_mean_std_ci(g, m) for m in metrics)]
            for g in summary.groups
        ]
        out += ["", f"## Mean ± standard deviation [95% t-interval of the mean] over {_replicates(summary)}", "",
                _md_table([*group_keys, "trials ok", *metrics], group_rows)]
    if summary.comparison is not None:
        out += ["", "## Best against runner-up (paired, same test samples)", "", summary.comparison.sentence()]
    failed = [t for t in summary.trials if t.status == FAILED]
    if failed:
        out += ["", "## Failed trials", ""]
        out += [f"- `{t.name}`: {t.error or 'no error recorded'}" for t in failed]
    incomplete = [t for t in summary.trials if t.status == INCOMPLETE]
    if incomplete:
        out += ["", "## Incomplete trials (running, or killed before writing metrics.json)", ""]
        out += [f"- `{t.name}`" + (f": {t.error}" if t.error else "") for t in incomplete]
    return "\n".join(out) + "\n"


def print_leaderboard(summary: SweepSummary, console: Any = None, limit: int = 30) -> None:
    """Print the ranking as a rich table (best first, failed trials with their error)."""
    from rich.console import Console
    from rich.table import Table

    from trueval.utils.console import print_whole

    console = console or Console()
    keys = _shown_keys(summary)
    metrics = summary.headline_metrics
    table = Table(title=f"Sweep leaderboard: {summary.metric} ({summary.direction})", title_justify="left")
    for column in ["#", "status", *keys, *metrics, "s"]:
        table.add_column(column, overflow="fold", min_width=min(len(column), 12))
    table.add_column("error", no_wrap=True, overflow="ellipsis", max_width=40)
    style = {OK: "green", FAILED: "red", INCOMPLETE: "yellow"}
    for rank, trial in enumerate(summary.trials[:limit], start=1):
        error = trial.error.strip().splitlines()[-1] if trial.error and trial.error.strip() else ""
        table.add_row(
            str(rank), f"[{style[trial.status]}]{trial.status}[/]",
            *(trial.overrides.get(k, "") for k in keys),
            *(_fmt(trial.metrics.get(m)) for m in metrics),
            "" if trial.seconds is None else f"{trial.seconds:.0f}", error,
        )
    print_whole(table, console)
    fixed = [k for k in summary.override_keys if k not in keys]
    if fixed:  # the constants of the sweep, once, instead of in every job name
        first = summary.trials[0].overrides
        console.print("same in every trial: " + " ".join(f"{k}={first.get(k, '')}" for k in fixed),
                      soft_wrap=True, highlight=False)
    if len(summary.trials) > limit:
        console.print(f"... {len(summary.trials) - limit} more trials in summary.csv")
    if summary.groups:
        group_keys = _group_keys(summary)
        grouped = Table(title=f"Mean ± std [95% t-interval] over {_replicates(summary)}", title_justify="left")
        for column in [*group_keys, "trials ok", *metrics]:
            grouped.add_column(column)
        for g in summary.groups[:limit]:
            grouped.add_row(*(g.overrides.get(k, "") for k in group_keys), f"{g.n_ok}/{g.n_total}",
                            *(_mean_std_ci(g, m) for m in metrics))
        print_whole(grouped, console)
    if summary.comparison is not None:
        console.print(summary.comparison.sentence().replace("`", ""), highlight=False, markup=False)


def _write_atomic(path: Path, text: str) -> None:
    """Write via a temporary file so a reader never sees half a summary."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_summary(summary: SweepSummary, plot: bool = True) -> dict[str, Path]:
    """Write summary.csv, summary.md, summary.png (and summary_by_seed.csv) into the sweep dir."""
    written = {"csv": summary.sweep_dir / "summary.csv", "md": summary.sweep_dir / "summary.md"}
    _write_atomic(written["csv"], render_csv(summary))
    _write_atomic(written["md"], render_markdown(summary))
    if summary.groups:
        written["by_seed"] = summary.sweep_dir / "summary_by_seed.csv"
        _write_atomic(written["by_seed"], render_seed_csv(summary))
    if plot:
        from trueval.sweep.plot import plot_summary

        written["png"] = plot_summary(summary, summary.sweep_dir / "summary.png")
    return written


def summarize_sweep(
    sweep_dir: str | os.PathLike[str],
    metric: str | None = None,
    direction: str | None = None,
    plot: bool = True,
    print_table: bool = True,
) -> SweepSummary:
    """Build, write and (optionally) print the summary of one sweep directory."""
    summary = build_summary(sweep_dir, metric=metric, direction=direction)
    write_summary(summary, plot=plot)
    if print_table:
        print_leaderboard(summary)
    return summary
