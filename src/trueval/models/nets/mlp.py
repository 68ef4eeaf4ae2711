"""A multilayer perceptron whose depth, width and skip connections are config knobs.

The depth study needs an MLP where ``depth`` counts linear layers exactly and ``residual`` adds
skip connections around pairs of hidden layers, so plain and residual networks of one depth
differ only in the skips.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from trueval.core.errors import UserError

_ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU, "tanh": nn.Tanh,
                "sigmoid": nn.Sigmoid, "leaky_relu": nn.LeakyReLU, "elu": nn.ELU}


def activation_layer(name: str) -> nn.Module:
    """An activation module by name (shared by the networks)."""
    try:
        return _ACTIVATIONS[name.lower()]()
    except KeyError:
        raise UserError(f"unknown activation {name!r}; choose one of {sorted(_ACTIVATIONS)}",
                        key="model.activation") from None


def norm_1d(kind: str, width: int) -> nn.Module:
    if kind in (None, "none"):
        return nn.Identity()
    if kind == "batch":
        return nn.BatchNorm1d(width)
    if kind == "layer":
        return nn.LayerNorm(width)
    raise UserError(f"unknown norm {kind!r}; choose none, batch or layer", key="model.norm")


class _Hidden(nn.Module):
    """Linear -> norm -> activation -> dropout."""

    def __init__(self, fan_in: int, fan_out: int, norm: str, activation: str, dropout: float) -> None:
        super().__init__()
        self.linear = nn.Linear(fan_in, fan_out)
        self.norm = norm_1d(norm, fan_out)
        self.act = activation_layer(activation)
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.act(self.norm(self.linear(x))))


class _ResidualPair(nn.Module):
    """Two hidden layers with a skip connection around them (projected when widths differ)."""

    def __init__(self, first: _Hidden, second: _Hidden, fan_in: int, fan_out: int) -> None:
        super().__init__()
        self.first, self.second = first, second
        self.skip = nn.Identity() if fan_in == fan_out else nn.Linear(fan_in, fan_out, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.skip(x) + self.second(self.first(x))


class MLP(nn.Module):
    """``depth`` linear layers in all (``depth - 1`` hidden layers and the linear head).

    With ``residual=True`` consecutive hidden layers are grouped in pairs, each pair wrapped in a
    skip connection; an odd hidden layer left over (the first one, which changes the width from
    the input size) stays plain.
    """

    def __init__(
        self,
        in_shape: tuple[int, ...],
        num_classes: int,
        depth: int = 3,
        width: int = 256,
        residual: bool = False,
        norm: str = "none",
        activation: str = "relu",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if depth < 1:
            raise UserError(f"depth must be >= 1, got {depth}", key="model.depth")
        if not 0 <= dropout < 1:
            raise UserError(f"dropout must be in [0, 1), got {dropout}", key="model.dropout")
        self.in_features = int(math.prod(in_shape))
        self.residual = residual
        hidden = depth - 1
        layers: list[nn.Module] = []
        fan_in = self.in_features
        if hidden > 0 and (not residual or hidden % 2 == 1):
            layers.append(_Hidden(fan_in, width, norm, activation, dropout))
            fan_in, hidden = width, hidden - 1
        while hidden > 0:
            if residual:
                pair = _ResidualPair(_Hidden(fan_in, width, norm, activation, dropout),
                                     _Hidden(width, width, norm, activation, dropout), fan_in, width)
                layers.append(pair)
                hidden -= 2
            else:
                layers.append(_Hidden(fan_in, width, norm, activation, dropout))
                hidden -= 1
            fan_in = width
        self.body = nn.Sequential(*layers)
        self.feature_dim = fan_in
        self.head = nn.Linear(fan_in, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x.flatten(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.forward_features(x))
