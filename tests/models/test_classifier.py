"""ClassifierModule: grouped steps (data.steps_per_call) train exactly like one step per call."""

from __future__ import annotations

import math

import pytest
import pytorch_lightning as pl
import torch

from trueval.callbacks.nonfinite import NonFiniteLossGuard
from trueval.data.gpu_loader import GpuLoader
from trueval.models.classifier import ClassifierModule
from trueval.models.nets.mlp import MLP
from trueval.core.errors import NonFiniteLossError


def data(n: int = 200) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, 1, 6, 6), dtype=torch.uint8, generator=generator)
    targets = (images.float().mean(dim=(1, 2, 3)) > 127).long() + 2 * (images[:, 0, 0, 0] > 127).long()
    return images, targets


class Loaders(pl.LightningDataModule):
    def __init__(self, steps_per_call: int) -> None:
        super().__init__()
        self.steps_per_call = steps_per_call
        self.images, self.targets = data()

    def train_dataloader(self) -> GpuLoader:
        return GpuLoader(self.images, self.targets, batch_size=16, shuffle=True, seed=1,
                         augment={"crop_padding": 1, "hflip": True}, steps_per_call=self.steps_per_call)

    def val_dataloader(self) -> GpuLoader:
        return GpuLoader(self.images[:64], self.targets[:64], batch_size=32)


class Recorder(pl.Callback):
    """Gradient norms as the optimizer sees them (after clipping)."""

    def __init__(self) -> None:
        self.norms: list[float] = []

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:  # noqa: ANN001
        grads = [p.grad for p in pl_module.parameters() if p.grad is not None]
        self.norms.append(float(torch.linalg.vector_norm(torch.stack([g.norm() for g in grads]))))


def module(steps_per_call: int, scheduler: dict | None = None, clip: float | None = None) -> ClassifierModule:
    torch.manual_seed(0)
    net = MLP(in_shape=(1, 6, 6), num_classes=4, depth=3, width=32)
    return ClassifierModule(net=net, num_classes=4, optimizer={"name": "sgd", "lr": 0.05},
                            scheduler=scheduler or {"name": "none"}, steps_per_call=steps_per_call,
                            gradient_clip_val=clip)


def fit(model: ClassifierModule, steps_per_call: int, epochs: int = 3, callbacks: list | None = None) -> pl.Trainer:
    pl.seed_everything(0, verbose=False)
    trainer = pl.Trainer(max_epochs=epochs, accelerator="cpu", logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, callbacks=callbacks or [])
    trainer.fit(model, datamodule=Loaders(steps_per_call))
    return trainer


@pytest.mark.parametrize("scheduler", [{"name": "cosine", "interval": "step", "warmup_epochs": 1},
                                       {"name": "step", "step_size": 1, "gamma": 0.5}])
def test_grouped_steps_train_exactly_like_one_step_per_call(scheduler: dict) -> None:
    one, grouped = module(1, scheduler), module(3, scheduler)
    t_one, t_grouped = fit(one, 1), fit(grouped, 3)
    assert not grouped.automatic_optimization
    # 13 batches per epoch: 5 calls of up to 3 steps, but the same 39 optimizer steps
    assert t_one.global_step == t_grouped.global_step == 39
    assert t_grouped.num_training_batches == 5
    for a, b in zip(one.parameters(), grouped.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    lr = [g["lr"] for g in one.optimizers().optimizer.param_groups]
    assert lr == pytest.approx([g["lr"] for g in grouped.optimizers().optimizer.param_groups])
    for key in ("train/loss", "train/acc", "val/acc"):
        assert float(t_one.callback_metrics[key]) == pytest.approx(float(t_grouped.callback_metrics[key]), abs=1e-5)


def test_grouped_steps_clip_gradients_themselves() -> None:
    recorder = Recorder()
    fit(module(4, clip=0.05), 4, epochs=1, callbacks=[recorder])
    assert len(recorder.norms) == 13 and max(recorder.norms) <= 0.05 + 1e-6


class Poisoned(ClassifierModule):
    """The loss turns NaN at one global step."""

    poison_step = 6

    def _loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        loss = super()._loss(logits, y)
        return loss * math.nan if self.trainer.global_step == self.poison_step else loss


def test_nonfinite_guard_names_the_exact_step_inside_a_group() -> None:
    torch.manual_seed(0)
    model = Poisoned(net=MLP(in_shape=(1, 6, 6), num_classes=4, depth=2, width=8), num_classes=4,
                     optimizer={"name": "sgd", "lr": 0.05}, scheduler={"name": "none"}, steps_per_call=4)
    with pytest.raises(NonFiniteLossError, match="global step 6 "):
        fit(model, 4, callbacks=[NonFiniteLossGuard(check_every_n_steps=1)])


def test_translate_tta_averages_the_original_and_shifted_views() -> None:
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 3, 3), torch.nn.Flatten(), torch.nn.LazyLinear(4))
    x = torch.randn(2, 1, 6, 6)
    net(x)
    model = ClassifierModule(net=net, num_classes=4, optimizer={"name": "sgd", "lr": 0.1}, scheduler={"name": "none"},
                             tta_hflip=True, tta_translate=1).eval()

    def flip_mean(v: torch.Tensor) -> torch.Tensor:
        return (net(v) + net(v.flip(-1))) / 2

    padded = torch.nn.functional.pad(x, (1, 1, 1, 1), mode="reflect")
    down_right, up_left = padded[..., :6, :6], padded[..., 2:, 2:]
    expected = 0.5 * flip_mean(x) + 0.25 * (flip_mean(down_right) + flip_mean(up_left))
    with torch.no_grad():
        assert torch.allclose(model._eval_logits(x), expected, atol=1e-6)
        assert not torch.allclose(expected, flip_mean(x), atol=1e-3)  # the shifted views do change the result
        model.tta_translate = 0
        assert torch.allclose(model._eval_logits(x), flip_mean(x), atol=1e-6)


class StepOutputs(pl.Callback):
    """Every training step's loss, predictions and targets, recomputed from what the step saw."""

    def __init__(self) -> None:
        self.losses: list[float] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:  # noqa: ANN001
        self.losses.append(float(outputs["loss"]))


def test_training_metrics_of_an_epoch_cover_every_step(monkeypatch: pytest.MonkeyPatch) -> None:
    """The loss and accuracy kept per step and folded in every FLUSH_STEPS steps (and at the epoch's
    end) are the mean over all 13 steps of the epoch, whatever the flush interval."""
    results = {}
    for flush_steps in (1, 4, 64):  # every step; 3 folds and a remainder; only at the epoch's end
        monkeypatch.setattr(ClassifierModule, "FLUSH_STEPS", flush_steps)
        model, recorder = module(1), StepOutputs()
        trainer = fit(model, 1, epochs=1, callbacks=[recorder])
        assert len(recorder.losses) == 13 and model._train_steps == []
        loss, acc = float(trainer.callback_metrics["train/loss"]), float(trainer.callback_metrics["train/acc"])
        assert loss == pytest.approx(sum(recorder.losses) / 13, rel=1e-5)
        assert 0.0 < acc < 1.0
        results[flush_steps] = (loss, acc)
    assert results[4] == pytest.approx(results[1]) and results[64] == pytest.approx(results[1])
