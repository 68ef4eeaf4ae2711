"""Groups joined as connected components, in one place for the gate's clusters and the split's groups."""

from __future__ import annotations

import numpy as np

from trueval.core.graph import components, merged_groups


def test_components_are_numbered_by_first_member() -> None:
    label = components(6, [np.array([4, 1])], [np.array([5, 3])])
    assert label.tolist() == [0, 1, 2, 1, 3, 3]
    assert components(3, [], []).tolist() == [0, 1, 2]


def test_merged_groups_join_samples_sharing_an_id_in_either_grouping() -> None:
    clusters = np.array([0, 0, 1, 2, 3, 4, 5])  # copies: samples 0 and 1
    patients = np.array(["p1", "p2", "p2", "p3", "p4", "p3", "p5"])  # data.group_regex groups
    # 0-1 (a copy), 1-2 (one patient), 3-5 (one patient): three joined groups and two alone
    assert merged_groups(clusters, patients).tolist() == [0, 0, 0, 1, 2, 1, 3]


def test_merged_groups_equal_the_components_of_the_sample_and_group_graph() -> None:
    """The form the data module used before: samples and the ids of both groupings as nodes of one
    graph, its connected components the merged groups (scipy numbers them by first sample too)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 300, 1000), rng.integers(0, 400, 1000)
    n = len(a)
    _, ia = np.unique(a, return_inverse=True)
    _, ib = np.unique(b, return_inverse=True)
    ka = int(ia.max()) + 1
    size = n + ka + int(ib.max()) + 1
    graph = coo_matrix((np.ones(2 * n), (np.r_[np.arange(n), np.arange(n)], np.r_[n + ia, n + ka + ib])),
                       shape=(size, size))
    _, comp = connected_components(graph, directed=False)
    assert np.array_equal(merged_groups(a, b), comp[:n])
