"""``data.exclude=<manifest>``: leave listed samples out of every split, without touching the files.

``quality.py quality.fix=true`` writes such a manifest (likely label errors and repeats, each with
its reason). Samples are matched by their stable identity (``SampleSet.origin``: the resolved file
path, or ``<dataset>:<split>:<index>`` of an array dataset), after the template made its splits,
so the other samples keep their split.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Mapping

import numpy as np

from trueval.core.errors import UserError
from trueval.core.samples import SampleSet

log = logging.getLogger("trueval")

FORMAT = "trueval-exclude/1"


def load_exclusions(path: str | Path) -> set[str]:
    """The sample identities a manifest excludes (plain JSON: reading one runs no code)."""
    file = Path(path).expanduser()
    try:
        data = json.loads(file.read_text())
    except FileNotFoundError:
        raise UserError("exclusion manifest not found", key="data.exclude", path=str(file)) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"cannot read the exclusion manifest: {exc}", key="data.exclude", path=str(file)) from None
    if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("excluded"), list):
        raise UserError(f"not an exclusion manifest (expected {{\"format\": \"{FORMAT}\", \"excluded\": [...]}}, as "
                        "quality.py quality.fix=true writes)", key="data.exclude", path=str(file))
    try:
        return {str(item["id"]) for item in data["excluded"]}
    except (TypeError, KeyError):
        raise UserError("every excluded entry needs an \"id\"", key="data.exclude", path=str(file)) from None


def apply_exclusions(sets: Mapping[str, SampleSet], path: str | Path) -> dict[str, SampleSet]:
    """Every split without the samples the manifest lists."""
    plan = exclude_from_plan(sets, {s: (s, np.arange(len(ss))) for s, ss in sets.items()}, path)
    return {s: ss if len(plan[s][1]) == len(ss) else ss.subset(plan[s][1]) for s, ss in sets.items()}


def exclude_from_plan(raw: Mapping[str, SampleSet], plan: Mapping[str, tuple[str, np.ndarray]],
                      path: str | Path) -> dict[str, tuple[str, np.ndarray]]:
    """The template's split plan (per split: source split and indices into it) without the listed samples."""
    ids = load_exclusions(path)
    out = {}
    for split, (src, idx) in plan.items():
        origin = raw[src].origin or []
        keep = np.array([origin[i] not in ids for i in idx], dtype=bool)
        out[split] = (src, idx[keep])
        if not keep.all():
            log.info("data.exclude: %d of %d %s samples left out", int((~keep).sum()), len(idx), split)
    return out
