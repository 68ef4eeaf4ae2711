"""The part of the quality report every training run carries: class balance and within-split repeats.

Both are known once the integrity gate ran (targets of the gated splits, the gate's within-split
counts), so they cost nothing; they go to the run's log and to ``metrics.json`` under ``quality``.
"""

from __future__ import annotations

import logging
from typing import Any

from trueval.quality.balance import balance_summary, class_counts

log = logging.getLogger("trueval")


def data_quality_summary(dm: Any) -> dict[str, Any]:
    """{"balance": {...}, "within_split_duplicates": {split: count}} from what the DataModule holds."""
    out: dict[str, Any] = {}
    names = list(getattr(dm, "class_names", []) or [])
    sets = getattr(dm, "sets", None) or {}
    report = getattr(dm, "report", None)
    if getattr(dm, "task", "classification") == "detection" and isinstance(report, dict) and "splits" in report:
        stats = report["splits"]
        out["balance"] = balance_summary({s: [stats[s]["per_class"][c]["boxes"] for c in names] for s in stats}, names)
        out["balance"]["unit"] = "boxes"
    elif names and sets and all(hasattr(ss, "targets") for ss in sets.values()):
        out["balance"] = balance_summary(class_counts({s: ss.targets for s, ss in sets.items()}, len(names)), names)
        out["balance"]["unit"] = "images"
    leak = getattr(dm, "leak_report", None)
    if leak is not None:
        out["within_split_duplicates"] = {s: int(n) for s, n in (getattr(leak, "within_by_split", {}) or {}).items()}
    return out


def log_data_quality(dm: Any, record: Any | None) -> None:
    """Log the summary and add it to the run record (metrics.json key ``quality``)."""
    summary = data_quality_summary(dm)
    if not summary:
        return
    balance = summary.get("balance")
    if balance:
        ratio = balance["imbalance_ratio"]
        rare = balance["underrepresented"]
        log.info("class balance (train %s): imbalance ratio %s%s", balance["unit"],
                 "n/a (a class is missing)" if ratio is None else f"{ratio:.1f}",
                 f"; underrepresented: {', '.join(map(str, rare))} (remedies: loss.class_weights=balanced, "
                 "data.sampler=balanced, loss.name=focal; details: quality.py)" if rare else "")
    within = summary.get("within_split_duplicates")
    if within:
        log.info("within-split repeats: %s", ", ".join(f"{s} {n}" for s, n in within.items()))
    if record is not None:
        record.update(quality=summary)
