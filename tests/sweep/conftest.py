"""Fake sweep directories laid out like Hydra + trueval write them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import pytest
import yaml


def _write_job(
    sweep_dir: Path,
    name: str,
    overrides: list[str],
    *,
    num: int,
    status: str | None = "ok",
    metrics: dict[str, Any] | None = None,
    error: str | None = None,
    seconds: float = 1.0,
    choices: dict[str, str] | None = None,
    config: dict[str, Any] | None = None,
) -> Path:
    """One job directory; ``status=None`` leaves out metrics.json (a job still running)."""
    job = sweep_dir / name
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    hydra_cfg = {"hydra": {"job": {"num": num}, "runtime": {"choices": choices or {}}}}
    (job / ".hydra" / "hydra.yaml").write_text(yaml.safe_dump(hydra_cfg))
    (job / ".hydra" / "config.yaml").write_text(yaml.safe_dump(config or {}))
    if status is not None:
        payload = {"status": status, "error": error, "overrides": overrides, "seed": 0,
                   "metrics": metrics or {}, "wall_seconds": seconds, "versions": {}}
        (job / "metrics.json").write_text(json.dumps(payload))
    return job


@pytest.fixture
def make_sweep(tmp_path: Path) -> Callable[..., Path]:
    """Build a sweep dir with a multirun.yaml; jobs are added with ``write_job``."""

    def build(metric: str = "val/acc_best", direction: str | None = None) -> Path:
        sweep = tmp_path / "sweep"
        sweep.mkdir()
        sweeper = {"_target_": "x"} if direction is None else {"_target_": "x", "direction": direction}
        (sweep / "multirun.yaml").write_text(yaml.safe_dump({"optimized_metric": metric, "hydra": {"sweeper": sweeper}}))
        return sweep

    return build


@pytest.fixture(name="write_job")
def write_job_fixture() -> Callable[..., Path]:
    """The job-directory writer (see ``_write_job``)."""
    return _write_job
