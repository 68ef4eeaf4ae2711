"""What every entry point does around its task: the run record, error handling and exit codes.

- Bad input (``UserError``): one paragraph on stderr, ``metrics.json`` says ``failed`` with the
  error, exit code 2 (3 for a refused leak). No traceback: that is for bugs.
- A bug: ``metrics.json`` says ``failed``, the traceback goes to the job log, and it re-raises.
- In a multirun the failure is recorded and the job returns NaN, so the sweep goes on.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import traceback
from pathlib import Path
from typing import Any, Callable

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from trueval.core.errors import UserError
from trueval.utils.run_record import RunRecord

log = logging.getLogger("trueval")


def is_rank_zero() -> bool:
    """True in the process that owns the run directory (DDP's other ranks write nothing)."""
    return int(os.environ.get("LOCAL_RANK", 0)) == 0 and int(os.environ.get("NODE_RANK", 0)) == 0


def is_multirun() -> bool:
    try:
        return HydraConfig.get().mode == RunMode.MULTIRUN
    except ValueError:
        return False


def overrides() -> list[str]:
    try:
        return list(HydraConfig.get().overrides.task)
    except ValueError:
        return []


def run_task(task: Callable[[DictConfig, RunRecord | None], float], cfg: DictConfig) -> float:
    """Run ``task`` with its record; returns the optimised metric (NaN for a failed job)."""
    run_dir = Path(cfg.paths.output_dir)
    record = RunRecord(run_dir, overrides(), cfg.get("seed"), str(cfg.get("task_name", "run"))) if is_rank_zero() else None
    history = Path(cfg.paths.log_dir) / "history.jsonl"
    try:
        value = task(cfg, record)
    except UserError as exc:
        log.error("%s", exc)
        if record is not None:
            record.fail(exc)
            record.append_history(history)
        if is_multirun():
            return math.nan
        from trueval.utils.console import user_error

        user_error(f"{exc}\n\nrun directory: {run_dir}", title=type(exc).__name__)
        sys.exit(exc.exit_code)
    except (Exception, KeyboardInterrupt) as exc:
        log.error("run failed:\n%s", traceback.format_exc())
        if record is not None:
            record.fail(exc)
            record.append_history(history)
        if is_multirun() and not isinstance(exc, KeyboardInterrupt):
            return math.nan
        raise
    if record is not None:
        record.append_history(history)
    return value
