"""Max-pooling layers with fast GPU kernels (the speed-run net's pools).

Why not ``nn.MaxPool2d`` / ``nn.AdaptiveMaxPool2d`` as they are: on channels-last bf16 activations
their CUDA kernels are far from memory-bound. In the CIFAR-10 speed run on an H200 (torch 2.11) the
three 2x2 pools and the global pool took 75 of the 239 ms of GPU time per epoch, more than any
convolution (``max_pool_backward_nhwc`` alone 38 ms). What the measurements
(benchmarks/pooling.py and benchmarks/speed.py, in benchmarks/results/speed_h200_pooling/) led to:

- the 2x2 pool runs two Triton kernels on CUDA tensors (``triton_pool``), with the same results
  and gradients as torch's pool, ties included. Tried first and dropped: eager tensor operations
  (``amax`` over a strided 6-d view, ``torch.where`` for the gradient), 0.228 s of kernels per
  epoch against 0.239 s, since torch's strided elementwise kernels are not memory-bound either;
  ``torch.compile`` of the pool, whose kernels are fast but whose per-call host work and
  per-shape recompilation made the speed run 1.9x slower. CPU tensors, and machines without
  Triton, use torch's pool;
- the global pool is one ``amax`` over H and W: 1.7-2.2x faster than ``adaptivemaxpool``,
  forward and backward. Its gradient is shared out evenly between tied maxima (the adaptive pool
  gives all of it to one); the forward results are identical.
"""

from __future__ import annotations

import functools
from types import ModuleType

import torch
import torch.nn.functional as F
from torch import nn


@functools.cache
def _triton_pool() -> ModuleType | None:
    """The Triton kernels' module, or None where Triton cannot be imported (imported on first use)."""
    try:
        from trueval.models.nets import triton_pool
    except ImportError:
        return None
    return triton_pool


class _TritonMaxPool2x2(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, needs_grad: bool) -> torch.Tensor:  # type: ignore[override]
        y, code, channels_last = _triton_pool().pool_forward(x, store_code=needs_grad)
        ctx.save_for_backward(code)
        ctx.x_shape, ctx.channels_last = x.shape, channels_last
        return y

    @staticmethod
    def backward(ctx, grad_y: torch.Tensor) -> tuple[torch.Tensor, None]:  # type: ignore[override]
        (code,) = ctx.saved_tensors
        return _triton_pool().pool_backward(grad_y, code, ctx.x_shape, ctx.channels_last), None


def max_pool_2x2(x: torch.Tensor) -> torch.Tensor:
    """``F.max_pool2d(x, 2)`` of N,C,H,W: Triton's kernels on CUDA tensors, torch's elsewhere."""
    if not x.is_cuda or x.dim() != 4 or min(x.shape[2:]) < 2 or _triton_pool() is None:
        return F.max_pool2d(x, 2)
    # the winners' codes are kept only when a backward pass can follow
    return _TritonMaxPool2x2.apply(x, torch.is_grad_enabled() and x.requires_grad)


class MaxPool2x2(nn.Module):
    """``nn.MaxPool2d(2)`` computed by :func:`max_pool_2x2`."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return max_pool_2x2(x)


class GlobalMaxPool(nn.Module):
    """``nn.AdaptiveMaxPool2d(1)`` as one ``amax`` over H and W: N,C,H,W -> N,C,1,1."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.amax(dim=(2, 3), keepdim=True)
