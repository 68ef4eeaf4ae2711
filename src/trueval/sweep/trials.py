"""Read the job directories of a sweep into one record per trial.

A job directory is any directory under the sweep directory holding ``metrics.json`` or
``.hydra/overrides.yaml``. A job without ``metrics.json`` (still running, or killed) or whose
status is neither ``ok`` nor ``failed`` is ``incomplete``, so a partial sweep can be summarised.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

OK, FAILED, INCOMPLETE = "ok", "failed", "incomplete"


@dataclass
class TrialRecord:
    """One job of a sweep as the summary sees it."""

    job_dir: Path
    name: str
    overrides: dict[str, str]
    status: str
    error: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    seconds: float | None = None
    num: int | None = None
    #: config-group choices of the job (``optimizer: adam``), from ``.hydra/hydra.yaml``
    choices: dict[str, str] = field(default_factory=dict)
    #: 95% bootstrap intervals of the test metrics (``metrics.json`` "ci95"): {metric: [lo, hi]}
    ci95: dict[str, list[float]] = field(default_factory=dict)
    #: the job's composed config (unresolved), read lazily for values that were not overridden
    _config: dict[str, Any] | None = None

    def metric(self, key: str) -> float:
        """The metric's value, NaN when absent."""
        value = self.metrics.get(key)
        return float("nan") if value is None else value

    def lookup(self, key: str) -> str | None:
        """A hyper-parameter of this trial: its override, else its group choice, else its config."""
        if key in self.overrides:
            return self.overrides[key]
        if key in self.choices:
            return self.choices[key]
        node: Any = self._load_config()
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                return None
            node = node[part]
        if isinstance(node, dict):  # a config group without its choice recorded: trueval groups carry a name
            node = node.get("name")
        return None if node is None or isinstance(node, (dict, list)) else str(node)

    def _load_config(self) -> dict[str, Any]:
        if self._config is None:
            self._config = (_read_yaml(self.job_dir / ".hydra" / "config.yaml")
                            or _read_yaml(self.job_dir / "config.yaml") or {})
        return self._config


def split_override(override: str) -> tuple[str, str]:
    """``+optimizer.lr=0.1`` -> (``optimizer.lr``, ``0.1``); ``~key`` -> (``key``, ``~``)."""
    text = override.strip()
    if text.startswith("~"):
        return text[1:].split("=", 1)[0], "~"
    key, _, value = text.partition("=")
    return key.lstrip("+"), value


def find_job_dirs(sweep_dir: Path) -> list[Path]:
    """Job directories under ``sweep_dir`` (any depth), skipping hidden folders like ``.submitit``."""
    found: set[Path] = set()
    for marker in ("metrics.json", ".hydra/overrides.yaml"):
        for path in sweep_dir.rglob(marker):
            job_dir = path.parent.parent if marker.startswith(".hydra") else path.parent
            relative = job_dir.relative_to(sweep_dir).parts
            if job_dir != sweep_dir and not any(part.startswith(".") for part in relative):
                found.add(job_dir)
    return sorted(found)


def read_trial(job_dir: Path, sweep_dir: Path) -> TrialRecord:
    """Build the record of one job directory; never raises on a half-written job."""
    hydra_cfg = (_read_yaml(job_dir / ".hydra" / "hydra.yaml") or {}).get("hydra", {}) or {}
    raw_overrides = _read_yaml(job_dir / ".hydra" / "overrides.yaml")
    payload, problem = _read_metrics(job_dir / "metrics.json")
    if not isinstance(raw_overrides, list):
        raw_overrides = list(payload.get("overrides") or [])
    overrides = dict(split_override(str(item)) for item in raw_overrides)

    status = payload.get("status")
    if status not in (OK, FAILED):
        status = INCOMPLETE
    error = payload.get("error") or problem
    job = hydra_cfg.get("job", {}) or {}
    num = job.get("num")
    return TrialRecord(
        job_dir=job_dir,
        name=str(job_dir.relative_to(sweep_dir)),
        overrides=overrides,
        status=status,
        error=None if error is None else str(error),
        metrics=_numeric_metrics(payload.get("metrics") or {}),
        seconds=_as_float(payload.get("wall_seconds")),
        num=int(num) if isinstance(num, int) else None,
        choices={str(k): str(v) for k, v in ((hydra_cfg.get("runtime") or {}).get("choices") or {}).items()},
        ci95=_intervals(payload.get("ci95")),
    )


def collect_trials(sweep_dir: Path) -> list[TrialRecord]:
    """All trials of a sweep directory, in job-number order."""
    records = [read_trial(job_dir, sweep_dir) for job_dir in find_job_dirs(sweep_dir)]
    return sorted(records, key=lambda r: (r.num is None, r.num if r.num is not None else 0, r.name))


def _read_metrics(path: Path) -> tuple[dict[str, Any], str | None]:
    if not path.is_file():
        return {}, None
    try:
        payload = json.loads(path.read_text())
    except (OSError, ValueError) as exc:  # a job killed while writing leaves a truncated file
        return {}, f"unreadable metrics.json: {exc}"
    return (payload, None) if isinstance(payload, dict) else ({}, "metrics.json is not an object")


def _read_yaml(path: Path) -> Any:
    if not path.is_file():
        return None
    try:
        return yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return None


def _as_float(value: Any) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


def _intervals(ci95: Any) -> dict[str, list[float]]:
    """The well-formed [lo, hi] pairs of a metrics.json "ci95" entry."""
    out = {}
    for key, pair in (ci95 or {}).items() if isinstance(ci95, dict) else ():
        values = [_as_float(v) for v in pair] if isinstance(pair, list) and len(pair) == 2 else []
        if len(values) == 2 and None not in values:
            out[str(key)] = values
    return out


def _numeric_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    """Numeric metrics as floats (null -> NaN); non-numeric entries are left out."""
    out = {}
    for key, value in metrics.items():
        number = _as_float(value)
        if value is None or number is not None:
            out[str(key)] = math.nan if number is None else number
    return out
