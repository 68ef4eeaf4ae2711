"""Balance: an underrepresented class is flagged with the template's remedies; training runs carry the summary."""

from __future__ import annotations

import numpy as np

from trueval.quality.balance import balance_section, balance_summary, class_counts


def test_underrepresented_class_flagged_with_remedies() -> None:
    targets = {"train": np.r_[np.zeros(200), np.ones(180), np.full(12, 2)].astype(int),
               "test": np.r_[np.zeros(40), np.ones(40), np.full(3, 2)].astype(int)}
    counts = class_counts(targets, 3)
    assert counts == {"train": [200, 180, 12], "test": [40, 40, 3]}
    section = balance_section(counts, ["cat", "dog", "otter"], min_count=20, max_ratio=10)
    assert section.flagged and section.data["underrepresented"] == ["otter"]
    assert section.data["imbalance_ratio"] == 200 / 12
    text = "\n".join(section.lines)
    for remedy in ("loss.class_weights=balanced", "data.sampler=balanced", "loss.name=focal"):
        assert remedy in text
    assert "class_counts" in section.figures


def test_balanced_data_is_not_flagged_and_missing_class_has_no_ratio() -> None:
    assert not balance_section({"train": [50, 48, 52]}, ["a", "b", "c"], 20, 10).flagged
    # under 1/max_ratio of the largest class counts as rare even above min_count
    assert balance_summary({"train": [1000, 60]}, ["a", "b"], 20, 10)["underrepresented"] == ["b"]
    s = balance_summary({"train": [30, 0]}, ["a", "b"])
    assert s["imbalance_ratio"] is None and s["underrepresented"] == ["b"]
