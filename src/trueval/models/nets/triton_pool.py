"""2x2 max-pooling (stride 2) as two Triton kernels, for CUDA tensors (imported on first use).

Why our own kernels: torch's CUDA max-pool is several times slower than the memory allows on
channels-last activations (its backward scatters through int64 indices the forward had to write),
and ``torch.compile``'s version, whose kernels are fast, adds guard and wrapper work on the host at
every call and a compilation per shape, which made the speed run 1.9x slower
(benchmarks/results/speed_h200_pooling/). These two kernels read and write each element once:

- forward: each program takes a block of outputs, loads the 4 inputs of each window, keeps the
  first maximum in row-major order (a NaN wins, as in torch) and stores the output and a 1-byte
  code of the winner's position;
- backward: each program takes a block of output gradients and writes all 4 inputs of each
  window: the gradient at the coded position, 0 elsewhere (the odd last row/column is zeroed
  separately). So the gradients equal torch's, ties included.

Any strides work; the block order follows the output's memory order (channels-last or not), so
neighbouring threads touch neighbouring addresses.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

_BLOCK = 1024


@triton.jit
def _split(offs, size1, size2, size3):
    """Linear positions as indices of a 4-d array whose last three dimensions have these sizes."""
    i3 = offs % size3
    rest = offs // size3
    i2 = rest % size2
    rest = rest // size2
    return rest // size1, rest % size1, i2, i3


@triton.jit
def _block_windows(total, C, Ho, Wo, CHANNELS_LAST: tl.constexpr, WIDE: tl.constexpr, BLOCK: tl.constexpr):
    """This program's outputs: their linear positions in the output's memory order (int64 when
    ``WIDE``), which of them exist, and their (n, c, ho, wo)."""
    pid = tl.program_id(0)
    if WIDE:
        offs = pid.to(tl.int64) * BLOCK + tl.arange(0, BLOCK).to(tl.int64)
    else:
        offs = pid * BLOCK + tl.arange(0, BLOCK)
    if CHANNELS_LAST:
        n, ho, wo, c = _split(offs, Ho, Wo, C)
    else:
        n, c, ho, wo = _split(offs, C, Ho, Wo)
    return offs, offs < total, n, c, ho, wo


# the sizes and strides are not specialised on (Triton's default): one compilation per layout serves
# every shape, which keeps a cold start to a few compilations
@triton.jit(do_not_specialize=["total", "C", "Ho", "Wo", "sxn", "sxc", "sxh", "sxw", "syn", "syc", "syh", "syw"])
def _forward_kernel(x_ptr, y_ptr, code_ptr, total, C, Ho, Wo,
                    sxn, sxc, sxh, sxw, syn, syc, syh, syw,
                    CHANNELS_LAST: tl.constexpr, STORE_CODE: tl.constexpr, WIDE: tl.constexpr,
                    BLOCK: tl.constexpr):
    offs, mask, n, c, ho, wo = _block_windows(total, C, Ho, Wo, CHANNELS_LAST, WIDE, BLOCK)
    base = n * sxn + c * sxc + (2 * ho) * sxh + (2 * wo) * sxw
    best = tl.load(x_ptr + base, mask=mask, other=0.0).to(tl.float32)
    code = tl.zeros_like(offs).to(tl.int8)
    for k in tl.static_range(1, 4):
        value = tl.load(x_ptr + base + (k // 2) * sxh + (k % 2) * sxw, mask=mask, other=0.0).to(tl.float32)
        take = (value > best) | (value != value)
        best = tl.where(take, value, best)
        code = tl.where(take, k, code).to(tl.int8)
    tl.store(y_ptr + n * syn + c * syc + ho * syh + wo * syw, best.to(y_ptr.dtype.element_ty), mask=mask)
    if STORE_CODE:
        tl.store(code_ptr + offs, code, mask=mask)


@triton.jit(do_not_specialize=["total", "C", "Ho", "Wo", "sgn", "sgc", "sgh", "sgw", "sxn", "sxc", "sxh", "sxw"])
def _backward_kernel(g_ptr, code_ptr, gx_ptr, total, C, Ho, Wo,
                     sgn, sgc, sgh, sgw, sxn, sxc, sxh, sxw,
                     CHANNELS_LAST: tl.constexpr, WIDE: tl.constexpr, BLOCK: tl.constexpr):
    offs, mask, n, c, ho, wo = _block_windows(total, C, Ho, Wo, CHANNELS_LAST, WIDE, BLOCK)
    grad = tl.load(g_ptr + n * sgn + c * sgc + ho * sgh + wo * sgw, mask=mask, other=0.0)
    code = tl.load(code_ptr + offs, mask=mask, other=0)
    base = n * sxn + c * sxc + (2 * ho) * sxh + (2 * wo) * sxw
    zero = tl.zeros_like(grad)
    for k in tl.static_range(4):
        tl.store(gx_ptr + base + (k // 2) * sxh + (k % 2) * sxw, tl.where(code == k, grad, zero), mask=mask)


def _is_channels_last(t: torch.Tensor) -> bool:
    return t.is_contiguous(memory_format=torch.channels_last) and not t.is_contiguous()


def _wide(*tensors: torch.Tensor) -> bool:
    """Whether offsets can pass 2**31 (then the kernels index in int64)."""
    return any(t.numel() >= 2**31 - 1 for t in tensors)


def pool_forward(x: torch.Tensor, store_code: bool) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """Pooled N,C,H//2,W//2 in the input's memory format, the 1-byte winner codes (empty unless
    ``store_code``) and whether the output is channels-last."""
    n, c, h, w = x.shape
    ho, wo = h // 2, w // 2
    channels_last = _is_channels_last(x)
    layout = torch.channels_last if channels_last else torch.contiguous_format
    y = torch.empty((n, c, ho, wo), dtype=x.dtype, device=x.device, memory_format=layout)
    total = y.numel()
    code = torch.empty(total if store_code else 0, dtype=torch.int8, device=x.device)
    if total:
        _forward_kernel[(triton.cdiv(total, _BLOCK),)](
            x, y, code, total, c, ho, wo, *x.stride(), *y.stride(),
            CHANNELS_LAST=channels_last, STORE_CODE=store_code, WIDE=_wide(x), BLOCK=_BLOCK)
    return y, code, channels_last


def pool_backward(grad_y: torch.Tensor, code: torch.Tensor, x_shape: torch.Size, channels_last: bool) -> torch.Tensor:
    """The input gradient; ``channels_last`` is the forward output's layout (the codes follow its order)."""
    n, c, h, w = x_shape
    ho, wo = h // 2, w // 2
    layout = torch.channels_last if channels_last else torch.contiguous_format
    grad_x = torch.empty((n, c, h, w), dtype=grad_y.dtype, device=grad_y.device, memory_format=layout)
    if h % 2:
        grad_x[:, :, -1].zero_()
    if w % 2:
        grad_x[:, :, :, -1].zero_()
    total = n * c * ho * wo
    if total:
        _backward_kernel[(triton.cdiv(total, _BLOCK),)](
            grad_y, code, grad_x, total, c, ho, wo, *grad_y.stride(), *grad_x.stride(),
            CHANNELS_LAST=channels_last, WIDE=_wide(grad_x), BLOCK=_BLOCK)
    return grad_x
