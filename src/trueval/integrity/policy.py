"""What happens to a leaky split (``data.integrity.policy``): fail, warn or drop.

drop removes one sample of every leaking pair, never a test sample, always the side that is used
earlier in the train -> val -> test order: a train/test pair loses its train sample, val/test its
val sample, and train/val its TRAIN sample. Train rather than val because the evaluation splits are
what runs are compared on: keeping val (and test) whole keeps their numbers comparable across runs
and fractions, while the training split is the larger one and loses proportionally less.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

import numpy as np

from trueval.core.samples import SampleSet
from trueval.integrity.report import LeakReport
from trueval.integrity.settings import POLICIES
from trueval.core.errors import LeakError, UserError

_RANK = {"train": 0, "val": 1, "test": 2}
KEY = "data.integrity.policy"


def _rank(split: str) -> int:
    return _RANK.get(split, 1)


def apply_policy(splits: Mapping[str, SampleSet], report: LeakReport, policy: str,
                 carved: Iterable[tuple[str, str]] = ()) -> tuple[dict[str, SampleSet], dict[str, Any]]:
    """Apply the policy; returns the (possibly reduced) splits and a JSON-able record of what happened.

    ``carved``: split pairs the template itself cut out of one pool (e.g. ("train", "val") when
    validation is carved from train). It keeps duplicate clusters whole when it cuts, but the gate
    searches across splits harder than within one pool, so it can still find a few copies there;
    those are the template's own doing and are always resolved by dropping the train-side sample
    (recorded under ``carved_dropped``), whatever the policy.
    """
    if policy not in POLICIES:
        raise UserError(f"policy must be one of {', '.join(POLICIES)}, got {policy!r}", key=KEY)
    splits = dict(splits)
    made = {frozenset(p) for p in carved}

    def ours(p) -> bool:
        return frozenset((p.a.split, p.b.split)) in made

    theirs = [p for p in report.pairs if not ours(p)]
    # a look-alike may still be the same photo (``integrity.rivals``): wherever pairs are dropped, so is it
    carved_pairs = [p for p in report.pairs + report.look_alikes if ours(p)]
    record: dict[str, Any] = {"policy": policy, "leaky": bool(theirs), "pairs": len(theirs),
                              "summary": report.summary_lines(), "dropped": [], "dropped_count": 0,
                              "carved_dropped": _victims(splits, carved_pairs)}
    if theirs and policy == "fail":
        lines = "\n  ".join(_summary(report, theirs))
        raise LeakError(f"the splits of {report.dataset or 'this dataset'} leak into each other:\n  {lines}\n"
                        f"Fix the data, or set {KEY}=drop (remove the copies from the train/val side) or "
                        f"{KEY}=warn (train anyway, flagged LEAKY). Pairs: leak_report.json.", key=KEY)
    if theirs and policy == "drop":
        paired = _victims(splits, theirs)
        seen = {(d["split"], d["index"]) for d in record["carved_dropped"] + paired}
        # dropped only as a look-alike of a closer match: said so
        alike = [dict(d, look_alike=True) for d in _victims(splits, [p for p in report.look_alikes if not ours(p)])
                 if (d["split"], d["index"]) not in seen]
        gone = {(d["split"], d["index"]) for d in record["carved_dropped"]}
        record["dropped"] = sorted([d for d in paired if (d["split"], d["index"]) not in gone] + alike,
                                   key=lambda d: (_rank(d["split"]), d["index"]))
        record["dropped_count"] = len(record["dropped"])
    # one subset per split, of indices into the splits as the gate saw them (what every pair names)
    return _without(splits, record["carved_dropped"] + record["dropped"]), record


def kept_indices(sizes: Mapping[str, int], record: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Per split, the indices (into the splits given to ``apply_policy``) that its policy kept."""
    gone: dict[str, set[int]] = {s: set() for s in sizes}
    for entry in list(record.get("carved_dropped", [])) + list(record.get("dropped", [])):
        gone[entry["split"]].add(int(entry["index"]))
    return {s: np.setdiff1d(np.arange(n), np.fromiter(gone[s], np.int64, len(gone[s]))) for s, n in sizes.items()}


def _summary(report: LeakReport, pairs) -> list[str]:
    sub = LeakReport(report.dataset, report.splits, pairs=list(pairs))
    return sub.summary_lines()


def _victims(splits: Mapping[str, SampleSet], pairs) -> list[dict[str, Any]]:
    """The train/val-side sample of every pair (never a test sample), once each, in split and index order."""
    drop: dict[str, dict[int, dict[str, Any]]] = {}
    for p in pairs:
        victim, partner = (p.a, p.b) if _rank(p.a.split) <= _rank(p.b.split) else (p.b, p.a)
        if victim.split == "test":
            continue  # two test samples can never be a pair of different splits; kept for safety
        entry = drop.setdefault(victim.split, {})
        if victim.index not in entry:
            origin = splits[victim.split].origin
            entry[victim.index] = {"split": victim.split, "index": victim.index,
                                   "origin": origin[victim.index] if origin else None, "kind": p.kind,
                                   "partner": {"split": partner.split, "index": partner.index}}
    victims: list[dict[str, Any]] = []
    for split in sorted(drop, key=_rank):
        victims += [drop[split][i] for i in sorted(drop[split])]
    return victims


def _without(splits: Mapping[str, SampleSet], victims: list[dict[str, Any]]) -> dict[str, SampleSet]:
    """The splits less the ``victims`` (indices into ``splits``); refuses to empty a split."""
    splits = dict(splits)
    for split in {d["split"] for d in victims}:
        ss = splits[split]
        gone = np.array(sorted({int(d["index"]) for d in victims if d["split"] == split}), np.int64)
        keep = np.setdiff1d(np.arange(len(ss)), gone)
        if len(keep) == 0:
            raise LeakError(f"policy drop would remove all {len(ss)} {split} samples: every one of them is also "
                            f"in another split. Point {split} at its own data.", key=KEY)
        splits[split] = ss.subset(keep)
    return splits
