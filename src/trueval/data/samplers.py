"""``data.sampler=balanced``: draw every class equally often in training, for imbalanced data.

Each training sample is drawn with probability proportional to 1 / (its class's count), with
replacement, as many draws per epoch as there are samples. The DataLoader path uses torch's
``WeightedRandomSampler``; the GPU-resident loader draws the same way on the device with its
seeded per-epoch generator (``torch.multinomial``).
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import WeightedRandomSampler

from trueval.core.errors import UserError

SAMPLERS = ("balanced",)


def sample_weights(sampler: str, targets: np.ndarray) -> np.ndarray:
    """Per-sample draw weights for ``sampler`` (float64, summing to 1)."""
    if sampler not in SAMPLERS:
        raise UserError(f"unknown sampler {sampler!r}; choose null (plain shuffling) or one of {list(SAMPLERS)}",
                        key="data.sampler")
    targets = np.asarray(targets, dtype=np.int64)
    counts = np.bincount(targets)
    weights = 1.0 / counts[targets]
    return weights / weights.sum()


def weighted_sampler(weights: np.ndarray, generator: torch.Generator) -> WeightedRandomSampler:
    """The DataLoader's sampler: len(weights) draws with replacement per epoch."""
    return WeightedRandomSampler(torch.as_tensor(weights, dtype=torch.double), num_samples=len(weights),
                                 replacement=True, generator=generator)
