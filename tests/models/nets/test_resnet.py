"""ResNet family: CIFAR 6n+2 and ImageNet layouts, stem by image size, GELU/depthwise/CBAM/dropout."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

from trueval.models.nets.blocks import CBAM, BasicBlock, Bottleneck
from trueval.models.nets.resnet import ResNet
from trueval.core.errors import UserError


def n_params(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


@pytest.mark.parametrize("depth,blocks", [(20, 9), (32, 15), (44, 21), (56, 27), (110, 54)])
def test_cifar_family(depth: int, blocks: int) -> None:
    net = ResNet((3, 32, 32), 10, depth=depth)
    assert sum(isinstance(m, BasicBlock) for m in net.modules()) == blocks
    assert net.depth == depth


@pytest.mark.parametrize("depth", [18, 50])
def test_imagenet_layouts_match_torchvision(depth: int) -> None:
    ours = ResNet((3, 224, 224), 1000, depth=depth)
    reference = getattr(torchvision.models, f"resnet{depth}")(weights=None)
    assert n_params(ours) == n_params(reference)
    assert ours.block_kind == ("basic" if depth == 18 else "bottleneck")


def test_resnet34_layout() -> None:
    net = ResNet((3, 64, 64), 10, depth=34)
    assert net.blocks_per_stage == [3, 4, 6, 3]
    assert sum(isinstance(m, Bottleneck) for m in net.modules()) == 0


def test_stem_follows_the_image_size() -> None:
    small = ResNet((3, 32, 32), 10, depth=18)
    large = ResNet((3, 224, 224), 10, depth=18)
    assert not any(isinstance(m, nn.MaxPool2d) for m in small.stem)
    assert any(isinstance(m, nn.MaxPool2d) for m in large.stem)
    # the small-image stem keeps the resolution: 32 -> 4 after three stride-2 stages
    assert small.stages(small.stem(torch.zeros(1, 3, 32, 32))).shape[-1] == 4


@pytest.mark.parametrize("in_shape", [(1, 8, 8), (3, 32, 32), (3, 72, 72)])
@pytest.mark.parametrize("options", [
    {"depth": 8},
    {"depth": 14, "activation": "gelu"},
    {"blocks": [1, 1], "block": "bottleneck", "widths": [4, 8], "depthwise": True, "cbam": True, "dropout": 0.3},
    {"blocks": [1, 1, 1, 1], "widths": [8, 8, 16, 16], "depthwise": True},
])
def test_forward_backward(in_shape: tuple[int, int, int], options: dict) -> None:
    net = ResNet(in_shape, 5, **options)
    x = torch.randn(2, *in_shape)
    out = net(x)
    assert out.shape == (2, 5)
    out.sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters())
    assert net.forward_features(x).shape == (2, net.feature_dim)


def test_options_change_the_network() -> None:
    base = ResNet((3, 32, 32), 10, depth=50, layout="imagenet")
    gelu = ResNet((3, 32, 32), 10, depth=50, activation="gelu")
    assert any(isinstance(m, nn.GELU) for m in gelu.modules())
    assert not any(isinstance(m, nn.GELU) for m in base.modules())
    depthwise = ResNet((3, 32, 32), 10, depth=50, depthwise=True)
    assert any(isinstance(m, nn.Conv2d) and m.groups > 1 for m in depthwise.modules())
    assert n_params(depthwise) < n_params(base)
    cbam = ResNet((3, 32, 32), 10, depth=50, cbam=True)
    assert sum(isinstance(m, CBAM) for m in cbam.modules()) == 16
    assert isinstance(ResNet((3, 32, 32), 10, depth=20, dropout=0.5).head[0], nn.Dropout)


def test_zero_init_residual_makes_blocks_start_as_identity() -> None:
    net = ResNet((3, 32, 32), 10, depth=20, zero_init_residual=True).eval()
    block = net.stages[0][0]
    x = torch.rand(2, 16, 32, 32)  # non-negative: the block's final ReLU keeps it unchanged
    assert torch.allclose(block(x), x)


def test_unknown_depth_names_the_key() -> None:
    with pytest.raises(UserError, match="model.depth"):
        ResNet((3, 32, 32), 10, depth=21)
    with pytest.raises(UserError, match="model.widths"):
        ResNet((3, 32, 32), 10, depth=20, widths=[16, 32])
