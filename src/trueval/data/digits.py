"""scikit-learn's bundled 8x8 handwritten digits: 1,797 images, no download, the default dataset."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from trueval.data.base import ClassificationData, lightning_classes
from trueval.core.samples import SampleSet


class DigitsData(ClassificationData):
    """The whole set is one pool split by `data.split` (seeded, stratified, duplicates kept together)."""

    def __init__(self, split: Sequence[float] | None = (0.7, 0.15, 0.15), **kwargs: Any) -> None:
        kwargs.setdefault("name", "digits")
        super().__init__(split=split, **kwargs)

    def load_splits(self) -> dict[str, SampleSet]:
        from sklearn.datasets import load_digits

        bunch = load_digits()
        # pixel values are 0..16; scale to 0..255 uint8 like every other image source
        images = np.round(bunch.images * (255.0 / 16.0)).astype(np.uint8)[:, :, :, None]
        self.class_names = [str(c) for c in bunch.target_names]
        pool = SampleSet(split="all", targets=bunch.target, images=images, sources=["sklearn:digits"], name="digits")
        return {"all": pool}


LIGHTNING_FREE = {"DigitsDataModule": DigitsData}


def __getattr__(name: str) -> type:  # DigitsDataModule: DigitsData with Lightning, made on first use
    return lightning_classes(__name__, name, LIGHTNING_FREE)
