"""Wall-clock time per epoch and in total, and training throughput.

Depth studies compare training time across networks; these numbers are logged every epoch and end
up in metrics.json (``time/epoch_seconds``, ``time/total_seconds``, ``time/samples_per_second``).
On CUDA the clock is read after a synchronisation at epoch boundaries only (never per step), so the
times include the queued GPU work without slowing training down.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.trainer.states import TrainerFn

from trueval.core.batches import BatchGroup


def batch_size_of(batch: Any) -> int:
    """Number of samples in a batch, read from shapes only (no device sync).

    Handles collated classification batches (``[x, y]``, ``{"image": x, ...}``) and detection
    batches (``(images, targets)`` as per-sample lists). Lightning's ``extract_batch_size`` takes
    the first tensor it finds, which for a list of images is the channel count, hence this helper.
    """
    if isinstance(batch, BatchGroup):
        return batch.num_samples
    if isinstance(batch, torch.Tensor):
        return int(batch.shape[0]) if batch.ndim else 1
    if isinstance(batch, Mapping):
        return batch_size_of(next(iter(batch.values()))) if batch else 0
    if isinstance(batch, Sequence) and not isinstance(batch, str) and batch:
        first = batch[0]
        if isinstance(first, torch.Tensor):
            return int(first.shape[0]) if first.ndim else len(batch)
        if isinstance(first, (list, tuple)):
            return len(first)  # (images, targets): one entry per sample
        if isinstance(first, Mapping):
            return len(batch)  # a list of per-sample dicts
    return 0


def _sync(pl_module: pl.LightningModule) -> None:
    if pl_module.device.type == "cuda":
        torch.cuda.synchronize(pl_module.device)


class EpochTimer(pl.Callback):
    """Logs ``time/epoch_seconds`` (train + validation of the epoch), ``time/total_seconds``
    (since the start of fit) and ``time/samples_per_second`` (training samples over the time of
    the training batches) at the end of every training epoch.
    """

    def __init__(self) -> None:
        super().__init__()
        self.epoch_seconds: list[float] = []
        self.samples_per_second: list[float] = []
        self.total_seconds: float = 0.0
        self._fit_start = 0.0
        self._epoch_start = 0.0
        self._train_end: float | None = None
        self._samples = 0

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._fit_start = time.perf_counter()

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        _sync(pl_module)
        self._epoch_start = time.perf_counter()
        self._train_end = None
        self._samples = 0

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any,
                           batch: Any, batch_idx: int) -> None:
        # every rank sees its own shard under DDP: count them all
        self._samples += batch_size_of(batch) * trainer.world_size

    def on_validation_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # validation inside a training epoch ends its training part
        fitting = trainer.state.fn == TrainerFn.FITTING
        if fitting and not trainer.sanity_checking and self._train_end is None:
            _sync(pl_module)
            self._train_end = time.perf_counter()

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        _sync(pl_module)
        now = time.perf_counter()
        train_seconds = (self._train_end or now) - self._epoch_start
        self.epoch_seconds.append(now - self._epoch_start)
        self.samples_per_second.append(self._samples / train_seconds if train_seconds > 0 else 0.0)
        self.total_seconds = now - self._fit_start
        for key, value in self.metrics().items():
            pl_module.log(key, value, on_step=False, on_epoch=True, logger=True, sync_dist=False)

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.total_seconds = time.perf_counter() - self._fit_start

    def metrics(self) -> dict[str, float]:
        """Last epoch's time and throughput, mean epoch time, and total fit time so far."""
        if not self.epoch_seconds:
            return {}
        return {
            "time/epoch_seconds": self.epoch_seconds[-1],
            "time/epoch_seconds_mean": sum(self.epoch_seconds) / len(self.epoch_seconds),
            # the first epoch pays cuDNN autotuning, CUDA-graph recording and compilation
            "time/first_epoch_seconds": self.epoch_seconds[0],
            "time/samples_per_second": self.samples_per_second[-1],
            "time/total_seconds": self.total_seconds,
        }
