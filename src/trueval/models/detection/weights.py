"""Loading local weight files into a detector or its backbone (nothing is ever downloaded).

A file may hold a bare state dict, a Lightning checkpoint (``state_dict`` with a ``net.``
prefix) or a torchvision reference checkpoint (``model``). Key prefixes are matched
automatically (an ImageNet ResNet file fits ``backbone.body``; a MobileNet one after dropping
``features.``); tensors whose shape differs (a class head for another number of classes) are
skipped and reported, and a file that matches nothing is refused.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

from trueval.core.errors import UserError

log = logging.getLogger("trueval")

_PREFIXES = ("", "net.", "model.", "module.", "backbone.body.", "backbone.", "body.", "features.")


def _state_dict(obj: Any, path: str, key: str) -> dict[str, torch.Tensor]:
    for field in ("state_dict", "model"):
        if isinstance(obj, Mapping) and isinstance(obj.get(field), Mapping):
            obj = obj[field]
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise UserError("the file holds no state dict of tensors", key=key, path=path)
    return dict(obj)


def _best_prefix(source: Mapping[str, torch.Tensor], target: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The source keys, with the prefix stripped that matches the most target tensors by name and shape."""
    best: dict[str, torch.Tensor] = {}
    for prefix in _PREFIXES:
        stripped = {k[len(prefix):]: v for k, v in source.items() if k.startswith(prefix)}
        matched = {k: v for k, v in stripped.items() if k in target and target[k].shape == v.shape}
        if len(matched) > len(best):
            best = matched
    return best


def load_local_weights(module: nn.Module, path: str | None, key: str) -> int:
    """Load ``path`` into ``module``; returns the number of tensors loaded. ``key`` names the config key."""
    if path in (None, "", "none", "None"):
        return 0
    p = Path(str(path)).expanduser()
    if not p.is_file():
        hint = ""
        if not any(sep in str(path) for sep in ("/", "\\", ".")):
            hint = (" (torchvision weight names such as DEFAULT are not accepted: nothing is downloaded; "
                    "save the weights file once where you have network access and point at the file)")
        raise UserError(f"weights file not found: {path}{hint}", key=key)
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle, zip and format errors come in many types
        raise UserError(f"cannot read weights (torch.load weights_only=True): {exc}", key=key, path=str(p)) from exc
    source = _state_dict(obj, str(p), key)
    target = module.state_dict()
    matched = _best_prefix(source, target)
    if not matched:
        raise UserError(f"none of the {len(source)} tensors in the file match the model's "
                        f"{len(target)} (names or shapes differ)", key=key, path=str(p))
    module.load_state_dict(matched, strict=False)
    missing = len(target) - len(matched)
    log.info("%s: loaded %d tensors from %s (%d of the model's left as initialised)", key, len(matched), p, missing)
    return len(matched)
