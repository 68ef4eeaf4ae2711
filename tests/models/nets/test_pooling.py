"""The speed-run net's pools: the same results and gradients as torch's, on every layout.

The Triton kernels run on the CPU through Triton's interpreter (TRITON_INTERPRET=1, set before
Triton is imported, hence a fresh interpreter), so CI checks the kernels' indexing without a GPU.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
import torch
import torch.nn.functional as F

from trueval.core.errors import UserError
from trueval.models.nets.pooling import GlobalMaxPool, MaxPool2x2
from trueval.models.nets.speedrun import SpeedrunNet

KERNEL_CHECK = textwrap.dedent(
    """
    import torch, torch.nn.functional as F
    from trueval.models.nets.pooling import _TritonMaxPool2x2
    torch.manual_seed(0)
    failures = []
    for shape in [(2, 3, 7, 6), (2, 4, 5, 5), (1, 2, 2, 3), (3, 8, 4, 4)]:
        for channels_last in (False, True):
            for dtype in (torch.float32, torch.bfloat16):
                x = torch.randn(shape).to(dtype)
                if channels_last:
                    x = x.contiguous(memory_format=torch.channels_last)
                x[0, 0, :2, :2] = 1.0          # a four-way tie: the first one wins, as in torch
                x[-1, -1, 0, 1] = float("nan")  # a NaN wins its window, as in torch
                ours, theirs = x.clone().requires_grad_(), x.clone().requires_grad_()
                y_ours, y_theirs = _TritonMaxPool2x2.apply(ours, True), F.max_pool2d(theirs, 2)
                grad = torch.randn_like(y_theirs)
                y_ours.backward(grad)
                y_theirs.backward(grad)
                case = (shape, channels_last, dtype)
                if not torch.equal(y_ours.nan_to_num(7.0), y_theirs.nan_to_num(7.0)):
                    failures.append(("forward", case))
                if not torch.equal(ours.grad, theirs.grad):
                    failures.append(("backward", case))
                if y_ours.stride() != y_theirs.stride() or ours.grad.stride() != theirs.grad.stride():
                    failures.append(("layout", case))
    x = torch.randn(2, 3, 6, 6)
    with torch.no_grad():
        if not torch.equal(_TritonMaxPool2x2.apply(x, False), F.max_pool2d(x, 2)):
            failures.append(("forward without codes", x.shape))
    print("FAILURES", failures)
    """
)


def test_triton_kernels_equal_torchs_pool_values_gradients_ties_and_layouts() -> None:
    pytest.importorskip("triton")
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    done = subprocess.run([sys.executable, "-c", KERNEL_CHECK], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "FAILURES []" in done.stdout, done.stdout[-3000:]


def test_layers_match_torchs_on_the_cpu() -> None:
    x = torch.randn(2, 8, 9, 9).contiguous(memory_format=torch.channels_last)
    assert torch.equal(MaxPool2x2()(x), F.max_pool2d(x, 2))
    assert torch.equal(GlobalMaxPool()(x), F.adaptive_max_pool2d(x, 1))


def test_global_pool_gradient_goes_to_the_maximum() -> None:
    x = torch.tensor([[[[1.0, 5.0], [2.0, 3.0]]]], requires_grad=True)
    GlobalMaxPool()(x).sum().backward()
    assert x.grad.tolist() == [[[[0.0, 1.0], [0.0, 0.0]]]]


def test_speedrun_net_pooling_choice() -> None:
    fast, plain = SpeedrunNet((3, 16, 16), 10, widths=(8, 16, 16)), SpeedrunNet((3, 16, 16), 10, widths=(8, 16, 16),
                                                                            pooling="torch")
    assert any(isinstance(m, MaxPool2x2) for m in fast.modules())
    assert not any(isinstance(m, MaxPool2x2) for m in plain.modules())
    plain.load_state_dict(fast.state_dict())  # the pools hold no state: checkpoints load either way
    x = torch.randn(4, 3, 16, 16)
    assert torch.equal(fast.eval()(x), plain.eval()(x))
    with pytest.raises(UserError, match="model.pooling"):
        SpeedrunNet((3, 16, 16), 10, pooling="avg")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("channels_last", [False, True])
def test_on_the_gpu_the_triton_pool_equals_torchs(channels_last: bool) -> None:
    x = torch.randn(64, 32, 31, 30, device="cuda", dtype=torch.bfloat16)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    ours, theirs = x.clone().requires_grad_(), x.clone().requires_grad_()
    y_ours, y_theirs = MaxPool2x2()(ours), F.max_pool2d(theirs, 2)
    grad = torch.randn_like(y_theirs)
    y_ours.backward(grad)
    y_theirs.backward(grad)
    assert ours.grad_fn is None and y_ours.grad_fn is not None and "Triton" in type(y_ours.grad_fn).__name__
    assert torch.equal(y_ours, y_theirs) and torch.equal(ours.grad, theirs.grad)
    assert y_ours.stride() == y_theirs.stride() and ours.grad.stride() == theirs.grad.stride()
