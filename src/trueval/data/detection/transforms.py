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

RESIZE_MODES = ("letterbox", "stretch")
AUGMENT_DEFAULTS: dict[str, Any] = {
    "hflip": 0.5,  # probability
    "vflip": 0.0,  # probability (cells, aerial images: orientation carries no meaning)
    "scale": [0.75, 1.25],  # range of the random zoom after resizing; [1, 1] turns it off
    "translate": 0.1,  # largest random shift, as a fraction of the image side
    "color": 0.5,  # probability of each photometric change (brightness, contrast, saturation, hue)
}


def check_augment(spec: Mapping[str, Any] | None) -> dict[str, Any]:
    """The augmentation options with defaults filled in; unknown keys are refused by name."""
    spec = dict(spec or {})
    unknown = sorted(set(spec) - set(AUGMENT_DEFAULTS))
    if unknown:
        raise UserError(f"unknown detection augmentation option(s) {unknown}; known: {', '.join(AUGMENT_DEFAULTS)}",
                        key=f"data.augment.{unknown[0]}")
    out = {**AUGMENT_DEFAULTS, **spec}
    scale = list(out["scale"]) if isinstance(out["scale"], (list, tuple)) else [out["scale"], out["scale"]]
    if len(scale) != 2 or not 0 < float(scale[0]) <= float(scale[1]):
        raise UserError(f"scale must be [low, high] with 0 < low <= high, got {out['scale']}", key="data.augment.scale")
    out["scale"] = [float(scale[0]), float(scale[1])]
    for key in ("hflip", "vflip", "color", "translate"):
        out[key] = float(out[key])
        if not 0.0 <= out[key] <= 1.0:
            raise UserError(f"must be in [0, 1], got {out[key]}", key=f"data.augment.{key}")
    return out


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
