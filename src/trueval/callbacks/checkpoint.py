"""Checkpoints a resumed run can rely on: ``last.ckpt`` is the last completed epoch, never half a file.

Two gaps in pytorch-lightning 2.6 that this module closes:

- ``ModelCheckpoint(save_last=True)`` with a monitored top-k rewrites ``last.ckpt`` only at the
  steps where a top-k checkpoint was saved, i.e. when the monitored metric improved, so after a
  plateau ``last.ckpt`` is several epochs old and a resume repeats them (``save_last="link"`` links
  to that same stale top-k file). ``ModelCheckpoint`` below also writes ``last.ckpt`` at every
  epoch end where the parent skipped it.
- ``TorchCheckpointIO`` writes the final path in place, so a full disk leaves a truncated,
  unloadable checkpoint. ``AtomicCheckpointIO`` writes a temporary file beside it and renames it
  over the old one only when the whole file is on disk; a failed write removes the temporary
  file, keeps the previous checkpoint and says in one line what could not be written.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional

import pytorch_lightning as pl
import torch
from lightning_fabric.utilities.cloud_io import _is_local_file_protocol
from pytorch_lightning.plugins.io import TorchCheckpointIO

from trueval.utils.run_record import write_atomically


class ModelCheckpoint(pl.callbacks.ModelCheckpoint):
    """Lightning's ModelCheckpoint, with ``last.ckpt`` rewritten at the end of every epoch."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._last_written_step = -1

    def _save_last_checkpoint(self, trainer: pl.Trainer, monitor_candidates: dict[str, torch.Tensor]) -> None:
        super()._save_last_checkpoint(trainer, monitor_candidates)
        if self.save_last:
            self._last_written_step = trainer.global_step

    def _last_is_stale(self, trainer: pl.Trainer) -> bool:
        return bool(self.save_last) and self._last_written_step != trainer.global_step

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        due = not self._should_skip_saving_checkpoint(trainer) and not self._should_save_on_train_epoch_end(trainer)
        super().on_validation_end(trainer, pl_module)  # top-k first: last.ckpt must carry its state
        if due and self._last_is_stale(trainer):
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        due = not self._should_skip_saving_checkpoint(trainer) and self._should_save_on_train_epoch_end(trainer)
        super().on_train_epoch_end(trainer, pl_module)
        if due and self._last_is_stale(trainer):
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))


def _save_synced(checkpoint: dict[str, Any], path: Path) -> None:
    with open(path, "wb") as fh:
        torch.save(checkpoint, fh)
        fh.flush()
        os.fsync(fh.fileno())  # the rename must not reach the disk before the data


class AtomicCheckpointIO(TorchCheckpointIO):
    """Checkpoints written to a temporary file and renamed: a reader sees the old or the new one."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Optional[Any] = None) -> None:
        if storage_options is not None or not _is_local_file_protocol(path):
            super().save_checkpoint(checkpoint, path, storage_options)  # remote stores: fsspec's transaction
            return
        write_atomically(Path(path), lambda tmp: _save_synced(checkpoint, tmp))
