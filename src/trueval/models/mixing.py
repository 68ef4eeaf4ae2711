"""Mixup and CutMix in the training step, by timm's ``Mixup`` (config block ``mixup``).

timm mixes a batch with its reversed self and returns soft targets; the classifier's
cross-entropy takes class probabilities, with label smoothing applied there (so timm's own is off).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from trueval.core.errors import UserError

_KEYS = ("mixup_alpha", "cutmix_alpha", "prob", "switch_prob", "mode")


class BatchMixer:
    """Callable ``(x, y) -> (mixed x, soft targets)``; odd-sized batches pass through one-hot."""

    def __init__(self, mixup: Any, num_classes: int) -> None:
        self.mixup = mixup
        self.num_classes = num_classes

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if len(x) % 2:  # timm pairs each image with its mirror in the batch: it needs an even count
            return x, torch.nn.functional.one_hot(y, self.num_classes).to(x.dtype)
        return self.mixup(x, y)


def build_mixup(cfg: Mapping[str, Any] | None, num_classes: int) -> BatchMixer | None:
    """None unless ``mixup.mixup_alpha`` or ``mixup.cutmix_alpha`` is positive."""
    opts = dict(cfg or {})
    unknown = sorted(set(opts) - set(_KEYS))
    if unknown:
        raise UserError(f"unknown mixup option(s) {unknown}; it takes {list(_KEYS)}", key=f"mixup.{unknown[0]}")
    mixup_alpha = float(opts.get("mixup_alpha", 0.0) or 0.0)
    cutmix_alpha = float(opts.get("cutmix_alpha", 0.0) or 0.0)
    if mixup_alpha < 0 or cutmix_alpha < 0:
        raise UserError("mixup_alpha and cutmix_alpha must be >= 0", key="mixup.mixup_alpha")
    if mixup_alpha == 0 and cutmix_alpha == 0:
        return None
    from timm.data import Mixup

    mixer = Mixup(mixup_alpha=mixup_alpha, cutmix_alpha=cutmix_alpha, prob=float(opts.get("prob", 1.0)),
                  switch_prob=float(opts.get("switch_prob", 0.5)), mode=str(opts.get("mode", "batch")),
                  label_smoothing=0.0, num_classes=num_classes)
    return BatchMixer(mixer, num_classes)
