"""Parameter count and multiply-adds, checked against numbers worked out by hand."""

from __future__ import annotations

import torch
from torch import nn

from trueval.models.nets.cnn import CNN
from trueval.models.nets.complexity import count_macs, measure_complexity
from trueval.models.nets.mlp import MLP
from trueval.models.nets.resnet import ResNet


def test_linear_and_conv_macs_by_hand() -> None:
    # one linear layer 64 -> 10: 640 multiply-adds
    assert count_macs(MLP((1, 8, 8), 10, depth=1), (1, 8, 8)) == 640
    conv = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1, bias=False))
    # every output pixel (4 x 8 x 8) needs 3 x 3 x 3 multiply-adds
    assert count_macs(conv, (3, 8, 8)) == 4 * 8 * 8 * 27


def test_macs_scale_with_the_input_size() -> None:
    net = CNN((3, 32, 32), 10, depth=6, widths=[8, 16])
    small, large = count_macs(net, (3, 32, 32)), count_macs(net, (3, 64, 64))
    # the convolutions dominate and scale with the number of pixels
    assert 3.8 < large / small < 4.0


def test_resnet18_at_imagenet_size() -> None:
    c = measure_complexity(ResNet((3, 224, 224), 1000, depth=18), (3, 224, 224))
    assert c.params == 11_689_512  # torchvision's resnet18
    assert 1.80e9 < c.macs < 1.83e9  # the published 1.8 GMACs
    assert c.as_metrics() == {"model/params": c.params, "model/trainable_params": c.params, "model/macs": c.macs}


def test_measuring_leaves_the_network_untouched() -> None:
    net = CNN((3, 16, 16), 4, depth=4, widths=[4])
    net.train()
    net.head.eval()  # a mixed state must survive
    bn = next(m for m in net.modules() if isinstance(m, nn.BatchNorm2d))
    before = bn.running_mean.clone()
    for p in net.head.parameters():
        p.requires_grad_(False)
    c = measure_complexity(net, (3, 16, 16))
    assert net.training and not net.head.training
    assert torch.equal(bn.running_mean, before)
    assert c.trainable_params == c.params - sum(p.numel() for p in net.head.parameters())
