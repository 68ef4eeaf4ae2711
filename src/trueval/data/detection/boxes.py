"""Conversions between YOLO-normalised boxes and absolute pixel boxes.

YOLO label files store ``cx cy w h`` as fractions of the image width and height; torchvision's
detectors and transforms want absolute ``x1 y1 x2 y2`` pixels. Both directions work in float64 so
that a round trip gives back the numbers that were read (float32 would drift in the 7th digit).
"""

from __future__ import annotations

import numpy as np
import torch
from torchvision import tv_tensors
from torchvision.ops import box_convert


def yolo_to_xyxy(boxes: np.ndarray, width: int, height: int) -> np.ndarray:
    """Normalised ``cx cy w h`` (N x 4) to absolute ``x1 y1 x2 y2`` pixels, float64."""
    b = torch.as_tensor(np.asarray(boxes, dtype=np.float64).reshape(-1, 4))
    scale = torch.tensor([width, height, width, height], dtype=torch.float64)
    return box_convert(b * scale, "cxcywh", "xyxy").numpy()


def xyxy_to_yolo(boxes: np.ndarray, width: int, height: int) -> np.ndarray:
    """Absolute ``x1 y1 x2 y2`` pixels (N x 4) to normalised ``cx cy w h``, float64."""
    b = torch.as_tensor(np.asarray(boxes, dtype=np.float64).reshape(-1, 4))
    scale = torch.tensor([width, height, width, height], dtype=torch.float64)
    return (box_convert(b, "xyxy", "cxcywh") / scale).numpy()


def to_bounding_boxes(boxes_xyxy: np.ndarray, height: int, width: int) -> tv_tensors.BoundingBoxes:
    """Absolute pixel boxes as a tv_tensor, so that transforms v2 move them with the image."""
    return tv_tensors.BoundingBoxes(
        torch.as_tensor(np.asarray(boxes_xyxy, dtype=np.float32).reshape(-1, 4)),
        format=tv_tensors.BoundingBoxFormat.XYXY,
        canvas_size=(height, width),
    )
