"""GradNormMonitor: finite per-epoch sums, first/last values, per-layer TensorBoard histograms."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from pytorch_lightning.loggers import TensorBoardLogger
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from trueval.callbacks.grad_norm import GradNormMonitor, parameter_grad_norms


class Tiny(pl.LightningModule):
    def __init__(self, lr: float = 0.05) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 3))
        self.frozen = nn.Linear(2, 2).requires_grad_(False)
        self.lr = lr

    def training_step(self, batch, batch_idx):  # noqa: ANN001, ANN201
        x, y = batch
        return nn.functional.cross_entropy(self.net(x), y)

    def configure_optimizers(self):  # noqa: ANN201
        return torch.optim.SGD(self.net.parameters(), lr=self.lr)


def loader() -> DataLoader:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(96, 6, generator=g)
    return DataLoader(TensorDataset(x, (x[:, 0] > 0).long() + (x[:, 1] > 0).long()), batch_size=16)


def fit(tmp_path: Path, monitor: GradNormMonitor, epochs: int = 3) -> pl.Trainer:
    trainer = pl.Trainer(max_epochs=epochs, accelerator="cpu", callbacks=[monitor],
                         logger=TensorBoardLogger(str(tmp_path), name="tb"), enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, log_every_n_steps=1)
    trainer.fit(Tiny(), loader())
    return trainer


def test_logs_finite_sums_per_epoch(tmp_path: Path) -> None:
    monitor = GradNormMonitor()
    trainer = fit(tmp_path, monitor)
    assert len(monitor.history) == 3
    assert all(math.isfinite(v) and v > 0 for v in monitor.history)
    metrics = trainer.callback_metrics
    assert float(metrics["train/grad_norm_sum"]) == pytest.approx(monitor.history[-1])
    assert float(metrics["train/grad_norm_sum_first"]) == pytest.approx(monitor.history[0])
    assert float(metrics["train/grad_norm_sum_last"]) == pytest.approx(monitor.history[-1])


def test_sum_is_the_mean_over_steps_of_the_sum_of_parameter_norms(tmp_path: Path) -> None:
    # recompute the epoch value by hand from one training epoch
    torch.manual_seed(0)
    model = Tiny()
    reference = Tiny()
    reference.load_state_dict(model.state_dict())
    optimizer = torch.optim.SGD(reference.net.parameters(), lr=reference.lr)
    sums = []
    for batch in loader():
        optimizer.zero_grad()
        reference.training_step(batch, 0).backward()
        sums.append(sum(float(p.grad.norm()) for p in reference.net.parameters()))
        optimizer.step()
    monitor = GradNormMonitor(histograms=False)
    trainer = pl.Trainer(max_epochs=1, accelerator="cpu", callbacks=[monitor], logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(model, loader())
    assert monitor.history[0] == pytest.approx(sum(sums) / len(sums), rel=1e-5)


def test_per_layer_histograms_reach_tensorboard(tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    fit(tmp_path, GradNormMonitor(), epochs=2)
    events = EventAccumulator(str(next((tmp_path / "tb").rglob("events.out.tfevents.*")).parent),
                              size_guidance={"histograms": 0})
    events.Reload()
    tags = set(events.Tags()["histograms"])
    assert {"grad_norm/layers", "grad_norm/net.0.weight", "grad_norm/net.2.weight"} <= tags
    assert "grad_norm/net.0.bias" not in tags  # biases only with include_bias=True
    assert len(events.Histograms("grad_norm/net.0.weight")) == 2  # one per epoch
    assert "train/grad_norm_sum" in events.Tags()["scalars"]


def test_parameters_without_gradients_count_as_zero() -> None:
    a, b = nn.Parameter(torch.ones(3)), nn.Parameter(torch.ones(2))
    a.grad = torch.full((3,), 2.0)
    norms = parameter_grad_norms([a, b])
    assert norms.tolist() == pytest.approx([math.sqrt(12), 0.0])


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_no_host_device_sync_per_step() -> None:
    params = [nn.Parameter(torch.randn(8, 8, device="cuda")) for _ in range(3)]
    for p in params:
        p.grad = torch.randn_like(p)
    torch.cuda.set_sync_debug_mode("error")
    try:
        parameter_grad_norms(params)
    finally:
        torch.cuda.set_sync_debug_mode("default")
