"""Hydra callback of ``experiment=transfer_*``: when the variants have run, fit the scikit-learn
baselines on the target data (pixels, and the source network's features) and write the table.

The baselines use the data config of the target variants (``transfer.target_classes``,
``transfer.target_fraction``) and the source checkpoint the variants start from.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from trueval.sweep.study import StudyCallback

log = logging.getLogger("trueval")


def target_data_config(config: DictConfig) -> DictConfig:
    """The ``data`` group with the target classes and fraction of the study."""
    data = OmegaConf.to_container(config.data, resolve=True)
    data.update(classes=list(config.transfer.target_classes), fraction=float(config.transfer.target_fraction))
    return OmegaConf.create(data)


def study_baselines(config: DictConfig, sweep_dir: Path) -> None:
    from trueval.sweep.transfer_study import BASELINES_DIR
    from trueval.tasks.baseline import run_baselines
    from trueval.models.linear_baselines import DEFAULT_CS, DEFAULT_MAX_ITER

    methods = [str(m) for m in config.transfer.get("baselines") or []]
    if not methods:
        return
    checkpoint = sweep_dir / str(config.transfer.checkpoint_subdir) / "last.ckpt"
    if not checkpoint.is_file():
        log.warning("no source checkpoint at %s: only the pixel baselines run", checkpoint)
        methods = [m for m in methods if not m.endswith("_features")]
    run_baselines(target_data_config(config), methods, str(checkpoint) if checkpoint.is_file() else None,
                  sweep_dir / BASELINES_DIR, int(config.seed),
                  [float(c) for c in config.transfer.get("baseline_C", DEFAULT_CS)],
                  int(config.transfer.get("baseline_max_iter", DEFAULT_MAX_ITER)))


class TransferStudyCallback(StudyCallback):
    """Register under ``hydra.callbacks`` (``experiment=transfer_quick`` / ``transfer_cifar`` do):
    the scikit-learn baselines, then the study's table."""

    module, what = "trueval.sweep.transfer_study", "transfer-study table"

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(str(config.hydra.sweep.dir))
        try:
            study_baselines(config, sweep_dir)
        except Exception:  # the networks' results are on disk; a failed baseline must not hide them
            log.exception("the scikit-learn baselines of %s failed", sweep_dir)
        super().on_multirun_end(config, **kwargs)
