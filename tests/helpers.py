"""Shared test helpers: compose the real configs, run tasks in-process or as the CLI does."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"

# quick, offline defaults for every in-process run
FAST = ["trainer.accelerator=cpu", "extras.print_config=false", "extras.print_metrics=false"]


def compose_cfg(config_name: str, overrides: list[str], output_dir: Path, log_dir: Path | None = None) -> DictConfig:
    """The config train.py would see, with the run directory set to ``output_dir``."""
    from trueval.utils.resolvers import register_resolvers

    register_resolvers()
    GlobalHydra.instance().clear()
    log_dir = log_dir or output_dir.parent / "logs"
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        cfg = compose(config_name=config_name, return_hydra_config=True,
                      overrides=[f"paths.log_dir={log_dir}", f"paths.cache_dir={output_dir.parent / 'cache'}",
                                 *overrides])
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(output_dir)
        cfg.hydra.job.num = 0
    HydraConfig.instance().set_config(cfg)
    output_dir.mkdir(parents=True, exist_ok=True)
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg


def run_inprocess(task: Callable, config_name: str, overrides: list[str], output_dir: Path) -> tuple[float, dict]:
    """Run a task like its script does; returns (returned value, metrics.json)."""
    from trueval.tasks.runner import run_task

    cfg = compose_cfg(config_name, FAST + overrides, output_dir)
    value = run_task(task, cfg)
    return value, json.loads((output_dir / "metrics.json").read_text())


def run_cli(script: str, args: list[str], cwd: Path = ROOT, timeout: int = 300,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run a root script in a subprocess, exactly as a user types it."""
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    return subprocess.run([sys.executable, str(ROOT / script), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=full_env)


def load_ckpt(path: str | Path) -> dict[str, Any]:
    return torch.load(path, map_location="cpu", weights_only=True)


def only_run_dir(base: Path) -> Path:
    """The one run directory under ``base`` (logs/<task>/runs/<time>)."""
    dirs = [p.parent for p in base.rglob("metrics.json")]
    assert len(dirs) == 1, dirs
    return dirs[0]


requires_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
