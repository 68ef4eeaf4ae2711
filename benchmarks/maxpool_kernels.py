"""Time 2x2 max-pool implementations, forward and backward, on the speed-run net's activations.

    python benchmarks/maxpool_kernels.py maxpool_kernels.json   # needs a CUDA GPU

The speed run is GPU-bound and its largest kernels are the max-pools on channels-last bf16
activations (``benchmarks/speed.py --stages profile_speedrun``). This measures whether another way
of computing the same maximum is faster: ``max_pool2d`` (torch's kernel, what the net uses),
``amax_reshape`` and ``max_of_slices`` (the same maximum as tensor ops; their backward splits a
tie between the tied inputs, hence a gradient difference on random bf16 data), ``via_nchw`` (the
kernel on a contiguous copy) and ``compiled`` (torch.compile's generated kernel). Each row says
whether its output equals ``max_pool2d``'s and whether the output stays channels-last.
(None of these beat ``max_pool2d``; the net now uses Triton kernels, trueval.models.nets.pooling,
which benchmarks/pooling.py times against torch's layers.)
"""

from __future__ import annotations

import json
import sys
import time

import torch
import torch.nn.functional as F

# the three pooled activations of the speed-run net at batch 1024 (CIFAR-10, widths 64/256/256)
SHAPES = [(1024, 64, 31, 31), (1024, 256, 15, 15), (1024, 256, 7, 7)]


def max_pool2d(x: torch.Tensor) -> torch.Tensor:
    return F.max_pool2d(x, 2)


def amax_reshape(x: torch.Tensor) -> torch.Tensor:
    h2, w2 = x.shape[2] // 2, x.shape[3] // 2
    return x[..., :2 * h2, :2 * w2].unflatten(3, (w2, 2)).unflatten(2, (h2, 2)).amax((3, 5))


def max_of_slices(x: torch.Tensor) -> torch.Tensor:
    h2, w2 = 2 * (x.shape[2] // 2), 2 * (x.shape[3] // 2)
    return torch.maximum(torch.maximum(x[..., 0:h2:2, 0:w2:2], x[..., 0:h2:2, 1:w2:2]),
                         torch.maximum(x[..., 1:h2:2, 0:w2:2], x[..., 1:h2:2, 1:w2:2]))


def via_nchw(x: torch.Tensor) -> torch.Tensor:
    return F.max_pool2d(x.contiguous(), 2).contiguous(memory_format=torch.channels_last)


def main(out_path: str) -> int:
    if not torch.cuda.is_available():
        print("needs a CUDA GPU", file=sys.stderr)
        return 2
    dev = torch.device("cuda")
    impls = {"max_pool2d": max_pool2d, "amax_reshape": amax_reshape, "max_of_slices": max_of_slices,
             "via_nchw": via_nchw, "compiled": torch.compile(max_pool2d, dynamic=False)}
    out: dict[str, dict] = {}
    for shape in SHAPES:
        x0 = torch.randn(shape, device=dev, dtype=torch.bfloat16).contiguous(memory_format=torch.channels_last)
        ref = None
        for name, f in impls.items():
            x = x0.clone().requires_grad_(True)
            started = time.perf_counter()
            y = f(x)
            g = torch.ones_like(y)
            y.backward(g)
            torch.cuda.synchronize()
            first = time.perf_counter() - started  # compilation, for the compiled one
            if ref is None:
                ref = (y.detach().clone(), x.grad.clone())
            row = {"same_output": bool(torch.equal(y.detach(), ref[0])),
                   "grad_abs_diff_sum": float((x.grad.float() - ref[1].float()).abs().sum()),
                   "channels_last_out": y.is_contiguous(memory_format=torch.channels_last),
                   "first_call_s": round(first, 2)}
            for _ in range(3):
                x.grad = None
                f(x).backward(g)
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            for _ in range(50):
                x.grad = None
                f(x).backward(g)
            end.record()
            torch.cuda.synchronize()
            row["fwd_bwd_ms"] = round(start.elapsed_time(end) / 50, 4)
            out.setdefault(str(shape), {})[name] = row
            print(shape, f"{name:14s} {row['fwd_bwd_ms']:7.3f} ms", row, flush=True)
    with open(out_path, "w") as fh:
        json.dump({"device": torch.cuda.get_device_name(), "torch": torch.__version__, "results": out}, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "maxpool_kernels.json"))
