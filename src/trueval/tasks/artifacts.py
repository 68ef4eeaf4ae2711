"""The files of a run directory besides checkpoints: config, splits, leak report, metrics.json."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Mapping

import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, OmegaConf

from trueval.utils.run_record import RunRecord, write_json_atomic

log = logging.getLogger("trueval")


def write_config(cfg: DictConfig, run_dir: Path) -> None:
    """The resolved config (config.yaml) and the config tree (config_tree.log); the console gets a
    short header of the choices and overrides, the whole tree only with extras.print_config=true."""
    from trueval.utils.console import config_header, config_tree, silence_library_noise
    from trueval.utils.job import job_view

    extras = cfg.get("extras") or {}
    silence_library_noise(bool(extras.get("ignore_warnings", False)))
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
    show_tree = bool(extras.get("print_config", False))
    config_tree(cfg, save_to=run_dir / "config_tree.log", show=show_tree)
    if not show_tree:
        job = job_view()
        config_header(job.choices, job.overrides, run_dir / "config_tree.log")


def write_integrity(dm: Any, run_dir: Path, record: RunRecord | None) -> None:
    """leak_report.json and splits.json, from whatever the DataModule got to."""
    report = getattr(dm, "leak_report", None)
    if report is not None:
        report.write(run_dir / "leak_report.json")
        if record is not None:
            # with policy drop the copies are gone: the run trains and evaluates on clean splits
            outcome = getattr(dm, "policy_record", None)
            if isinstance(outcome, dict) and "leaky" in outcome:
                # the outcome's "leaky" says the gate found cross-split pairs; the run is LEAKY only
                # when they were kept (warn), not when they were dropped
                leaky = bool(outcome["leaky"]) and outcome.get("policy") != "drop"
            else:
                leaky = bool(report.has_leak) and report.to_dict().get("policy") != "drop"
            record.update(leaky=leaky, integrity=_integrity_summary(dm))
        from trueval.quality.summary import log_data_quality

        log_data_quality(dm, record)  # class balance and within-split repeats: log and metrics.json
    manifest = getattr(dm, "manifest", None)
    if manifest:
        write_json_atomic(run_dir / "splits.json", manifest, indent=None)


def _integrity_summary(dm: Any) -> dict[str, Any]:
    report = dm.leak_report
    d = report.to_dict()
    return {"policy": d.get("policy"), "cross_split_pairs": len(d.get("pairs", [])),
            "look_alikes": len(d.get("look_alikes", [])),
            "within_split_duplicates": d.get("within_split_duplicates", 0),
            "dropped": getattr(dm, "policy_record", {}).get("dropped_count", 0)
            if isinstance(getattr(dm, "policy_record", None), dict) else 0,
            "summary": report.summary_lines()}


def checkpoint_extra(dm: Any) -> dict[str, Any]:
    return {"train_fingerprint": getattr(dm, "train_fingerprint", {}) or {},
            "train_digest": (getattr(dm, "manifest", {}) or {}).get("train_digest"),
            "dataset": getattr(dm, "name", "")}


def log_network(module: pl.LightningModule, dm: Any, record: RunRecord | None) -> None:
    """Parameter count and multiply-adds of the network for the input size, logged and recorded."""
    net = getattr(module, "net", None)
    if net is None:
        return
    params = sum(p.numel() for p in net.parameters())
    info: dict[str, Any] = {"model/params": params}
    try:
        from trueval.models.nets.complexity import count_macs

        info["model/macs"] = count_macs(net, tuple(dm.in_shape))
    except ImportError:
        pass
    except Exception as exc:  # a network the counter cannot trace still trains
        log.warning("could not count multiply-adds: %s", exc)
    log.info("network %s: %s parameters%s", type(net).__name__, f"{params:,}",
             f", {info['model/macs']:,} multiply-adds per sample" if "model/macs" in info else "")
    module.network_info = info
    if record is not None:
        record.update(network=info)


def flag_leaky(loggers: list[Any], report: Any) -> None:
    """A visible LEAKY marker in TensorBoard: text plus a scalar that sorts runs."""
    for logger in loggers:
        exp = getattr(logger, "experiment", None)
        if hasattr(exp, "add_text"):
            exp.add_text("integrity/LEAKY", "**LEAKY split**: " + "; ".join(report.summary_lines()), 0)
            exp.add_scalar("integrity/leaky", 1.0, 0)


def scalars(metrics: Mapping[str, Any], prefix: str | None = None) -> dict[str, float]:
    out = {}
    for key, value in metrics.items():
        if prefix and not key.startswith(prefix):
            continue
        if isinstance(value, torch.Tensor):
            if value.numel() != 1:
                continue
            value = value.item()
        if isinstance(value, (int, float)):
            # LearningRateMonitor names its series "lr-<Optimizer>"; metrics.json keeps one key
            out["train/lr" if key.startswith("lr-") else key] = float(value)
    return out


def best_checkpoint(trainer: pl.Trainer) -> str | None:
    cb = trainer.checkpoint_callback
    if cb is None:
        return None
    return cb.best_model_path or cb.last_model_path or None


def finish(cfg: DictConfig, record: RunRecord | None, metrics: dict[str, Any], loggers: list[Any],
           best: str | None) -> None:
    """metrics.json, the TensorBoard HParams entry, and the rich table."""
    if record is not None:
        net_info = record.data.get("network") or {}
        metrics = {**{k: float(v) for k, v in net_info.items()}, **metrics}
        if record.data.get("leaky"):
            metrics["integrity/leaky"] = 1.0
        record.finish(metrics)
    _log_hparams(cfg, loggers, metrics)
    if cfg.get("extras", {}).get("print_metrics", True):
        from trueval.utils.console import metrics_table

        shown = {k: v for k, v in metrics.items() if k.split("/")[0] in ("train", "val", "test", "integrity")
                 and "/ap50/" not in k}
        extra = [("run directory", str(cfg.paths.output_dir)), ("best checkpoint", best or "-")]
        if record is not None and record.data.get("leaky"):
            extra.append(("integrity", "LEAKY: see leak_report.json"))
        from trueval.tasks.uncertainty import with_intervals

        ci95 = record.data.get("ci95") if record is not None else None
        metrics_table("trueval: final metrics", with_intervals(shown, ci95), extra)


def _log_hparams(cfg: DictConfig, loggers: list[Any], metrics: Mapping[str, Any]) -> None:
    """The HParams entry (see tasks/tensorboard_hparams.py: it names the curves, it never re-logs them)."""
    from trueval.tasks.tensorboard_hparams import write_hparams

    for logger in loggers:
        if isinstance(logger, pl.loggers.TensorBoardLogger):
            write_hparams(cfg, logger.experiment, metrics)
            logger.finalize("success")
