"""model.residual really adds skip connections, in every network that has the option.

The test silences every layer except the stem, the head and the skip projections (all their
weights set to zero). Without skips nothing of the input reaches the features; with skips it still
does. A network that ignored ``residual`` would fail the second assertion.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from trueval.models.nets.cnn import CNN
from trueval.models.nets.mlp import MLP
from trueval.models.nets.resnet import ResNet

KEEP = ("stem", "head", "skip", "shortcut")

BUILDERS = {
    "mlp": lambda residual: MLP((1, 8, 8), 10, depth=9, width=32, residual=residual),
    "cnn": lambda residual: CNN((3, 16, 16), 10, depth=12, widths=[8, 16], residual=residual),
    "resnet": lambda residual: ResNet((3, 16, 16), 10, depth=14, residual=residual),
}


def silence_layers(net: nn.Module) -> None:
    with torch.no_grad():
        for name, param in net.named_parameters():
            if not any(part in name.split(".") for part in KEEP):
                param.zero_()


def features_depend_on_input(net: nn.Module, in_shape: tuple[int, ...]) -> bool:
    net.eval()
    torch.manual_seed(0)
    a, b = torch.rand(4, *in_shape), torch.rand(4, *in_shape)
    with torch.no_grad():
        return not torch.allclose(net.forward_features(a), net.forward_features(b), atol=1e-6)


@pytest.mark.parametrize("kind", sorted(BUILDERS))
def test_residual_adds_skip_connections(kind: str) -> None:
    plain, residual = BUILDERS[kind](False), BUILDERS[kind](True)
    in_shape = (1, 8, 8) if kind == "mlp" else (3, 16, 16)
    assert features_depend_on_input(plain, in_shape) and features_depend_on_input(residual, in_shape)
    silence_layers(plain)
    silence_layers(residual)
    assert not features_depend_on_input(plain, in_shape), "the plain network has a path that skips layers"
    assert features_depend_on_input(residual, in_shape), "model.residual=true added no skip connection"


def first_layer_grad_norm(net: MLP) -> float:
    torch.manual_seed(0)
    x, y = torch.rand(64, 1, 8, 8), torch.randint(0, 10, (64,))
    nn.functional.cross_entropy(net(x), y).backward()
    first = next(m for m in net.modules() if isinstance(m, nn.Linear))
    return float(first.weight.grad.norm())


def test_deep_plain_mlp_gradients_vanish_and_skips_restore_them() -> None:
    torch.manual_seed(0)
    plain = first_layer_grad_norm(MLP((1, 8, 8), 10, depth=33, width=64, residual=False))
    torch.manual_seed(0)
    residual = first_layer_grad_norm(MLP((1, 8, 8), 10, depth=33, width=64, residual=True))
    assert plain < 1e-4 * residual
