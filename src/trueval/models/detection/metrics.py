"""mAP50, mAP@[.50:.95] and per-class AP50 from torchmetrics' MeanAveragePrecision.

Two metric objects: COCO's averaged mAP and mAP50 come from the standard ten IoU thresholds;
per-class AP at IoU 0.5 needs a second evaluation at that threshold only (torchmetrics' per-class
numbers are averaged over the thresholds it was given). The faster_coco_eval backend is used when
installed (same numbers as pycocotools, several times faster).
"""

from __future__ import annotations

import importlib.util
import logging
import math
from typing import Sequence

import torch
from torch import nn
from torchmetrics.detection import MeanAveragePrecision


# faster_coco_eval prints its whole COCO summary table at INFO on every compute; the numbers that
# matter are logged as metrics, so keep its logger to warnings
logging.getLogger("faster_coco_eval").setLevel(logging.WARNING)


def _backend() -> str:
    return "faster_coco_eval" if importlib.util.find_spec("faster_coco_eval") else "pycocotools"


def metric_name(class_name: str) -> str:
    """A class name usable inside a metric key (no '/', no spaces)."""
    return class_name.replace("/", "_").replace(" ", "_")


class DetectionMetrics(nn.Module):
    """Accumulates predictions and targets (class ids 0..K-1, xyxy pixels) over an epoch."""

    def __init__(self, class_names: Sequence[str]) -> None:
        super().__init__()
        self.class_names = list(class_names)
        backend = _backend()
        self.coco = MeanAveragePrecision(box_format="xyxy", iou_type="bbox", backend=backend)
        self.at50 = MeanAveragePrecision(box_format="xyxy", iou_type="bbox", iou_thresholds=[0.5],
                                         class_metrics=True, backend=backend)

    def update(self, preds: list[dict[str, torch.Tensor]], targets: list[dict[str, torch.Tensor]]) -> None:
        preds = [{k: p[k].detach() for k in ("boxes", "scores", "labels")} for p in preds]
        targets = [{k: t[k] for k in ("boxes", "labels")} for t in targets]
        self.coco.update(preds, targets)
        self.at50.update(preds, targets)

    def compute(self) -> dict[str, float]:
        """{"map50", "map", "ap50/<class>"}; a class with no ground truth in the split is left out."""
        coco = self.coco.compute()
        at50 = self.at50.compute()
        out = {"map50": float(coco["map_50"]), "map": float(coco["map"])}
        classes = at50["classes"].reshape(-1).tolist()
        values = at50["map_per_class"].reshape(-1).tolist()
        for cls, value in zip(classes, values):
            if 0 <= int(cls) < len(self.class_names) and value >= 0 and not math.isnan(value):
                out[f"ap50/{metric_name(self.class_names[int(cls)])}"] = float(value)
        # torchmetrics reports -1 when there is nothing to score; no boxes at all reads as 0 here
        return {k: (max(v, 0.0) if k in ("map50", "map") else v) for k, v in out.items()}

    def reset(self) -> None:
        self.coco.reset()
        self.at50.reset()
