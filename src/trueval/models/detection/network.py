"""Building one detector network from the `model` config group (`model=detector`)."""

from __future__ import annotations

from typing import Any, Mapping

import inspect

from torch import nn
from torchvision.models import detection as tvd

from trueval.models.detection.architectures import FAMILY_DEFAULTS, architecture, set_input_size
from trueval.models.detection.weights import load_local_weights
from trueval.core.errors import UserError


def build_detector(
    name: str,
    num_classes: int,
    image_size: int,
    weights: str | None = None,
    weights_backbone: str | None = None,
    norm: str = "batch",
    trainable_backbone_layers: int | None = None,
    options: Mapping[str, Any] | None = None,
    load_weights: bool = True,
) -> nn.Module:
    """A torchvision detector for ``num_classes`` data classes whose input size is ``image_size``.

    ``options`` go to the torchvision constructor (``box_score_thresh``, ``detections_per_img``,
    ...). ``load_weights=False`` skips the local files (a checkpoint is about to overwrite them).
    The returned module has ``label_offset`` (1 when class 0 is the background, else 0).
    """
    if num_classes < 1:
        raise UserError(f"a detector needs at least one class, got {num_classes}", key="data")
    arch = architecture(name)
    offset = 1 if arch.background else 0
    options = {**FAMILY_DEFAULTS[arch.family], **dict(options or {})}
    _check_options(arch.family, options)
    try:
        net = arch.build(num_classes + offset, norm, trainable_backbone_layers, **options)
    except TypeError as exc:  # an unknown keyword in model.options
        raise UserError(f"{name}: {exc}", key="model.options") from exc
    set_input_size(net, image_size)
    net.label_offset = offset
    if load_weights:
        load_local_weights(net, weights, "model.weights")
        body = getattr(net.backbone, "body", net.backbone)
        load_local_weights(body, weights_backbone, "model.weights_backbone")
    return net


_FAMILY_CLASSES = {"faster_rcnn": tvd.FasterRCNN, "retinanet": tvd.RetinaNet, "fcos": tvd.FCOS, "ssd": tvd.ssd.SSD}


def _check_options(family: str, options: Mapping[str, Any]) -> None:
    """torchvision's constructors swallow unknown keywords silently; refuse them by name instead."""
    known = set(inspect.signature(_FAMILY_CLASSES[family].__init__).parameters) - {"self", "kwargs", "backbone",
                                                                                  "num_classes"}
    unknown = sorted(set(options) - known)
    if unknown:
        raise UserError(f"unknown option(s) {unknown} for a {family} detector; known: {', '.join(sorted(known))}",
                        key=f"model.options.{unknown[0]}")
