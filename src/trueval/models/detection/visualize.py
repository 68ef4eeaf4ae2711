"""Validation images with true boxes (green) and predicted boxes (red, with class and score) drawn on."""

from __future__ import annotations

from typing import Sequence

import torch
from torchvision.utils import draw_bounding_boxes

TRUE_COLOUR = (40, 220, 40)
PRED_COLOUR = (240, 40, 40)


def draw_detections(image: torch.Tensor, target: dict, pred: dict, class_names: Sequence[str],
                    score_thresh: float = 0.3) -> torch.Tensor:
    """uint8 CHW with the boxes drawn; predictions below ``score_thresh`` are left out."""
    img = (image.detach().float().clamp(0, 1).cpu() * 255).to(torch.uint8)
    true_boxes = target["boxes"].detach().cpu().float()
    if len(true_boxes):
        img = draw_bounding_boxes(img, true_boxes, colors=[TRUE_COLOUR] * len(true_boxes), width=1)
    keep = pred["scores"].detach().cpu() >= score_thresh
    boxes = pred["boxes"].detach().cpu().float()[keep]
    if len(boxes):
        labels = [f"{class_names[int(c)] if 0 <= int(c) < len(class_names) else int(c)} {float(s):.2f}"
                  for c, s in zip(pred["labels"].cpu()[keep], pred["scores"].cpu()[keep])]
        img = draw_bounding_boxes(img, boxes, labels=labels, colors=[PRED_COLOUR] * len(boxes), width=2)
    return img
