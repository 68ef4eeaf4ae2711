"""Connected components of an undirected edge list: the one way groups are joined (duplicate
clusters in the gate, and those clusters merged with ``data.group_regex`` groups before a split)."""

from __future__ import annotations

import numpy as np


def components(n: int, a_parts: list[np.ndarray], b_parts: list[np.ndarray]) -> np.ndarray:
    """Component id of each of ``n`` nodes joined by the edges (a, b), the parts concatenated;
    numbered 0..C-1 in order of each component's first member."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    a = np.concatenate(a_parts).astype(np.int64) if a_parts else np.zeros(0, np.int64)
    b = np.concatenate(b_parts).astype(np.int64) if b_parts else np.zeros(0, np.int64)
    graph = coo_matrix((np.ones(len(a)), (a, b)), shape=(n, n))
    _, label = connected_components(graph, directed=False)
    _, first_index, inverse = np.unique(label, return_index=True, return_inverse=True)
    rank = np.argsort(np.argsort(first_index))
    return rank[inverse].astype(np.int64)


def merged_groups(*groupings: np.ndarray) -> np.ndarray:
    """Group id per sample under the union of several groupings (one id per sample in each):
    samples that share an id in any of them end up in one group, numbered by first member."""
    n = len(groupings[0])
    starts, ends = [], []
    for ids in groupings:
        _, first, inverse = np.unique(np.asarray(ids), return_index=True, return_inverse=True)
        starts.append(np.arange(n))
        ends.append(first[inverse.reshape(-1)])  # each sample joined to its group's first member
    return components(n, starts, ends)
