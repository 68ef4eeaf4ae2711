"""Grad-CAM (Selvaraju et al., 2017) on the last convolutional stage of any of our classifiers.

Written here (about 40 lines) rather than taken from the ``grad-cam`` package: it needs only a
forward hook on the stage that ``trueval.models.stages`` already names for every network.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from trueval.core.errors import UserError


def last_conv_stage(net: nn.Module) -> nn.Module:
    """The module of the last stage before the head (``stage4`` of a ResNet-18, ``layer4`` in torchvision)."""
    from trueval.models.stages import HEAD, stage_prefixes

    body = [prefixes for name, prefixes in stage_prefixes(net) if name != HEAD]
    module = net.get_submodule(body[-1][0].rstrip(".")) if body else None
    if module is None or not any(isinstance(m, nn.Conv2d) for m in module.modules()):
        raise UserError(f"{type(net).__name__} has no convolutional stage for Grad-CAM", key="callbacks.explain")
    return module


def grad_cam(net: nn.Module, x: torch.Tensor, target: torch.Tensor | None = None,
             layer: nn.Module | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(maps N x H x W in [0, 1] at the input's size, logits) for class ``target`` (default: predicted).

    The map is ReLU(sum_k w_k A_k), A the stage's activations and w_k the spatial mean of the
    gradient of the class score with respect to A_k; upsampled bilinearly to the input.
    """
    layer = layer or last_conv_stage(net)
    captured: list[torch.Tensor] = []
    handle = layer.register_forward_hook(lambda _m, _inp, out: captured.append(out))
    was_training = net.training
    net.eval()
    try:
        with torch.enable_grad():
            x = x.detach().clone().requires_grad_(True)  # a graph even when every parameter is frozen
            logits = net(x)
            target = logits.argmax(1) if target is None else target.to(logits.device)
            score = logits.gather(1, target.view(-1, 1)).sum()
            (grads,) = torch.autograd.grad(score, captured[-1])
    finally:
        handle.remove()
        net.train(was_training)
    activations = captured[-1].detach()
    weights = grads.mean(dim=(2, 3), keepdim=True)
    cam = F.relu((weights * activations).sum(dim=1, keepdim=True))
    cam = F.interpolate(cam, size=x.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
    peak = cam.flatten(1).max(dim=1).values.clamp_min(1e-12).view(-1, 1, 1)
    return (cam / peak).detach(), logits.detach()
