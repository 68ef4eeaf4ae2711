"""Which GPUs a sweep may use, and the slots (one per concurrent trial) handed out over them."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from trueval.core.errors import UserError


def visible_gpus(gpus: Any = None) -> list[str]:
    """The GPU ids trials are spread over.

    ``gpus`` is ``None`` (every GPU this process may use: ``CUDA_VISIBLE_DEVICES`` if set, else
    all GPUs of the host), an int N (GPUs ``0..N-1``) or a list of ids (ints or UUID strings).
    """
    if gpus is None:
        env = os.environ.get("CUDA_VISIBLE_DEVICES")
        if env is not None:
            return [item.strip() for item in env.split(",") if item.strip() and item.strip() != "-1"]
        return [str(i) for i in range(_host_gpu_count())]
    if isinstance(gpus, bool):
        raise UserError("must be null, an int or a list of GPU ids", key="hydra.launcher.gpus")
    if isinstance(gpus, int):
        return [str(i) for i in range(gpus)]
    if isinstance(gpus, str):
        return [item.strip() for item in gpus.split(",") if item.strip()]
    if isinstance(gpus, Sequence):
        return [str(item) for item in gpus]
    raise UserError(f"must be null, an int or a list of GPU ids, got {gpus!r}", key="hydra.launcher.gpus")


def _host_gpu_count() -> int:
    try:
        import torch
    except ImportError:  # a Hydra app that does not use torch
        return 0
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def make_slots(gpus: list[str], jobs_per_gpu: int, max_concurrent: int | None = None) -> list[str]:
    """One entry per concurrent trial: the value of its ``CUDA_VISIBLE_DEVICES``.

    Interleaved (``0,1,0,1`` for two GPUs with two jobs each) so the first trials go round-robin
    over the GPUs; a finished trial frees its slot for the next one. Without GPUs every slot is
    ``""`` (CUDA hidden) and ``jobs_per_gpu`` trials run at once on the CPU.
    """
    if jobs_per_gpu < 1:
        raise UserError(f"must be >= 1, got {jobs_per_gpu}", key="hydra.launcher.jobs_per_gpu")
    slots = [gpu for _ in range(jobs_per_gpu) for gpu in gpus] if gpus else [""] * jobs_per_gpu
    if max_concurrent is not None:
        if max_concurrent < 1:
            raise UserError(f"must be >= 1 or null, got {max_concurrent}", key="hydra.launcher.max_concurrent")
        slots = slots[:max_concurrent]
    return slots
