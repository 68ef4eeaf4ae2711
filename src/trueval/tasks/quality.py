"""The quality task: balance, within-split repeats, domain shift and label errors, before any tuning.

Exit code 0 when nothing is flagged, 1 when a section is, 2 on a usage or data error. The splits
are those a training run would make (same data config, same seed, same ``data.exclude``); the
integrity gate is not applied here (``audit.py`` reports cross-split leaks).
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from trueval.core.errors import UserError
from trueval.tasks.builders import build_datamodule
from trueval.utils.run_record import RunRecord

log = logging.getLogger("trueval")

SECTIONS = ("balance", "diversity", "domain", "labels")


def quality(cfg: DictConfig, record: RunRecord | None) -> float:
    from trueval.quality.balance import balance_section, class_counts
    from trueval.quality.report import write_csv, write_report

    started = time.perf_counter()
    q = OmegaConf.to_container(cfg.quality, resolve=True)
    sections = list(q.get("sections") or SECTIONS)
    unknown = sorted(set(sections) - set(SECTIONS))
    if unknown:
        raise UserError(f"unknown report sections {unknown}; choose from {list(SECTIONS)}", key="quality.sections")
    run_dir = Path(cfg.paths.output_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    dm = build_datamodule(cfg.data)
    detection = getattr(dm, "task", "classification") == "detection"
    if detection:
        dm.setup("fit")  # reads YOLO labels and applies the gate: the detection module has no sample_sets()
        sets = dict(dm.sets)
    else:
        sets = dm.sample_sets()
    names = list(dm.class_names)
    root = str(getattr(dm, "root", None) or "") or None
    seed = int(cfg.seed)
    done = []
    if "balance" in sections:
        b = q["balance"]
        if detection:
            stats = dm.report["splits"]
            images = {s: [stats[s]["per_class"][c]["images"] for c in names] for s in stats}
            boxes = {s: [stats[s]["per_class"][c]["boxes"] for c in names] for s in stats}
            done.append(balance_section(images, names, b["min_count"], b["max_ratio"], boxes, detection=True))
        else:
            counts = class_counts({s: ss.targets for s, ss in sets.items()}, len(names))
            done.append(balance_section(counts, names, b["min_count"], b["max_ratio"]))
    clusters: dict[str, list] = {}
    if "diversity" in sections:
        from trueval.quality.diversity import diversity_section, split_clusters

        settings = dm.integrity_settings()
        cache = Path(cfg.paths.cache_dir) / "integrity" if cfg.data.integrity.get("cache", True) else None
        d = q["diversity"]
        done.append(diversity_section(sets, settings, cache, root, d["max_repeat_fraction"], d["shown"]))
        clusters = {s: split_clusters(ss, settings, cache) for s, ss in sets.items()}  # cached by the gate
    if "domain" in sections:
        from trueval.quality.domain import domain_section, read_target

        d = q["domain"]
        if q.get("target"):
            target = read_target(q["target"], names, sets["train"].load(0).shape[2])
            target_name, target_root = "target", q["target"]
        else:
            target, target_name, target_root = sets["test"], "test", root
        if detection:
            target.targets[:] = -1  # per-image box counts, not classes
        done.append(domain_section(sets["train"], target, target_name, names, target_root, d["max_auc"], d["folds"],
                                   d["max_samples"], d["shown"], seed))
    labels = None
    if "labels" in sections:
        if detection:
            log.info("quality: the label check is for classification; skipped for detection data")
        else:
            from trueval.quality.baseline import BaselineSettings
            from trueval.quality.labels import ISSUE_COLUMNS, labels_section

            lab = q["labels"]
            settings_b = BaselineSettings(hidden=lab["hidden"], epochs=lab["epochs"], batch_size=lab["batch_size"],
                                          lr=lab["lr"], weight_decay=lab["weight_decay"], folds=lab["folds"])
            labels = labels_section(sets, names, root, settings_b, lab["size"], lab["rank_by"], lab["loss_threshold"],
                                    lab["max_issue_fraction"], q["device"], seed, lab["shown"])
            done.append(labels.section)
            write_csv(run_dir / "label_issues.csv", ISSUE_COLUMNS, labels.issues)
            write_csv(run_dir / "sample_losses.csv", ("split", "path", "given", "predicted", "loss"), labels.losses)
    extra: dict[str, Any] = {"seconds": round(time.perf_counter() - started, 3)}
    if q.get("fix"):
        from trueval.quality.fix import exclusion_manifest, write_manifest

        manifest = exclusion_manifest(sets, dm.name, root, labels.flagged if labels else {}, clusters,
                                      labels.reasons if labels else {},
                                      list(q["fix_splits"]))
        path = write_manifest(manifest, run_dir / "exclude_manifest.json")
        extra["exclude_manifest"] = path.name
        log.info("quality: %d samples in %s; retrain without them: data.exclude=%s", len(manifest["excluded"]),
                 path.name, path)
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


def _print(doc: dict[str, Any], run_dir: Path) -> None:
    from rich.console import Console

    console = Console()
    for key, section in doc["sections"].items():
        mark = "[bold red]flagged[/bold red]" if section["flagged"] else "[green]ok[/green]"
        console.print(f"quality {key}: {mark}")
    console.print(f"quality report: {run_dir / 'quality_report.md'}")
