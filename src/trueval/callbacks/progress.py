"""A rich progress bar in a terminal, one plain line per epoch otherwise (CI logs, sweeps, nohup)."""

from __future__ import annotations

import logging
import sys

import pytorch_lightning as pl
from pytorch_lightning.callbacks import Callback, RichProgressBar

log = logging.getLogger("trueval")


class EpochLogger(Callback):
    """Logs each epoch's metrics as one line: readable in a file, no carriage returns.

    The line for epoch N is written when epoch N+1 starts (or training ends), because Lightning
    runs callbacks' epoch-end hooks before the module has logged that epoch's metrics.
    """

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.current_epoch > 0:
            self._line(trainer, trainer.current_epoch)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._line(trainer, trainer.current_epoch)

    @staticmethod
    def _line(trainer: pl.Trainer, epoch: int) -> None:
        if not trainer.is_global_zero:
            return
        shown = {k: v for k, v in trainer.callback_metrics.items()
                 if k in ("train/loss", "train/acc", "val/loss", "val/acc", "val/acc_best", "val/map50")
                 and v.numel() == 1}
        parts = [f"{k}={float(v):.4f}" for k, v in sorted(shown.items())]
        log.info("epoch %d/%d %s", epoch, trainer.max_epochs or -1, " ".join(parts))


def make_progress_bar(refresh_rate: int = 10) -> Callback:
    """RichProgressBar when stdout is a terminal, else an EpochLogger."""
    if sys.stdout.isatty():
        return RichProgressBar(refresh_rate=refresh_rate, leave=True)
    return EpochLogger()
