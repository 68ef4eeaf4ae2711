"""Diversity: clusters of near-copies inside each split (frames of one video, re-saved files).

The integrity gate's own detector finds them (``duplicate_groups``, same settings, same cache): a
split where a large share of the images repeat others teaches the model less than its size says,
and a test split with repeats weighs some pictures several times.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np

from trueval.core.samples import SampleSet
from trueval.quality.figures import image_grid
from trueval.quality.section import Section, display_path, table


def split_clusters(ss: SampleSet, settings: Any, cache_dir: Path | None) -> list[np.ndarray]:
    """Members of every cluster of two or more copies in one split, largest first."""
    from trueval.integrity import duplicate_groups

    groups = np.asarray(duplicate_groups(ss, settings, cache_dir=cache_dir))
    sizes = np.bincount(groups)
    multi = np.flatnonzero(sizes > 1)
    clusters = [np.flatnonzero(groups == g) for g in multi]
    return sorted(clusters, key=lambda m: (-len(m), int(m[0])))


def diversity_section(sets: Mapping[str, SampleSet], clusters_by_split: Mapping[str, list[np.ndarray]],
                      root: str | None, max_repeat_fraction: float, shown: int = 6) -> Section:
    """The report section from each split's clusters (``split_clusters``)."""
    data: dict[str, Any] = {"max_repeat_fraction": float(max_repeat_fraction), "splits": {}}
    rows, figures, scalars = [], {}, {}
    flagged = False
    for split, ss in sets.items():
        clusters = clusters_by_split[split]
        repeats = int(sum(len(m) - 1 for m in clusters))
        fraction = repeats / max(1, len(ss))
        flagged |= fraction > max_repeat_fraction
        data["splits"][split] = {
            "images": len(ss), "clusters": len(clusters), "repeats": repeats, "repeat_fraction": round(fraction, 6),
            "largest": [[display_path(ss, int(i), split, root) for i in m] for m in clusters[:shown]]}
        rows.append([split, len(ss), len(clusters), max((len(m) for m in clusters), default=0), repeats,
                     f"{100 * fraction:.1f}%"])
        scalars[f"quality/diversity/{split}_repeat_fraction"] = fraction
        if clusters:
            grid = [[ss.load(int(i)) for i in m[:8]] for m in clusters[:shown]]
            captions = [[display_path(ss, int(i), split, root).split("/")[-1] for i in m[:8]]
                        for m in clusters[:shown]]
            figures[f"clusters_{split}"] = image_grid(grid, captions, f"{split}: largest clusters of near-copies "
                                                                       "(one row per cluster)")
    lines = ["Near-copies inside each split (same file, identical pixels, or the gate's near-duplicate check):",
             ""] + table(["split", "images", "clusters", "largest", "repeats", "repeat share"], rows)
    if flagged:
        lines += ["", f"**More than {100 * max_repeat_fraction:.0f}% of a split repeats other images of the same "
                  "split.** Repeats add little to learn from (frames 0.1 s apart) and weigh some pictures several "
                  "times in an evaluation; `quality.fix=true` writes a manifest that drops them from train."]
    return Section("diversity", "Diversity", flagged, data, lines, figures, scalars)
