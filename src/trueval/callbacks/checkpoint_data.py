"""Stores what eval.py needs to stay honest inside every checkpoint: the train-split fingerprint.

A callback rather than a LightningModule hook so that classifier and detector checkpoints carry
the same ``checkpoint["trueval"]`` entry. Plain data only (``torch.load(weights_only=True)``).
"""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl


class TruevalCheckpointData(pl.Callback):
    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data

    def on_save_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]) -> None:
        checkpoint["trueval"] = self.data
