"""``StopOnSignal``: the Lightning side of ``trueval.utils.signals`` (a signal during a loop stops the
run at the next batch boundary). Kept apart so that the runner, which every task imports, does
not import Lightning."""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl

from trueval.utils.signals import HANDLED, RunInterrupted, SignalGuard, interruption_signal  # noqa: F401


class StopOnSignal(pl.Callback):
    """Defers the guard's first signal to the next batch boundary of fit, validate or test."""

    def __init__(self, guard: SignalGuard | None) -> None:
        self.guard = guard

    def _defer(self, on: bool) -> None:
        if self.guard is not None:
            self.guard.deferring = on
            if not on:
                self._check()

    def _check(self) -> None:
        if self.guard is not None and self.guard.pending() is not None:
            raise RunInterrupted(self.guard.pending())

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self._defer(True)

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        # a signal that came during the loop's last steps still stops the run here
        self._defer(False)

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        if self.guard is not None:
            self.guard.deferring = False

    def on_train_batch_start(self, trainer: pl.Trainer, *args: Any) -> None:
        self._check()

    def on_train_batch_end(self, trainer: pl.Trainer, *args: Any) -> None:
        self._check()

    def on_validation_batch_end(self, trainer: pl.Trainer, *args: Any) -> None:
        self._check()

    def on_test_batch_end(self, trainer: pl.Trainer, *args: Any) -> None:
        self._check()
