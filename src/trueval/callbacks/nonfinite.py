"""Stop a trial at once when the training loss becomes NaN or infinite.

A diverged trial should fail fast with a message naming the step, instead of burning its epochs on
NaNs and reporting a "result". Reading the loss on the host every step would force a GPU sync, so
the first non-finite step is recorded on the device (``torch.where``, no sync) and the host looks at
it every ``check_every_n_steps`` steps (1 on CPU, where there is nothing to sync), at validation and
at the end of each epoch. Under DDP the decision is reduced over ranks, so all ranks stop together.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytorch_lightning as pl
import torch

from trueval.core.errors import NonFiniteLossError

#: host check interval on accelerators when ``check_every_n_steps`` is not given
DEFAULT_ACCELERATOR_INTERVAL = 25


class NonFiniteLossGuard(pl.Callback):
    """Raise ``NonFiniteLossError`` (global step and epoch in the message) on a NaN/inf train loss."""

    def __init__(self, check_every_n_steps: int | None = None) -> None:
        if check_every_n_steps is not None and check_every_n_steps < 1:
            raise ValueError("check_every_n_steps must be >= 1 or None")
        self.check_every_n_steps = check_every_n_steps
        self._interval = 1
        self._steps_since_check = 0
        self._batch_step = 0
        self._batch_epoch = 0
        self._first_step: torch.Tensor | None = None
        self._first_epoch: torch.Tensor | None = None
        self._first_value: torch.Tensor | None = None

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        on_cpu = trainer.strategy.root_device.type == "cpu"
        self._interval = self.check_every_n_steps or (1 if on_cpu else DEFAULT_ACCELERATOR_INTERVAL)
        self._steps_since_check = 0
        self._first_step = self._first_epoch = self._first_value = None

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int) -> None:
        self._batch_step = trainer.global_step
        self._batch_epoch = trainer.current_epoch

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        loss = outputs.get("loss") if isinstance(outputs, Mapping) else outputs
        if not isinstance(loss, torch.Tensor):
            return
        # a vector holds one loss per optimizer step (data.steps_per_call > 1): name the exact step
        values = loss.detach().float().reshape(-1)
        if self._first_step is None:
            self._first_step = torch.full((), -1, dtype=torch.long, device=values.device)
            self._first_epoch = torch.full((), -1, dtype=torch.long, device=values.device)
            self._first_value = torch.zeros((), dtype=torch.float32, device=values.device)
        bad = ~torch.isfinite(values)
        offset = bad.to(torch.int32).argmax()  # first non-finite entry (0 when none)
        value = values.gather(0, offset.view(1)).squeeze(0)  # gather, not values[offset]: no sync
        first = (self._first_step < 0) & bad.any()
        self._first_step = torch.where(first, offset + self._batch_step, self._first_step)
        self._first_epoch = torch.where(first, self._batch_epoch, self._first_epoch)
        self._first_value = torch.where(first, value, self._first_value)
        self._steps_since_check += 1
        if self._steps_since_check >= self._interval:
            self._check(trainer)

    def on_validation_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.sanity_checking:
            self._check(trainer)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._check(trainer)

    def _check(self, trainer: pl.Trainer) -> None:
        """The one host sync: raise if this rank (or, under DDP, any rank) saw a non-finite loss."""
        self._steps_since_check = 0
        seen_here = self._first_step is not None and int(self._first_step) >= 0
        seen_anywhere = trainer.strategy.reduce_boolean_decision(seen_here, all=False)
        if not seen_anywhere:
            return
        if not seen_here:
            raise NonFiniteLossError("non-finite training loss on another rank; the trial is stopped")
        assert self._first_epoch is not None and self._first_value is not None
        raise NonFiniteLossError(
            f"non-finite training loss ({float(self._first_value)}) at global step {int(self._first_step)} "
            f"(epoch {int(self._first_epoch)}); the trial is stopped. Lower optimizer.lr, set "
            "trainer.gradient_clip_val, or check the inputs for NaNs."
        )
