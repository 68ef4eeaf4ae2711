"""Convolutional building blocks shared by the CNN and ResNet networks.

One place for the stem, the plain conv layer, the basic and bottleneck residual blocks and CBAM,
so the plain/residual comparison of the depth study uses the very same layers on both sides.
"""

from __future__ import annotations

import torch
from torch import nn

from trueval.models.nets.mlp import activation_layer
from trueval.core.errors import UserError

# Inputs at most this large (shorter side, pixels) get the CIFAR stem (3x3, stride 1, no pooling);
# larger ones the ImageNet stem (7x7, stride 2, max-pool), which cuts the resolution by 4.
SMALL_IMAGE_MAX_SIDE = 64
STEM_KINDS = ("auto", "cifar", "imagenet")


def spatial_conv(in_ch: int, out_ch: int, stride: int = 1, depthwise: bool = False) -> nn.Module:
    """The 3x3 convolution of a layer; ``depthwise`` makes it depthwise-separable.

    Depthwise: a 3x3 conv per channel followed by a 1x1 conv mixing channels (MobileNet style),
    which is cheaper in parameters and multiply-adds than a full 3x3 conv.
    """
    if not depthwise:
        return nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1, bias=False)
    if in_ch == out_ch:
        # inside a bottleneck the channel mixing is done by the surrounding 1x1 convs
        return nn.Conv2d(in_ch, in_ch, 3, stride=stride, padding=1, groups=in_ch, bias=False)
    return nn.Sequential(
        nn.Conv2d(in_ch, in_ch, 3, stride=stride, padding=1, groups=in_ch, bias=False),
        nn.Conv2d(in_ch, out_ch, 1, bias=False),
    )


def stem_kind(kind: str, in_shape: tuple[int, ...]) -> str:
    """Resolve ``auto`` from the input size: small images keep their resolution in the stem."""
    if kind not in STEM_KINDS:
        raise UserError(f"unknown stem {kind!r}; choose one of {list(STEM_KINDS)}", key="model.stem")
    if kind != "auto":
        return kind
    return "cifar" if min(in_shape[-2:]) <= SMALL_IMAGE_MAX_SIDE else "imagenet"


class Stem(nn.Sequential):
    """First conv + BN + activation; the ImageNet variant also downsamples by 4."""

    def __init__(self, in_ch: int, out_ch: int, kind: str, activation: str) -> None:
        if kind == "cifar":
            layers = [nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=False), nn.BatchNorm2d(out_ch),
                      activation_layer(activation)]
        else:
            layers = [nn.Conv2d(in_ch, out_ch, 7, stride=2, padding=3, bias=False), nn.BatchNorm2d(out_ch),
                      activation_layer(activation), nn.MaxPool2d(3, stride=2, padding=1)]
        super().__init__(*layers)


class ConvLayer(nn.Sequential):
    """One plain layer: 3x3 conv -> BN -> activation (the unit of the plain CNNs)."""

    def __init__(self, in_ch: int, out_ch: int, stride: int, activation: str, depthwise: bool = False) -> None:
        super().__init__(spatial_conv(in_ch, out_ch, stride, depthwise), nn.BatchNorm2d(out_ch),
                         activation_layer(activation))


def shortcut(in_ch: int, out_ch: int, stride: int) -> nn.Module:
    """Identity where shapes agree, else the 1x1 strided projection (ResNet option B)."""
    if stride == 1 and in_ch == out_ch:
        return nn.Identity()
    return nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False), nn.BatchNorm2d(out_ch))


class ChannelAttention(nn.Module):
    """CBAM channel gate: a shared MLP over the average- and max-pooled channel descriptors."""

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        hidden = max(channels // reduction, 1)
        self.mlp = nn.Sequential(nn.Conv2d(channels, hidden, 1), nn.ReLU(inplace=True), nn.Conv2d(hidden, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        avg = self.mlp(x.mean(dim=(2, 3), keepdim=True))
        peak = self.mlp(x.amax(dim=(2, 3), keepdim=True))
        return x * torch.sigmoid(avg + peak)


class SpatialAttention(nn.Module):
    """CBAM spatial gate: a 7x7 conv over the channel-wise mean and max maps."""

    def __init__(self, kernel_size: int = 7) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        maps = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)
        return x * torch.sigmoid(self.conv(maps))


class CBAM(nn.Sequential):
    """Convolutional Block Attention Module (Woo et al., 2018): channel then spatial attention.

    Written here because neither torchvision nor timm exposes CBAM as a standalone block that takes
    plain channel counts (timm's lives inside its own block classes).
    """

    def __init__(self, channels: int, reduction: int = 16, kernel_size: int = 7) -> None:
        super().__init__(ChannelAttention(channels, reduction), SpatialAttention(kernel_size))


class BasicBlock(nn.Module):
    """Two 3x3 conv layers; with ``residual`` the input is added back before the last activation.

    ``residual=False`` gives the plain counterpart with exactly the same layers, which is what
    makes the plain-vs-residual comparison fair.
    """

    expansion = 1

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1, activation: str = "relu",
                 depthwise: bool = False, cbam: bool = False, residual: bool = True) -> None:
        super().__init__()
        self.branch = nn.Sequential(
            spatial_conv(in_ch, out_ch, stride, depthwise), nn.BatchNorm2d(out_ch), activation_layer(activation),
            spatial_conv(out_ch, out_ch, 1, depthwise), nn.BatchNorm2d(out_ch),
            CBAM(out_ch) if cbam else nn.Identity(),
        )
        self.shortcut = shortcut(in_ch, out_ch, stride) if residual else None
        self.act = activation_layer(activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.branch(x)
        if self.shortcut is not None:
            out = out + self.shortcut(x)
        return self.act(out)


class Bottleneck(nn.Module):
    """1x1 reduce -> 3x3 -> 1x1 expand (x4), the block of ResNet-50 and deeper."""

    expansion = 4

    def __init__(self, in_ch: int, width: int, stride: int = 1, activation: str = "relu",
                 depthwise: bool = False, cbam: bool = False, residual: bool = True) -> None:
        super().__init__()
        out_ch = width * self.expansion
        self.branch = nn.Sequential(
            nn.Conv2d(in_ch, width, 1, bias=False), nn.BatchNorm2d(width), activation_layer(activation),
            spatial_conv(width, width, stride, depthwise), nn.BatchNorm2d(width), activation_layer(activation),
            nn.Conv2d(width, out_ch, 1, bias=False), nn.BatchNorm2d(out_ch),
            CBAM(out_ch) if cbam else nn.Identity(),
        )
        self.shortcut = shortcut(in_ch, out_ch, stride) if residual else None
        self.act = activation_layer(activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.branch(x)
        if self.shortcut is not None:
            out = out + self.shortcut(x)
        return self.act(out)


def init_conv_weights(net: nn.Module) -> None:
    """He (fan-out) init for convs and unit BN, as in the ResNet paper and torchvision."""
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def classifier_head(features: int, num_classes: int, dropout: float) -> nn.Sequential:
    """Dropout (when asked) then the linear layer that maps pooled features to logits."""
    if not 0 <= dropout < 1:
        raise UserError(f"dropout must be in [0, 1), got {dropout}", key="model.dropout")
    return nn.Sequential(nn.Dropout(dropout) if dropout > 0 else nn.Identity(), nn.Linear(features, num_classes))
