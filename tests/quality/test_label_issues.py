"""Labels on clean digits: the top of the ranking has no systematic class bias; the gallery and loss table exist."""

from __future__ import annotations

from collections import Counter

import numpy as np

from planted import digits
from trueval.core.samples import SampleSet
from trueval.quality.baseline import BaselineSettings
from trueval.quality.labels import labels_section


def test_clean_ranking_top_has_no_class_bias() -> None:
    images, labels, _ = digits(0.0)
    idx = np.random.default_rng(0).permutation(len(labels))
    train = SampleSet("train", labels[idx[:1400]], images=images[idx[:1400]], name="digits")
    test = SampleSet("test", labels[idx[1400:]], images=images[idx[1400:]], name="digits")
    names = [str(c) for c in range(10)]
    result = labels_section({"train": train, "test": test}, names, None, BaselineSettings(epochs=15, hidden=128),
                            size=8, seed=0)
    top = [row["given"] for row in result.issues[:30]]
    counts = Counter(top)
    # hard digits (8, 9, 2) come up more often than easy ones (0, 6), as they should; no class dominates
    assert len(top) == 30 and max(counts.values()) <= 10 and len(counts) >= 5, counts
    # every sample of every split has a loss; the clean data is not flagged as mislabelled
    assert len(result.losses) == len(labels)
    assert not result.section.flagged and result.section.data["splits"]["test"]["baseline_accuracy"] > 0.9
    assert {"loss_histogram", "loss_gallery"} <= set(result.section.figures)
