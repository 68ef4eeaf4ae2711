"""DDP for Hydra jobs: every rank works in the job's one run directory, also inside a multirun.

Lightning's ``strategy="ddp"`` starts ranks 1..N-1 by re-running the command line with
``hydra.run.dir=<hydra.run.dir>``. In a multirun that command still holds ``-m`` and the sweep
lists, so each rank starts a sweep of its own in a sweep directory of its own (with trueval's
unique suffix); in a sweep run by a launcher process it even re-runs the launcher's worker.
``HydraDDPStrategy`` re-runs only this job instead: the app's command, the job's own overrides,
``hydra.run.dir=<the job's output dir>``, no ``.hydra`` copy, and a log file per rank.

It also makes a DDP fit leave no distributed state behind: the process group is destroyed at
teardown, so rank 0 can then test alone with a one-device Trainer (torchmetrics would otherwise
try to sync with ranks that have returned), and the launcher's environment variables
(``LOCAL_RANK``, ``WORLD_SIZE``...) are restored, so the next DDP job of an in-process sweep
spawns its ranks again instead of waiting for ranks that never come.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any, Callable
from unittest import mock

import torch
from omegaconf import OmegaConf
from pytorch_lightning.strategies import DDPStrategy
from pytorch_lightning.strategies.launchers import subprocess_script
from pytorch_lightning.strategies.launchers.subprocess_script import _SubprocessScriptLauncher

#: set by the gpu_pool launcher: how the Hydra app was started (its trial processes are workers)
APP_COMMAND_ENV = "TRUEVAL_APP_COMMAND"
_LAUNCH_ENV = ("MASTER_ADDR", "MASTER_PORT", "NODE_RANK", "LOCAL_RANK", "WORLD_SIZE")
# Hydra overrides of the launching command that only make sense for a sweep or are set per rank
_DROPPED_HYDRA_KEYS = ("hydra.sweep", "hydra/sweeper", "hydra.sweeper", "hydra/launcher", "hydra.launcher",
                       "hydra.run.dir", "hydra.job.name", "hydra.output_subdir", "hydra.mode", "hydra.callbacks")


def _quoted(value: str) -> str:
    """A value quoted for Hydra's override grammar (paths hold '=' and ',' in sweep job dirs)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def app_command() -> list[str]:
    """How the Hydra app was started: ``python train.py`` or ``python -m package``."""
    if os.environ.get(APP_COMMAND_ENV):
        return list(json.loads(os.environ[APP_COMMAND_ENV]))
    import __main__

    spec = getattr(__main__, "__spec__", None)
    if spec is not None and spec.name:
        return [sys.executable, "-m", spec.name]
    return [sys.executable, os.path.abspath(sys.argv[0])]


def _rank_log_file(hydra_cfg: Any, output_dir: str, local_rank: int) -> str | None:
    """``train.log`` -> ``train_rank1.log`` beside it: ranks must not append to rank 0's log file."""
    try:
        current = OmegaConf.select(hydra_cfg, "job_logging.handlers.file.filename", default=None)
    except Exception:  # noqa: BLE001 - an interpolation that only resolves in the full config
        current = None
    if current is None and OmegaConf.select(hydra_cfg, "job_logging.handlers.file", default=None) is None:
        return None
    stem, suffix = os.path.splitext(os.path.basename(str(current or f"{hydra_cfg.job.name}.log")))
    return os.path.join(output_dir, f"{stem}_rank{local_rank}{suffix or '.log'}")


def hydra_job_command(local_rank: int) -> tuple[list[str], str]:
    """(command, cwd) that re-runs the current Hydra job as ``local_rank`` in its own directory."""
    from hydra.core.hydra_config import HydraConfig

    hydra_cfg = HydraConfig.get()
    output_dir = str(hydra_cfg.runtime.output_dir)
    hydra_overrides = [o for o in hydra_cfg.overrides.hydra if not o.lstrip("+~").startswith(_DROPPED_HYDRA_KEYS)]
    command = app_command() + list(hydra_cfg.overrides.task) + hydra_overrides
    command += [
        f"hydra.run.dir={_quoted(output_dir)}",
        f"hydra.job.name={hydra_cfg.job.name}_rank{local_rank}",
        "hydra.output_subdir=null",
    ]
    log_file = _rank_log_file(hydra_cfg, output_dir, local_rank)
    if log_file is not None:
        command.append(f"hydra.job_logging.handlers.file.filename={_quoted(log_file)}")
    return command, str(hydra_cfg.runtime.cwd)


class _HydraJobLauncher(_SubprocessScriptLauncher):
    """Lightning's subprocess launcher with ``hydra_job_command`` for the child ranks."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.saved_env: dict[str, str | None] | None = None

    def launch(self, function: Callable, *args: Any, trainer: Any = None, **kwargs: Any) -> Any:
        if not self.cluster_environment.creates_processes_externally:
            self.saved_env = {name: os.environ.get(name) for name in _LAUNCH_ENV}
        with mock.patch.object(subprocess_script, "_hydra_subprocess_cmd", hydra_job_command):
            return super().launch(function, *args, trainer=trainer, **kwargs)

    def restore_env(self) -> None:
        """Undo the variables ``_call_children_scripts`` set in the launching process."""
        for name, value in (self.saved_env or {}).items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self.saved_env = None


class HydraDDPStrategy(DDPStrategy):
    """``DDPStrategy`` for Hydra apps (``configs/trainer/ddp.yaml``); see the module docstring."""

    def _configure_launcher(self) -> None:
        super()._configure_launcher()
        if type(self._launcher) is _SubprocessScriptLauncher:
            self._launcher = _HydraJobLauncher(self.cluster_environment, self.num_processes, self.num_nodes)

    def teardown(self) -> None:
        super().teardown()
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
        if isinstance(self._launcher, _HydraJobLauncher):
            self._launcher.restore_env()
