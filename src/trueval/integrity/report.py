"""The gate's verdict: which samples of which splits are the same picture, as leak_report.json.

Schema (fixed; other tools read it):
{"dataset": str, "splits": {"train": int, "val": int, "test": int},
 "pairs": [{"kind": "source"|"exact"|"near", "distance": float,
            "a": {"split": str, "index": int, "path": str|null},
            "b": {"split": str, "index": int, "path": str|null}}],
 "within_split_duplicates": int, "seconds": float, "policy": str,
 "look_alikes": [pairs as above, kind "near"]}
``a`` is always in the split listed first (train before val before test); ``distance`` is 0 for
the same file and for identical pixels, 1 - similarity for a near-duplicate. ``look_alikes``: near
matches of a later split's image that score clearly below its best match in the same earlier split
and are not linked to it (``integrity.rivals``): not counted as pairs, not a leak on their own, but
``policy=drop`` removes their train/val side too.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any



@dataclass(frozen=True)
class CheckKind:
    """One kind of cross-split relation: its name in the JSON, its console label and its sentence."""

    kind: str
    label: str  # the console table's "kind" column
    wording: str  # "val: 3 of 500 images <wording> train<detail>"
    detail: str = ""


# THE table of check kinds, in report order: the report, the console and the gate all read it.
# A new kind is a row here plus its detector in gate.py.
CHECK_KINDS = (
    CheckKind("source", "same file", "are also in", " (the same files)"),
    CheckKind("exact", "identical pixels", "are pixel-identical copies of images in"),
    CheckKind("near", "near-duplicate", "are near-duplicates of images in"),
)
KINDS = tuple(k.kind for k in CHECK_KINDS)
KIND_ORDER = {k.kind: i for i, k in enumerate(CHECK_KINDS)}
KIND_OF = {k.kind: k for k in CHECK_KINDS}


@dataclass(frozen=True)
class SampleRef:
    split: str
    index: int
    path: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"split": self.split, "index": int(self.index), "path": self.path}


@dataclass(frozen=True)
class LeakPair:
    kind: str
    distance: float
    a: SampleRef
    b: SampleRef

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "distance": round(float(self.distance), 6), "a": self.a.to_dict(),
                "b": self.b.to_dict()}


@dataclass
class LeakReport:
    """Cross-split pairs found by the gate, plus within-split duplicate counts (reported, not refused)."""

    dataset: str
    splits: dict[str, int]
    pairs: list[LeakPair] = field(default_factory=list)
    within_split_duplicates: int = 0
    # near matches set aside as rival look-alikes of a closer match (``integrity.rivals``)
    look_alikes: list[LeakPair] = field(default_factory=list)
    seconds: float = 0.0
    policy: str = "fail"
    # per split, how many samples repeat an earlier sample of the same split (not in the JSON schema)
    within_by_split: dict[str, int] = field(default_factory=dict)
    cached: bool = False
    # the near-duplicate threshold applied (None: near check off) and the configured one
    near_threshold: float | None = None
    near_threshold_set: float | None = None
    # per check kind: "ran", "ran on ...", or "skipped: <why>" (said by the audit; not in the JSON schema)
    checks: dict[str, str] = field(default_factory=dict)

    @property
    def has_leak(self) -> bool:
        return bool(self.pairs)

    def counts(self) -> dict[tuple[str, str, str], int]:
        """(split b, split a, kind) -> number of distinct samples of b with such a pair."""
        seen: dict[tuple[str, str, str], set[int]] = defaultdict(set)
        for p in self.pairs:
            seen[(p.b.split, p.a.split, p.kind)].add(p.b.index)
        return {k: len(v) for k, v in seen.items()}

    def summary_lines(self) -> list[str]:
        """One human line per (split, other split, kind): "val: 128 of 128 images are also in train"."""
        order = {s: i for i, s in enumerate(self.splits)}
        lines = []
        for (b, a, kind), n in sorted(self.counts().items(),
                                      key=lambda kv: (order.get(kv[0][0], 99), order.get(kv[0][1], 99),
                                                      KIND_ORDER[kv[0][2]])):
            k = KIND_OF[kind]
            lines.append(f"{b}: {n} of {self.splits.get(b, '?')} images {k.wording} {a}{k.detail}")
        for split, n in self.within_by_split.items():
            if n:
                lines.append(f"{split}: {n} of {self.splits.get(split, '?')} images repeat another {split} image "
                             "(within one split: reported, not refused)")
        return lines

    def to_dict(self) -> dict[str, Any]:
        return {"dataset": self.dataset, "splits": {k: int(v) for k, v in self.splits.items()},
                "pairs": [p.to_dict() for p in self.pairs],
                "within_split_duplicates": int(self.within_split_duplicates),
                "seconds": round(float(self.seconds), 3), "policy": self.policy,
                "look_alikes": [p.to_dict() for p in self.look_alikes]}

    def notes(self) -> list[str]:
        notes = []
        if (self.near_threshold is not None and self.near_threshold_set is not None
                and self.near_threshold > self.near_threshold_set + 1e-9):
            notes.append(f"near-duplicate threshold raised from {self.near_threshold_set:.4f} to "
                         f"{self.near_threshold:.4f}: different images of this dataset look alike at the pixel "
                         "level, so only closer copies are reported (data.integrity.thresholds.adaptive)")
        if self.look_alikes:
            images = len({(p.b.split, p.b.index) for p in self.look_alikes})
            notes.append(f"{len(self.look_alikes)} more matches of {images} images, each clearly weaker than that "
                         "image's best match in the same split and not linked to it, are set aside as look-alikes "
                         "(not counted; leak_report.json \"look_alikes\"; policy=drop removes them too; "
                         "data.integrity.thresholds.rival_margin)")
        return notes

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "LeakReport":
        def pairs_of(key: str) -> list[LeakPair]:
            return [LeakPair(p["kind"], float(p["distance"]), SampleRef(**p["a"]), SampleRef(**p["b"]))
                    for p in d.get(key, [])]

        return cls(dataset=d.get("dataset", ""), splits=dict(d.get("splits", {})), pairs=pairs_of("pairs"),
                   look_alikes=pairs_of("look_alikes"),
                   within_split_duplicates=int(d.get("within_split_duplicates", 0)),
                   seconds=float(d.get("seconds", 0.0)), policy=d.get("policy", "fail"),
                   within_by_split=dict(d.get("within_by_split", {})),
                   near_threshold=d.get("near_threshold"), near_threshold_set=d.get("near_threshold_set"))

    def write(self, path: str | Path) -> Path:
        """leak_report.json (atomically: a crashed run never leaves half a report)."""
        return write_json(path, self.to_dict())


def write_json(path: str | Path, data: Any) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh, indent=1)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
