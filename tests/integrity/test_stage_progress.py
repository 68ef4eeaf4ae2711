"""The gate's progress bar moves while it fingerprints images held in memory (it stood at 0 for the
15 s CIFAR-10 took, as if the run had hung)."""

from __future__ import annotations

import numpy as np

import trueval.integrity.console as console
from trueval.core.samples import SampleSet
from trueval.integrity.fingerprints import compute_prints


def test_fingerprinting_an_array_advances_the_stage(monkeypatch) -> None:
    done: list[int] = []
    monkeypatch.setattr(console, "advance", done.append)
    images = np.random.default_rng(0).integers(0, 255, (10, 8, 8, 3), dtype=np.uint8)
    compute_prints(SampleSet(split="train", targets=np.zeros(10, np.int64), images=images, name="t"))
    assert sum(done) == 10
