"""A small, fast convolutional net for the CIFAR-10 speed run.

The architecture follows the published airbench94 recipe (Keller Jordan, 2024, "94% on CIFAR-10
in 3.29 seconds on a single GPU"): a 2x2 convolution initialised to whiten 2x2 patches of the
training images, then three groups of (conv, max-pool, BatchNorm, GELU, conv, BatchNorm, GELU),
a global max-pool and a bias-free linear head whose output is scaled down. The pools are
``trueval.models.nets.pooling``'s (``pooling="fast"``): torch's max-pool kernels took a third of the
run's GPU time on an H200.

Two parts of that recipe usually live in the training script; here they live in the network so
that the speed run is assembled from template parts only (network, optimizer, schedule, augment
and TTA config):

- whitening: the first training batch initialises the whitening convolution from the eigenvectors
  of its 2x2 patch covariance (``init_whitening`` can also be called with chosen images);
- the 64x learning rate of the BatchNorm biases: each bias is stored divided by 8 and multiplied
  back in the forward pass. Under SGD that multiplies the bias's effective learning rate by 64
  while keeping its relative weight decay per step, exactly what the recipe's separate parameter
  group does, without a special optimizer.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from trueval.core.errors import UserError
from trueval.models.nets.pooling import GlobalMaxPool, MaxPool2x2

POOLINGS = ("fast", "torch")


def _pool_layers(pooling: str) -> tuple[Callable[[], nn.Module], Callable[[], nn.Module]]:
    """Makers of the 2x2 pool and of the global pool: trueval.models.nets.pooling's (fast) or torch's."""
    if pooling == "fast":
        return MaxPool2x2, GlobalMaxPool
    if pooling == "torch":
        return (lambda: nn.MaxPool2d(2)), (lambda: nn.AdaptiveMaxPool2d(1))
    raise UserError(f"unknown pooling {pooling!r}; choose one of {', '.join(POOLINGS)}", key="model.pooling")


class DiracConv2d(nn.Conv2d):
    """3x3 'same' convolution whose first ``in_channels`` filters start as the identity (dirac)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(in_channels, out_channels, kernel_size=3, padding="same", bias=False)
        with torch.no_grad():
            nn.init.dirac_(self.weight[: min(in_channels, out_channels)])


class ShiftOnlyBatchNorm(nn.BatchNorm2d):
    """BatchNorm without a learned scale; the shift is stored divided by ``bias_scale``.

    Storing ``shift / s`` and multiplying by ``s`` multiplies the shift's SGD learning rate by
    ``s**2`` (the recipe's bias learning-rate multiplier of 64 is s = 8).
    """

    def __init__(self, num_features: int, momentum: float, eps: float, bias_scale: float) -> None:
        super().__init__(num_features, eps=eps, momentum=momentum, affine=False)
        self.bias_scale = float(bias_scale)
        self.shift = nn.Parameter(torch.zeros(num_features))
        # the fixed scale, passed explicitly: cuDNN's backward returns no bias gradient without one
        self.register_buffer("unit_scale", torch.ones(num_features), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # the shift goes in as BatchNorm's bias: one fused kernel each way instead of a separate
        # add over the whole activation (and its reduction in the backward pass)
        if self.training and self.track_running_stats:
            self.num_batches_tracked.add_(1)
        use_batch_stats = self.training or not self.track_running_stats
        return F.batch_norm(x, self.running_mean, self.running_var, self.unit_scale, self.shift * self.bias_scale,
                            use_batch_stats, self.momentum, self.eps)


class ConvGroup(nn.Sequential):
    """conv -> max-pool 2 -> BN -> GELU -> conv -> BN -> GELU."""

    def __init__(self, in_channels: int, out_channels: int, momentum: float, eps: float, bias_scale: float,
                 pool: nn.Module) -> None:
        super().__init__(
            DiracConv2d(in_channels, out_channels),
            pool,
            ShiftOnlyBatchNorm(out_channels, momentum, eps, bias_scale),
            nn.GELU(),
            DiracConv2d(out_channels, out_channels),
            ShiftOnlyBatchNorm(out_channels, momentum, eps, bias_scale),
            nn.GELU(),
        )


def patch_whitening_weights(images: torch.Tensor, kernel_size: int = 2, eps: float = 5e-4) -> torch.Tensor:
    """Filters that whiten ``kernel_size`` patches of ``images`` (N,C,H,W float): 2*C*k*k of them.

    Each eigenvector of the patch covariance, divided by the square root of its eigenvalue, gives
    one filter; its negation gives a second one so that GELU keeps both signs.
    """
    c = images.shape[1]
    patches = images.unfold(2, kernel_size, 1).unfold(3, kernel_size, 1)  # N,C,h,w,k,k
    patches = patches.permute(0, 2, 3, 1, 4, 5).reshape(-1, c * kernel_size * kernel_size).double()
    covariance = patches.T @ patches / len(patches)
    eigenvalues, eigenvectors = torch.linalg.eigh(covariance)
    eigenvalues, eigenvectors = eigenvalues.flip(0), eigenvectors.T.flip(0)  # largest first
    filters = eigenvectors / torch.sqrt(eigenvalues.clamp_min(0) + eps)[:, None]
    filters = filters.reshape(-1, c, kernel_size, kernel_size)
    return torch.cat([filters, -filters]).float()


class SpeedrunNet(nn.Module):
    """airbench94-style network: float N,C,H,W -> logits N,K (images of at least 9x9 pixels)."""

    def __init__(
        self,
        in_shape: Sequence[int],
        num_classes: int,
        widths: Sequence[int] = (64, 256, 256),
        batchnorm_momentum: float = 0.4,
        batchnorm_eps: float = 1e-12,
        bias_lr_multiplier: float = 64.0,
        logit_scale: float = 1.0 / 9.0,
        whiten_kernel: int = 2,
        whiten_on_first_batch: bool = True,
        pooling: str = "fast",
    ) -> None:
        super().__init__()
        channels, height, width = (int(v) for v in in_shape)
        groups = len(widths)
        smallest = min(height, width) - whiten_kernel + 1
        if smallest < 2**groups:
            raise UserError(
                f"SpeedrunNet with {groups} groups needs images of at least {2**groups + whiten_kernel - 1} "
                f"pixels per side, got {height}x{width}",
                key="model.widths",
            )
        if bias_lr_multiplier <= 0:
            raise UserError("must be positive", key="model.bias_lr_multiplier")
        bias_scale = bias_lr_multiplier**0.5
        whiten_width = 2 * channels * whiten_kernel * whiten_kernel
        self.whiten = nn.Conv2d(channels, whiten_width, kernel_size=whiten_kernel, padding=0, bias=True)
        self.whiten.weight.requires_grad_(False)  # set from the data, not learned
        nn.init.zeros_(self.whiten.bias)
        layers: list[nn.Module] = [self.whiten, nn.GELU()]
        in_channels = whiten_width
        make_pool, make_global_pool = _pool_layers(pooling)
        for out_channels in widths:
            layers.append(ConvGroup(in_channels, out_channels, batchnorm_momentum, batchnorm_eps, bias_scale,
                                    make_pool()))
            in_channels = out_channels
        self.features = nn.Sequential(*layers)
        self.pool = make_global_pool()
        self.head = nn.Linear(in_channels, num_classes, bias=False)
        self.logit_scale = float(logit_scale)
        self.num_features = in_channels
        self.whiten_on_first_batch = bool(whiten_on_first_batch)
        # a Python flag, not a buffer: it must not change what a checkpoint restores, and a
        # restored (trained) model must not be re-whitened
        self.whitened = not self.whiten_on_first_batch

    @torch.compiler.disable
    @torch.no_grad()
    def init_whitening(self, images: torch.Tensor) -> None:
        """Set the whitening filters from float images (normalised as the training batches are)."""
        with torch.autocast(device_type=images.device.type, enabled=False):
            weights = patch_whitening_weights(images.float(), self.whiten.kernel_size[0])
        self.whiten.weight.copy_(weights.to(self.whiten.weight.device))
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            # the filters are not learned, so nothing else would keep the processes in agreement
            torch.distributed.broadcast(self.whiten.weight, src=0)
        self.whitened = True

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):  # type: ignore[no-untyped-def]
        # loading trained weights (checkpoint, eval.py) includes the whitening filters
        self.whitened = True
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The pooled penultimate features, N x ``num_features``."""
        if self.training and not self.whitened:
            self.init_whitening(x)
        return self.pool(self.features(x)).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.forward_features(x)) * self.logit_scale
