"""The detection options `data.resize` and `data.augment`, checked without importing torch: the
DataModule checks them when it is built, the audit too, which imports no torch to build one."""

from __future__ import annotations

from typing import Any, Mapping

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
