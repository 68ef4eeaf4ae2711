"""Which run directory a run writes into: a fresh one, or the one it continues (``resume=``).

``resume=auto`` continues the newest run under ``logs/<task>/runs`` that was started with the
same overrides (``resume`` itself aside): an unfinished one is resumed from its ``last.ckpt``,
a finished one is reported and not trained again, so a requeued job can repeat its command line.
With no such run it starts a fresh one. ``resume=<run dir>`` continues that directory.

Used by ``hydra.run.dir`` through the ``trueval.run_dir`` resolver: the run directory has to be
known before Hydra creates it, so the choice cannot wait for the task.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Iterable

from trueval.utils.run_record import is_alive_here, read_record

log = logging.getLogger("trueval")

RESUME_KEY = "resume"


def comparable_overrides(overrides: Iterable[Any]) -> list[str]:
    """The overrides that define a run: ``resume=...`` and ``ckpt_path=...`` do not."""
    return sorted(str(o) for o in overrides
                  if not str(o).lstrip("+~").startswith((f"{RESUME_KEY}=", "ckpt_path=")))


def is_continuing(resume: Any) -> bool:
    return resume not in (None, "", False, "null", "none", "None")


def find_latest_run(runs_dir: Path, overrides: Iterable[Any]) -> Path | None:
    """The newest run directory under ``runs_dir`` started with ``overrides`` (resume aside)."""
    wanted = comparable_overrides(overrides)
    if not runs_dir.is_dir():
        return None
    # directory names start with the start time (hydra.run.dir): the newest sorts last
    for run_dir in sorted((p for p in runs_dir.iterdir() if p.is_dir()), reverse=True):
        record = read_record(run_dir)
        if record is None or comparable_overrides(record.get("overrides") or []) != wanted:
            continue
        if is_alive_here(record):
            log.warning("resume=auto: %s is still running (pid %s); not taking it over", run_dir, record.get("pid"))
            continue
        return run_dir
    return None


def run_dir(resume: Any, overrides: Any, runs_dir: str, fresh_dir: str) -> str:
    """The ``trueval.run_dir`` resolver: ``fresh_dir`` unless ``resume`` names a run to continue."""
    if not is_continuing(resume):
        return fresh_dir
    if str(resume) == "auto":
        found = find_latest_run(Path(runs_dir), list(overrides or []))
        if found is None:
            log.info("resume=auto: no earlier run with these overrides under %s; starting a new run", runs_dir)
            return fresh_dir
        return str(found)
    path = Path(str(resume)).expanduser()
    # a directory that is no run is refused by the runner (a UserError naming `resume`), in a fresh
    # directory rather than in a made-up one
    return str(path) if read_record(path) is not None else fresh_dir
