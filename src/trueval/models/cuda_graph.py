"""CUDA-graph replay of a network's training forward and backward (``model.cuda_graph=true``).

Small networks train host-bound: one step launches a few hundred kernels, and launching them from
Python can take longer than running them on the GPU (the CIFAR-10 speed-run net launches ~200
kernels per step; the MLP of benchmarks/speed.py trains 1.4x faster with this on an H100). ``torch.cuda.make_graphed_callables``
records the network's forward and backward once and then replays each with a single launch; the
loss, the optimizer step, the metrics and the data path stay eager, so every other part of the
template (manual or automatic optimization, clipping, schedules, callbacks) keeps working.

torch.compile's ``reduce-overhead`` mode also uses CUDA graphs, but it compiles first (tens of
seconds per process, which is most of a short run) and falls back to eager at every graph break;
this wrapper records the eager kernels as they are.

Rules it follows:
- the first training forward runs eagerly (networks that initialise themselves from data, such as
  the speed-run net's whitening layer or lazy layers, do so there); recording happens at the first
  forward of a later ``training_step`` call, never in the middle of a group of steps
  (``data.steps_per_call``): while the previous step's autograd graph is still referenced, the
  recording fails with a CUDA stream-capture error (seen on the H100);
- only batches of the recorded shape and dtype replay the graph (a shorter last batch runs
  eagerly), and only in training mode (validation and test run the plain network);
- the recording's warm-up passes would move BatchNorm statistics: buffers are restored afterwards,
  so the graphed run takes the same steps as the eager one;
- CPU tensors and multi-process (DDP) runs use the plain network (said once in the log).
"""

from __future__ import annotations

import logging
from typing import Callable

import torch
from torch import nn

log = logging.getLogger("trueval")


class GraphedTrainingForward:
    """Calls ``net`` eagerly, or through a recorded CUDA graph once the training shapes are known."""

    def __init__(self, net: nn.Module) -> None:
        self.net = net
        self.calls = 0
        self.replays = 0
        self._graphed: Callable[[torch.Tensor], torch.Tensor] | None = None
        self._signature: tuple | None = None
        self._disabled = False
        self._call_start = True

    def new_call(self) -> None:
        """Mark the start of a training_step call: recording happens only at a call's first forward."""
        self._call_start = True

    @property
    def recorded(self) -> bool:
        return self._graphed is not None

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self._disabled or not (x.is_cuda and self.net.training):
            return self.net(x)
        self.calls += 1
        call_start, self._call_start = self._call_start, False
        if self._graphed is None:
            if self.calls == 1 or not call_start:
                return self.net(x)  # data-dependent initialisation happens eagerly
            if torch.distributed.is_available() and torch.distributed.is_initialized():
                log.info("model.cuda_graph: not used in a multi-process run (plain network)")
                self._disabled = True
                return self.net(x)
            self._record(x)
        if (tuple(x.shape), x.dtype) != self._signature:
            return self.net(x)
        self.replays += 1
        assert self._graphed is not None
        return self._graphed(x)

    def _record(self, x: torch.Tensor) -> None:
        buffers = list(self.net.buffers())
        saved = [b.detach().clone() for b in buffers]
        sample = x.detach().clone()  # clone keeps the memory format (channels_last)
        # make_graphed_callables refuses autocast's weight-cast cache: record under the same autocast
        # settings with the cache off (the casts then live inside the graph, as they must)
        enabled = torch.is_autocast_enabled("cuda")
        dtype = torch.get_autocast_dtype("cuda")
        with torch.autocast("cuda", dtype=dtype, enabled=enabled, cache_enabled=False):
            torch.cuda.make_graphed_callables(self.net, (sample,))
        # make_graphed_callables replaced net.forward on the instance; keep that replacement here and
        # give the module its own forward back, so eval, other shapes and checkpoints see a plain module
        graphed = self.net.__dict__.pop("forward")
        with torch.no_grad():
            for buffer, value in zip(buffers, saved):
                buffer.copy_(value)
        self._graphed = graphed
        self._signature = (tuple(x.shape), x.dtype)
        log.info("model.cuda_graph: training forward/backward recorded for batches of shape %s", tuple(x.shape))

    def __deepcopy__(self, memo: dict) -> "GraphedTrainingForward":
        # copies (weight averaging keeps one) start unrecorded: a graph belongs to its own tensors
        from copy import deepcopy

        return GraphedTrainingForward(deepcopy(self.net, memo))
