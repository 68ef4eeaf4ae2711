"""EpochTimer: seconds per epoch and in total, samples per second, in the logged metrics."""

from __future__ import annotations

import time

import pytest
import pytorch_lightning as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from trueval.callbacks.timing import EpochTimer, batch_size_of

SLEEP = 0.01  # per training step, so the expected times are known


class Sleepy(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.layer = nn.Linear(4, 2)

    def training_step(self, batch, batch_idx):  # noqa: ANN001, ANN201
        time.sleep(SLEEP)
        x, y = batch
        return nn.functional.cross_entropy(self.layer(x), y)

    def validation_step(self, batch, batch_idx):  # noqa: ANN001, ANN201
        time.sleep(SLEEP)

    def configure_optimizers(self):  # noqa: ANN201
        return torch.optim.SGD(self.parameters(), lr=0.1)


def loader(n: int) -> DataLoader:
    return DataLoader(TensorDataset(torch.randn(n, 4), torch.randint(0, 2, (n,))), batch_size=10)


def test_times_and_throughput() -> None:
    timer = EpochTimer()
    trainer = pl.Trainer(max_epochs=2, accelerator="cpu", callbacks=[timer], logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                         num_sanity_val_steps=0)
    started = time.perf_counter()
    trainer.fit(Sleepy(), loader(50), loader(30))
    elapsed = time.perf_counter() - started
    assert len(timer.epoch_seconds) == 2
    # 5 train steps + 3 validation steps sleep 8 x SLEEP per epoch
    assert all(s >= 8 * SLEEP for s in timer.epoch_seconds)
    assert sum(timer.epoch_seconds) <= timer.total_seconds <= elapsed
    # 50 samples in at least 5 x SLEEP, and the validation time is not charged to training
    assert 0 < timer.samples_per_second[-1] <= 50 / (5 * SLEEP)
    assert timer.samples_per_second[-1] > 50 / timer.epoch_seconds[-1]
    metrics = trainer.callback_metrics
    for key in ("time/epoch_seconds", "time/total_seconds", "time/samples_per_second", "time/epoch_seconds_mean"):
        assert key in metrics and float(metrics[key]) > 0
    assert float(metrics["time/epoch_seconds"]) == pytest.approx(timer.epoch_seconds[-1])


def test_batch_size_of_common_batch_shapes() -> None:
    x = torch.zeros(7, 3)
    assert batch_size_of(x) == 7
    assert batch_size_of((x, torch.zeros(7))) == 7
    assert batch_size_of({"image": x, "label": torch.zeros(7)}) == 7
    assert batch_size_of([x, torch.zeros(7)]) == 7  # default_collate turns tuples into lists
    # detection: (images, targets) as per-sample lists; the images' channel count must not be taken
    images, targets = [torch.zeros(3, 20, 30)] * 4, [{"boxes": torch.zeros(2, 4)}] * 4
    assert batch_size_of((images, targets)) == 4
    assert batch_size_of(targets) == 4
