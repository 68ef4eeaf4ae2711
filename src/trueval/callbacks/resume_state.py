"""What a checkpoint needs so that a resumed run continues exactly as if it had never stopped.

Lightning restores weights, optimizer, schedulers, loop counters and callback states. Two things
it does not restore, and what this callback does about them:

- Running trackers of the module (``MaxMetric``/``MinMetric``, e.g. ``val_acc_best``): torchmetrics
  states are not in ``state_dict`` (and adding them would change the weights' keys for eval.py),
  so a resumed run restarted ``val/acc_best`` from scratch. Their states ride in
  ``checkpoint["trueval_trackers"]`` (plain tensors, loadable with ``weights_only=True``).
- Random draws (dropout, CPU-side augmentation): the global generators continue from wherever
  the process got to, so epoch k of a resumed run drew other numbers than epoch k of an unbroken
  one. At the start of every training epoch they are seeded from (run seed, epoch), so epoch k's
  draws depend on nothing else. (Data order: the loaders' samplers do the same, see
  ``trueval.data.gpu_loader``.)
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from torchmetrics import MaxMetric, MinMetric

from trueval.core.seeds import epoch_seed

TRACKERS_KEY = "trueval_trackers"


class ExactResume(pl.Callback):
    """Per-epoch seeding of the global generators and the module's best-so-far trackers in checkpoints."""

    def __init__(self, seed: int) -> None:
        self.seed = int(seed)

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # stream 1: not the stream the data order uses
        s = epoch_seed(self.seed, trainer.current_epoch, stream=1)
        torch.manual_seed(s)  # also every CUDA device's generator
        np.random.seed(s & 0xFFFFFFFF)
        random.seed(s)

    @staticmethod
    def _trackers(pl_module: pl.LightningModule) -> dict[str, Any]:
        return {name: m for name, m in pl_module.named_modules() if isinstance(m, (MaxMetric, MinMetric))}

    def on_save_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]) -> None:
        checkpoint[TRACKERS_KEY] = {
            name: {"state": {k: getattr(m, k).detach().clone().cpu() for k in m._defaults},
                   "update_count": int(m._update_count)}
            for name, m in self._trackers(pl_module).items()}

    def on_load_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]) -> None:
        stored = checkpoint.get(TRACKERS_KEY) or {}
        for name, metric in self._trackers(pl_module).items():
            entry = stored.get(name)
            if not entry:
                continue
            for key, value in entry["state"].items():
                current = getattr(metric, key)
                setattr(metric, key, value.to(device=current.device, dtype=current.dtype))
            metric._update_count = int(entry["update_count"])
            metric._computed = None
