"""The audit task: run the integrity gate on a dataset's splits without training.

Exit codes (the README's table): 0 no cross-split leak; 1 a leak was found; 2 a usage or data
error (one paragraph naming the key or file); 4 the audit itself crashed (a bug: traceback in the
log). A crash must never exit 1, the code that means "leak found": Python's own exit code for an
uncaught exception is 1, so every unexpected exception is turned into ``AuditCrash`` here.
"""

from __future__ import annotations

import logging
import sys
import traceback
from pathlib import Path

from omegaconf import DictConfig

from trueval.core.errors import UserError
from trueval.tasks.builders import build_datamodule
from trueval.utils.run_record import RunRecord

log = logging.getLogger("trueval")

EXIT_CLEAN, EXIT_LEAK, EXIT_CRASH = 0, 1, 4


class AuditCrash(UserError):
    """An unexpected exception inside the audit: reported with its own exit code, never 1 (leak)."""

    exit_code = EXIT_CRASH
    title = "the audit crashed"


def audit(cfg: DictConfig, record: RunRecord | None) -> float:
    try:
        leaky = _audit(cfg, record)
    except UserError:
        raise
    except Exception as exc:  # a bug: keep the traceback, but never exit with the leak code
        log.error("audit crashed:\n%s", traceback.format_exc())
        raise AuditCrash(f"the audit crashed ({type(exc).__name__}: {exc}). This is a bug in trueval, not a "
                         f"finding about the data; the traceback is in the run's log.") from exc
    if leaky:
        sys.exit(EXIT_LEAK)
    return 0.0


def _audit(cfg: DictConfig, record: RunRecord | None) -> bool:
    from trueval.integrity import gate_step, print_report

    run_dir = Path(cfg.paths.output_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    dm = build_datamodule(cfg.data, lightning=False)  # the audit imports neither Lightning nor torch
    report = gate_step(settings=dm.integrity_settings(), enforce=False, pixels=False, **dm.gate_inputs()).report
    report.write(run_dir / "leak_report.json")
    print_report(report)
    d = report.to_dict()
    if record is not None:
        record.update(leaky=bool(report.has_leak), checks=report.checks)
        record.finish({"audit/cross_split_pairs": float(len(d["pairs"])),
                       "audit/within_split_duplicates": float(d["within_split_duplicates"]),
                       "audit/seconds": float(d["seconds"])})
    print(f"leak report: {run_dir / 'leak_report.json'}")
    return report.has_leak
