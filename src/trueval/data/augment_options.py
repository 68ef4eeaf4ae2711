"""The augmentation options of `data.augment` (per split), checked without importing torch: every
DataModule checks them when it is built, the audit too, which needs no torch on a warm run."""

from __future__ import annotations

from typing import Any, Mapping

AUGMENT_KEYS = ("crop_padding", "hflip", "rot90", "cutout")


def check_spec(spec: Mapping[str, Any] | None, split: str) -> dict[str, Any]:
    """Validated augmentation options of one split (missing keys mean off)."""
    from trueval.core.errors import UserError

    spec = dict(spec or {})
    unknown = set(spec) - set(AUGMENT_KEYS)
    if unknown:
        raise UserError(f"unknown augmentation option(s) {sorted(unknown)}; known: {', '.join(AUGMENT_KEYS)}",
                        key=f"data.augment.{split}.{sorted(unknown)[0]}")
    return {"crop_padding": int(spec.get("crop_padding", 0) or 0), "hflip": bool(spec.get("hflip", False)),
            "rot90": bool(spec.get("rot90", False)), "cutout": int(spec.get("cutout", 0) or 0)}


def is_identity(spec: Mapping[str, Any]) -> bool:
    return not (spec["crop_padding"] or spec["hflip"] or spec["rot90"] or spec["cutout"])
