"""Duplicate clusters inside one sample set, for splitting by groups.

When the template makes a split itself (ratio split, validation carved from train) it keeps every
cluster of copies in one split. Clusters are the connected components of the same-file,
identical-pixel and verified near-duplicate relations that the gate's own ``find_duplicates``
reports, searched as hard within the set as the gate searches across splits, and cached like the
gate. (The DataModules cut with the findings of their gate step directly; this is the same thing
for one set on its own, e.g. for k-fold splits.)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from trueval.core.samples import SampleSet
from trueval.integrity.gate import find_duplicates
from trueval.integrity.settings import IntegritySettings


def duplicate_groups(ss: SampleSet, settings: IntegritySettings, cache_dir: str | Path | None = None) -> np.ndarray:
    """Group id per sample (0..G-1, numbered by first member): copies of one picture share an id."""
    found = find_duplicates({"all": ss}, settings, cache_dir, thorough=True)
    return found.clusters("all")
