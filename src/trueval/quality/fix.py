"""``quality.fix=true``: the cleaned split manifest that ``data.exclude=<manifest>`` applies in later runs.

The user's files stay as they are; the manifest lists every left-out sample with its reason, so a
reviewer can put one back by deleting its entry.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from trueval.core.samples import SampleSet
from trueval.data.exclusions import FORMAT
from trueval.utils.run_record import write_json_atomic
from trueval.quality.section import display_path


def exclusion_manifest(sets: Mapping[str, SampleSet], dataset: str, root: str | None,
                       label_flags: Mapping[str, np.ndarray], repeats: Mapping[str, Sequence[np.ndarray]],
                       reasons: Mapping[tuple[str, int], str], splits: Sequence[str]) -> dict[str, Any]:
    """Flagged label issues and every copy but the first of each cluster, in ``splits``."""
    excluded: dict[tuple[str, int], str] = {}
    for split in splits:
        if split not in sets:
            continue
        for i in label_flags.get(split, ()):
            excluded[(split, int(i))] = reasons.get((split, int(i)), "likely label error")
        for members in repeats.get(split, ()):
            keep = display_path(sets[split], int(members[0]), split, root)
            for i in members[1:]:
                excluded.setdefault((split, int(i)), f"repeat of {keep}")
    items = [{"split": s, "id": sets[s].origin[i], "path": display_path(sets[s], i, s, root), "reason": why}
             for (s, i), why in sorted(excluded.items(), key=lambda kv: (list(sets).index(kv[0][0]), kv[0][1]))]
    counts = {s: {"images": len(ss), "excluded": sum(1 for (t, _) in excluded if t == s),
                  "kept": len(ss) - sum(1 for (t, _) in excluded if t == s)} for s, ss in sets.items()}
    return {"format": FORMAT, "dataset": dataset, "splits": counts, "excluded": items}


def write_manifest(manifest: Mapping[str, Any], path: Path) -> Path:
    write_json_atomic(path, manifest)
    return path
