"""Seeded, stratified, group-aware splitting.

Groups (duplicate clusters from the integrity gate, and user groups from ``data.group_regex``) are
never cut: every member of a group lands in the same split, so copies of one picture cannot end up
on both sides of an evaluation. Within that constraint each split gets its share of every class as
closely as possible. The same seed always gives the same split.
"""

from __future__ import annotations

import re
from typing import Sequence

import numpy as np

from trueval.core.errors import UserError


def group_stratified_split(targets: Sequence[int] | np.ndarray, groups: Sequence[int] | np.ndarray | None,
                           fractions: Sequence[float], seed: int, pin_lone_classes: bool = True) -> list[np.ndarray]:
    """Partition sample indices into len(fractions) parts, groups whole, stratified by class.

    Without real groups (all singletons) this is scikit-learn's stratified shuffle split, applied
    part by part. With groups, groups are dealt out largest first (ties in seeded random order), each
    to the part whose class quotas it fills best; parts with a positive fraction are never left empty
    while there are groups to give. ``pin_lone_classes``: a class held by one group stays in the first
    part (False for a subset whose classes have samples elsewhere in the first part).
    """
    y = np.asarray(targets)
    n = len(y)
    fr = np.asarray(fractions, dtype=np.float64)
    if fr.ndim != 1 or len(fr) == 0 or (fr < 0).any() or fr.sum() <= 0:
        raise UserError(f"split fractions must be non-negative and not all zero, got {list(fractions)}",
                        key="data.split")
    fr = fr / fr.sum()
    g = np.arange(n) if groups is None else np.asarray(groups)
    if len(g) != n:
        raise ValueError(f"{len(g)} group ids for {n} samples")
    if n == 0:
        return [np.zeros(0, np.int64) for _ in fr]
    # a class held by one group (one image, or one cluster of copies) cannot be in two parts: it
    # stays in the first (train), where a model can learn it, instead of landing in validation alone
    pinned = _single_group_classes(y, g) if fr[0] > 0 and pin_lone_classes else np.zeros(n, bool)
    rest = np.flatnonzero(~pinned)
    if len(rest) == 0:
        return [np.arange(n)] + [np.zeros(0, np.int64) for _ in fr[1:]]
    if len(np.unique(g[rest])) == len(rest):
        parts = _stratified_singletons(y[rest], fr, seed)
    else:
        parts = _greedy_groups(y[rest], g[rest], fr, seed)
    parts = [rest[p] for p in parts]
    parts[0] = np.sort(np.concatenate([parts[0], np.flatnonzero(pinned)]))
    return parts


def _single_group_classes(y: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Mask of the samples whose class lies in one group only."""
    _, yi = np.unique(y, return_inverse=True)
    pairs = np.unique(np.stack([yi, np.unique(g, return_inverse=True)[1]], 1), axis=0)
    groups_per_class = np.bincount(pairs[:, 0], minlength=yi.max() + 1)
    return groups_per_class[yi] == 1


def _stratified_singletons(y: np.ndarray, fr: np.ndarray, seed: int) -> list[np.ndarray]:
    """Stratified split with sklearn's train_test_split, peeling one part off at a time."""
    from sklearn.model_selection import train_test_split

    rest = np.arange(len(y))
    parts: list[np.ndarray] = []
    remaining = 1.0
    rng = np.random.RandomState(seed)
    for i, f in enumerate(fr[:-1]):
        if f <= 0 or len(rest) == 0:
            parts.append(np.zeros(0, np.int64))
            continue
        share = min(1.0, f / remaining)
        remaining -= f
        if share >= 1.0 or len(rest) < 2:
            parts.append(np.sort(rest))
            rest = np.zeros(0, np.int64)
            continue
        k = min(len(rest) - 1, max(1, int(round(share * len(rest)))))
        labels = y[rest]
        counts = np.bincount(labels - labels.min()) if len(labels) else np.zeros(0)
        strat = labels if (counts[counts > 0].min() >= 2 and k >= len(np.unique(labels))
                           and len(rest) - k >= len(np.unique(labels))) else None
        take, rest = train_test_split(rest, train_size=k, stratify=strat, random_state=rng.randint(2**31 - 1))
        parts.append(np.sort(take))
    parts.append(np.sort(rest))
    return parts


def _greedy_groups(y: np.ndarray, g: np.ndarray, fr: np.ndarray, seed: int) -> list[np.ndarray]:
    # written here: scikit-learn's StratifiedGroupKFold makes k equal folds, not arbitrary ratios
    rng = np.random.default_rng(seed)
    classes, y_idx = np.unique(y, return_inverse=True)
    group_ids, g_idx = np.unique(g, return_inverse=True)
    n_groups, n_parts = len(group_ids), len(fr)
    comp = np.zeros((n_groups, len(classes)))
    np.add.at(comp, (g_idx, y_idx), 1)
    sizes = comp.sum(1)
    quota = fr[:, None] * comp.sum(0)[None, :]  # parts x classes
    have = np.zeros_like(quota)
    active = fr > 0
    assign = np.empty(n_groups, np.int64)
    need_total = quota.sum(1)  # per part: room left over all classes
    parts = [int(p) for p in np.flatnonzero(active)]
    single_class = comp.argmax(1)
    for gi in np.lexsort((rng.random(n_groups), -sizes)):  # largest first, seeded ties
        if sizes[gi] == 1:
            # the same rule for a single sample, in scalars: numpy per call was 95% of the time
            # for CIFAR-10's 45,000 mostly single-image groups
            c = single_class[gi]
            best, part = -np.inf, parts[0]
            for p in parts:
                room = max(quota[p, c] - have[p, c], 0.0)
                score = min(room, 1.0) - max(1.0 - room, 0.0) + 1e-6 * need_total[p]
                if score > best:
                    best, part = score, p
            have[part, c] += 1
            need_total[part] -= 1
            assign[gi] = part
            continue
        need = quota - have
        fill = np.minimum(np.maximum(need, 0), comp[gi]).sum(1)
        over = np.maximum(comp[gi] - np.maximum(need, 0), 0).sum(1)
        # fill quotas; among parts it overfills, prefer the one with the most room left
        score = fill - over + 1e-6 * need.sum(1)
        part = int(np.argmax(np.where(active, score, -np.inf)))
        assign[gi] = part
        have[part] += comp[gi]
        need_total[part] -= sizes[gi]
    # a part with a positive fraction must not stay empty: give it the smallest group of the part
    # that is furthest over its quota (when that part has a group to spare)
    for part in np.flatnonzero(active):
        if (assign == part).any():
            continue
        surplus = have.sum(1) - quota.sum(1)
        for donor in np.argsort(-surplus):
            mine = np.flatnonzero(assign == donor)
            if donor != part and len(mine) > 1:
                gi = mine[np.argmin(sizes[mine])]
                assign[gi] = part
                have[donor] -= comp[gi]
                have[part] += comp[gi]
                break
    sample_part = assign[g_idx]
    return [np.flatnonzero(sample_part == p) for p in range(n_parts)]


def carve_from_candidates(targets: Sequence[int] | np.ndarray, groups: Sequence[int] | np.ndarray,
                          candidates: np.ndarray, size: int, seed: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Train and validation indices, validation only from ``candidates`` (the samples the gate searched
    against the rest of the split as hard as across splits), about ``size`` of them when there are
    enough (a stratified split rounds per class); and how many candidates were free.

    A group (duplicate cluster, user group) with any sample outside the candidates stays in train
    whole: only its candidates' pairs were searched that hard. The free candidates are then split,
    groups whole and stratified by class, so validation gets ``size`` of them; when fewer are free,
    all of them (the caller says so).
    """
    y, g = np.asarray(targets), np.asarray(groups)
    hard = np.asarray(candidates, bool)
    _, gi = np.unique(g, return_inverse=True)
    touches_rest = np.zeros(gi.max() + 1 if len(gi) else 0, bool)
    touches_rest[gi[~hard]] = True
    # and a class held by one group stays in train, where a model can learn it
    lone = _single_group_classes(y, g) if len(y) else np.zeros(0, bool)
    free = np.flatnonzero(hard & ~touches_rest[gi] & ~lone)
    if len(free) <= size:
        va = free
    else:
        share = size / len(free)
        _, picked = group_stratified_split(y[free], g[free], [1.0 - share, share], seed, pin_lone_classes=False)
        va = free[picked]
    return np.setdiff1d(np.arange(len(y)), va), np.sort(va), len(free)


def stratified_subset(targets: Sequence[int] | np.ndarray, fraction: float, seed: int,
                      groups: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
    """Sorted indices of a seeded subset holding ``fraction`` of every class (at least one sample of
    each class present), whole groups only when ``groups`` is given."""
    y = np.asarray(targets)
    if not 0 < fraction <= 1:
        raise UserError(f"fraction must be in (0, 1], got {fraction}", key="data.fraction")
    if fraction >= 1 or len(y) == 0:
        return np.arange(len(y))
    if groups is not None and len(np.unique(groups)) < len(y):
        keep, _ = group_stratified_split(y, groups, [fraction, 1 - fraction], seed)
        return np.sort(keep)
    rng = np.random.default_rng(seed)
    chosen = []
    for c in np.unique(y):
        members = np.flatnonzero(y == c)
        k = max(1, int(round(fraction * len(members))))
        chosen.append(rng.choice(members, size=k, replace=False))
    return np.sort(np.concatenate(chosen))


def groups_from_regex(paths: Sequence[str], regex: str) -> np.ndarray:
    """Group id per path from ``regex`` searched in the file name: its first capture group (or the whole
    match) names the group; files it does not match are groups of their own."""
    try:
        pattern = re.compile(regex)
    except (re.error, TypeError) as exc:
        raise UserError(f"not a valid regular expression ({exc}): {regex!r}", key="data.group_regex") from exc
    keys: dict[str, int] = {}
    out = np.empty(len(paths), np.int64)
    for i, p in enumerate(paths):
        name = str(p).replace("\\", "/").rsplit("/", 1)[-1]
        m = pattern.search(name)
        key = ("g:" + (m.group(1) if m.groups() else m.group(0))) if m else f"f:{i}"
        out[i] = keys.setdefault(key, len(keys))
    return out


def group_kfold_split(targets: Sequence[int] | np.ndarray, groups: Sequence[int] | np.ndarray | None,
                      folds: int, fold: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, val) sample indices of fold ``fold`` of a seeded, stratified ``folds``-fold partition.

    Groups are never cut: scikit-learn's StratifiedGroupKFold when there are real groups (duplicate
    clusters, ``data.group_regex``), StratifiedKFold otherwise (same folds, much faster on 50k
    singletons). The same seed gives the same partition in every trial of a cross-validation, so the
    ``folds`` validation parts are disjoint and together cover every sample exactly once.
    """
    import warnings

    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    y = np.asarray(targets)
    g = np.arange(len(y)) if groups is None else np.asarray(groups)
    if not 0 <= fold < folds:
        raise UserError(f"fold must be one of 0..{folds - 1} for data.folds={folds}, got {fold}", key="data.fold")
    n_groups = len(np.unique(g))
    if n_groups < folds:
        raise UserError(f"{folds} folds need at least {folds} groups of samples to deal out, the training data has "
                        f"{n_groups} (duplicate clusters and data.group_regex groups stay whole)", key="data.folds")
    seed = int(seed) % (2**32)
    with warnings.catch_warnings():
        # "the least populated class has only N members": the folds are then as stratified as they can be
        warnings.filterwarnings("ignore", message=".*least populated class.*", category=UserWarning)
        if n_groups == len(y):
            splits = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed).split(np.zeros(len(y)), y)
        else:
            splits = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed).split(np.zeros(len(y)), y, g)
        try:
            train, val = list(splits)[fold]
        except ValueError as exc:  # e.g. more folds than samples of every class
            raise UserError(f"cannot make {folds} folds of the training data: {exc}", key="data.folds") from exc
    return np.sort(train), np.sort(val)
