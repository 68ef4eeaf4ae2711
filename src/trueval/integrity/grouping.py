"""Duplicate clusters inside one sample set, for splitting by groups.

When the template makes a split itself (ratio split, validation carved from train) it keeps every
cluster of copies in one split, so the gate that runs afterwards finds nothing to refuse. Clusters
are the connected components of the same-file, identical-pixel and verified near-duplicate pairs,
computed with the gate's own detector and settings, and cached like the gate.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from trueval.core.samples import SampleSet
from trueval.integrity.cache import GateCache, split_digest
from trueval.integrity.fingerprints import compute_prints, resized
from trueval.integrity.gate import _attach, _identities, identical_groups
from trueval.integrity.near_duplicates import near_pairs
from trueval.integrity.settings import IntegritySettings


def duplicate_groups(ss: SampleSet, settings: IntegritySettings, cache_dir: str | Path | None = None) -> np.ndarray:
    """Group id per sample (0..G-1, numbered by first member): copies of one picture share an id."""
    cache = GateCache(cache_dir if settings.cache else None)
    key = hashlib.sha256(f"{split_digest(ss)}|{settings.digest()}".encode()).hexdigest()[:32]
    hit = cache.load_json("groups", key)
    if hit is not None and len(hit) == len(ss):
        return np.asarray(hit, dtype=np.int64)
    n = len(ss)
    a_parts, b_parts = [], []
    first: dict[str, int] = {}
    for j, ident in enumerate(_identities(ss)):
        if ident in first:
            a_parts.append(np.array([first[ident]])), b_parts.append(np.array([j]))
        else:
            first[ident] = j
    if settings.exact or settings.near:
        prints = compute_prints(ss, thumbs=settings.near)
        if settings.near:
            small = resized(prints, settings.fingerprint_size or 16)
            _attach(ss, small)
            cache.save_prints(split_digest(ss), small)
        for members in identical_groups(prints.hashes):
            a_parts.append(np.full(len(members) - 1, members[0])), b_parts.append(members[1:])
        if settings.near:
            result = near_pairs(prints, None, settings, thorough=True)
            a_parts.append(result.a), b_parts.append(result.b)
    groups = components(n, a_parts, b_parts)
    cache.save_json("groups", key, groups.tolist())
    return groups


def components(n: int, a_parts: list[np.ndarray], b_parts: list[np.ndarray]) -> np.ndarray:
    """Connected components of an undirected edge list, numbered in order of their first member."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    a = np.concatenate(a_parts).astype(np.int64) if a_parts else np.zeros(0, np.int64)
    b = np.concatenate(b_parts).astype(np.int64) if b_parts else np.zeros(0, np.int64)
    graph = coo_matrix((np.ones(len(a)), (a, b)), shape=(n, n))
    _, label = connected_components(graph, directed=False)
    _, first_index, inverse = np.unique(label, return_index=True, return_inverse=True)
    rank = np.argsort(np.argsort(first_index))
    return rank[inverse].astype(np.int64)
