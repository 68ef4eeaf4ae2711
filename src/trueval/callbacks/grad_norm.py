"""Gradient norms per epoch: the quantity depth studies plot to show vanishing gradients.

``train/grad_norm_sum`` is the sum over parameters of each parameter's gradient L2 norm, averaged
over the optimizer steps of the epoch. Per-layer norms go to TensorBoard as histograms. Norms are
accumulated on the device and read back once per epoch, so the callback adds no host-device sync
per step.
"""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.loggers import TensorBoardLogger
from pytorch_lightning.utilities import rank_zero_only
from torch.optim import Optimizer


def parameter_grad_norms(params: list[torch.nn.Parameter]) -> torch.Tensor:
    """L2 norm of each parameter's gradient as one device vector (0 where there is no gradient)."""
    grads = [p.grad for p in params]
    present = [g for g in grads if g is not None]
    if not present:
        return torch.zeros(len(params), device=params[0].device)
    # one fused kernel for all parameters (the same call clip_grad_norm_ uses)
    norms = iter(torch._foreach_norm([g.detach() for g in present]))
    zero = present[0].new_zeros((), dtype=torch.float32)
    return torch.stack([next(norms).float() if g is not None else zero for g in grads])


class GradNormMonitor(pl.Callback):
    """Logs ``train/grad_norm_sum`` (and its first/last epoch values) and per-layer histograms.

    Args:
        histograms: write one TensorBoard histogram per weight tensor (the norms of its gradient
            over the steps of the epoch) and one across layers (``grad_norm/layers``).
        include_bias: also histogram biases and norm parameters (the sum always includes them).
    """

    def __init__(self, histograms: bool = True, include_bias: bool = False) -> None:
        super().__init__()
        self.histograms = histograms
        self.include_bias = include_bias
        self.history: list[float] = []  # grad_norm_sum of every finished epoch
        self._names: list[str] = []
        self._params: list[torch.nn.Parameter] = []
        self._steps: list[torch.Tensor] = []

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        named = [(n, p) for n, p in pl_module.named_parameters() if p.requires_grad]
        self._names = [n for n, _ in named]
        self._params = [p for _, p in named]

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._steps = []

    def on_before_optimizer_step(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                                 optimizer: Optimizer) -> None:
        # gradients are complete (and unscaled under mixed precision) here; stays on the device
        if self._params:
            self._steps.append(parameter_grad_norms(self._params))

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not self._steps:
            return
        per_step = torch.stack(self._steps).cpu()  # the one sync of the epoch
        self._steps = []
        epoch_sum = float(per_step.sum(dim=1).mean())
        self.history.append(epoch_sum)
        for key, value in self.metrics().items():
            pl_module.log(key, value, on_step=False, on_epoch=True, logger=True, sync_dist=False)
        if self.histograms:
            self._log_histograms(trainer, per_step)

    def metrics(self) -> dict[str, float]:
        """Current values: train/grad_norm_sum (last epoch) and its first and last epoch values."""
        if not self.history:
            return {}
        return {"train/grad_norm_sum": self.history[-1], "train/grad_norm_sum_first": self.history[0],
                "train/grad_norm_sum_last": self.history[-1]}

    @rank_zero_only
    def _log_histograms(self, trainer: pl.Trainer, per_step: torch.Tensor) -> None:
        writers = [lg.experiment for lg in trainer.loggers if isinstance(lg, TensorBoardLogger)]
        if not writers:
            return
        keep = [i for i, p in enumerate(self._params) if self.include_bias or p.ndim > 1]
        epoch = trainer.current_epoch
        for writer in writers:
            writer.add_histogram("grad_norm/layers", per_step[:, keep].mean(dim=0), epoch)
            for i in keep:
                writer.add_histogram(f"grad_norm/{self._names[i]}", per_step[:, i], epoch)

    def state_dict(self) -> dict[str, Any]:
        return {"history": list(self.history)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.history = list(state_dict.get("history", []))
