"""Seeds derived from (run seed, epoch): what makes epoch k of a resumed run draw what an unbroken run drew."""

from __future__ import annotations

import numpy as np


def epoch_seed(seed: int, epoch: int, stream: int = 0) -> int:
    """A well-mixed 63-bit seed per (run seed, epoch[, stream]): nearby seeds give unrelated streams."""
    entropy = [int(seed) & 0xFFFFFFFF, int(epoch)] + ([int(stream)] if stream else [])
    return int(np.random.SeedSequence(entropy).generate_state(2, np.uint64)[0] >> np.uint64(1))
