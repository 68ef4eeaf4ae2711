"""NonFiniteLossGuard: a NaN/inf training loss stops fit at once, naming the global step."""

from __future__ import annotations

import math

import pytest
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, TensorDataset

from trueval.callbacks.nonfinite import NonFiniteLossGuard
from trueval.core.errors import NonFiniteLossError


class Regression(pl.LightningModule):
    """Linear regression; ``poison_step`` multiplies the loss by NaN/inf at that global step."""

    def __init__(self, lr: float = 0.01, poison_step: int | None = None, poison: float = math.nan) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(4, 1)
        self.lr, self.poison_step, self.poison = lr, poison_step, poison
        self.steps_run = 0

    def training_step(self, batch, batch_idx):  # noqa: ANN001, ANN201
        x, y = batch
        loss = torch.nn.functional.mse_loss(self.layer(x), y)
        self.steps_run += 1
        if self.global_step == self.poison_step:
            loss = loss * self.poison
        return {"loss": loss}

    def configure_optimizers(self):  # noqa: ANN201
        return torch.optim.SGD(self.parameters(), lr=self.lr)


def loader(n: int = 64) -> DataLoader:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(n, 4, generator=generator)
    return DataLoader(TensorDataset(x, x.sum(1, keepdim=True) * 10), batch_size=8)


def fit(model: pl.LightningModule, guard: NonFiniteLossGuard, epochs: int = 3) -> pl.Trainer:
    trainer = pl.Trainer(max_epochs=epochs, accelerator="cpu", callbacks=[guard], logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(model, loader())
    return trainer


def test_nan_stops_training_at_the_offending_step() -> None:
    model = Regression(poison_step=5)
    with pytest.raises(NonFiniteLossError, match=r"\(nan\) at global step 5 \(epoch 0\)"):
        fit(model, NonFiniteLossGuard())
    assert model.steps_run == 6  # steps 0..5: nothing after the bad one on CPU


def test_inf_in_a_later_epoch_names_step_and_epoch() -> None:
    model = Regression(poison_step=11, poison=math.inf)
    with pytest.raises(NonFiniteLossError, match=r"\(inf\) at global step 11 \(epoch 1\)"):
        fit(model, NonFiniteLossGuard())


def test_sparse_checks_still_name_the_first_bad_step() -> None:
    model = Regression(poison_step=1)
    with pytest.raises(NonFiniteLossError, match="at global step 1 "):
        fit(model, NonFiniteLossGuard(check_every_n_steps=4))
    assert model.steps_run == 4  # detected at the first host check, after 4 steps


def test_diverging_learning_rate_is_caught() -> None:
    with pytest.raises(NonFiniteLossError, match="global step"):
        fit(Regression(lr=1e4), NonFiniteLossGuard(), epochs=20)


def test_finite_training_runs_to_the_end() -> None:
    model = Regression()
    trainer = fit(model, NonFiniteLossGuard(), epochs=2)
    assert trainer.global_step == 16 and model.steps_run == 16


def test_interval_must_be_positive() -> None:
    with pytest.raises(ValueError):
        NonFiniteLossGuard(check_every_n_steps=0)
