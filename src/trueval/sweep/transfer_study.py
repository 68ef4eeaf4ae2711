"""The transfer-study table: one row per variant of a transfer multirun, baselines included.

Reads each job's ``metrics.json`` and ``.hydra/config.yaml`` (its ``transfer.variant``) and the
baselines' ``baselines/<method>/metrics.json``, and writes ``transfer_study.csv``, ``.md`` and
``.png`` (test accuracy per variant) into the multirun directory.
"""

from __future__ import annotations

import csv
import json
import logging
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from trueval.sweep.study import study_main, table_cell

log = logging.getLogger(__name__)

TABLE_STEM = "transfer_study"
BASELINES_DIR = "baselines"
# the order of the table (the source network last: it is scored on other classes)
ORDER = ("scratch", "linear_probe", "finetune_last_stage", "finetune_all", "finetune_all_layer_decay",
         "logreg_pixels", "svm_pixels", "logreg_features", "svm_features", "pretrain")


@dataclass
class TransferRow:
    variant: str
    test_acc: float | None
    ci95_low: float | None
    ci95_high: float | None
    test_f1_macro: float | None
    train_samples: int | None
    seconds: float | None
    status: str
    job: str


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _row(variant: str, record_path: Path, root: Path, train_samples: int | None = None) -> TransferRow:
    try:
        record = json.loads(record_path.read_text()) if record_path.is_file() else {}
    except json.JSONDecodeError:
        record = {"status": "unreadable metrics.json"}
    metrics = record.get("metrics") or {}
    interval = (record.get("ci95") or {}).get("test/acc") or [None, None]
    return TransferRow(variant=variant, test_acc=_number(metrics.get("test/acc")),
                       ci95_low=_number(interval[0]), ci95_high=_number(interval[1]),
                       test_f1_macro=_number(metrics.get("test/f1_macro")), train_samples=train_samples,
                       seconds=_number(metrics.get("time/run_seconds", record.get("wall_seconds"))),
                       status=str(record.get("status", "missing metrics.json")),
                       job=str(record_path.parent.relative_to(root)))


def _train_count(job: Path) -> int | None:
    splits = job / "splits.json"
    try:
        return int(json.loads(splits.read_text())["splits"]["train"]["count"]) if splits.is_file() else None
    except (json.JSONDecodeError, KeyError, TypeError):
        return None


def collect(multirun_dir: str | Path) -> list[TransferRow]:
    root = Path(multirun_dir)
    rows = []
    for config_file in sorted(root.glob("*/.hydra/config.yaml")):
        job = config_file.parent.parent
        variant = OmegaConf.select(OmegaConf.load(config_file), "transfer.variant", default=None)
        if variant:
            rows.append(_row(str(variant), job / "metrics.json", root, _train_count(job)))
    for record in sorted((root / BASELINES_DIR).glob("*/metrics.json")):
        rows.append(_row(record.parent.name, record, root))
    rank = {name: i for i, name in enumerate(ORDER)}
    return sorted(rows, key=lambda r: (rank.get(r.variant, len(ORDER)), r.variant))


def _cell(value: Any) -> str:
    return table_cell(value, ".4f")


COLUMNS = [("variant", "variant"), ("test_acc", "test acc"), ("ci95_low", "95% low"), ("ci95_high", "95% high"),
           ("test_f1_macro", "test F1 (macro)"), ("train_samples", "train images"), ("seconds", "seconds"),
           ("status", "status")]


def markdown_table(rows: list[TransferRow]) -> str:
    lines = ["| " + " | ".join(t for _, t in COLUMNS) + " |", "|" + "|".join("---" for _ in COLUMNS) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(_cell(getattr(row, k)) for k, _ in COLUMNS) + " |")
    return "\n".join(lines) + "\n"


def plot(rows: list[TransferRow], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from trueval.utils.plots import save_figure

    shown = [r for r in rows if r.test_acc is not None]
    fig, ax = plt.subplots(figsize=(max(6.0, 0.9 * len(shown) + 2), 4))
    colors = ["tab:gray" if r.variant == "pretrain" else "tab:orange" if r.variant.startswith(("logreg", "svm"))
              else "tab:blue" for r in shown]
    ax.bar(range(len(shown)), [r.test_acc for r in shown], color=colors)
    for i, r in enumerate(shown):
        if r.ci95_low is not None and r.ci95_high is not None:
            ax.errorbar(i, r.test_acc, yerr=[[r.test_acc - r.ci95_low], [r.ci95_high - r.test_acc]], color="black",
                        capsize=3)
    ax.set_xticks(range(len(shown)), [r.variant for r in shown], rotation=30, ha="right")
    ax.set_ylabel("test accuracy (target classes)")
    ax.set_ylim(0, 1)
    ax.grid(axis="y", alpha=0.3)
    ax.set_title("Transfer: networks (blue), scikit-learn baselines (orange), source network (grey)")
    save_figure(fig, path, dpi=120)


def summarize(multirun_dir: str | Path) -> list[TransferRow]:
    """Write transfer_study.{csv,md,png} into ``multirun_dir``; returns the rows."""
    root = Path(multirun_dir)
    rows = collect(root)
    with (root / f"{TABLE_STEM}.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=[f.name for f in fields(TransferRow)])
        writer.writeheader()
        writer.writerows(asdict(r) for r in rows)
    table = markdown_table(rows)
    (root / f"{TABLE_STEM}.md").write_text("# Transfer study\n\n`pretrain` is the source network, scored on the "
                                           "source classes; every other row is scored on the target classes.\n\n"
                                           + table)
    plot(rows, root / f"{TABLE_STEM}.png")
    log.info("transfer study (%d rows) written to %s\n%s", len(rows), root / f"{TABLE_STEM}.md", table)
    return rows


def main(argv: list[str] | None = None) -> int:
    return study_main("trueval.sweep.transfer_study", summarize, markdown_table, argv)


if __name__ == "__main__":
    raise SystemExit(main())
