"""Stable names for the loss components torchvision detectors return, and losses without side effects.

Each detector family names its losses differently (``loss_classifier`` vs ``classification``);
logs and sweeps compare runs across architectures, so every component gets one name:
``cls_loss``, ``box_loss``, and the model-specific ``rpn_obj_loss``, ``rpn_box_loss``,
``ctr_loss``.
"""

from __future__ import annotations

from typing import Mapping

import torch
from torch import nn

STABLE_NAMES = {
    "loss_classifier": "cls_loss",  # Faster R-CNN box head
    "loss_box_reg": "box_loss",
    "loss_objectness": "rpn_obj_loss",  # Faster R-CNN region proposals
    "loss_rpn_box_reg": "rpn_box_loss",
    "classification": "cls_loss",  # RetinaNet, FCOS, SSD
    "bbox_regression": "box_loss",
    "bbox_ctrness": "ctr_loss",  # FCOS centre-ness
}


def rename_losses(losses: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """{stable name: value}; an unknown component keeps its own name."""
    return {STABLE_NAMES.get(k, k): v for k, v in losses.items()}


def eval_losses(net: nn.Module, images: list[torch.Tensor], targets: list[dict]) -> dict[str, torch.Tensor]:
    """The training losses of a batch without changing the model or the random stream.

    torchvision detectors only return losses in train mode; here norm layers stay in eval mode
    (running statistics are not updated) and no gradients are kept. Faster R-CNN samples regions at
    random for its losses: a fixed seed makes the number depend on the weights and the batch only
    (eval.py reproduces it), and the caller's random stream is restored afterwards.
    """
    was_training = net.training
    devices = [images[0].device] if images and images[0].is_cuda else []
    with torch.random.fork_rng(devices=devices), torch.no_grad():
        torch.manual_seed(0)
        net.train()
        for m in net.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.eval()
        try:
            losses = net(images, targets)
        finally:
            net.train(was_training)
    return rename_losses(losses)
