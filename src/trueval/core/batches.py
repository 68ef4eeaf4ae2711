"""A group of consecutive batches handed to one training step (``data.steps_per_call`` > 1)."""

from __future__ import annotations


class BatchGroup(tuple):
    """Consecutive batches handed to one ``training_step`` call (``steps_per_call`` > 1).

    A tuple subclass, so Lightning's device-transfer helpers pass it through (the batches are
    already on the device) and callbacks can tell a group from a single ``(x, y)`` batch.
    """

    @property
    def num_samples(self) -> int:
        return sum(int(b[0].shape[0]) for b in self)
