"""The depth-study summary: one table and one figure for a whole multirun.

Reads every job of a multirun directory (its ``metrics.json`` and ``.hydra/`` config) and writes
``depth_study.csv``, ``depth_study.md`` and ``depth_study.png`` (test accuracy and gradient-norm sum
against depth, plain vs residual, one column per network and dataset) into that directory.
Registered as a Hydra callback by ``experiment=resnet_depth`` so it runs when the sweep ends;
``python -m trueval.sweep.depth_study <multirun_dir>`` rebuilds it by hand.
"""

from __future__ import annotations

import csv
import json
import logging
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from trueval.sweep.study import StudyCallback, study_main, table_cell
from omegaconf import DictConfig, OmegaConf

log = logging.getLogger(__name__)

TABLE_STEM = "depth_study"
TEST_ACC_KEYS = ("test/acc",)
TRAIN_LOSS_KEYS = ("train/loss_epoch", "train/loss")
SECONDS_KEYS = ("time/total_seconds",)


@dataclass
class StudyRow:
    job: str
    network: str
    data: str
    depth: int | None
    residual: bool
    test_acc: float | None
    train_loss: float | None
    grad_norm_first: float | None
    grad_norm_last: float | None
    seconds: float | None
    params: int | None
    status: str


def _first(metrics: dict[str, Any], keys: tuple[str, ...]) -> float | None:
    for key in keys:
        value = metrics.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    return None


def _load_yaml(path: Path) -> DictConfig | None:
    return OmegaConf.load(path) if path.is_file() else None  # type: ignore[return-value]


def read_job(job_dir: Path, root: Path) -> StudyRow:
    """One table row from a job directory (missing pieces become empty cells, never an error)."""
    config = _load_yaml(job_dir / ".hydra" / "config.yaml") or OmegaConf.create({})
    hydra_cfg = _load_yaml(job_dir / ".hydra" / "hydra.yaml")
    choices = OmegaConf.select(hydra_cfg, "hydra.runtime.choices", default={}) if hydra_cfg else {}
    model = OmegaConf.select(config, "model", default={}) or {}
    target = str(model.get("_target_", "") or "")
    network = target.rsplit(".", 1)[-1] or str(choices.get("model", "?"))
    if network in ("TorchvisionNet", "TimmNet"):
        network = str(model.get("name", network))
    data = str(choices.get("data") or OmegaConf.select(config, "data.name", default="?"))
    depth = model.get("depth")
    residual = bool(model.get("residual", network == "ResNet"))
    metrics_path = job_dir / "metrics.json"
    try:
        record = json.loads(metrics_path.read_text()) if metrics_path.is_file() else {}
    except json.JSONDecodeError:
        record = {"status": "unreadable metrics.json"}
    metrics = record.get("metrics") or {}
    seconds = _first(metrics, SECONDS_KEYS)
    if seconds is None and isinstance(record.get("wall_seconds"), (int, float)):
        seconds = float(record["wall_seconds"])
    params = metrics.get("model/params")
    return StudyRow(
        job=str(job_dir.relative_to(root)),
        network=network,
        data=data,
        depth=int(depth) if isinstance(depth, int) else None,
        residual=residual,
        test_acc=_first(metrics, TEST_ACC_KEYS),
        train_loss=_first(metrics, TRAIN_LOSS_KEYS),
        grad_norm_first=_first(metrics, ("train/grad_norm_sum_first",)),
        grad_norm_last=_first(metrics, ("train/grad_norm_sum_last", "train/grad_norm_sum")),
        seconds=seconds,
        params=int(params) if isinstance(params, (int, float)) else None,
        status=str(record.get("status", "missing metrics.json")),
    )


def find_jobs(multirun_dir: Path) -> list[Path]:
    """Job directories: those holding a ``.hydra/config.yaml`` below the multirun directory."""
    return sorted({p.parent.parent for p in multirun_dir.glob("**/.hydra/config.yaml")} - {multirun_dir})


def collect(multirun_dir: str | Path) -> list[StudyRow]:
    root = Path(multirun_dir)
    rows = [read_job(job, root) for job in find_jobs(root)]
    return sorted(rows, key=lambda r: (r.network, r.data, r.residual, r.depth if r.depth is not None else -1))


def _cell(value: Any) -> str:
    return table_cell(value, ".4g")


COLUMNS = [("network", "network"), ("data", "data"), ("depth", "depth"), ("residual", "residual"),
           ("test_acc", "test acc"), ("train_loss", "final train loss"),
           ("grad_norm_first", "grad-norm sum (first epoch)"), ("grad_norm_last", "grad-norm sum (last epoch)"),
           ("seconds", "seconds"), ("params", "params"), ("status", "status"), ("job", "job")]


def write_csv(rows: list[StudyRow], path: Path) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=[f.name for f in fields(StudyRow)])
        writer.writeheader()
        writer.writerows(asdict(row) for row in rows)


def markdown_table(rows: list[StudyRow]) -> str:
    lines = ["| " + " | ".join(title for _, title in COLUMNS) + " |",
             "|" + "|".join("---" for _ in COLUMNS) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(_cell(getattr(row, key)) for key, _ in COLUMNS) + " |")
    return "\n".join(lines) + "\n"


def plot(rows: list[StudyRow], path: Path) -> None:
    """Test accuracy (top) and gradient-norm sum (bottom, log scale) against depth; one column per
    network and dataset, plain and residual as separate lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from trueval.utils.plots import save_figure

    groups = sorted({(r.network, r.data) for r in rows if r.depth is not None})
    if not groups:
        groups = [("no finished jobs", "")]
    fig, axes = plt.subplots(2, len(groups), figsize=(5 * len(groups), 7.5), squeeze=False)
    for col, (network, data) in enumerate(groups):
        acc_ax, grad_ax = axes[0][col], axes[1][col]
        acc_ax.set_title(f"{network} on {data}" if data else network)
        for residual, marker, color in ((False, "o", "tab:blue"), (True, "s", "tab:orange")):
            label = "residual" if residual else "plain"
            pts = sorted((r for r in rows if (r.network, r.data, r.residual) == (network, data, residual)
                          and r.depth is not None), key=lambda r: r.depth)
            acc = [(r.depth, r.test_acc) for r in pts if r.test_acc is not None]
            if acc:
                acc_ax.plot(*zip(*acc), marker=marker, color=color, label=label)
            for value, line in (("grad_norm_last", "-"), ("grad_norm_first", ":")):
                grads = [(r.depth, getattr(r, value)) for r in pts
                         if getattr(r, value) is not None and getattr(r, value) > 0]
                if grads:
                    epoch = "last" if value == "grad_norm_last" else "first"
                    grad_ax.plot(*zip(*grads), marker=marker, linestyle=line, color=color,
                                 label=f"{label}, {epoch} epoch")
        acc_ax.set_xlabel("depth (layers)")
        acc_ax.set_ylabel("test accuracy")
        acc_ax.set_ylim(0, 1)
        acc_ax.grid(alpha=0.3)
        grad_ax.set_xlabel("depth (layers)")
        grad_ax.set_ylabel("sum of gradient norms")
        if grad_ax.lines:
            grad_ax.set_yscale("log")
        grad_ax.grid(alpha=0.3)
        for ax in (acc_ax, grad_ax):
            if ax.lines:
                ax.legend(fontsize=8)
    save_figure(fig, path, dpi=120, title="Depth without and with residual connections")


def summarize(multirun_dir: str | Path) -> list[StudyRow]:
    """Write depth_study.{csv,md,png} into ``multirun_dir`` and return the rows."""
    root = Path(multirun_dir)
    rows = collect(root)
    write_csv(rows, root / f"{TABLE_STEM}.csv")
    table = markdown_table(rows)
    (root / f"{TABLE_STEM}.md").write_text("# Depth study\n\n" + table)
    plot(rows, root / f"{TABLE_STEM}.png")
    log.info("depth study (%d jobs) written to %s\n%s", len(rows), root / f"{TABLE_STEM}.md", table)
    return rows


class DepthStudyCallback(StudyCallback):
    """Hydra callback: summarise the depth study when the multirun ends.

    Register under ``hydra.callbacks`` with ``_target_: trueval.sweep.depth_study.DepthStudyCallback``.
    """

    module, what = "trueval.sweep.depth_study", "depth-study summary"


def main(argv: list[str] | None = None) -> int:
    return study_main("trueval.sweep.depth_study", summarize, markdown_table, argv)


if __name__ == "__main__":
    raise SystemExit(main())
