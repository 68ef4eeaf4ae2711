"""model.cuda_graph: the recorded training forward/backward trains exactly like the plain network."""

from __future__ import annotations

import pytest
import pytorch_lightning as pl
import torch
from torch import nn

from helpers import requires_cuda
from trueval.data.gpu_loader import GpuLoader
from trueval.models.classifier import ClassifierModule
from trueval.core.errors import UserError


def images(device: str, n: int = 200) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (n, 3, 8, 8), dtype=torch.uint8, generator=generator)
    y = (x.float().mean(dim=(1, 2, 3)) > 127).long() + 2 * (x[:, 0, 0, 0] > 127).long()
    return x.to(device), y.to(device)


class Loaders(pl.LightningDataModule):
    def __init__(self, device: str, steps_per_call: int, drop_last: bool) -> None:
        super().__init__()
        self.x, self.y = images(device)
        self.steps_per_call, self.drop_last = steps_per_call, drop_last

    def train_dataloader(self) -> GpuLoader:
        return GpuLoader(self.x, self.y, batch_size=32, shuffle=True, seed=1, drop_last=self.drop_last,
                         augment={"crop_padding": 1, "hflip": True}, steps_per_call=self.steps_per_call)

    def val_dataloader(self) -> GpuLoader:
        return GpuLoader(self.x[:64], self.y[:64], batch_size=50)


def convnet() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 4))


def fit(device: str, cuda_graph: bool, steps_per_call: int = 1, drop_last: bool = False,
        precision: str = "32-true") -> tuple[ClassifierModule, pl.Trainer]:
    model = ClassifierModule(net=convnet(), num_classes=4, optimizer={"name": "sgd", "lr": 0.05, "fused": False},
                             scheduler={"name": "none"}, cuda_graph=cuda_graph, steps_per_call=steps_per_call)
    pl.seed_everything(0, verbose=False)
    trainer = pl.Trainer(max_epochs=3, accelerator="gpu" if device == "cuda" else "cpu", devices=1, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                         precision=precision, deterministic=False)
    trainer.fit(model, datamodule=Loaders(device, steps_per_call, drop_last))
    return model, trainer


def state(model: ClassifierModule) -> dict[str, torch.Tensor]:
    return {k: v.detach().float().cpu() for k, v in model.net.state_dict().items()}


def test_cuda_graph_on_cpu_is_the_plain_network() -> None:
    plain, _ = fit("cpu", cuda_graph=False)
    graphed, _ = fit("cpu", cuda_graph=True)
    assert graphed._graph is not None and not graphed._graph.recorded
    for key, value in state(plain).items():
        torch.testing.assert_close(state(graphed)[key], value)


def test_cuda_graph_and_compile_are_refused_together() -> None:
    with pytest.raises(UserError, match="model.cuda_graph"):
        ClassifierModule(net=convnet(), num_classes=4, optimizer={"name": "sgd", "lr": 0.1},
                         scheduler={"name": "none"}, cuda_graph=True, compile=True)


@requires_cuda
@pytest.mark.parametrize("steps_per_call,drop_last", [(1, False), (3, True)])
def test_recorded_training_steps_match_eager_ones(steps_per_call: int, drop_last: bool) -> None:
    torch.backends.cudnn.deterministic = True
    try:
        plain, _ = fit("cuda", cuda_graph=False, steps_per_call=steps_per_call, drop_last=drop_last)
        graphed, trainer = fit("cuda", cuda_graph=True, steps_per_call=steps_per_call, drop_last=drop_last)
    finally:
        torch.backends.cudnn.deterministic = False
    assert graphed._graph.recorded and graphed._graph.replays >= 10
    if not drop_last:  # 200 = 6 x 32 + 8: the short last batch of each epoch ran eagerly
        assert graphed._graph.replays == 3 * 6 - 1
    expected = state(plain)
    for key, value in state(graphed).items():  # weights and BatchNorm statistics
        torch.testing.assert_close(value, expected[key], rtol=1e-4, atol=1e-5, msg=key)
    assert int(graphed.net[1].num_batches_tracked) == int(plain.net[1].num_batches_tracked)
    assert float(trainer.callback_metrics["val/acc"]) >= 0.0  # validation ran the plain network


@requires_cuda
def test_recording_under_bf16_autocast_trains() -> None:
    model, trainer = fit("cuda", cuda_graph=True, precision="bf16-mixed")
    assert model._graph.recorded and model._graph.replays > 0
    assert torch.isfinite(torch.as_tensor(float(trainer.callback_metrics["train/loss"])))
