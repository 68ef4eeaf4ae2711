"""The augmentation options of `data.augment` (per split), checked without importing torch: every
DataModule checks them when it is built, the audit too, which needs no torch on a warm run.

``hflip``: true (each image mirrored with probability 1/2 in each epoch), false, or ``alternate``
(airbench94's alternating flip, GPU-resident loader only: a fixed random half of the images is
mirrored in even epochs and the other half in odd ones, so every image is seen both ways in any
two consecutive epochs)."""

from __future__ import annotations

from typing import Any, Mapping

AUGMENT_KEYS = ("crop_padding", "hflip", "rot90", "cutout")


def valid_hflip(value: Any) -> bool:
    """true, false or "alternate" (shared by this check and the GPU loader's spec parser)."""
    return isinstance(value, bool) or value == "alternate"


def check_spec(spec: Mapping[str, Any] | None, split: str) -> dict[str, Any]:
    """Validated augmentation options of one split (missing keys mean off)."""
    from trueval.core.errors import UserError

    spec = dict(spec or {})
    unknown = set(spec) - set(AUGMENT_KEYS)
    if unknown:
        raise UserError(f"unknown augmentation option(s) {sorted(unknown)}; known: {', '.join(AUGMENT_KEYS)}",
                        key=f"data.augment.{split}.{sorted(unknown)[0]}")
    hflip = spec.get("hflip", False)
    if hflip is None:
        hflip = False
    if not valid_hflip(hflip):
        raise UserError(f"hflip must be true, false or alternate, got {hflip!r}", key=f"data.augment.{split}.hflip")
    return {"crop_padding": int(spec.get("crop_padding", 0) or 0), "hflip": hflip,
            "rot90": bool(spec.get("rot90", False)), "cutout": int(spec.get("cutout", 0) or 0)}


def is_identity(spec: Mapping[str, Any]) -> bool:
    return not (spec["crop_padding"] or spec["hflip"] or spec["rot90"] or spec["cutout"])
