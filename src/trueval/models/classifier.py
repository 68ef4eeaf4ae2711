"""The classification LightningModule: any network, cross-entropy, torchmetrics, a confusion matrix.

Everything in ``hparams`` is plain data (dicts, lists, numbers, strings), so checkpoints load with
``torch.load(path, weights_only=True)``; the network is rebuilt from the stored config.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Mapping, Sequence

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics import MaxMetric, MeanMetric, MetricCollection
from torchmetrics.classification import (MulticlassAccuracy, MulticlassConfusionMatrix, MulticlassF1Score,
                                         MulticlassPrecision, MulticlassRecall)

from trueval.core.batches import BatchGroup
from trueval.models.cuda_graph import GraphedTrainingForward
from trueval.models.losses import check_loss, focal_loss
from trueval.models.optim import optimization
from trueval.core.errors import UserError

log = logging.getLogger("trueval")


def _metrics(num_classes: int) -> MetricCollection:
    # validate_args=False: the input checks call torch.unique, a host sync on every update
    opts = {"validate_args": False}
    return MetricCollection({
        "acc": MulticlassAccuracy(num_classes, average="micro", **opts),
        "acc_macro": MulticlassAccuracy(num_classes, average="macro", **opts),
        "precision_macro": MulticlassPrecision(num_classes, average="macro", **opts),
        "recall_macro": MulticlassRecall(num_classes, average="macro", **opts),
        "f1_macro": MulticlassF1Score(num_classes, average="macro", **opts),
    })


class ClassifierModule(pl.LightningModule):
    """Trains ``net``; the optimizer and schedule come from their own config groups."""

    FLUSH_STEPS = 64  # training steps kept before they are folded into the training metrics

    def __init__(
        self,
        net: nn.Module,
        num_classes: int,
        optimizer: Mapping[str, Any],
        scheduler: Mapping[str, Any],
        class_names: Sequence[str] | None = None,
        label_smoothing: float = 0.0,
        class_weights: Sequence[float] | None = None,
        tta_hflip: bool = False,
        tta_translate: int = 0,
        compile: bool | str = False,
        cuda_graph: bool = False,
        channels_last: bool = False,
        hparams: Mapping[str, Any] | None = None,
        output_dir: str | None = None,
        steps_per_call: int = 1,
        gradient_clip_val: float | None = None,
        gradient_clip_algorithm: str | None = None,
        unfreeze_at_epoch: int | None = None,
        mixup: Mapping[str, Any] | None = None,
        loss: str = "ce",
        focal_gamma: float = 2.0,
    ) -> None:
        super().__init__()
        # plain data only (weights_only checkpoints); the full run config rides along for eval.py
        self.save_hyperparameters(dict(hparams or {}))
        self.net = net
        self.num_classes = num_classes
        self.class_names = list(class_names or [str(i) for i in range(num_classes)])
        self.optimizer_cfg = dict(optimizer)
        self.scheduler_cfg = dict(scheduler)
        self.label_smoothing = float(label_smoothing)
        weights = None if class_weights is None else torch.tensor(list(class_weights), dtype=torch.float32)
        self.register_buffer("class_weights", weights, persistent=False)
        check_loss(loss, focal_gamma)
        self.loss_name, self.focal_gamma = loss, float(focal_gamma)
        self.tta_hflip = tta_hflip
        self.tta_translate = int(tta_translate)
        self.channels_last = channels_last
        if channels_last:
            # weights in the inputs' layout: no per-call layout conversions inside the convolutions
            net.to(memory_format=torch.channels_last)
        self.output_dir = output_dir
        # steps_per_call > 1: the loader hands BatchGroups and training_step takes one optimizer
        # step per batch itself (manual optimization), so clipping moves here from the Trainer
        self.steps_per_call = int(steps_per_call)
        self.automatic_optimization = self.steps_per_call == 1
        self.gradient_clip_val = gradient_clip_val
        self.gradient_clip_algorithm = gradient_clip_algorithm
        # fine-tuning: stages frozen by the factory thaw at this epoch (model.unfreeze_at_epoch)
        self.unfreeze_at_epoch = unfreeze_at_epoch
        from trueval.models.mixing import build_mixup

        self.mixup = build_mixup(mixup, num_classes)
        # the mean of the per-step losses, kept on the device; nan_strategy="disable" because the
        # NaN check is a host sync on every update (a NaN loss still shows as NaN)
        self.train_loss = MeanMetric(nan_strategy="disable")
        # training accuracy only: every extra metric is a few more kernels on every training step
        self.train_metrics = MetricCollection({"acc": MulticlassAccuracy(num_classes, average="micro",
                                                                           validate_args=False)}, prefix="train/")
        # per-step (loss, predicted class, target), folded into the two metrics every FLUSH_STEPS steps
        # and at the epoch's end: a metric update is a dozen small kernels plus Python bookkeeping, and
        # on the H200 that host work per step was most of the template's extra time per ResNet-18 epoch
        self._train_steps: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
        self.val_metrics = _metrics(num_classes).clone(prefix="val/")
        self.test_metrics = _metrics(num_classes).clone(prefix="test/")
        self.val_acc_best = MaxMetric()
        self.confusion = MulticlassConfusionMatrix(num_classes, validate_args=False)
        # per-sample test outputs (targets, logits), for bootstrap intervals and paired tests
        self._test_outputs: list[tuple[torch.Tensor, torch.Tensor]] = []
        self.test_predictions: tuple[torch.Tensor, torch.Tensor] | None = None
        self._forward = net
        if cuda_graph and compile:
            raise UserError("model.cuda_graph and model.compile both replace the training forward; choose one "
                            "(compile's mode reduce-overhead also uses CUDA graphs)", key="model.cuda_graph")
        # model.cuda_graph: the training forward/backward replayed from a recorded CUDA graph
        self._graph = GraphedTrainingForward(net) if cuda_graph else None
        if compile:
            # kept off the module tree so state_dict keys stay those of the plain network;
            # a string is torch.compile's mode ("reduce-overhead" uses CUDA graphs)
            mode = compile if isinstance(compile, str) and compile not in ("true", "default") else None
            object.__setattr__(self, "_forward", torch.compile(net, mode=mode))

    # ----------------------------------------------------------------- forward
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return self._forward(x)

    def _train_logits(self, x: torch.Tensor) -> torch.Tensor:
        if self._graph is None:
            return self(x)
        if self.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return self._graph(x)

    def _views_logits(self, x: torch.Tensor) -> torch.Tensor:
        logits = self(x)
        if self.tta_hflip:
            # clone: under CUDA graphs the second call reuses the first call's output buffer
            logits = (logits.clone() + self(x.flip(-1))) / 2
        return logits

    def _eval_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Logits at val/test time, averaged over the configured test-time augmentations.

        ``tta_translate=p`` (4-D inputs only) adds the image shifted by p pixels down-right and up-left
        (reflect padding), each with its flip when ``tta_hflip``: half the weight on the original views,
        half on the shifted ones, as in airbench94's TTA level 2.
        """
        logits = self._views_logits(x).clone()
        p = self.tta_translate
        if p and x.dim() == 4:
            h, w = x.shape[-2:]
            padded = F.pad(x, (p, p, p, p), mode="reflect")
            shifted = sum(self._views_logits(padded[..., i:i + h, i:i + w]).clone() for i in (0, 2 * p))
            logits = 0.5 * logits + 0.25 * shifted
        return logits

    def _loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.loss_name == "focal":
            return focal_loss(logits.float(), y, self.focal_gamma, self.class_weights, self.label_smoothing)
        return F.cross_entropy(logits.float(), y, weight=self.class_weights, label_smoothing=self.label_smoothing)

    # ----------------------------------------------------------------- fine-tuning
    def train(self, mode: bool = True) -> "ClassifierModule":
        """Frozen BatchNorms stay in eval mode whenever the module is put in train mode."""
        from trueval.models.freezing import keep_frozen_norms_eval

        super().train(mode)
        if mode:
            keep_frozen_norms_eval(self.net)
        return self

    def on_train_start(self) -> None:
        # Lightning restores each submodule's own mode after validation, so setting it once holds
        from trueval.models.freezing import keep_frozen_norms_eval

        keep_frozen_norms_eval(self.net)

    def on_train_epoch_start(self) -> None:
        if self.unfreeze_at_epoch is not None and self.current_epoch == self.unfreeze_at_epoch:
            from trueval.models.freezing import unfreeze_all

            count = unfreeze_all(self.net)
            self.net.train()
            log.info("epoch %d: unfroze %d parameter tensors (model.unfreeze_at_epoch)", self.current_epoch, count)

    # ----------------------------------------------------------------- steps
    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        if self._graph is not None:
            self._graph.new_call()
        if not self.automatic_optimization:
            return self._training_steps(batch)
        x, y = batch
        if self.mixup is not None:
            # timm's Mixup: mixed images, soft targets (cross-entropy takes class probabilities)
            x, soft = self.mixup(x, y)
            logits = self._train_logits(x)
            loss = self._loss(logits, soft)
            self._remember_step(loss, logits, y)
            return loss
        logits = self._train_logits(x)
        loss = self._loss(logits, y)
        # no self.log per step: its bookkeeping costs as much as a small model's step; the loss
        # and accuracy accumulate on the device and are logged once per epoch
        self._remember_step(loss, logits, y)
        return loss

    def _remember_step(self, loss: torch.Tensor, logits: torch.Tensor, y: torch.Tensor) -> None:
        """Keep one step's loss, predicted classes and targets (on the device, no host sync).

        Class indices, not logits: they are small, and a CUDA-graph replay (model.cuda_graph,
        compile mode reduce-overhead) overwrites the previous step's output buffers.
        """
        self._train_steps.append((loss.detach().reshape(-1), logits.detach().argmax(dim=1), y))
        if len(self._train_steps) >= self.FLUSH_STEPS:
            self._flush_train_metrics()

    def _flush_train_metrics(self) -> None:
        """One update of the training loss and accuracy for the steps kept since the last one."""
        if not self._train_steps:
            return
        losses, predicted, targets = zip(*self._train_steps)
        self._train_steps = []
        # MeanMetric over the per-step losses, each weighted 1: the same mean as one update per step
        self.train_loss.update(torch.cat(losses))
        self.train_metrics.update(torch.cat(predicted), torch.cat(targets))

    def _training_steps(self, batch: Any) -> torch.Tensor:
        """One optimizer step per batch of the group; returns the per-step losses (detached)."""
        group = batch if isinstance(batch, BatchGroup) else (batch,)
        optimizer = self.optimizers()
        per_step = [c.scheduler for c in self.trainer.lr_scheduler_configs if c.interval == "step"]
        losses = []
        for x, y in group:
            logits = self._train_logits(x)
            loss = self._loss(logits, y)
            optimizer.zero_grad(set_to_none=True)
            self.manual_backward(loss)
            if self.gradient_clip_val:
                self.clip_gradients(optimizer, gradient_clip_val=self.gradient_clip_val,
                                    gradient_clip_algorithm=self.gradient_clip_algorithm)
            optimizer.step()
            for scheduler in per_step:
                scheduler.step()
            losses.append(loss.detach())
            self._remember_step(loss, logits, y)
        return torch.stack(losses)

    def on_train_epoch_end(self) -> None:
        if not self.automatic_optimization:
            # manual optimization: Lightning leaves every scheduler to the module
            for config in self.trainer.lr_scheduler_configs:
                if config.interval == "epoch":
                    config.scheduler.step()
        self._flush_train_metrics()
        self.log("train/loss", self.train_loss.compute(), prog_bar=True)
        self.train_loss.reset()
        self.log_dict(self.train_metrics.compute())
        self.train_metrics.reset()

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        x, y = batch
        logits = self._eval_logits(x)
        # sync_dist: under DDP each rank sees its own shard; reduced once, at the end of the epoch
        self.log("val/loss", self._loss(logits, y), on_step=False, on_epoch=True, prog_bar=True, batch_size=len(y),
                 sync_dist=True)
        self.val_metrics.update(logits, y)

    def on_validation_epoch_end(self) -> None:
        values = self.val_metrics.compute()
        self.val_metrics.reset()
        self.log_dict(values, prog_bar=False)
        if not self.trainer.sanity_checking:
            self.val_acc_best.update(values["val/acc"])
            self.log("val/acc_best", self.val_acc_best.compute(), prog_bar=True)

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        x, y = batch
        logits = self._eval_logits(x)
        self.log("test/loss", self._loss(logits, y), on_step=False, on_epoch=True, batch_size=len(y), sync_dist=True)
        self.test_metrics.update(logits, y)
        self.confusion.update(logits, y)
        self._test_outputs.append((y.detach(), logits.detach()))

    def on_test_epoch_end(self) -> None:
        outputs, self._test_outputs = self._test_outputs, []
        if outputs:  # in test-loader order: sample i is the test split's sample i
            self.test_predictions = (torch.cat([y for y, _ in outputs]).cpu(),
                                     torch.cat([logits for _, logits in outputs]).float().cpu())
        self.log_dict(self.test_metrics.compute())
        self.test_metrics.reset()
        matrix = self.confusion.compute().cpu()
        self.confusion.reset()
        # how many test samples were scored: proof that none was padded, duplicated or skipped
        self.log("test/samples", float(matrix.sum()))
        if self.trainer.is_global_zero:
            self._write_confusion(matrix)

    def _write_confusion(self, matrix: torch.Tensor) -> None:
        from trueval.utils.plots import confusion_figure

        fig = confusion_figure(matrix.numpy(), self.class_names)
        if self.output_dir:
            path = Path(self.output_dir) / "confusion_matrix.png"
            fig.savefig(path, dpi=120, bbox_inches="tight")
            log.info("confusion matrix: %s", path)
        for logger in self.loggers:
            experiment = getattr(logger, "experiment", None)
            if hasattr(experiment, "add_figure"):
                experiment.add_figure("test/confusion_matrix", fig, global_step=self.global_step)
        import matplotlib.pyplot as plt

        plt.close(fig)

    # ----------------------------------------------------------------- optimisation
    def configure_optimizers(self) -> Any:
        total = int(self.trainer.estimated_stepping_batches)
        if not self.automatic_optimization:
            total = self._optimizer_steps(total)
        return optimization(self.optimizer_cfg, self.scheduler_cfg, self.net, total_steps=total,
                            max_epochs=self.trainer.max_epochs, include_frozen=self.unfreeze_at_epoch is not None)

    def _optimizer_steps(self, estimated_calls: int) -> int:
        """Optimizer steps of the whole fit when each training_step call takes a group of steps.

        Lightning estimates calls (batch groups); schedules such as onecycle need the exact
        number of optimizer steps, which the loader knows (the last group of an epoch may be short).
        """
        trainer = self.trainer
        loader = trainer.train_dataloader
        calls_per_epoch = int(trainer.num_training_batches)
        if hasattr(loader, "num_batches") and calls_per_epoch == len(loader):
            per_epoch = int(loader.num_batches)
        else:  # limit_train_batches cut the epoch short: full groups only
            per_epoch = calls_per_epoch * self.steps_per_call
        max_steps = trainer.max_steps if trainer.max_steps and trainer.max_steps > 0 else None
        if trainer.max_epochs is None or trainer.max_epochs < 0:
            return max_steps or estimated_calls * self.steps_per_call
        total = per_epoch * trainer.max_epochs
        return min(total, max_steps) if max_steps else total
