"""Parameter count and multiply-adds of a network for one input size.

Depth studies compare networks of very different sizes; logging both numbers with every run makes
"deeper" and "bigger" separable. Multiply-adds come from PyTorch's own FLOP counter
(``torch.utils.flop_counter.FlopCounterMode``), which counts matmuls and convolutions (2 FLOPs per
multiply-add); element-wise ops, norms and pooling are not counted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


@dataclass(frozen=True)
class Complexity:
    params: int
    trainable_params: int
    macs: int  # multiply-adds of one forward pass on one sample

    def as_metrics(self, prefix: str = "model/") -> dict[str, int]:
        """Keys for metrics.json / TensorBoard hparams: model/params, model/trainable_params, model/macs."""
        return {f"{prefix}{key}": value for key, value in asdict(self).items()}


def count_parameters(net: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameter elements (shared parameters counted once)."""
    return sum(p.numel() for p in net.parameters() if p.requires_grad or not trainable_only)


@torch.no_grad()
def count_macs(net: nn.Module, in_shape: Sequence[int]) -> int:
    """Multiply-adds of a forward pass on one sample of shape ``in_shape`` (C, H, W).

    Runs the network once in eval mode (so BatchNorm neither needs a batch nor updates its running
    statistics) and restores every module's train/eval state afterwards.
    """
    modes = {module: module.training for module in net.modules()}
    reference = next(net.parameters(), None)
    device = reference.device if reference is not None else torch.device("cpu")
    dtype = reference.dtype if reference is not None and reference.is_floating_point() else torch.float32
    sample = torch.zeros(1, *in_shape, device=device, dtype=dtype)
    net.eval()
    try:
        with FlopCounterMode(display=False) as counter:
            net(sample)
    finally:
        for module, training in modes.items():
            module.training = training
    return int(counter.get_total_flops()) // 2


def measure_complexity(net: nn.Module, in_shape: Sequence[int]) -> Complexity:
    """Parameters and multiply-adds of ``net`` for inputs of shape ``in_shape`` (C, H, W)."""
    return Complexity(
        params=count_parameters(net),
        trainable_params=count_parameters(net, trainable_only=True),
        macs=count_macs(net, in_shape),
    )
