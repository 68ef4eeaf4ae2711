"""Nearest-neighbour candidates: for every image, its few most similar images of a base set.

Exact (blocked matrix products) for small sets; beyond that an inverted-file index: k-means cells
over the base vectors, each query compared only with the cells of its ``_PROBES`` nearest
centroids. Written here rather than taken from a library because scikit-learn's trees are slow in
tens of dimensions (measured: 13 s for 20k queries in only 8 dimensions) and faiss is not a
dependency; the index is deterministic (evenly spaced initial centroids, fixed iteration count) so
cached results stay reproducible.
"""

from __future__ import annotations

import numpy as np
import torch

from trueval.integrity.slices import by_rows

_BLOCK = 2048
_BRUTE_LIMIT = 2e8  # query rows x base rows below which the exact search is used
_SLOT_BLOCK = 4096  # query slots compared with a cell at once (8 MB of similarities: reused memory)
_CELL = 512  # base vectors per cell (torch.topk is ~5x slower per element on rows narrower than ~500)


def neighbours(views: list[torch.Tensor] | torch.Tensor, base: torch.Tensor, k: int, floor: float,
               self_index: np.ndarray | None = None, probes: int = 6,
               scan: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ``k`` most similar base rows of every query, over its views (unit rows, one tensor per view,
    or one (views, n, D) tensor).

    ``probes``: cells searched per query row when the inverted file is used (recall against time);
    at least ``scan`` of all cells.

    ``self_index[i]``: the base row that is query ``i`` itself (excluded), or -1. Returns
    (n, k) arrays: base index (-1 where fewer than k reach ``floor``), similarity, and the view that
    matched best.
    """
    n, v = len(views[0]), len(views)
    if n == 0 or len(base) == 0:
        return (np.full((n, k), -1, np.int64), np.full((n, k), -2.0, np.float32), np.zeros((n, k), np.int64))
    # views stacked in one (v, n, D) tensor are searched as they are (``torch.cat`` would copy them)
    queries = views.flatten(0, 1) if isinstance(views, torch.Tensor) else torch.cat(views)
    device = queries.device
    exclude = (torch.full((n,), -1, dtype=torch.long, device=device) if self_index is None
               else torch.as_tensor(self_index, device=device).long())
    exclude = exclude.repeat(v)
    kk = min(k + (self_index is not None), len(base))  # one extra: the query itself may come back
    if len(queries) * len(base) <= _BRUTE_LIMIT or len(base) < 8 * _CELL:
        idx, sim = _exact(queries, base, exclude, kk)
    else:
        cells = max(8, len(base) // _CELL)
        idx, sim = _inverted_file(queries, base, exclude, kk, max(probes, int(np.ceil(scan * cells))))
    # per query: merge its views, one entry per base row, best k
    idx = idx.reshape(v, n, kk).permute(1, 0, 2).reshape(n, v * kk)
    sim = sim.reshape(v, n, kk).permute(1, 0, 2).reshape(n, v * kk)
    view = torch.arange(v, device=device).repeat_interleave(kk).expand(n, -1)
    sim, order = torch.sort(sim, dim=1, descending=True)
    idx = torch.gather(idx, 1, order)
    view = torch.gather(view, 1, order)
    if v > 1:
        earlier = torch.tril(torch.ones(v * kk, v * kk, dtype=torch.bool, device=device), diagonal=-1)
        # a slice of queries at a time: all at once, the (v * kk)^2 comparisons per query of CIFAR-10's
        # widest search were hundreds of MB of fresh temporaries
        dup, = by_rows(lambda rows: (((rows[:, :, None] == rows[:, None, :]) & earlier).any(2),), idx)
        sim = torch.where(dup, torch.full_like(sim, -2.0), sim)
        sim, order = torch.sort(sim, dim=1, descending=True)
        idx, view = torch.gather(idx, 1, order), torch.gather(view, 1, order)
    sim, idx, view = sim[:, :k], idx[:, :k], view[:, :k]
    idx = torch.where(sim >= floor, idx, torch.full_like(idx, -1))
    if k > idx.shape[1]:
        pad = k - idx.shape[1]
        idx = torch.cat([idx, torch.full((n, pad), -1, dtype=idx.dtype, device=device)], 1)
        sim = torch.cat([sim, torch.full((n, pad), -2.0, device=device)], 1)
        view = torch.cat([view, torch.zeros((n, pad), dtype=view.dtype, device=device)], 1)
    return idx.cpu().numpy(), sim.cpu().numpy(), view.cpu().numpy()


def _drop_self(idx: torch.Tensor, sim: torch.Tensor, exclude: torch.Tensor) -> torch.Tensor:
    return torch.where(idx == exclude[:, None], torch.full_like(sim, -2.0), sim)


def _exact(queries, base, exclude, kk):
    idx, sims = [], []
    for s in range(0, len(queries), _BLOCK):
        v, i = torch.topk(queries[s:s + _BLOCK] @ base.T, kk, dim=1)
        idx.append(i)
        sims.append(_drop_self(i, v, exclude[s:s + _BLOCK]))
    return torch.cat(idx), torch.cat(sims)


def kmeans(x: torch.Tensor, cells: int, iters: int = 8, sample: int = 40000) -> torch.Tensor:
    """Spherical k-means centroids, deterministic: evenly spaced initial rows, fixed iterations."""
    step = max(1, len(x) // sample)
    fit = x[::step]
    centroids = fit[torch.linspace(0, len(fit) - 1, cells, device=x.device).long()].clone()
    for _ in range(iters):
        assign = (fit @ centroids.T).argmax(1)
        sums = torch.zeros_like(centroids).index_add_(0, assign, fit)
        norms = sums.norm(dim=1, keepdim=True)
        filled = norms[:, 0] > 0
        centroids[filled] = sums[filled] / norms[filled]
    return centroids


def _inverted_file(queries, base, exclude, kk, probes):
    cells = max(8, len(base) // _CELL)
    centroids = kmeans(base, cells)
    base_cell = torch.cat([(base[s:s + 8192] @ centroids.T).argmax(1) for s in range(0, len(base), 8192)])
    probes = min(probes, cells)
    q_cells = torch.cat([torch.topk(queries[s:s + 8192] @ centroids.T, probes, dim=1).indices
                         for s in range(0, len(queries), 8192)])
    nq = len(queries)
    # results of every (query, probe) slot, reduced to the best kk per query at the end
    # base rows as int32 (a base set is far under 2**31 rows): 100 MB less on CIFAR-10's widest search
    slot_idx = torch.full((nq * probes, kk), -1, dtype=torch.int32, device=base.device)
    slot_sim = torch.full((nq * probes, kk), -2.0, device=base.device)
    base_order = torch.argsort(base_cell, stable=True)
    bounds = torch.arange(cells + 1, device=base.device)
    base_bounds = torch.searchsorted(base_cell[base_order], bounds).tolist()
    flat_cells = q_cells.reshape(-1)
    q_order = torch.argsort(flat_cells, stable=True)
    q_bounds = torch.searchsorted(flat_cells[q_order], bounds).tolist()
    for c in range(cells):
        members = base_order[base_bounds[c]:base_bounds[c + 1]]
        slots = q_order[q_bounds[c]:q_bounds[c + 1]]
        if len(members) == 0 or len(slots) == 0:
            continue
        cell_base = base[members].T
        take = min(kk, len(members))
        # in blocks of slots: a cell holds up to ~40,000 slots, and their whole similarity matrix
        # (80 MB) was a fresh allocation every cell, its pages faulted in anew: a fifth of the
        # search's time went to the kernel. Each row's products and top-k are the same either way
        for s in range(0, len(slots), _SLOT_BLOCK):
            block = slots[s:s + _SLOT_BLOCK]
            rows = block // probes
            v, i = torch.topk(queries[rows] @ cell_base, take, dim=1)
            found = members[i]
            slot_idx[block, :take] = found.int()
            slot_sim[block, :take] = _drop_self(found, v, exclude[rows])
    v, i = torch.topk(slot_sim.view(nq, probes * kk), kk, dim=1)
    return torch.gather(slot_idx.view(nq, probes * kk), 1, i).long(), v
