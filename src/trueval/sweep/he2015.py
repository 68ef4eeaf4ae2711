"""He et al. (2015), Table 6 and Figure 6, from one multirun of ``experiment=he2015_cifar10``.

Reads every trial of the multirun directory (``metrics.json``, the ``net`` it trained and its
TensorBoard training-accuracy curve) and writes into that directory:

- ``he2015.csv`` / ``he2015.md``: test error per network beside the paper's (Table 6);
- ``he2015.png``: training error per epoch, plain networks left and residual right (Figure 6),
  with the test errors against depth below.

Registered as a Hydra callback by the experiment, so it runs when the sweep ends;
``python -m trueval.sweep.he2015 <multirun_dir>`` rebuilds it by hand.
"""

from __future__ import annotations

import csv
import json
import logging
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from trueval.sweep.study import StudyCallback, study_main, table_cell
from omegaconf import OmegaConf

log = logging.getLogger(__name__)

STEM = "he2015"
# Table 6 of the paper: CIFAR-10 test error (%), best of 5 runs for 110, else single runs
PAPER_TEST_ERROR = {"plain20": None, "plain32": None, "plain44": None, "plain56": None,
                    "residual20": 8.75, "residual32": 7.51, "residual44": 7.17, "residual56": 6.97,
                    "residual110": 6.43}
# the paper gives plain networks' errors only as Figure 6's curves (plain-56 above plain-20)
TRAIN_ACC_TAG = "train/acc"


@dataclass
class Trial:
    net: str
    depth: int | None
    residual: bool
    test_error: float | None
    paper_test_error: float | None
    final_train_error: float | None
    epochs: int
    seconds: float | None
    status: str
    job: str
    train_error_curve: list[float] = field(default_factory=list)


def _train_accuracy_curve(job_dir: Path) -> list[float]:
    """Training accuracy per epoch from the trial's TensorBoard events (in step order)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    points: dict[int, float] = {}
    for events in sorted(job_dir.glob("**/events.out.tfevents.*")):
        acc = EventAccumulator(str(events), size_guidance={"scalars": 0})
        acc.Reload()
        if TRAIN_ACC_TAG in acc.Tags().get("scalars", []):
            for event in acc.Scalars(TRAIN_ACC_TAG):
                points[event.step] = event.value
    return [points[step] for step in sorted(points)]


def read_trial(job_dir: Path, root: Path) -> Trial:
    """One row from a trial directory; missing pieces become empty cells, never an error."""
    config_path = job_dir / ".hydra" / "config.yaml"
    config = OmegaConf.load(config_path) if config_path.is_file() else OmegaConf.create({})
    net = str(OmegaConf.select(config, "net", default="?"))
    spec = OmegaConf.select(config, f"he2015.nets.{net}", default=None) or {}
    try:
        record = json.loads((job_dir / "metrics.json").read_text())
    except (OSError, ValueError):
        record = {"status": "missing metrics.json"}
    metrics = record.get("metrics") or {}
    acc = metrics.get("test/acc")
    curve = [round(100.0 * (1.0 - a), 3) for a in _train_accuracy_curve(job_dir)]
    seconds = metrics.get("time/total_seconds", record.get("wall_seconds"))
    return Trial(net=net, depth=spec.get("depth"), residual=bool(spec.get("residual", False)),
                 test_error=round(100.0 * (1.0 - acc), 2) if isinstance(acc, (int, float)) else None,
                 paper_test_error=PAPER_TEST_ERROR.get(net), final_train_error=curve[-1] if curve else None,
                 epochs=len(curve), seconds=float(seconds) if isinstance(seconds, (int, float)) else None,
                 status=str(record.get("status")), job=str(job_dir.relative_to(root)), train_error_curve=curve)


def collect(multirun_dir: str | Path) -> list[Trial]:
    root = Path(multirun_dir)
    jobs = sorted({p.parent.parent for p in root.glob("*/.hydra/config.yaml")})
    trials = [read_trial(job, root) for job in jobs]
    return sorted(trials, key=lambda t: (t.residual, t.depth if t.depth is not None else 10**6))


COLUMNS = [("net", "network"), ("depth", "layers"), ("residual", "residual"), ("test_error", "test error %"),
           ("paper_test_error", "paper %"), ("final_train_error", "final train error %"), ("epochs", "epochs"),
           ("seconds", "seconds"), ("status", "status")]


def _cell(value: Any) -> str:
    return table_cell(value, ".2f")


def markdown_table(trials: list[Trial]) -> str:
    lines = ["| " + " | ".join(title for _, title in COLUMNS) + " |", "|" + "|".join("---" for _ in COLUMNS) + "|"]
    lines += ["| " + " | ".join(_cell(getattr(t, key)) for key, _ in COLUMNS) + " |" for t in trials]
    return "\n".join(lines) + "\n"


def verdict(trials: list[Trial]) -> list[str]:
    """The paper's qualitative claims, checked on these trials (True/False per claim, or unknown)."""
    def errors(residual: bool) -> list[tuple[int, float]]:
        """(depth, mean test error over the trials of that depth): seeds of one network are averaged."""
        by_depth: dict[int, list[float]] = {}
        for t in trials:
            if t.residual == residual and t.depth is not None and t.test_error is not None:
                by_depth.setdefault(t.depth, []).append(t.test_error)
        return sorted((d, sum(v) / len(v)) for d, v in by_depth.items())

    def claim(text: str, points: list[tuple[int, float]], worse_with_depth: bool) -> str:
        if len(points) < 2:
            return f"- {text}: not enough finished trials"
        first, last = points[0], points[-1]
        holds = last[1] > first[1] if worse_with_depth else last[1] < first[1]
        return (f"- {text}: {'holds' if holds else 'does NOT hold'} ({first[0]} layers {first[1]:.2f}% -> "
                f"{last[0]} layers {last[1]:.2f}%)")

    plain, residual = errors(False), errors(True)
    lines = [claim("plain networks get worse with depth", plain, True),
             claim("residual networks get better with depth", residual, False)]
    both = sorted({d for d, _ in plain} & {d for d, _ in residual})
    if both:
        better = all(dict(residual)[d] < dict(plain)[d] for d in both)
        lines.append(f"- residual beats plain at every depth ({', '.join(map(str, both))}): "
                     f"{'holds' if better else 'does NOT hold'}")
    return lines


def plot(trials: list[Trial], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from trueval.utils.plots import save_figure

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    for ax, residual in zip(axes[:2], (False, True)):
        for t in (t for t in trials if t.residual == residual and t.train_error_curve):
            epochs = range(1, len(t.train_error_curve) + 1)
            ax.plot(epochs, t.train_error_curve, label=f"{'ResNet' if residual else 'plain'}-{t.depth}")
        ax.set_title(("residual" if residual else "plain") + " networks: training error")
        ax.set_xlabel("epoch")
        ax.set_ylabel("training error (%)")
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=8)
    ax = axes[2]
    for residual, marker in ((False, "o"), (True, "s")):
        pts = sorted((t.depth, t.test_error) for t in trials
                     if t.residual == residual and t.depth is not None and t.test_error is not None)
        if pts:
            ax.plot(*zip(*pts), marker=marker, label="residual (this run)" if residual else "plain (this run)")
    paper = sorted((t.depth, t.paper_test_error) for t in trials if t.paper_test_error is not None)
    if paper:
        ax.plot(*zip(*paper), marker="x", linestyle="--", color="gray", label="residual (paper)")
    ax.set_title("test error against depth")
    ax.set_xlabel("layers")
    ax.set_ylabel("test error (%)")
    ax.grid(alpha=0.3)
    if ax.lines:
        ax.legend(fontsize=8)
    save_figure(fig, path, dpi=110, title="He et al. 2015 on CIFAR-10 (JPEG copy), Table 6 / Figure 6")


def summarize(multirun_dir: str | Path) -> list[Trial]:
    """Write he2015.{csv,md,png} into ``multirun_dir``; returns the trials."""
    root = Path(multirun_dir)
    trials = collect(root)
    with (root / f"{STEM}.csv").open("w", newline="") as handle:
        names = [f.name for f in fields(Trial)]
        writer = csv.DictWriter(handle, fieldnames=names)
        writer.writeheader()
        for t in trials:
            row = asdict(t)
            row["train_error_curve"] = " ".join(f"{v:.3f}" for v in t.train_error_curve)
            writer.writerow(row)
    text = "# He et al. 2015, Table 6, on this run\n\n" + markdown_table(trials) + "\n" + "\n".join(verdict(trials)) + "\n"
    (root / f"{STEM}.md").write_text(text)
    plot(trials, root / f"{STEM}.png")
    log.info("he2015 table (%d trials) written to %s\n%s", len(trials), root / f"{STEM}.md", text)
    return trials


class He2015Callback(StudyCallback):
    """Hydra callback of ``experiment=he2015_cifar10``: the table and figure when the sweep ends."""

    module, what = "trueval.sweep.he2015", "he2015 table"


def main(argv: list[str] | None = None) -> int:
    return study_main("trueval.sweep.he2015", summarize, markdown_table, argv)


if __name__ == "__main__":
    raise SystemExit(main())
