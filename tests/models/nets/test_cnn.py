"""The CNN: depth counts conv + linear layers, plain and residual, any input size."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from trueval.models.nets.blocks import BasicBlock
from trueval.models.nets.cnn import CNN, split_evenly
from trueval.core.errors import UserError


def main_path_layers(net: nn.Module) -> int:
    """Conv and linear layers along the main path (shortcut projections excluded)."""
    return sum(1 for name, m in net.named_modules()
               if isinstance(m, (nn.Conv2d, nn.Linear)) and "shortcut" not in name)


@pytest.mark.parametrize("depth,residual", [(10, False), (13, False), (30, False), (16, True), (32, True), (56, True)])
def test_depths_of_the_classic_study_are_expressible(depth: int, residual: bool) -> None:
    net = CNN((3, 32, 32), 10, depth=depth, residual=residual)
    assert main_path_layers(net) == depth
    blocks = sum(isinstance(m, BasicBlock) for m in net.modules())
    assert blocks == ((depth - 2) // 2 if residual else 0)


def test_residual_56_is_resnet_56_sized() -> None:
    # ResNet-56 for CIFAR has 0.85M parameters (He et al. 2016, Table 6)
    params = sum(p.numel() for p in CNN((3, 32, 32), 10, depth=56, residual=True).parameters())
    assert 0.84e6 < params < 0.87e6


@pytest.mark.parametrize("in_shape", [(1, 8, 8), (3, 32, 32), (1, 28, 28), (3, 96, 80)])
@pytest.mark.parametrize("depth,residual", [(4, False), (13, False), (6, True), (12, True)])
def test_forward_backward(in_shape: tuple[int, int, int], depth: int, residual: bool) -> None:
    net = CNN(in_shape, 7, depth=depth, widths=[4, 8, 8], residual=residual)
    x = torch.randn(3, *in_shape)
    out = net(x)
    assert out.shape == (3, 7)
    out.sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters())
    assert net.forward_features(x).shape == (3, net.feature_dim)


def test_bad_config_names_the_key() -> None:
    with pytest.raises(UserError, match="model.depth"):
        CNN((3, 32, 32), 10, depth=15, residual=True)
    with pytest.raises(UserError, match="model.widths"):
        CNN((3, 32, 32), 10, depth=10, widths=[])
    with pytest.raises(UserError, match="model.activation"):
        CNN((3, 32, 32), 10, depth=4, activation="nope")


def test_split_evenly() -> None:
    assert split_evenly(8, 3) == [3, 3, 2]
    assert split_evenly(27, 3) == [9, 9, 9]
    assert sum(split_evenly(28, 3)) == 28
