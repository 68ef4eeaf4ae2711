"""Box-aware transforms (torchvision v2): boxes are tv_tensors.BoundingBoxes and move with the image.

Every split is brought to a square ``image_size`` canvas, by letterboxing (resize the longer
side, pad the rest: shapes are kept) or stretching. The training split adds scale jitter and
translation (one RandomAffine), flips and a photometric distortion. Normalisation is left to the
detector (torchvision detectors normalise inside their own transform).
"""

from __future__ import annotations

from typing import Any, Mapping

import torch
from torchvision.transforms import v2

from trueval.core.errors import UserError
from trueval.data.detection.augment_options import RESIZE_MODES, check_augment


def resize_to_canvas(image_size: int, mode: str) -> list[v2.Transform]:
    """The geometric steps that give a square ``image_size`` image."""
    if mode == "letterbox":
        # longer side to image_size, then CenterCrop pads the shorter side (it pads when the crop is larger)
        return [v2.Resize(size=None, max_size=image_size, antialias=True), v2.CenterCrop(image_size)]
    if mode == "stretch":
        return [v2.Resize((image_size, image_size), antialias=True)]
    raise UserError(f"unknown resize mode {mode!r}; choose one of {', '.join(RESIZE_MODES)}", key="data.resize")


def build_detection_transform(image_size: int, resize: str = "letterbox",
                              augment: Mapping[str, Any] | None = None, train: bool = False) -> v2.Compose:
    """(uint8 image, {"boxes", "labels"}) -> (float image in [0, 1], target) at ``image_size``."""
    ops: list[v2.Transform] = [v2.ToImage(), *resize_to_canvas(image_size, resize)]
    if train:
        aug = check_augment(augment)
        if aug["scale"] != [1.0, 1.0] or aug["translate"] > 0:
            ops.append(v2.RandomAffine(degrees=0.0, translate=(aug["translate"],) * 2, scale=tuple(aug["scale"])))
        if aug["hflip"] > 0:
            ops.append(v2.RandomHorizontalFlip(p=aug["hflip"]))
        if aug["vflip"] > 0:
            ops.append(v2.RandomVerticalFlip(p=aug["vflip"]))
        if aug["color"] > 0:
            ops.append(v2.RandomPhotometricDistort(p=aug["color"]))
        # boxes pushed partly off the canvas are clipped; those left with (almost) nothing are dropped
        ops += [v2.ClampBoundingBoxes(), v2.SanitizeBoundingBoxes(min_size=2.0)]
    ops += [v2.ToDtype(torch.float32, scale=True), v2.ToPureTensor()]
    return v2.Compose(ops)
