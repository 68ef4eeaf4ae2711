"""torchvision detectors by name, from scratch unless a local weights file is given.

Nothing downloads: torchvision's ``weights``/``weights_backbone`` are always None here (several
builders default ``weights_backbone`` to ImageNet, which would download); local files are loaded
afterwards by ``weights.load_local_weights``. The detector's internal resize follows
``data.image_size`` (torchvision resizes to 800 px by default, which makes CPU runs crawl).

Label convention: the data gives class ids 0..K-1. Faster R-CNN and SSD reserve 0 for the
background, so they get K+1 classes and ids shifted by one (``label_offset`` 1); RetinaNet and
FCOS have no background class (``label_offset`` 0).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any, Callable

from torch import nn
from torchvision.models import detection as tvd
from torchvision.models.detection.backbone_utils import resnet_fpn_backbone
from torchvision.models.detection.retinanet import RetinaNetHead
from torchvision.ops import misc as misc_ops
from torchvision.ops.feature_pyramid_network import LastLevelP6P7

from trueval.core.errors import UserError

NORMS = ("batch", "group", "frozen")


@dataclass(frozen=True)
class Architecture:
    build: Callable[..., nn.Module]  # (num_classes, norm, trainable_backbone_layers, **options) -> detector
    background: bool  # True: class 0 is the background, data ids are shifted by one
    family: str  # faster_rcnn | retinanet | fcos | ssd


# Where trueval's defaults differ from torchvision's (model.options overrides them):
# - Faster R-CNN samples 512 regions per image for its box head and keeps 1000 proposals at test
#   time, numbers tuned for 800-1333 px COCO images with many objects; on small images that box
#   head (and roi_align's backward, slow on CPUs) is most of the cost. 128 and 300 keep datasets
#   with up to ~100 objects per image well covered.
# - FCOS drops detections scoring under 0.2, which lowers mAP (the curve is cut short); 0.05 as
#   for RetinaNet.
FAMILY_DEFAULTS: dict[str, dict[str, Any]] = {
    "faster_rcnn": {"box_batch_size_per_image": 128, "rpn_post_nms_top_n_test": 300},
    "fcos": {"score_thresh": 0.05},
    "retinanet": {},
    "ssd": {},
}


def _norm_layer(norm: str) -> Callable[..., nn.Module]:
    if norm == "batch":
        return nn.BatchNorm2d
    if norm == "group":
        return partial(nn.GroupNorm, 32)
    if norm == "frozen":
        return misc_ops.FrozenBatchNorm2d
    raise UserError(f"unknown norm {norm!r}; choose one of {', '.join(NORMS)}", key="model.norm")


def _torchvision(builder: Callable[..., nn.Module], accepts_norm: bool = False):
    """A torchvision builder called offline; ``norm`` only where the builder has no fixed choice."""

    def build(num_classes: int, norm: str, trainable_backbone_layers: int | None, **options: Any) -> nn.Module:
        if norm != "batch" and not accepts_norm:
            raise UserError(f"{builder.__name__} picks its own norm layers; use norm=batch, or a resnet18/34 "
                            "architecture for group/frozen norm", key="model.norm")
        return builder(weights=None, weights_backbone=None, num_classes=num_classes,
                       trainable_backbone_layers=trainable_backbone_layers, **options)

    return build


def _resnet_fpn(depth: int, family: str):
    """Faster R-CNN, RetinaNet or FCOS on a ResNet-18/34 FPN: lighter than ResNet-50 for from-scratch runs."""

    def build(num_classes: int, norm: str, trainable_backbone_layers: int | None, **options: Any) -> nn.Module:
        norm_layer = _norm_layer(norm)
        trainable = 5 if trainable_backbone_layers is None else int(trainable_backbone_layers)
        if family == "faster_rcnn":
            backbone = resnet_fpn_backbone(backbone_name=f"resnet{depth}", weights=None, norm_layer=norm_layer,
                                           trainable_layers=trainable)
            return tvd.FasterRCNN(backbone, num_classes=num_classes, **options)
        # one-stage detectors use P3-P7 like their ResNet-50 versions
        backbone = resnet_fpn_backbone(backbone_name=f"resnet{depth}", weights=None, norm_layer=norm_layer,
                                       trainable_layers=trainable, returned_layers=[2, 3, 4],
                                       extra_blocks=LastLevelP6P7(256, 256))
        if family == "fcos":
            return tvd.FCOS(backbone, num_classes=num_classes, **options)
        anchors = tvd.retinanet._default_anchorgen()
        # the v2 recipe: GroupNorm in the head and a GIoU box loss
        head = RetinaNetHead(backbone.out_channels, anchors.num_anchors_per_location()[0], num_classes,
                             norm_layer=partial(nn.GroupNorm, 32))
        head.regression_head._loss_type = "giou"
        return tvd.RetinaNet(backbone, num_classes=num_classes, anchor_generator=anchors, head=head, **options)

    return build


def _ssd(builder: Callable[..., nn.Module]):
    def build(num_classes: int, norm: str, trainable_backbone_layers: int | None, **options: Any) -> nn.Module:
        if norm != "batch":
            raise UserError(f"{builder.__name__} picks its own norm layers; use norm=batch", key="model.norm")
        return builder(weights=None, weights_backbone=None, num_classes=num_classes,
                       trainable_backbone_layers=trainable_backbone_layers, **options)

    return build


ARCHITECTURES: dict[str, Architecture] = {
    "fasterrcnn_mobilenet_v3_large_fpn": Architecture(_torchvision(tvd.fasterrcnn_mobilenet_v3_large_fpn), True, "faster_rcnn"),
    "fasterrcnn_mobilenet_v3_large_320_fpn": Architecture(
        _torchvision(tvd.fasterrcnn_mobilenet_v3_large_320_fpn), True, "faster_rcnn"),
    "fasterrcnn_resnet18_fpn": Architecture(_resnet_fpn(18, "faster_rcnn"), True, "faster_rcnn"),
    "fasterrcnn_resnet34_fpn": Architecture(_resnet_fpn(34, "faster_rcnn"), True, "faster_rcnn"),
    "fasterrcnn_resnet50_fpn": Architecture(_torchvision(tvd.fasterrcnn_resnet50_fpn), True, "faster_rcnn"),
    "fasterrcnn_resnet50_fpn_v2": Architecture(_torchvision(tvd.fasterrcnn_resnet50_fpn_v2), True, "faster_rcnn"),
    "retinanet_resnet18_fpn": Architecture(_resnet_fpn(18, "retinanet"), False, "retinanet"),
    "retinanet_resnet34_fpn": Architecture(_resnet_fpn(34, "retinanet"), False, "retinanet"),
    "retinanet_resnet50_fpn": Architecture(_torchvision(tvd.retinanet_resnet50_fpn), False, "retinanet"),
    "retinanet_resnet50_fpn_v2": Architecture(_torchvision(tvd.retinanet_resnet50_fpn_v2), False, "retinanet"),
    "fcos_resnet18_fpn": Architecture(_resnet_fpn(18, "fcos"), False, "fcos"),
    "fcos_resnet34_fpn": Architecture(_resnet_fpn(34, "fcos"), False, "fcos"),
    "fcos_resnet50_fpn": Architecture(_torchvision(tvd.fcos_resnet50_fpn), False, "fcos"),
    "ssdlite320_mobilenet_v3_large": Architecture(_ssd(tvd.ssdlite320_mobilenet_v3_large), True, "ssd"),
    "ssd300_vgg16": Architecture(_ssd(tvd.ssd300_vgg16), True, "ssd"),
}


def architecture(name: str) -> Architecture:
    if name not in ARCHITECTURES:
        raise UserError(f"unknown detector {name!r}; choose one of: {', '.join(sorted(ARCHITECTURES))}",
                        key="model.name")
    return ARCHITECTURES[name]


def set_input_size(model: nn.Module, image_size: int) -> None:
    """Make the detector's own resize a no-op at ``image_size`` (the data is already that size)."""
    transform = model.transform
    transform.min_size = (int(image_size),)
    transform.max_size = int(image_size)
    if getattr(transform, "fixed_size", None) is not None:  # SSD resizes to a fixed square
        transform.fixed_size = (int(image_size), int(image_size))
