"""The detection LightningModule: a torchvision detector, its losses under stable names, and mAP.

Logged per epoch: ``train/loss`` and its components (``train/box_loss``, ``train/cls_loss``, plus
model-specific ones), ``val/loss`` (the same losses on the validation split, computed without
touching norm statistics), ``val/map50``, ``val/map`` (IoU 0.50:0.95), ``val/ap50/<class>`` and
``val/map50_best``; at test time ``test/*``. A few validation images with true (green) and
predicted (red) boxes go to TensorBoard each epoch.

All hyper-parameters are plain data, so checkpoints load with ``weights_only=True`` and
``DetectorModule.load_from_checkpoint(path, weights_only=True, load_weights=False)`` rebuilds the
network from them.
"""

from __future__ import annotations

import logging
from typing import Any, Mapping, Sequence

import pytorch_lightning as pl
import torch
from torchmetrics import MaxMetric

from trueval.models.detection.losses import eval_losses, rename_losses
from trueval.models.detection.metrics import DetectionMetrics
from trueval.models.detection.network import build_detector
from trueval.models.detection.visualize import draw_detections
from trueval.models.optim import optimization

log = logging.getLogger("trueval")

Batch = tuple[list[torch.Tensor], list[dict[str, Any]]]


class DetectorModule(pl.LightningModule):
    """Trains the detector described by ``net`` (the `model` group minus module options)."""

    def __init__(
        self,
        net: Mapping[str, Any],
        num_classes: int,
        class_names: Sequence[str],
        image_size: int,
        optimizer: Mapping[str, Any],
        scheduler: Mapping[str, Any] | None = None,
        log_images: int = 4,
        draw_score_thresh: float = 0.3,
        val_loss: bool = True,
        channels_last: bool = False,
        cfg: Mapping[str, Any] | None = None,
        task: str = "detection",
        load_weights: bool = True,
    ) -> None:
        super().__init__()
        # plain data only (weights_only checkpoints); `cfg` is the whole run config, for eval.py
        self.save_hyperparameters(ignore=["load_weights"])
        self.class_names = [str(c) for c in class_names]
        self.net = build_detector(num_classes=num_classes, image_size=image_size, load_weights=load_weights, **net)
        self.label_offset = int(self.net.label_offset)
        self.optimizer_cfg = dict(optimizer)
        self.scheduler_cfg = dict(scheduler or {"name": "none"})
        self.log_images = int(log_images)
        self.draw_score_thresh = float(draw_score_thresh)
        self.val_loss = bool(val_loss)
        if channels_last:
            self.net = self.net.to(memory_format=torch.channels_last)
        self.val_metrics = DetectionMetrics(self.class_names)
        self.test_metrics = DetectionMetrics(self.class_names)
        self.val_map50_best = MaxMetric()
        self._shown: list[tuple[torch.Tensor, dict, dict]] = []

    # ----------------------------------------------------------------- label convention
    def _to_net(self, targets: list[dict[str, Any]]) -> list[dict[str, torch.Tensor]]:
        """Data class ids 0..K-1 -> the network's (1..K when 0 is the background)."""
        return [{"boxes": t["boxes"], "labels": t["labels"] + self.label_offset} for t in targets]

    def _from_net(self, preds: list[dict[str, torch.Tensor]]) -> list[dict[str, torch.Tensor]]:
        return [{**p, "labels": p["labels"] - self.label_offset} for p in preds]

    def forward(self, images: list[torch.Tensor]) -> list[dict[str, torch.Tensor]]:
        """Detections (boxes in input pixels, scores, data class ids) of images in [0, 1].

        Run in float32 even under a bf16 trainer: autocast would round the decoded boxes to 2-4 px
        at 640 px (8 significant bits), which moves mAP@[.5:.95]. Only evaluation pays for it.
        """
        device_type = images[0].device.type if images else "cpu"
        with torch.autocast(device_type=device_type, enabled=False):
            preds = self.net([image.float() for image in images])
        return self._from_net(preds)

    # ----------------------------------------------------------------- steps
    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        images, targets = batch
        losses = rename_losses(self.net(images, self._to_net(targets)))
        loss = torch.stack(list(losses.values())).sum()
        n = len(images)
        self.log("train/loss", loss, on_step=False, on_epoch=True, prog_bar=True, batch_size=n)
        for name, value in losses.items():
            self.log(f"train/{name}", value, on_step=False, on_epoch=True, batch_size=n)
        return loss

    def _eval_step(self, batch: Batch, stage: str, metrics: DetectionMetrics) -> list[dict[str, torch.Tensor]]:
        images, targets = batch
        n = len(images)
        if self.val_loss:
            losses = eval_losses(self.net, images, self._to_net(targets))
            self.log(f"{stage}/loss", torch.stack(list(losses.values())).sum(), on_step=False, on_epoch=True,
                     prog_bar=stage == "val", batch_size=n)
            for name, value in losses.items():
                self.log(f"{stage}/{name}", value, on_step=False, on_epoch=True, batch_size=n)
        preds = self(images)
        metrics.update(preds, targets)
        return preds

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        preds = self._eval_step(batch, "val", self.val_metrics)
        room = self.log_images - len(self._shown)
        if room > 0:
            images, targets = batch
            self._shown += [(i.cpu(), {"boxes": t["boxes"].cpu()}, {k: v.cpu() for k, v in p.items()})
                            for i, t, p in list(zip(images, targets, preds))[:room]]

    def on_validation_epoch_end(self) -> None:
        values = self.val_metrics.compute()
        self.val_metrics.reset()
        self.log_dict({f"val/{k}": v for k, v in values.items() if k != "map50"})
        self.log("val/map50", values["map50"], prog_bar=True)
        if not self.trainer.sanity_checking:
            self.val_map50_best.update(torch.tensor(values["map50"]))
            self.log("val/map50_best", self.val_map50_best.compute(), prog_bar=False)
            self._draw()
        self._shown = []

    def on_test_epoch_start(self) -> None:
        # per-image (prediction, target) pairs, for bootstrap intervals over test images
        self.test_outputs: list[tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]] = []

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        preds = self._eval_step(batch, "test", self.test_metrics)
        self.test_outputs += [({k: p[k].detach().cpu() for k in ("boxes", "scores", "labels")},
                               {k: t[k].detach().cpu() for k in ("boxes", "labels")}) for p, t in zip(preds, batch[1])]

    def on_test_epoch_end(self) -> None:
        values = self.test_metrics.compute()
        self.test_metrics.reset()
        self.log_dict({f"test/{k}": v for k, v in values.items()})

    def _draw(self) -> None:
        if not self._shown or not self.trainer.is_global_zero:
            return
        for logger in self.loggers:
            experiment = getattr(logger, "experiment", None)
            if not hasattr(experiment, "add_image"):
                continue
            for i, (image, target, pred) in enumerate(self._shown):
                drawn = draw_detections(image, target, pred, self.class_names, self.draw_score_thresh)
                experiment.add_image(f"val/detections/{i}", drawn, global_step=self.current_epoch)

    # ----------------------------------------------------------------- optimisation
    def configure_optimizers(self) -> Any:
        return optimization(self.optimizer_cfg, self.scheduler_cfg, self.net,
                            total_steps=int(self.trainer.estimated_stepping_batches), max_epochs=self.trainer.max_epochs)
