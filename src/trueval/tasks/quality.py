"""The quality task: balance, within-split repeats, domain shift and label errors, before any tuning.

Exit code 0 when nothing is flagged, 1 when a section is, 2 on a usage or data error. The splits
are those a training run would make (same data config, same seed, same ``data.exclude``); the
integrity gate is not applied here (``audit.py`` reports cross-split leaks).
"""

from __future__ import annotations

import logging
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf

from trueval.core.errors import UserError
from trueval.core.samples import SampleSet
from trueval.tasks.builders import build_datamodule
from trueval.utils.run_record import RunRecord

log = logging.getLogger("trueval")

SECTIONS = ("balance", "diversity", "domain", "labels")


def quality(cfg: DictConfig, record: RunRecord | None) -> float:
    from trueval.quality.report import write_report

    started = time.perf_counter()
    q = OmegaConf.to_container(cfg.quality, resolve=True)
    sections = list(q.get("sections") or SECTIONS)
    unknown = sorted(set(sections) - set(SECTIONS))
    if unknown:
        raise UserError(f"unknown report sections {unknown}; choose from {list(SECTIONS)}", key="quality.sections")
    run_dir = Path(cfg.paths.output_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    dm = build_datamodule(cfg.data)
    if _is_detection(dm):
        dm.setup("fit")  # reads YOLO labels and applies the gate: the detection module has no sample_sets()
        sets = dict(dm.sets)
    else:
        sets = dm.sample_sets()
    ctx = _Run(cfg, q, dm, sets, run_dir, str(getattr(dm, "root", None) or "") or None)
    done = []
    for key in SECTIONS:
        if key not in sections:
            continue
        if key == "labels" and _is_detection(dm):
            log.info("quality: the label check is for classification; skipped for detection data")
            continue
        begun = time.perf_counter()
        section = _BUILDERS[key](ctx)
        section.scalars[f"quality/{key}/seconds"] = time.perf_counter() - begun
        log.info("quality %s: %s (%.1f s)", key, "flagged" if section.flagged else "ok", time.perf_counter() - begun)
        done.append(section)
    extra: dict[str, Any] = {"seconds": round(time.perf_counter() - started, 3)}
    if q.get("fix"):
        extra["exclude_manifest"] = _write_fix(ctx)
    doc = write_report(run_dir, dm.name, done, extra)
    _print(doc, run_dir)
    if record is not None:
        metrics = {k: float(v) for s in done for k, v in s.scalars.items()}
        metrics.update({f"quality/{s.key}/flagged": float(s.flagged) for s in done})
        metrics["quality/seconds"] = round(time.perf_counter() - started, 3)
        record.finish(metrics)
    if doc["flagged"]:
        sys.exit(1)
    return 0.0


@dataclass
class _Run:
    """What the sections share: the config, the data, and what earlier sections found (for quality.fix)."""

    cfg: DictConfig
    q: dict[str, Any]
    dm: Any
    sets: dict[str, SampleSet]
    run_dir: Path
    root: str | None
    clusters: dict[str, list[np.ndarray]] = field(default_factory=dict)
    labels: Any = None


def _is_detection(dm: Any) -> bool:
    return getattr(dm, "task", "classification") == "detection"


def _balance(ctx: _Run):
    from trueval.quality.balance import balance_section, class_counts

    dm, b = ctx.dm, ctx.q["balance"]
    names = list(dm.class_names)
    if _is_detection(dm):
        stats = dm.report["splits"]
        images = {s: [stats[s]["per_class"][c]["images"] for c in names] for s in stats}
        boxes = {s: [stats[s]["per_class"][c]["boxes"] for c in names] for s in stats}
        return balance_section(images, names, b["min_count"], b["max_ratio"], boxes, detection=True)
    counts = class_counts({s: ss.targets for s, ss in ctx.sets.items()}, len(names))
    return balance_section(counts, names, b["min_count"], b["max_ratio"])


def _diversity(ctx: _Run):
    from trueval.quality.diversity import diversity_section, split_clusters

    cfg, dm, d = ctx.cfg, ctx.dm, ctx.q["diversity"]
    settings = dm.integrity_settings()
    cache = Path(cfg.paths.cache_dir) / "integrity" if cfg.data.integrity.get("cache", True) else None
    ctx.clusters = {s: split_clusters(ss, settings, cache) for s, ss in ctx.sets.items()}
    return diversity_section(ctx.sets, ctx.clusters, ctx.root, d["max_repeat_fraction"], d["shown"])


def _domain(ctx: _Run):
    from trueval.quality.domain import domain_section, read_target

    q, dm, sets = ctx.q, ctx.dm, ctx.sets
    names = list(dm.class_names)
    d = q["domain"]
    if q.get("target"):
        target = read_target(q["target"], names, sets["train"].load(0).shape[2])
        target_name, target_root = "target", q["target"]
    else:
        target, target_name, target_root = sets["test"], "test", ctx.root
    if _is_detection(dm):  # the targets of a detection split are box counts, not classes
        target = SampleSet(target.split, np.full(len(target), -1), paths=target.paths, name=target.name,
                           image_mode=target.image_mode)
    return domain_section(sets["train"], target, target_name, names, target_root, d["max_auc"], d["folds"],
                          d["max_samples"], d["shown"], int(ctx.cfg.seed))


def _labels(ctx: _Run):
    from trueval.quality.baseline import BaselineSettings
    from trueval.quality.labels import ISSUE_COLUMNS, labels_section
    from trueval.quality.report import write_csv

    q, run_dir = ctx.q, ctx.run_dir
    lab = q["labels"]
    settings = BaselineSettings(hidden=lab["hidden"], epochs=lab["epochs"], batch_size=lab["batch_size"], lr=lab["lr"],
                                weight_decay=lab["weight_decay"], folds=lab["folds"])
    result = labels_section(ctx.sets, list(ctx.dm.class_names), ctx.root, settings, lab["size"],
                            lab["rank_by"], lab["loss_threshold"], lab["max_issue_fraction"], q["device"],
                            int(ctx.cfg.seed), lab["shown"])
    write_csv(run_dir / "label_issues.csv", ISSUE_COLUMNS, result.issues)
    write_csv(run_dir / "sample_losses.csv", ("split", "path", "given", "predicted", "loss"), result.losses)
    ctx.labels = result
    return result.section


_BUILDERS = {"balance": _balance, "diversity": _diversity, "domain": _domain, "labels": _labels}


def _write_fix(ctx: _Run) -> str:
    """exclude_manifest.json from what the sections found; returns its file name."""
    from trueval.quality.fix import exclusion_manifest, write_manifest

    labels = ctx.labels
    manifest = exclusion_manifest(ctx.sets, ctx.dm.name, ctx.root, labels.flagged if labels else {},
                                  ctx.clusters, labels.reasons if labels else {}, list(ctx.q["fix_splits"]))
    path = write_manifest(manifest, ctx.run_dir / "exclude_manifest.json")
    log.info("quality: %d samples in %s; train without them: data.exclude=%s", len(manifest["excluded"]), path.name,
             path)
    return path.name


def _print(doc: dict[str, Any], run_dir: Path) -> None:
    from rich.console import Console

    console = Console()
    for key, section in doc["sections"].items():
        mark = "[bold red]flagged[/bold red]" if section["flagged"] else "[green]ok[/green]"
        console.print(f"quality {key}: {mark}")
    console.print(f"quality report: {run_dir / 'quality_report.md'}")
