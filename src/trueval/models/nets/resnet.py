"""The ResNet family: CIFAR-style (6n+2 layers: 20, 32, 44, 56, 110) and ImageNet-style layouts
(18, 34 with basic blocks; 50, 101, 152 with bottlenecks), with the options the student studies
vary: GELU, depthwise 3x3 convolutions, CBAM attention in every block, dropout before the head.

Written here rather than taken from torchvision because torchvision's ResNet has none of these
options and its stem assumes ImageNet-sized inputs; ``model=torchvision`` gives the stock models.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from trueval.models.nets.blocks import BasicBlock, Bottleneck, Stem, classifier_head, init_conv_weights, stem_kind
from trueval.core.errors import UserError

# depth -> (block, blocks per stage) of He et al. (2016), Table 1
IMAGENET_LAYOUTS: dict[int, tuple[str, list[int]]] = {
    18: ("basic", [2, 2, 2, 2]),
    34: ("basic", [3, 4, 6, 3]),
    50: ("bottleneck", [3, 4, 6, 3]),
    101: ("bottleneck", [3, 4, 23, 3]),
    152: ("bottleneck", [3, 8, 36, 3]),
}
IMAGENET_WIDTHS = [64, 128, 256, 512]
CIFAR_WIDTHS = [16, 32, 64]
BLOCKS = {"basic": BasicBlock, "bottleneck": Bottleneck}


def resolve_layout(depth: int | None, layout: str, block: str | None, blocks: Sequence[int] | None,
                   widths: Sequence[int] | None) -> tuple[str, list[int], list[int]]:
    """(block kind, blocks per stage, stage widths) from the config.

    ``blocks`` (explicit blocks per stage) wins over ``depth``; otherwise ``layout=auto`` takes
    the ImageNet table for 18/34/50/101/152 and the CIFAR rule depth = 6n + 2 for the rest.
    """
    if layout not in ("auto", "cifar", "imagenet"):
        raise UserError(f"unknown layout {layout!r}; choose auto, cifar or imagenet", key="model.layout")
    if block is not None and block not in BLOCKS:
        raise UserError(f"unknown block {block!r}; choose one of {sorted(BLOCKS)}", key="model.block")
    if blocks is not None:
        counts = [int(b) for b in blocks]
        if not counts or min(counts) < 1:
            raise UserError(f"blocks must list positive block counts per stage, got {counts}", key="model.blocks")
        kind = block or "basic"
        default_widths = (IMAGENET_WIDTHS if len(counts) == 4 else CIFAR_WIDTHS)[: len(counts)]
        stage_widths = list(widths) if widths is not None else default_widths
    elif depth is None:
        raise UserError("set model.depth (e.g. 20, 56, 18, 50) or model.blocks", key="model.depth")
    elif layout != "cifar" and depth in IMAGENET_LAYOUTS:
        kind, counts = IMAGENET_LAYOUTS[depth]
        kind = block or kind
        stage_widths = list(widths) if widths is not None else IMAGENET_WIDTHS
    elif layout != "imagenet" and depth >= 8 and (depth - 2) % 6 == 0:
        kind, counts = block or "basic", [(depth - 2) // 6] * 3
        stage_widths = list(widths) if widths is not None else CIFAR_WIDTHS
    else:
        cifar = [6 * n + 2 for n in (3, 5, 7, 9, 18)]
        raise UserError(f"no ResNet layout for depth={depth} (layout={layout}); use an ImageNet depth "
                        f"{sorted(IMAGENET_LAYOUTS)}, a CIFAR depth 6n+2 such as {cifar}, or set model.blocks",
                        key="model.depth")
    if len(stage_widths) != len(counts):
        raise UserError(f"widths {stage_widths} must have one entry per stage ({len(counts)} stages)",
                        key="model.widths")
    return kind, counts, [int(w) for w in stage_widths]


class ResNet(nn.Module):
    """Stem (adapted to the image size), residual stages, global average pooling, dropout, head."""

    def __init__(
        self,
        in_shape: Sequence[int],
        num_classes: int,
        depth: int | None = 20,
        layout: str = "auto",
        block: str | None = None,
        blocks: Sequence[int] | None = None,
        widths: Sequence[int] | None = None,
        activation: str = "relu",
        depthwise: bool = False,
        cbam: bool = False,
        dropout: float = 0.0,
        stem: str = "auto",
        residual: bool = True,
        zero_init_residual: bool = False,
    ) -> None:
        super().__init__()
        kind, counts, stage_widths = resolve_layout(depth, layout, block, blocks, widths)
        block_cls = BLOCKS[kind]
        self.block_kind, self.blocks_per_stage, self.residual = kind, counts, residual
        # conv/linear layers along the main path: stem + convs per block x blocks + head
        self.depth = 2 + (2 if kind == "basic" else 3) * sum(counts)
        self.stem = Stem(in_shape[0], stage_widths[0], stem_kind(stem, in_shape), activation)
        channels = stage_widths[0]
        stages: list[nn.Module] = []
        for index, (width, count) in enumerate(zip(stage_widths, counts)):
            layers = []
            for unit in range(count):
                stride = 2 if index > 0 and unit == 0 else 1
                layers.append(block_cls(channels, width, stride, activation, depthwise, cbam, residual))
                channels = width * block_cls.expansion
            stages.append(nn.Sequential(*layers))
        self.stages = nn.Sequential(*stages)
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.feature_dim = channels
        self.head = classifier_head(channels, num_classes, dropout)
        init_conv_weights(self)
        if zero_init_residual:
            # each block starts as the identity (Goyal et al., 2017): helps very deep nets early on
            for m in self.modules():
                if isinstance(m, (BasicBlock, Bottleneck)):
                    last_bn = [layer for layer in m.branch if isinstance(layer, nn.BatchNorm2d)][-1]
                    nn.init.zeros_(last_bn.weight)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.stages(self.stem(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.forward_features(x))
