"""After the test: per-sample predictions (``test_predictions.npz``) and bootstrap intervals (``ci95``).

A test accuracy of 0.96 on 270 images and on 10,000 images are different claims; the interval in
``metrics.json`` (and in the final table and the sweep summary) says which one a run makes.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
from omegaconf import DictConfig

from trueval.stats.bootstrap import classification_intervals, detection_intervals
from trueval.stats.intervals import format_interval
from trueval.stats.predictions import FILENAME, write_predictions
from trueval.utils.run_record import RunRecord

log = logging.getLogger("trueval")

DEFAULTS = {"resamples": 1000, "detection_resamples": 200, "seed": 0}


def record_test_uncertainty(cfg: DictConfig, module: Any, dm: Any, run_dir: Path,
                     record: RunRecord | None) -> dict[str, list[float]]:
    """Write the test predictions and put ``ci95`` (and how it was computed) into the run record."""
    settings = {**DEFAULTS, **dict(cfg.get("bootstrap") or {})}
    seed = int(settings["seed"])
    classified = getattr(module, "test_predictions", None)
    detected = getattr(module, "test_outputs", None)
    if classified is not None:
        target, logits = classified
        pred = logits.argmax(dim=1)
        _write(run_dir / FILENAME, dm, target, pred, torch.softmax(logits, dim=1))
        resamples, unit = int(settings["resamples"]), "test samples"
        ci = classification_intervals(module.test_metrics, target, pred, module.num_classes, resamples, seed)
    elif detected:
        preds, targets = zip(*detected)
        resamples, unit = int(settings["detection_resamples"]), "test images"
        ci = detection_intervals(preds, targets, resamples, seed)
    else:
        return {}
    if record is not None:
        record.update(ci95=ci, ci95_method={"method": "percentile bootstrap", "resamples": resamples, "seed": seed,
                                            "over": unit, "level": 0.95})
    return ci


def _write(path: Path, dm: Any, target: torch.Tensor, pred: torch.Tensor, prob: torch.Tensor) -> None:
    """Predictions with the ids and content hashes of the test samples they belong to."""
    from trueval.integrity import content_hashes

    test = dm.sets["test"]
    n = len(target)
    # the test loader is not shuffled: prediction i is sample i (fewer with trainer.limit_test_batches)
    if n > len(test) or not np.array_equal(test.targets[:n], target.numpy()):
        log.warning("test predictions are not in test-split order: %s not written (no paired tests)", path.name)
        return
    write_predictions(path, list(test.origin or [])[:n], content_hashes(test)[:n], target.numpy(), pred.numpy(),
                      prob.numpy())


def with_intervals(shown: Mapping[str, Any], ci95: Mapping[str, Any] | None) -> dict[str, Any]:
    """The final table's values, ``0.9630 [0.9410, 0.9810]`` where an interval exists."""
    ci95 = ci95 or {}
    return {k: format_interval(float(v), ci95[k]) if k in ci95 and isinstance(v, (int, float)) else v
            for k, v in shown.items()}
