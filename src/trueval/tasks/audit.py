"""The audit task: run the integrity gate on a dataset's splits without training.

Exit code 0 when no cross-split leak is found, 1 when one is, 2 on a usage or data error.
"""

from __future__ import annotations

import sys
from pathlib import Path

from omegaconf import DictConfig

from trueval.tasks.builders import build_datamodule
from trueval.utils.run_record import RunRecord


def audit(cfg: DictConfig, record: RunRecord | None) -> float:
    from trueval.integrity import print_report, run_gate

    run_dir = Path(cfg.paths.output_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    dm = build_datamodule(cfg.data)
    sets = dm.sample_sets()
    settings = dm.integrity_settings()
    cache = Path(cfg.paths.cache_dir) / "integrity" if cfg.data.integrity.get("cache", True) else None
    report = run_gate(sets, settings, cache_dir=cache, dataset=dm.name)
    report.write(run_dir / "leak_report.json")
    print_report(report)
    d = report.to_dict()
    if record is not None:
        record.update(leaky=bool(report.has_leak))
        record.finish({"audit/cross_split_pairs": float(len(d["pairs"])),
                       "audit/within_split_duplicates": float(d["within_split_duplicates"]),
                       "audit/seconds": float(d["seconds"])})
    print(f"leak report: {run_dir / 'leak_report.json'}")
    if report.has_leak:
        sys.exit(1)
    return 0.0
