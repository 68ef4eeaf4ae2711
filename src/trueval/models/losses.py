"""Classification losses beyond plain cross-entropy: ``loss.name=focal``.

torchvision.ops.sigmoid_focal_loss is the binary (one-vs-rest sigmoid) form used by detectors; a
softmax classifier needs the multi-class form of Lin et al. (2017), -(1 - p_t)^gamma log p_t,
which neither torch nor torchvision ships, hence this small function.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from trueval.core.errors import UserError

LOSSES = ("ce", "focal")


def check_loss(name: str, gamma: float) -> None:
    if name not in LOSSES:
        raise UserError(f"unknown loss {name!r}; choose one of {list(LOSSES)}", key="loss.name")
    if not float(gamma) >= 0:
        raise UserError(f"focal loss gamma must be >= 0, got {gamma}", key="loss.gamma")


def focal_loss(logits: torch.Tensor, target: torch.Tensor, gamma: float = 2.0, weight: torch.Tensor | None = None,
               label_smoothing: float = 0.0) -> torch.Tensor:
    """Mean of (1 - p_t)^gamma x cross-entropy per sample; gamma=0 is cross-entropy.

    Class weights average like ``F.cross_entropy``'s (sum of weighted losses / sum of the weights).
    """
    ce = F.cross_entropy(logits, target, reduction="none", label_smoothing=label_smoothing)
    pt = logits.softmax(dim=1).gather(1, target[:, None]).squeeze(1)
    loss = (1.0 - pt).clamp(min=0).pow(gamma) * ce
    if weight is None:
        return loss.mean()
    w = weight[target]
    return (loss * w).sum() / w.sum()
