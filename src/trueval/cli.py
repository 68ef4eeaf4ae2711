"""The Hydra entry point shared by train.py, eval.py, audit.py and quality.py at the repository root."""

from __future__ import annotations

import importlib
import os
from pathlib import Path

TASKS = {"train": "trueval.tasks.train:train", "eval": "trueval.tasks.evaluate:evaluate",
         "audit": "trueval.tasks.audit:audit", "baseline": "trueval.tasks.baseline:baseline",
         "quality": "trueval.tasks.quality:quality"}


def main(name: str, root: Path) -> None:
    """Compose ``configs/<name>.yaml`` under ``root`` with the command line and run the task."""
    import hydra
    from omegaconf import DictConfig

    from trueval.tasks.knobs import with_checked_knobs
    from trueval.tasks.runner import run_task
    from trueval.utils.resolvers import register_resolvers

    os.environ.setdefault("PROJECT_ROOT", str(root))
    register_resolvers()
    module, func = TASKS[name].split(":")
    task = with_checked_knobs(getattr(importlib.import_module(module), func))

    @hydra.main(version_base="1.3", config_path=str(root / "configs"), config_name=name)
    def _main(cfg: DictConfig) -> float:
        return run_task(task, cfg)

    _main()
