"""Connected components of the pair graph: clusters of copies (the gate's report, the carve, the rival rule)."""
from __future__ import annotations

import numpy as np


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
