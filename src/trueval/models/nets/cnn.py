"""A conv stack whose depth is counted in weighted layers, plain or residual.

The depth study compares plain CNNs (10, 13, 30 layers) with residual ones (16, 32, 56): ``depth``
counts every conv and linear layer (stem conv + body convs + linear head), the convention of the
ResNet paper, so ``CNN(depth=56, residual=True)`` with widths (16, 32, 64) is ResNet-56.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from trueval.models.nets.blocks import BasicBlock, ConvLayer, Stem, classifier_head, init_conv_weights, stem_kind
from trueval.core.errors import UserError


def split_evenly(total: int, parts: int) -> list[int]:
    """``total`` items over ``parts`` stages, earlier stages taking the remainder."""
    base, extra = divmod(total, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


class CNN(nn.Module):
    """Stem conv, ``len(widths)`` stages (each after the first halves the resolution), global
    average pooling, linear head.

    Plain: ``depth - 2`` conv layers split over the stages. Residual: the same convs grouped in
    pairs (basic blocks) with a skip connection around each pair, projected where shapes change;
    ``depth - 2`` must then be even.
    """

    def __init__(
        self,
        in_shape: Sequence[int],
        num_classes: int,
        depth: int = 10,
        widths: Sequence[int] = (16, 32, 64),
        residual: bool = False,
        activation: str = "relu",
        dropout: float = 0.0,
        stem: str = "auto",
    ) -> None:
        super().__init__()
        widths = [int(w) for w in widths]
        if not widths or min(widths) < 1:
            raise UserError(f"widths must be a non-empty list of positive ints, got {widths}", key="model.widths")
        if depth < 2:
            raise UserError(f"depth counts the stem conv and the linear head, so it must be >= 2, got {depth}",
                            key="model.depth")
        body = depth - 2
        if residual and body % 2:
            raise UserError(f"a residual CNN is stem + pairs of convs + head, so depth - 2 must be even; "
                            f"got depth={depth} (try {depth + 1})", key="model.depth")
        self.depth, self.residual = depth, residual
        units = split_evenly(body // 2 if residual else body, len(widths))
        self.stem = Stem(in_shape[0], widths[0], stem_kind(stem, in_shape), activation)
        stages: list[nn.Module] = []
        channels = widths[0]
        for index, (width, count) in enumerate(zip(widths, units)):
            layers: list[nn.Module] = []
            for unit in range(count):
                stride = 2 if index > 0 and unit == 0 else 1
                if residual:
                    layers.append(BasicBlock(channels, width, stride, activation, residual=True))
                else:
                    layers.append(ConvLayer(channels, width, stride, activation))
                channels = width
            if layers:
                stages.append(nn.Sequential(*layers))
        self.stages = nn.Sequential(*stages)
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.feature_dim = channels
        self.head = classifier_head(channels, num_classes, dropout)
        init_conv_weights(self)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.stages(self.stem(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.forward_features(x))
