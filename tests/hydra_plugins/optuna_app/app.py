"""A tiny Hydra app for Optuna sweeper tests: a known objective, metrics.json like trueval's train task."""

from __future__ import annotations

import json
import math
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from trueval.utils.resolvers import register_resolvers

register_resolvers()


@hydra.main(version_base="1.3", config_path=".", config_name="config")
def main(cfg: DictConfig) -> float:
    lr, bonus = float(cfg.optimizer.lr), {"adam": 0.1, "sgd": 0.0}[cfg.optimizer.name]
    failed = lr > cfg.fail_above_lr
    value = math.nan if failed else 1.0 - (math.log10(lr) + 3) ** 2 / 10 + bonus - cfg.data.batch_size / 1000
    out = Path(HydraConfig.get().runtime.output_dir)
    record = {"status": "failed" if failed else "ok", "error": "NonFiniteLossError: injected" if failed else None,
              "overrides": list(HydraConfig.get().overrides.task), "seed": 0,
              "metrics": {"val/acc_best": None if failed else value}, "wall_seconds": 0.1, "versions": {}}
    (out / "metrics.json").write_text(json.dumps(record))
    return value


if __name__ == "__main__":
    main()
