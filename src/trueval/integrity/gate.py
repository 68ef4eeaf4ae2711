"""The integrity gate's detection: same-source, exact and near-duplicate relations among samples.

``find_duplicates`` looks at the splits as they were READ (before the template cuts any of them)
and returns every relation it found as global sample indices (``Findings``): groups of the same
file, groups of identical pixels, verified near-duplicate pairs. ``report_for`` then states those
findings for the splits as they are USED (after validation is carved, a ratio split is made or a
fraction is taken). Carving with ``clusters`` from the same findings keeps every cluster on one
side, so the report of a carved split can hold no pair the template made itself: one search, one
grouping, for the cut and for the verdict.

Order matters for speed and for the user: the same-source check compares resolved paths (or origin
ids of array-backed sets) and runs before a single image is decoded; then the cache (keyed by the
content of every split and the detection settings) is consulted; only on a miss are the images
decoded, hashed and compared.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import os
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterator, Mapping, Sequence

import numpy as np

from trueval.core.errors import UnreadableImages
from trueval.core.graph import components
from trueval.core.samples import SampleSet, unreadable
from trueval.integrity.cache import GateCache, key_of, split_digest
from trueval.integrity.console import stage
from trueval.integrity.report import KIND_ORDER, LeakPair, LeakReport, SampleRef
from trueval.integrity.rivals import rivals
from trueval.integrity.settings import IntegritySettings

if TYPE_CHECKING:  # imported where a miss computes them: a cached verdict needs no torch
    from trueval.integrity.fingerprints import Prints, Views

log = logging.getLogger("trueval")

SPLIT_ORDER = ("train", "val", "test")
# a group of identical images spanning two splits larger than this (|a| x |b|) is reported with
# pairs that cover every member once instead of every combination
_MAX_GROUP_PAIRS = 2000
# fewest rows held in memory whose fingerprints forked workers compute (fewer take about a second or less
# in one process on the 2-core machine, by CIFAR-10's 8 s for 60,000: not worth forking for)
_FORK_PRINTS_ROWS = 8192


def ordered(names) -> list[str]:
    """train, val, test first, then any other split in the given order."""
    names = list(names)
    return [n for n in SPLIT_ORDER if n in names] + [n for n in names if n not in SPLIT_ORDER]


@dataclass
class Findings:
    """Every relation found among the samples of ``names`` (global index = offset of the split + index)."""

    names: list[str]
    sizes: list[int]
    source: list[np.ndarray] = field(default_factory=list)  # groups: the same file / origin id
    exact: list[np.ndarray] = field(default_factory=list)  # groups: identical decoded pixels
    near_a: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    near_b: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    near_score: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    threshold: float | None = None
    checks: dict[str, str] = field(default_factory=dict)  # kind -> what ran, or why it was skipped
    prints: dict[str, Prints] = field(default_factory=dict)  # per split, when they were computed
    digests: dict[str, str] = field(default_factory=dict)  # per split, its content digest (when caching)
    cached: bool = False
    seconds: float = 0.0

    def offsets(self) -> dict[str, int]:
        starts = np.cumsum([0] + self.sizes)
        return {n: int(starts[i]) for i, n in enumerate(self.names)}

    def edges(self) -> tuple[np.ndarray, np.ndarray]:
        """Every relation as an edge list (groups as stars)."""
        a = [self.near_a]
        b = [self.near_b]
        for g in self.source + self.exact:
            a.append(np.full(len(g) - 1, g[0]))
            b.append(g[1:])
        return np.concatenate(a).astype(np.int64), np.concatenate(b).astype(np.int64)

    def clusters(self, split: str) -> np.ndarray:
        """Duplicate cluster id per sample of ``split`` (0..G-1, numbered by first member)."""
        start, n = self.offsets()[split], self.sizes[self.names.index(split)]
        a, b = self.edges()
        inside = (a >= start) & (a < start + n) & (b >= start) & (b < start + n)
        return components(n, [a[inside] - start], [b[inside] - start])

    # ---------------------------------------------------------------- cache
    _ARRAYS = ("names", "sizes", "source", "source_at", "exact", "exact_at", "near_a", "near_b", "near_score",
               "threshold", "checks")

    def to_arrays(self) -> dict[str, np.ndarray]:
        def flat(groups):
            at = np.cumsum([0] + [len(g) for g in groups]).astype(np.int64)
            return (np.concatenate(groups).astype(np.int64) if groups else np.zeros(0, np.int64)), at

        source, source_at = flat(self.source)
        exact, exact_at = flat(self.exact)
        return {"names": np.array(self.names), "sizes": np.array(self.sizes, np.int64), "source": source,
                "source_at": source_at, "exact": exact, "exact_at": exact_at, "near_a": self.near_a,
                "near_b": self.near_b, "near_score": self.near_score,
                "threshold": np.array(np.nan if self.threshold is None else self.threshold),
                "checks": np.array([f"{k}={v}" for k, v in self.checks.items()])}

    @classmethod
    def from_arrays(cls, z: Mapping[str, np.ndarray], names: list[str], sizes: list[int]) -> "Findings | None":
        """Rebuild from a cache entry; None when it does not describe these splits (a miss)."""
        if [str(s) for s in z["names"]] != names or [int(s) for s in z["sizes"]] != sizes:
            return None
        total = sum(sizes)

        def groups(values, at):
            if len(at) == 0 or at[0] != 0 or at[-1] != len(values) or (np.diff(at) < 2).any():
                raise ValueError("group offsets")
            return [values[at[i]:at[i + 1]] for i in range(len(at) - 1)]

        out = cls(names, sizes, source=groups(z["source"], z["source_at"]), exact=groups(z["exact"], z["exact_at"]),
                  near_a=z["near_a"].astype(np.int64), near_b=z["near_b"].astype(np.int64),
                  near_score=z["near_score"].astype(np.float32),
                  threshold=None if np.isnan(z["threshold"]) else float(z["threshold"]),
                  checks=dict(str(c).split("=", 1) for c in z["checks"]), cached=True)
        everything = np.concatenate([out.near_a, out.near_b, *out.source, *out.exact])
        if len(out.near_a) != len(out.near_b) or len(out.near_a) != len(out.near_score) or (
                len(everything) and (everything.min() < 0 or everything.max() >= total)):
            raise ValueError("indices out of range")
        return out


def with_later_splits(exc: UnreadableImages, later: Sequence[SampleSet]) -> UnreadableImages:
    """``exc`` and the broken files of the ``later`` splits that are still files (not decoded yet):
    one message names every file to replace, whichever split failed first."""
    return exc.with_more([e for ss in later if ss.images is None and ss.paths
                          for e in unreadable(ss.paths, ss.image_mode)])


def find_duplicates(splits: Mapping[str, SampleSet], settings: IntegritySettings, cache_dir=None,
                    thorough: bool | Mapping[str, np.ndarray] = False, prints_wanted: bool = False) -> Findings:
    """Every same-source, exact and near relation among the samples of ``splits`` (cached by content).

    ``thorough``: search within each split as hard as across splits (a split the template will cut
    must have its clusters found before it cuts); per split a bool per sample: only the samples a
    cut may move out of their split (``near_pairs``). ``prints_wanted``: keep the fingerprints
    computed on a miss (the manifest and checkpoint fingerprint reuse them).
    """
    start = time.perf_counter()
    names = ordered(splits)
    sets = {n: splits[n] for n in names}
    sizes = [len(sets[n]) for n in names]
    found = Findings(names, sizes)
    found.source = _identity_groups(sets, found.offsets())
    split_of = np.repeat(np.arange(len(names)), sizes)
    shared = [g for g in found.source if len(np.unique(split_of[g])) > 1]
    if shared:  # said at once: decoding a large dataset takes a while, and this needs no pixels
        first = int(shared[0][0])
        split = names[split_of[first]]
        example = sets[split].path(first - found.offsets()[split]) or f"{split} sample {first}"
        log.warning("integrity gate: %d files are in more than one split (e.g. %s); the report follows",
                    len(shared), example)
    cache = GateCache(cache_dir if settings.cache else None)
    if cache.dir is not None:
        with stage("hashing the content of every split (cache key)", total=None):
            found.digests = {n: split_digest(sets[n]) for n in names}
    hard = thorough
    if isinstance(thorough, Mapping):
        hard = np.concatenate([np.asarray(thorough[n], bool) if n in thorough else np.zeros(len(sets[n]), bool)
                               for n in names])
        if len(hard) != sum(sizes):
            raise ValueError(f"candidate masks of {len(hard)} samples for {sum(sizes)}")
    # a mask goes into the key as the digest of its bits (True / False as before: those entries stay valid)
    mode = hard if isinstance(hard, bool) else hashlib.sha256(np.packbits(hard).tobytes()).hexdigest()[:24]
    key = key_of("findings", 3, names, [found.digests.get(n) for n in names], settings.digest(), mode)
    hit = cache.load("findings", key, Findings._ARRAYS)
    if hit is not None:
        try:
            cached = Findings.from_arrays(hit, names, sizes)
        except (ValueError, KeyError, TypeError) as exc:
            from trueval.integrity.cache import warn_damaged

            warn_damaged("findings", cache.dir or "", str(exc))
            cached = None
        if cached is not None:
            cached.digests = found.digests
            cached.seconds = time.perf_counter() - start
            return cached
    found.checks["source"] = "ran"
    if settings.exact or settings.near:
        allp = _fingerprints(sets, names, settings.near)
        offsets = found.offsets()
        found.prints = {n: allp.rows(offsets[n], offsets[n] + len(sets[n])) for n in names}
        rows = None
        if settings.near:
            from trueval.integrity.near_duplicates import SearchRows

            rows = SearchRows.of(allp, split_of)
            allp = rows.sample_prints()
        if not prints_wanted:
            found.prints = {}
        groups = identical_groups(allp.hashes)
        if settings.exact:
            found.exact = groups
            found.checks["exact"] = "ran"
        else:
            found.checks["exact"] = "skipped: data.integrity.exact=false"
        if settings.near:
            found.checks["near"] = _near_coverage(allp, settings)
            if not found.checks["near"].startswith("skipped"):
                with stage(f"searching near-duplicates among {len(allp)} images", total=None):
                    from trueval.integrity.near_duplicates import near_pairs

                    result = near_pairs(rows, None, settings, thorough=hard)
                same_hash = allp.hashes[result.a] == allp.hashes[result.b]
                keep = ~same_hash if settings.exact else np.ones(len(result.a), bool)
                found.near_a, found.near_b = result.a[keep].astype(np.int64), result.b[keep].astype(np.int64)
                found.near_score = result.score[keep].astype(np.float32)
                found.threshold = result.threshold
        else:
            found.checks["near"] = "skipped: data.integrity.near=false"
    else:
        found.checks["exact"] = "skipped: data.integrity.exact=false"
        found.checks["near"] = "skipped: data.integrity.near=false"
    cache.save("findings", key, found.to_arrays())
    found.seconds = time.perf_counter() - start
    return found


def _fingerprints(sets: Mapping[str, SampleSet], names: Sequence[str], thumbs: bool) -> "Prints":
    """Every split's fingerprints in one set of arrays, with room for the search's views (at most two
    per sample): neither joined nor grown by a copy (``SearchRows``); the splits' prints are views of
    it. The first batch comes first: torch's import (seconds) happens under the first split's stage."""
    total = sum(len(sets[n]) for n in names)
    if thumbs and total >= _FORK_PRINTS_ROWS and all(sets[n].images is not None for n in names):
        return _fingerprints_forked(sets, names, total)
    batches = _decoded(sets, names, thumbs)
    first = next(batches, None)
    from trueval.integrity.fingerprints import Prints, compute_prints

    if first is None:
        return compute_prints([], thumbs=thumbs)
    return Prints.joined(itertools.chain([first], batches), total, spare=2 * total if thumbs else 0)


def _fingerprints_forked(sets: Mapping[str, SampleSet], names: Sequence[str], total: int) -> "Prints":
    """``_fingerprints`` of splits held in memory, their chunks shared among forked workers that write
    the rows into shared memory (``SharedRows``; the same chunks, the same values).

    In this process alone the stage used one core, for its work and for the first touch of the
    fingerprints' fresh memory (360 MB on CIFAR-10, 5 s on the 2-core machine when its host has taken
    the memory back; two processes touch it in half the time, ``benchmarks/fresh_memory.py``). CIFAR-10's
    stage took 2.0-2.2 s this way against 7.9-8.1 s (the whole cold audit 0.87-0.88 of the time)."""
    shared, views = None, []
    start = 0
    for n in names:
        with stage(_print_stage(sets[n], n), total=len(sets[n])):
            import torch  # seconds, shown

            from trueval.integrity.console import advance
            from trueval.integrity.fingerprints import SharedRows, chunk_spans
            from trueval.integrity.forked import forked_imap, search_workers

            if shared is None:
                shared = SharedRows([sets[m].images[:1] for m in names if len(sets[m])], total, spare=2 * total)
            images, at, spans = sets[n].images, start, chunk_spans(len(sets[n]))

            def chunk(span: tuple[int, int]) -> "Views | None":
                return shared.into(images[span[0]:span[1]], at + span[0])

            workers = search_workers(torch.device("cpu"))  # one per core and per thread torch may use
            for (s, e), found in zip(spans, forked_imap(chunk, spans, workers), strict=True):
                if found is not None:
                    views.append(found)
                advance(e - s)
        start += len(sets[n])
    return shared.prints(views)


def _print_stage(ss: SampleSet, name: str) -> str:
    """What a split's fingerprint stage is called: its pixels held, or its files decoded first."""
    return f"{'hashing and thumbnailing' if ss.images is not None else 'decoding and hashing'} {name}"


def _decoded(sets: Mapping[str, SampleSet], names: Sequence[str], thumbs: bool) -> Iterator["Prints"]:
    """Every split's prints a batch at a time, each split under its own progress stage; a split's
    unreadable files named together with the later splits' (one run tells them all)."""
    for i, n in enumerate(names):
        with stage(_print_stage(sets[n], n), total=len(sets[n])):
            from trueval.integrity.fingerprints import batch_prints  # torch: seconds, shown

            try:
                yield from batch_prints(sets[n], thumbs=thumbs)
            except UnreadableImages as exc:
                raise with_later_splits(exc, [sets[m] for m in names[i + 1:]]) from None


def _near_coverage(prints: Prints, settings: IntegritySettings) -> str:
    """Whether the near check can run, and on how many images (tiny and blank images cannot be told apart)."""
    from trueval.integrity.near_duplicates import MIN_SIDE

    n = len(prints)
    tiny = int((prints.side < MIN_SIDE).sum()) if prints.side is not None else 0
    blank = int(((prints.contrast < settings.thresholds.min_contrast) & ~(
        prints.side < MIN_SIDE if prints.side is not None else False)).sum()) if prints.contrast is not None else 0
    if n and tiny == n:
        return (f"skipped: every image is under {MIN_SIDE} px a side, too small to tell a copy from a "
                "look-alike (identical pixels are still checked)")
    if tiny or blank:
        parts = ([f"{tiny} under {MIN_SIDE} px"] if tiny else []) + ([f"{blank} blank"] if blank else [])
        return f"ran on {n - tiny - blank} of {n} images ({', '.join(parts)}: identical pixels only)"
    return "ran"


def report_for(found: Findings, sets: Mapping[str, SampleSet], members: Mapping[str, np.ndarray],
               settings: IntegritySettings, dataset: str = "") -> LeakReport:
    """The report for the splits as used: ``members[s]`` are the global indices (into ``found``) of
    split ``s``'s samples, in order."""
    names = ordered(sets)
    total = sum(found.sizes)
    split_at = np.full(total, -1, np.int64)
    index_at = np.full(total, -1, np.int64)
    for si, n in enumerate(names):
        m = np.asarray(members[n], np.int64)
        split_at[m] = si
        index_at[m] = np.arange(len(m))

    def ref(g: int) -> SampleRef:
        s = names[split_at[g]]
        i = int(index_at[g])
        return SampleRef(s, i, sets[s].path(i))

    pairs: list[LeakPair] = []
    known: set[tuple[int, int]] = set()
    edges_a: list[np.ndarray] = []
    edges_b: list[np.ndarray] = []
    for kind, groups in (("source", found.source), ("exact", found.exact)):
        for g in groups:
            g = g[split_at[g] >= 0]
            if len(g) < 2:
                continue
            edges_a.append(np.full(len(g) - 1, g[0]))
            edges_b.append(g[1:])
            pairs += _group_pairs(kind, g, split_at, ref, known)
    a, b, score = found.near_a, found.near_b, found.near_score
    used = (split_at[a] >= 0) & (split_at[b] >= 0) if len(a) else np.zeros(0, bool)
    a, b, score = a[used], b[used], score[used]
    # one clustering of the copies within each split (shared file, identical pixels, near pairs): the
    # within-split counts and the look-alike rule both read it
    ga, gb = (np.concatenate(e).astype(np.int64) if e else np.zeros(0, np.int64) for e in (edges_a, edges_b))
    ea, eb = np.r_[ga, a], np.r_[gb, b]
    inside = split_at[ea] == split_at[eb]
    cluster = components(total, [ea[inside]], [eb[inside]])
    across = split_at[ga] != split_at[gb]
    rival = rivals(a, b, score, split_at, cluster, settings.thresholds.rival_margin, (ga[across], gb[across]))
    look_alikes: list[LeakPair] = []
    for x, y, s, r in zip(*(v[split_at[a] != split_at[b]] for v in (a, b, score, rival))):
        x, y = (x, y) if split_at[x] < split_at[y] else (y, x)
        if (int(x), int(y)) not in known:
            (look_alikes if r else pairs).append(LeakPair("near", 1.0 - float(s), ref(x), ref(y)))
    within = _within_counts(names, split_at, cluster)
    order = {n: i for i, n in enumerate(names)}

    def in_order(p: LeakPair):
        return order[p.a.split], order[p.b.split], KIND_ORDER[p.kind], p.b.index, p.a.index

    pairs.sort(key=in_order)
    look_alikes.sort(key=in_order)
    return LeakReport(dataset=dataset, splits={n: len(sets[n]) for n in names}, pairs=pairs, look_alikes=look_alikes,
                      within_split_duplicates=int(sum(within.values())), policy=settings.policy,
                      within_by_split=within, near_threshold=found.threshold,
                      near_threshold_set=settings.thresholds.near, cached=found.cached,
                      seconds=found.seconds, checks=dict(found.checks))


def run_gate(splits: Mapping[str, SampleSet], settings: IntegritySettings, cache_dir=None,
             dataset: str = "") -> LeakReport:
    """Check every pair of splits for shared sources, exact and near duplicates (cached)."""
    found = find_duplicates(splits, settings, cache_dir)
    offsets = found.offsets()
    members = {n: offsets[n] + np.arange(len(splits[n])) for n in found.names}
    return report_for(found, splits, members, settings, dataset)


def identities(ss: SampleSet) -> list[str]:
    """What makes two samples the same source: the resolved file, or the origin id of an array sample.

    Directories are resolved once each, and which files are links is read once per directory
    (``scandir`` knows without a stat per file): resolving every path fully took 2.4 s for 60,000
    files, an ``lstat`` per file still about 1 s on a busy machine."""
    if ss.paths is None:
        return list(ss.origin or [])
    dirs: dict[str, tuple[str, set[str]]] = {}
    out = []
    for p in ss.paths:
        # string operations: os.path.split/isabs on each of 60,000 paths took a third of a warm audit
        head, _, tail = (p if p.startswith(os.sep) else os.path.abspath(p)).rpartition(os.sep)
        head = head or os.sep
        known = dirs.get(head)
        if known is None:
            known = dirs[head] = (os.path.realpath(head), _links_in(head))
        full = os.path.join(known[0], tail)
        out.append(os.path.realpath(full) if tail in known[1] else full)
    return out


def _links_in(folder: str) -> set[str]:
    try:
        with os.scandir(folder) as entries:
            return {e.name for e in entries if e.is_symlink()}
    except OSError:
        return set()


def _identity_groups(sets: Mapping[str, SampleSet], offsets: Mapping[str, int]) -> list[np.ndarray]:
    """Groups of samples (within or across splits) that are the same file or origin id: no decoding."""
    first: dict[str, list[int]] = {}
    for name, ss in sets.items():
        for j, ident in enumerate(identities(ss)):
            first.setdefault(ident, []).append(offsets[name] + j)
    return [np.asarray(g, np.int64) for g in first.values() if len(g) > 1]


def identical_groups(hashes: np.ndarray) -> list[np.ndarray]:
    """Index arrays of the samples sharing a hash, for every hash held by two or more samples."""
    if len(hashes) == 0:
        return []
    _, inverse, counts = np.unique(hashes, return_inverse=True, return_counts=True)
    order = np.argsort(inverse, kind="stable")
    bounds = np.r_[0, np.cumsum(counts)]
    return [order[bounds[g]:bounds[g + 1]] for g in np.flatnonzero(counts > 1)]


def _group_pairs(kind: str, members: np.ndarray, split_at: np.ndarray, ref, known: set) -> list[LeakPair]:
    """Cross-split pairs of one group (a covering subset when the group is huge), skipping known pairs."""
    out = []
    splits = np.unique(split_at[members])
    for i, sa in enumerate(splits):
        for sb in splits[i + 1:]:
            left = members[split_at[members] == sa]
            right = members[split_at[members] == sb]
            if len(left) * len(right) <= _MAX_GROUP_PAIRS:
                combos = [(x, y) for x in left for y in right]
            else:
                combos = [(left[0], y) for y in right] + [(x, right[0]) for x in left[1:]]
            for x, y in combos:
                if (int(x), int(y)) not in known:
                    known.add((int(x), int(y)))
                    out.append(LeakPair(kind, 0.0, ref(x), ref(y)))
    return out


def _within_counts(names: list[str], split_at: np.ndarray, cluster: np.ndarray) -> dict[str, int]:
    """Per split: samples that repeat an earlier sample of the same split (size minus duplicate clusters)."""
    return {name: int((split_at == i).sum() - len(np.unique(cluster[split_at == i]))) for i, name in enumerate(names)}
