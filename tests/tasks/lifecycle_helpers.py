"""Test-only callbacks that interrupt a run at a chosen step, in-process or in a train.py subprocess.

Importable by a subprocess when tests/tasks is on PYTHONPATH: ``+callbacks.kill._target_=lifecycle_helpers.SendSignal``.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import pytorch_lightning as pl


class SendSignal(pl.Callback):
    """Sends ``signum`` to this process ``times`` times after training batch ``at_step`` (global step).

    Once per run directory (a marker file there), so the resumed run, which must keep the same
    overrides, trains on undisturbed.
    """

    def __init__(self, at_step: int, signum: str = "SIGTERM", times: int = 1) -> None:
        self.at_step, self.signum, self.times = int(at_step), getattr(signal, signum), int(times)
        self.sent = False

    def on_train_batch_end(self, trainer: pl.Trainer, *args: Any) -> None:
        marker = Path(trainer.default_root_dir) / ".signal_sent"
        if not self.sent and trainer.global_step >= self.at_step and not marker.exists():
            self.sent = True
            marker.touch()
            for _ in range(self.times):
                os.kill(os.getpid(), self.signum)


class Sleep(pl.Callback):
    """Makes every epoch last at least ``seconds`` longer, so a test can kill the process between epochs."""

    def __init__(self, seconds: float) -> None:
        self.seconds = float(seconds)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        time.sleep(self.seconds)
