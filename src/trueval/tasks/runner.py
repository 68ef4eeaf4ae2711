"""What every entry point does around its task: the run record, error handling and exit codes.

- Bad input (``UserError``): one paragraph on stderr, ``metrics.json`` says ``failed`` with the
  error, exit code 2 (3 for a refused leak). No traceback: that is for bugs.
- A bug: ``metrics.json`` says ``failed``, the traceback goes to the job log, and it re-raises.
- In a multirun the failure is recorded and the job returns NaN, so the sweep goes on.
- A signal (SIGTERM from a scheduler, Ctrl-C): the run stops at a step boundary, ``metrics.json``
  says ``interrupted`` with the signal, the history line is written, exit code 128+N (143, 130);
  in a multirun too (the sweep stops; re-running it continues where it stopped).
- Outputs that cannot be written (full disk, read-only directory): one line naming the file,
  ``metrics.json`` never says ``ok`` (``failed`` when it can still be written), exit code 2.
- Continuing a run directory (``resume=``, or any job of a re-run sweep): a run that finished
  ``ok`` is not run again, its recorded metric is returned; an unfinished one is resumed by the task.
"""

from __future__ import annotations

import errno
import logging
import math
import os
import signal
import sys
import traceback
from pathlib import Path
from typing import Any, Callable

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from trueval.utils.signals import SignalGuard, interruption_signal
from trueval.core.errors import UserError
from trueval.utils.run_dirs import comparable_overrides, is_continuing
from trueval.utils.run_record import OutputNotWritten, RunRecord, check_appendable, read_record

# errors of the file system rather than of the program: reported in one line, not as a traceback
OUTPUT_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOTDIR}

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


def continues_run_dir(cfg: DictConfig) -> bool:
    """Whether this run continues whatever its directory holds: ``resume=`` set, or a sweep job."""
    return is_continuing(cfg.get("resume")) or is_multirun()


def _finished_value(cfg: DictConfig, run_dir: Path) -> float | None:
    """The recorded metric when ``run_dir`` holds a run that finished ok and is to be continued."""
    if not continues_run_dir(cfg):
        return None
    previous = read_record(run_dir)
    if previous is None:
        if is_continuing(cfg.get("resume")) and str(cfg.get("resume")) != "auto":
            raise UserError(f"{cfg.resume} is not a run directory (it has no metrics.json); resume=auto finds the "
                            "newest run started with the same overrides", key="resume")
        return None
    before, now = set(comparable_overrides(previous.get("overrides") or [])), set(comparable_overrides(overrides()))
    if is_continuing(cfg.get("resume")) and before != now:
        raise UserError(f"{run_dir} was started with other overrides: {sorted(before - now) or 'none'} there, "
                        f"{sorted(now - before) or 'none'} here. Resume it with the overrides it was started with "
                        "(or start a new run without `resume`)", key="resume")
    if previous.get("status") != "ok":
        return None
    value = (previous.get("metrics") or {}).get(str(cfg.get("optimized_metric")))
    log.info("%s already finished (status ok): not run again", run_dir)
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _output_error(exc: BaseException) -> OutputNotWritten | None:
    """The file-system error behind ``exc`` (anywhere in its chain), as a one-line user error."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OutputNotWritten):
            return exc
        if isinstance(exc, OSError) and exc.errno in OUTPUT_ERRNOS:
            return OutputNotWritten(exc.filename or "an output file", exc)
        exc = exc.__cause__ or exc.__context__
    return None


def _record_end(record: RunRecord | None, history: Path, end: Callable[[RunRecord], None]) -> None:
    """Write the final record and the history line; when even that fails, say so in the log."""
    if record is None:
        return
    try:
        end(record)
        record.append_history(history)
    except OutputNotWritten as exc:
        log.error("%s", exc)


def run_task(task: Callable[[DictConfig, RunRecord | None], float], cfg: DictConfig) -> float:
    """Run ``task`` with its record; returns the optimised metric (NaN for a failed job)."""
    run_dir = Path(cfg.paths.output_dir)
    history = Path(cfg.paths.log_dir) / "history.jsonl"
    record: RunRecord | None = None
    with SignalGuard() as guard:
        try:
            finished = _finished_value(cfg, run_dir)
            if finished is not None:
                return finished
            if is_rank_zero():
                record = RunRecord(run_dir, overrides(), cfg.get("seed"), str(cfg.get("task_name", "run")))
                check_appendable(history)  # a read-only log directory fails now, not after training
            value = task(cfg, record)
            if record is not None:
                record.append_history(history)
            return value
        except BaseException as exc:  # noqa: BLE001 - each kind is handled below or re-raised
            signum = interruption_signal(exc, guard)
            if signum is not None:
                _record_end(record, history, lambda r: r.interrupt(signum))
                if is_multirun():
                    how = "run the sweep again with hydra.sweep.dir=" + str(run_dir.parent)
                elif "resume" in cfg:  # training continues in its run directory
                    how = f"continue it with resume={run_dir} (or resume=auto)"
                else:  # an audit, an evaluation: nothing to continue (the gate's caches keep what was done)
                    how = "run the same command again"
                log.error("interrupted by %s; run directory %s: %s", signal.Signals(signum).name, run_dir, how)
                raise SystemExit(128 + signum) from None
            user_exc = exc if isinstance(exc, UserError) else _output_error(exc)
            if user_exc is not None:
                _record_end(record, history, lambda r: r.fail(user_exc))
                if is_multirun():  # a sweep goes on: its log is where the message is read
                    log.error("%s", user_exc)
                    return math.nan
                from trueval.utils.console import log_to_files, user_error

                log_to_files(log, logging.ERROR, str(user_exc))  # the console gets the panel below
                user_error(f"{user_exc}\n\nrun directory: {run_dir}", title=user_exc.title)
                sys.exit(user_exc.exit_code)
            if not isinstance(exc, (Exception, KeyboardInterrupt)):
                raise  # SystemExit and the like: not a failure of the run
            log.error("run failed:\n%s", traceback.format_exc())
            _record_end(record, history, lambda r: r.fail(exc))
            if is_multirun() and not isinstance(exc, KeyboardInterrupt):
                return math.nan
            raise
