"""Times torch's max-pool layers against trueval.models.nets.pooling on the speed-run net's shapes.

On a CUDA GPU "trueval" is the Triton 2x2 pool and the amax global pool. The per-pool rows time
the host's work too (an autograd Function and a Triton launch per call), which the speed run's CUDA
graph does not pay: its profile (benchmarks/speed.py --stages profile_speedrun) is the measure of
the kernels themselves.

    python benchmarks/pooling.py --out pooling.json          # a CUDA GPU
    python benchmarks/pooling.py --smoke --out pooling.json  # CPU, small shapes: checks the code

Two measurements, each the median of several CUDA-event timed repeats:
- each pool alone, forward + backward (after a warm-up that includes the compilation), at the shapes of the speed-run net (batch 1024, bf16,
  channels-last), torch's layer against ours;
- one whole training step (forward, backward) of the speed-run net with torch's layers and with
  ours, under bf16 autocast, the way the speed run trains.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from trueval.models.nets.pooling import GlobalMaxPool, MaxPool2x2  # noqa: E402
from trueval.models.nets.speedrun import SpeedrunNet  # noqa: E402

# (label, input shape N,C,H,W, torch layer, ours) at the speed-run net's batch of 1024 (on the CPU
# MaxPool2x2 is torch's pool: the smoke run checks the code, not the kernels)
SHAPES = [
    ("group1 2x2", (1024, 64, 31, 31), lambda: nn.MaxPool2d(2), MaxPool2x2),
    ("group2 2x2", (1024, 256, 15, 15), lambda: nn.MaxPool2d(2), MaxPool2x2),
    ("group3 2x2", (1024, 256, 7, 7), lambda: nn.MaxPool2d(2), MaxPool2x2),
    ("global", (1024, 256, 3, 3), lambda: nn.AdaptiveMaxPool2d(1), GlobalMaxPool),
]


def timed(fn: Callable[[], Any], device: torch.device, repeats: int, inner: int) -> float:
    """Median seconds per call of ``fn`` over ``repeats`` batches of ``inner`` calls."""
    for _ in range(3):
        fn()
    samples = []
    for _ in range(repeats):
        if device.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            for _ in range(inner):
                fn()
            end.record()
            end.synchronize()
            samples.append(start.elapsed_time(end) / 1000.0 / inner)
        else:
            t = time.perf_counter()
            for _ in range(inner):
                fn()
            samples.append((time.perf_counter() - t) / inner)
    return statistics.median(samples)


def pool_step(layer: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, grad: torch.Tensor) -> Callable[[], None]:
    def step() -> None:
        x.grad = None
        layer(x).backward(grad)

    return step


def net_step(net: nn.Module, x: torch.Tensor, y: torch.Tensor, device: torch.device) -> Callable[[], None]:
    loss_fn = nn.CrossEntropyLoss()

    def step() -> None:
        net.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            loss = loss_fn(net(x), y)
        loss.backward()

    return step


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="pooling.json")
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--smoke", action="store_true", help="CPU, batch 8, float32: checks the code paths")
    args = p.parse_args(argv)
    device = torch.device("cpu" if args.smoke or not torch.cuda.is_available() else "cuda")
    dtype = torch.float32 if device.type == "cpu" else torch.bfloat16
    batch = 8 if device.type == "cpu" else 1024
    inner = 2 if device.type == "cpu" else 20
    torch.manual_seed(0)
    report: dict[str, Any] = {
        "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
        "torch": torch.__version__,
        "batch": batch,
        "dtype": str(dtype),
        "pools": {},
    }
    for label, shape, theirs, ours in SHAPES:
        shape = (batch, *shape[1:])
        x = torch.randn(shape, device=device, dtype=dtype).contiguous(memory_format=torch.channels_last)
        x.requires_grad_(True)
        row = {}
        for name, layer in (("torch", theirs()), ("trueval", ours())):
            out = layer(x)
            grad = torch.randn_like(out)
            row[f"{name}_s"] = timed(pool_step(layer, x, grad), device, args.repeats, inner)
        row["speedup"] = row["torch_s"] / row["trueval_s"]
        report["pools"][label] = row
        print(f"{label:12s} {tuple(shape)}: torch {row['torch_s'] * 1e6:8.1f} us, "
              f"trueval {row['trueval_s'] * 1e6:8.1f} us ({row['speedup']:.2f}x)", flush=True)
    x = torch.randn(batch, 3, 32, 32, device=device).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (batch,), device=device)
    steps = {}
    for name, pooling in (("torch", "torch"), ("trueval", "fast")):
        torch.manual_seed(0)
        net = SpeedrunNet((3, 32, 32), 10, pooling=pooling).to(device).to(memory_format=torch.channels_last)
        net.train()
        net(x)  # whitening from the first batch
        steps[f"{name}_s"] = timed(net_step(net, x, y, device), device, args.repeats, inner)
    steps["speedup"] = steps["torch_s"] / steps["trueval_s"]
    report["speedrun_net_step"] = steps
    print(f"speed-run net step (batch {batch}): torch {steps['torch_s'] * 1e3:.2f} ms, "
          f"trueval {steps['trueval_s'] * 1e3:.2f} ms ({steps['speedup']:.2f}x)", flush=True)
    Path(args.out).write_text(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
