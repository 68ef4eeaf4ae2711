"""The leakage demonstration's summary: validation mAP50 against test mAP50, honest and LEAKY runs side by side.

``experiment=leakage_demo`` trains the same detector twice: once validating on the real
validation split, once validating on the training images (``data.val_split=train``, allowed
only because the experiment sets ``data.integrity.policy=warn``). The leaky run's validation
mAP50 looks far better than its test mAP50; the honest run's two numbers agree. This module reads
the multirun directory and writes ``leakage_summary.{md,csv,json,png}`` there. It runs as a Hydra
callback when the multirun ends; ``python -m trueval.sweep.leakage_demo <multirun_dir>`` rebuilds it.
"""

from __future__ import annotations

import csv
import json
import logging
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from trueval.sweep.study import StudyCallback, study_main, table_cell


from trueval.sweep.trials import collect_trials

log = logging.getLogger(__name__)

STEM = "leakage_summary"
VAL_KEY = "val/map50_best"
TEST_KEY = "test/map50"


@dataclass
class LeakageRow:
    job: str
    val_split: str
    leaky: bool
    val_map50: float | None  # the best validation mAP50: the number a write-up would report
    test_map50: float | None
    gap: float | None  # val - test: how much the validation number overstates the test number
    status: str
    dropped: int  # cross-split copies removed by policy drop (the run is honest after that)
    integrity: str  # the gate's summary lines, for a LEAKY run


def _number(metrics: dict[str, float], key: str) -> float | None:
    value = metrics.get(key)
    return None if value is None or math.isnan(value) else float(value)


def _payload(job_dir: Path) -> dict[str, Any]:
    try:
        data = json.loads((job_dir / "metrics.json").read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def collect(multirun_dir: str | Path) -> list[LeakageRow]:
    """One row per job. LEAKY: the gate found cross-split copies and the run kept them (policy warn);
    copies removed by policy drop leave an honest run."""
    root = Path(multirun_dir)
    rows = []
    for trial in collect_trials(root):
        payload = _payload(trial.job_dir)
        integrity = payload.get("integrity") or {}
        val_split = trial.lookup("data.val_split") or "val"
        found = bool(payload.get("leaky")) or trial.metrics.get("integrity/leaky", 0.0) > 0
        leaky = found and integrity.get("policy") != "drop"
        dropped = integrity.get("dropped") or 0
        val, test = _number(trial.metrics, VAL_KEY), _number(trial.metrics, TEST_KEY)
        rows.append(LeakageRow(
            job=trial.name, val_split=str(val_split), leaky=leaky, val_map50=val, test_map50=test,
            gap=None if val is None or test is None else val - test, status=trial.status,
            dropped=int(dropped) if isinstance(dropped, (int, float)) else 0,
            integrity="; ".join(str(s) for s in integrity.get("summary") or []) if leaky else "",
        ))
    # honest first, then LEAKY
    return sorted(rows, key=lambda r: (r.leaky, r.job))


def _cell(value: Any) -> str:
    return table_cell(value, ".3f", missing="-")


def markdown(rows: list[LeakageRow]) -> str:
    lines = [
        "# Leakage demonstration: validation mAP50 against test mAP50",
        "",
        "The same detector, trained twice. The LEAKY run validates on its own training images, so its",
        "validation mAP50 says nothing about new images; only the test mAP50 does.",
        "",
        "| validation split | integrity | val mAP50 (best) | test mAP50 | val - test | status | run |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        flag = "**LEAKY**" if r.leaky else ("honest" + (f" ({r.dropped} copies dropped)" if r.dropped else ""))
        lines.append(f"| {r.val_split} | {flag} | {_cell(r.val_map50)} | {_cell(r.test_map50)} | {_cell(r.gap)} | "
                     f"{r.status} | {r.job} |")
    leaky_notes = [f"- {r.job}: {r.integrity}" for r in rows if r.leaky and r.integrity]
    if leaky_notes:
        lines += ["", "Integrity gate:", *leaky_notes]
    return "\n".join(lines) + "\n"


def write_csv(rows: list[LeakageRow], path: Path) -> None:
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(asdict(rows[0]).keys()) if rows else ["job"])
        writer.writeheader()
        writer.writerows(asdict(r) for r in rows)


def plot(rows: list[LeakageRow], path: Path) -> None:
    """Grouped bars: validation and test mAP50 per run, LEAKY runs labelled."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from trueval.utils.plots import save_figure

    fig, ax = plt.subplots(figsize=(2.6 * max(2, len(rows)) + 1, 4))
    xs = range(len(rows))
    width = 0.38
    val = [r.val_map50 or 0.0 for r in rows]
    test = [r.test_map50 or 0.0 for r in rows]
    bars_val = ax.bar([x - width / 2 for x in xs], val, width, label="val mAP50 (best)", color="tab:blue")
    bars_test = ax.bar([x + width / 2 for x in xs], test, width, label="test mAP50", color="tab:orange")
    for bars in (bars_val, bars_test):
        ax.bar_label(bars, fmt="%.3f", fontsize=8)
    ax.set_xticks(list(xs))
    ax.set_xticklabels([f"{'LEAKY' if r.leaky else 'honest'}\nval = {r.val_split}" for r in rows])
    for x, r in zip(xs, rows):
        if r.leaky:
            ax.get_xticklabels()[x].set_color("red")
    ax.set_ylim(0, 1)
    ax.set_ylabel("mAP50")
    ax.set_title("Validation against test mAP50")
    ax.legend()
    ax.grid(axis="y", alpha=0.3)
    save_figure(fig, path, dpi=120)


def summarize(multirun_dir: str | Path) -> list[LeakageRow]:
    """Write leakage_summary.{md,csv,json,png} into ``multirun_dir``; returns the rows."""
    root = Path(multirun_dir)
    rows = collect(root)
    text = markdown(rows)
    (root / f"{STEM}.md").write_text(text)
    write_csv(rows, root / f"{STEM}.csv")
    (root / f"{STEM}.json").write_text(json.dumps([asdict(r) for r in rows], indent=2))
    plot(rows, root / f"{STEM}.png")
    log.info("leakage summary written to %s\n%s", root / f"{STEM}.md", text)
    return rows


class LeakageSummaryCallback(StudyCallback):
    """Hydra callback (``hydra.callbacks``): write the leakage summary when the multirun ends."""

    module, what = "trueval.sweep.leakage_demo", "leakage summary"


def main(argv: list[str] | None = None) -> int:
    return study_main("trueval.sweep.leakage_demo", summarize, markdown, argv)


if __name__ == "__main__":
    raise SystemExit(main())
