"""Scheduled lookahead: pull the weights towards a slow average, harder as training ends.

airbench94 (Keller Jordan, 2024) ends its short CIFAR-10 runs this way: every few optimizer steps
the slow copy moves towards the weights, ``slow = lerp(weights, slow, decay)``, and the weights are
reset to it; ``decay`` grows from 0 to about 0.77 as ``(progress) ** 3``, so the first part of the
run is untouched and the last part averages over its last few hundred steps. The last batch of
the fit leaves the weights equal to the slow copy, so validation, test and checkpoints use it.

Written here because the library versions do not do this: timm's ``Lookahead`` optimizer (Zhang
et al. 2019) uses a fixed pull and averages parameters only; the recipe schedules the pull and also
averages the BatchNorm running statistics (a float buffer is averaged like a parameter).
Lightning's ``EMAWeightAveraging`` keeps the average beside the weights and never resets them.
"""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch

from trueval.core.errors import UserError


class Lookahead(pl.Callback):
    """Every ``every_n_steps`` optimizer steps: ``slow = lerp(weights, slow, decay)``; ``weights = slow``.

    ``decay = decay_per_step ** steps_since_last_update * progress ** power`` where ``progress`` is
    the share of the fit's batches done (0 to 1). airbench94 uses every 5 steps, 0.95 and 3.
    A fit cut short (``max_steps``, ``max_time``, early stopping) ends on its last weights, which the
    last update pulled towards the slow copy.
    """

    def __init__(self, every_n_steps: int = 5, decay_per_step: float = 0.95, power: float = 3.0) -> None:
        if isinstance(every_n_steps, bool) or not isinstance(every_n_steps, int) or every_n_steps < 1:
            raise UserError(f"must be a positive integer, got {every_n_steps!r}", key="callbacks.lookahead.every_n_steps")
        if not 0.0 <= float(decay_per_step) <= 1.0:
            raise UserError(f"must be in [0, 1], got {decay_per_step!r}", key="callbacks.lookahead.decay_per_step")
        if float(power) < 0:
            raise UserError(f"must be non-negative, got {power!r}", key="callbacks.lookahead.power")
        self.every_n_steps = every_n_steps
        self.decay_per_step = float(decay_per_step)
        self.power = float(power)
        self.updates = 0
        self._last_step = 0
        self._slow: list[torch.Tensor] | None = None
        self._current: list[torch.Tensor] = []  # the module's tensors the slow copy mirrors
        self._restored: list[torch.Tensor] | None = None

    @staticmethod
    def _tracked(pl_module: pl.LightningModule) -> list[torch.Tensor]:
        """The parameters and floating-point buffers (BatchNorm statistics), in a fixed order."""
        tensors = [p.data for p in pl_module.parameters()]
        tensors += [b for b in pl_module.buffers() if b.is_floating_point()]
        return tensors

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.max_epochs is None or trainer.max_epochs < 1:
            raise UserError("the lookahead schedule follows the fit's progress in epochs: set trainer.max_epochs",
                            key="trainer.max_epochs")

    def _progress(self, trainer: pl.Trainer, batch_idx: int) -> float:
        per_epoch = max(1, int(trainer.num_training_batches))
        done = trainer.current_epoch + min(1.0, (batch_idx + 1) / per_epoch)
        return min(1.0, done / float(trainer.max_epochs))

    @torch.no_grad()
    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        step = int(trainer.global_step)
        progress = self._progress(trainer, batch_idx)
        last = progress >= 1.0
        if step - self._last_step < self.every_n_steps and not last:
            return
        if self._slow is None:
            self._current = current = self._tracked(pl_module)
            # taken at the first update, after any initialisation from the first batch (whitening)
            restored, self._restored = self._restored, None
            if restored is not None and [r.shape for r in restored] == [t.shape for t in current]:
                self._slow = [r.to(device=t.device, dtype=t.dtype) for r, t in zip(restored, current)]
            else:  # nothing restored, or a checkpoint of another network: start from the weights
                self._slow = [t.detach().clone() for t in current]
        current = self._current
        decay = 1.0 if last else self.decay_per_step ** (step - self._last_step) * progress**self.power
        self._last_step = step
        # slow = weights + (slow - weights) * decay, i.e. lerp(weights, slow, decay); then weights = slow
        torch._foreach_lerp_(self._slow, current, 1.0 - decay)
        torch._foreach_copy_(current, self._slow)
        self.updates += 1

    # the slow copy is part of the training state: a resumed run continues the same average
    def state_dict(self) -> dict[str, Any]:
        return {"last_step": self._last_step, "updates": self.updates,
                "slow": [t.detach().cpu() for t in self._slow] if self._slow is not None else None}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._last_step = int(state_dict.get("last_step", 0))
        self.updates = int(state_dict.get("updates", 0))
        slow = state_dict.get("slow")
        self._restored = list(slow) if slow is not None else None
