"""The one gate step every entry point runs: classification and detection DataModules, audit, eval.

``gate_step`` takes the splits as they were read and the settings, and returns the report, the
splits to use, what the policy did, the split manifest and the checkpoint's train fingerprint.
When the template cuts a split itself (validation carved from train, one pool split by ratios, a
fraction of train), the DataModule passes ``cut``: it receives the duplicate clusters of every
read split (from the same search that makes the verdict) and returns each split to use as indices
into a read split, so the cut cannot separate two copies the gate would then refuse. With it,
``candidates`` (per read split, a bool per sample) names the only samples the cut may move out of
their read split: those are searched within it as hard as across splits, the rest of it less so.
Without them, or when the cut finds too few of them free of copies outside (``TooFewCandidates``),
every sample of every split is searched that hard.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping

import numpy as np

from trueval.core.allocator import reuse_freed_memory
from trueval.core.errors import TooFewCandidates, UnreadableImages
from trueval.core.samples import SampleSet
from trueval.integrity.cache import GateCache, key_of, split_digest
from trueval.integrity.gate import Findings, find_duplicates, ordered, report_for, with_later_splits
from trueval.integrity.policy import apply_policy, kept_indices
from trueval.integrity.report import LeakReport
from trueval.integrity.settings import IntegritySettings

if TYPE_CHECKING:  # imported where used: the audit of a cached verdict needs no torch
    from trueval.integrity.fingerprints import Prints

log = logging.getLogger("trueval")

# split to use -> (the read split it comes from, indices into that read split), from the duplicate
# clusters of each read split and the candidates the search was told of (None: every sample searched hard)
Cut = Callable[[Callable[[str], np.ndarray], Mapping[str, np.ndarray] | None], Mapping[str, tuple[str, np.ndarray]]]


@dataclass
class GateOutcome:
    """What the gate step decided: the report, the splits to train/evaluate on, and the records."""

    report: LeakReport
    sets: dict[str, SampleSet]
    record: dict[str, Any] = field(default_factory=dict)  # what the policy did (metrics.json "integrity")
    manifest: dict[str, Any] = field(default_factory=dict)  # splits.json
    fingerprint: dict[str, Any] = field(default_factory=dict)  # the checkpoint's train fingerprint
    # per split used: pixel hashes and fingerprint-size thumbnails (eval's overlap check can reuse them)
    prints: dict[str, Prints] = field(default_factory=dict)


def gate_step(splits: Mapping[str, SampleSet], settings: IntegritySettings, *, cache_dir: str | Path | None = None,
              dataset: str = "", cut: Cut | None = None,
              candidates: Mapping[str, np.ndarray] | None = None, carved: tuple[tuple[str, str], ...] = (),
              enforce: bool = True, manifest: Mapping[str, Any] | None = None,
              target_key: str = "targets", pixels: bool = True) -> GateOutcome:
    """Find duplicates across ``splits``, make the splits to use (``cut``), report and apply the policy.

    ``enforce``: apply ``settings.policy`` (a refused leak raises ``LeakError``) and build the manifest
    and fingerprint; the audit passes False and only wants the report. ``manifest``: the dataset's
    own fields of splits.json; ``target_key``: what the per-split target list is called in it.
    ``pixels`` False (with ``enforce`` False): the splits made are returned without their pixels
    wherever their samples are files (the audit: the report names files; copying CIFAR-10's carved
    splits was 184 MB of fresh memory, 1.7-2.5 s of a 4 s warm audit on the 2-core machine).
    """
    def search(thorough: bool | dict[str, np.ndarray]) -> Findings:
        with reuse_freed_memory():  # the search's many large temporaries: its time 54 s -> 43 s on 2 cores
            return find_duplicates(splits, settings, cache_dir, thorough=thorough, prints_wanted=enforce)

    hard = None if cut is None or candidates is None else dict(candidates)
    found = search(cut is not None if hard is None else hard)
    if cut is None:
        plan = {n: (n, np.arange(len(splits[n]))) for n in found.names}
    else:
        try:
            plan = dict(cut(found.clusters, hard))
        except TooFewCandidates as exc:
            log.info("integrity gate: %s; searching every sample of the split as hard instead", exc)
            hard = None
            found = search(True)
            plan = dict(cut(found.clusters, None))
        if hard is not None:
            _check_moved_only_candidates(plan, hard)
    offsets = found.offsets()
    sets = {s: splits[src].subset(np.asarray(idx, np.int64), split=s, pixels=enforce or pixels)
            for s, (src, idx) in plan.items()}
    members = {s: offsets[src] + np.asarray(idx, np.int64) for s, (src, idx) in plan.items()}
    report = report_for(found, sets, members, settings, dataset)
    _say(report)
    if not enforce:
        return GateOutcome(report, sets)
    sets_before = {s: len(ss) for s, ss in sets.items()}
    sets, record = apply_policy(sets, report, settings.policy, carved=carved)
    kept = kept_indices(sets_before, record)
    from trueval.integrity.checkpoint import train_fingerprint

    prints = _split_prints(found, splits, plan, kept, settings, cache_dir)
    out = GateOutcome(report, sets, record, prints=prints)
    out.manifest = split_manifest(sets, prints, dict(manifest or {}), target_key)
    out.fingerprint = train_fingerprint(sets["train"], settings, prints=prints.get("train"))
    out.fingerprint["manifest_digest"] = out.manifest["train_digest"]
    return out


def _check_moved_only_candidates(plan: Mapping[str, tuple[str, np.ndarray]],
                                  candidates: Mapping[str, np.ndarray]) -> None:
    """A read split cut into several splits: every sample outside the first (train, val, test order) is
    a candidate, else its pairs with the rest were not searched hard enough to trust the cut."""
    for src in {s for s, _ in plan.values()}:
        parts = [s for s in ordered(plan) if plan[s][0] == src]
        for s in parts[1:]:
            idx = np.asarray(plan[s][1], np.int64)
            mask = candidates.get(src)
            if mask is None or not np.asarray(mask, bool)[idx].all():
                raise RuntimeError(f"integrity gate: the cut moved samples of {src!r} that were not candidates "
                                   f"into {s!r}; their copies in {parts[0]!r} were not searched for as hard")


def _say(report: LeakReport) -> None:
    if report.cached:
        log.info("integrity gate: cached result (%.2f s)", report.seconds)
    else:
        log.info("integrity gate: %d cross-split pairs, %d within-split duplicates (%.1f s)",
                 len(report.pairs), report.within_split_duplicates, report.seconds)


def _split_prints(found: Findings, splits: Mapping[str, SampleSet],
                  plan: Mapping[str, tuple[str, np.ndarray]], kept: Mapping[str, np.ndarray],
                  settings: IntegritySettings, cache_dir) -> dict[str, Prints]:
    """Hashes (and fingerprint-size thumbnails) of every split used: taken from what the search
    computed, else from the prints cache (by content), else computed now."""
    from trueval.integrity.fingerprints import Prints, compute_prints, resized

    size = settings.fingerprint_size
    cache = GateCache(cache_dir if settings.cache else None)
    read: dict[str, Prints] = {}
    names = ordered({src for src, _ in plan.values()})
    for i, name in enumerate(names):
        digest = found.digests.get(name) or (split_digest(splits[name]) if cache.dir is not None else "")
        key = key_of("prints", 4, digest, size)  # 3: thumbnails without black fill; 4: EXIF orientation applied
        p = found.prints.get(name)
        if p is None or (size and p.thumbs is None):
            hit = cache.load("prints", key, ["hashes"] + (["thumbs", "boxes", "contrast", "side"] if size else []))
            if hit is not None and len(hit["hashes"]) == len(splits[name]):
                read[name] = Prints(hit["hashes"].astype("S16"), *(
                    (hit["thumbs"].astype(np.float32), hit["boxes"].astype(np.int16),
                     hit["contrast"].astype(np.float32), hit["side"].astype(np.int16)) if size
                    else (None, None, None, None)))
                continue
            try:
                p = compute_prints(splits[name], thumbs=size > 0)
            except UnreadableImages as exc:  # with the pixel checks off, nothing decoded the splits before
                raise with_later_splits(exc, [splits[n] for n in names[i + 1:]]) from None
        read[name] = small = resized(p, size) if size else Prints(p.hashes, None, None, None)
        arrays = {"hashes": small.hashes}
        if size:
            arrays.update(thumbs=small.thumbs.round().clip(0, 255).astype(np.uint8), boxes=small.boxes,
                          contrast=small.contrast, side=small.side)
        cache.save("prints", key, arrays)
    return {s: read[src].take(np.asarray(idx, np.int64)[kept[s]]) for s, (src, idx) in plan.items()}


def split_manifest(sets: Mapping[str, SampleSet], prints: Mapping[str, Prints], base: dict[str, Any],
                   target_key: str = "targets") -> dict[str, Any]:
    """splits.json: per split its count, sources, ids, pixel hashes and targets; the train digest."""
    out = {**base, "splits": {}}
    for split in ordered(sets):
        ss = sets[split]
        out["splits"][split] = {"count": len(ss), "sources": list(ss.sources), "ids": list(ss.origin or []),
                                "hashes": prints[split].hex(), target_key: [int(t) for t in ss.targets]}
    train_hashes = out["splits"]["train"]["hashes"]
    out["train_digest"] = hashlib.sha256("\n".join(sorted(train_hashes)).encode()).hexdigest()
    return out
