"""Near-duplicate pairs of a set of fingerprints: retrieve candidates, then verify them.

Two descriptor families propose, for every image and every split, its few most similar images of
that split (the 8 x 8 grid and its mirror for photometric, compression, resize, grayscale and flip
copies; the zoomed bispectrum for shifted and cropped copies). Searching each split separately
keeps a cluster of copies inside one split from crowding the original in another split out of the
candidate list. Each proposal carries how the two images should line up (mirror, zoom); the
verifier aligns them that way, finds the translation and keeps the pair when the aligned
correlation reaches ``thresholds.near`` (pairs that come close are refined to a rotation or a
one-axis stretch first, ``thresholds.refine``: see ``verify``). A letterboxed image also asks as its
content alone (``Prints.views``), and an image with black fill on one side as itself moved back
against the fill (``unshifted_views``); a pair found through a view counts for the image.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from functools import partial
from typing import Callable, Sequence

import numpy as np
import torch

from trueval.integrity.ann import neighbours
from trueval.integrity.descriptors import (Whitener, bispectrum_descriptors, box_masks, fill_outside,
                                           pixel_descriptors, zoom, zoom_levels)
from trueval.integrity.fingerprints import BLACK, Prints, Views, as_bytes
from trueval.integrity.forked import forked_map, search_workers
from trueval.integrity.settings import IntegritySettings
from trueval.integrity.slices import SLICE_ROWS, by_rows
from trueval.integrity.verify import Verifier

log = logging.getLogger("trueval")

# retrieval floors: proposals below these descriptor similarities are never copies
_PIXEL_FLOOR = 0.5
_BISPECTRUM_FLOOR = 0.2
# images with a shorter side below this hold too few pixels to tell a copy from a look-alike
# (sklearn's 8x8 digits): they are checked for identical pixels only
MIN_SIDE = 16
# look-alike adaptation: when the median image's best same-split match reaches _LOOKALIKE_MEDIAN,
# threshold = max(thresholds.near, 98th percentile of those matches + margin), at most _MAX_ADAPTIVE
_LOOKALIKE_MEDIAN = 0.7
_LOOKALIKE_MARGIN = 0.008
_MAX_ADAPTIVE = 0.9995
_LEVEL_SAMPLE = 800
_ALL_ZOOMS_TOP = 2  # candidates per query in another split verified at every zoom
_CROP_K = 2  # candidates per sample (best over its anchors) for deep crops
_CROP_ANCHORS = ((0, 0), (-1, -1), (-1, 1), (1, -1), (1, 1), (-1, 0), (1, 0), (0, -1), (0, 1))
_DEEP_FLIP_MARGIN = 0.1  # grid similarity gap under which a deep-crop candidate is verified both ways round
# a threshold at or above which the deep-crop search is skipped: 100 crops keeping 70 % of MNIST digits
# scored 0.84-0.9985 (median 0.982) against their originals, so at MNIST's raised threshold (0.9995)
# the search could find none and cost the 2-core machine 16 s
_DEEP_CEILING = 0.999
_CROP_FLOOR = 0.45  # a deep crop and its original zoomed about the right anchor: 0.6-0.99 on the suites
_CROSS_SCAN = 0.15  # share of the index cells searched for candidates in another split
# hypotheses from which verification is shared among worker processes (a fork costs ~0.1 s)
_FORK_MIN_HYPOTHESES = 20000

Pairs = tuple[np.ndarray, np.ndarray, np.ndarray]
Hypotheses = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # a, b, flip, scale, aligned


@dataclass
class NearResult:
    """Verified near-duplicate pairs (a < b, indices into the fingerprints), their similarity, and the
    threshold that was applied (``thresholds.near``, raised on look-alike datasets)."""

    a: np.ndarray
    b: np.ndarray
    score: np.ndarray
    threshold: float
    lookalike_level: float = -1.0


@dataclass
class SearchRows:
    """What the search runs on: every sample's fingerprints, then its extra views (each one more image
    of its sample's split), with the split of every row and the sample each row stands for. Views: the
    content of letterboxed images (``Prints.views``), and shifted-looking images moved back
    (``unshifted_views``). Made from the splits' own fingerprints in one copy (``of``), or in none
    when they come joined with room for the views (``Prints.joined``'s ``spare``): the thumbnails were
    copied twice before (the splits joined, then the views appended), and on CIFAR-10 each copy is
    310 MB more held through the search, 3-5 s of the 2-core machine's time in fresh huge pages."""

    prints: Prints  # samples first (``samples`` rows), then views
    groups: np.ndarray
    origin: np.ndarray
    samples: int

    @staticmethod
    def of(parts: Prints | Sequence[Prints], groups: np.ndarray | None = None) -> "SearchRows":
        """From one set of fingerprints, or the parts (splits) it is the concatenation of; ``groups``:
        split id per sample of them all (None: one group)."""
        parts = [parts] if isinstance(parts, Prints) else list(parts)
        n = sum(len(p) for p in parts)
        groups = np.zeros(n, np.int64) if groups is None else np.asarray(groups)
        for p in parts:
            assert p.contrast is not None and p.thumbs is not None and p.boxes is not None
        starts = np.cumsum([0] + [len(p) for p in parts[:-1]]).tolist()
        # per part, rows numbered from its start: the same views, in the same order, as of their concatenation
        shifts = [unshifted_views(p.thumbs, p.boxes, p.value_thumbs) for p in parts]
        # the min-channel thumbnails moved the same way as the views
        lows = [None if p.low_thumbs is None else moved_like(v, p.boxes, p.low_thumbs) for p, (v, _) in zip(parts, shifts)]
        moved = Views.concat([v.shifted(at) for (v, _), at in zip(shifts, starts)])
        letterbox = Views.concat([p.views.shifted(at) for p, at in zip(parts, starts) if p.views is not None]
                                 or [Views.empty()])
        if len(letterbox) + len(moved) == 0 and len(parts) == 1:
            return SearchRows(parts[0], groups, np.arange(n), n)
        v = Views.concat([letterbox, moved])

        def joined(name: str, *extra: np.ndarray) -> np.ndarray | None:
            arrays = [getattr(p, name) for p in parts]
            if any(a is None for a in arrays):
                return None
            # one part made with room for its views (``Prints.joined``'s ``spare``): grown in place, no copy
            return parts[0].grown(name, extra) if len(parts) == 1 else np.concatenate(arrays + list(extra))

        hashes, contrast, side = joined("hashes"), joined("contrast"), joined("side")
        value = None
        if all(p.value_thumbs is not None for p in parts):
            # a letterbox view has no value thumbnail of its own: its grayscale one stands in (a colour
            # rescoring of a letterboxed copy then compares its grayscale with the other image's value)
            value = joined("value_thumbs", as_bytes(letterbox.thumbs), *[m for _, m in shifts if m is not None])
        low = None
        if all(p.low_thumbs is not None for p in parts):
            low = joined("low_thumbs", as_bytes(letterbox.thumbs), *[m for m in lows if m is not None])
        aspect = joined("aspect")
        if aspect is not None:
            # a letterbox view is its content stretched back to a square: the content's own proportions
            b = joined("boxes")[letterbox.rows].astype(np.float32)
            inner = aspect[letterbox.rows] * (b[:, 3] - b[:, 2]) / np.maximum(b[:, 1] - b[:, 0], 1.0)
            aspect = np.r_[aspect, inner, aspect[moved.rows]].astype(np.float32)
        extended = Prints(np.r_[hashes, hashes[v.rows]], joined("thumbs", v.thumbs), joined("boxes", v.boxes),
                          np.r_[contrast, contrast[v.rows]], None if side is None else np.r_[side, side[v.rows]],
                          value_thumbs=value, aspect=aspect, low_thumbs=low)
        parts[0].spend_spare()
        return SearchRows(extended, np.r_[groups, groups[v.rows]], np.r_[np.arange(n), v.rows], n)

    def sample_prints(self) -> Prints:
        """The samples' own rows (views of the arrays, not copies)."""
        return self.prints.rows(0, self.samples)


def near_pairs(prints: Prints | SearchRows, groups: np.ndarray | None, settings: IntegritySettings,
               thorough: bool | np.ndarray = False, cross_only: bool = False) -> NearResult:
    """Verified near-duplicate pairs of ``prints`` (or of the rows ``SearchRows.of`` made; ``groups``
    is then theirs and must be None).

    ``groups``: split id per sample; candidates are searched in every group separately (None: one group).
    ``thorough``: search within a group as hard as across groups (for clusters that must not be cut
    by a split made afterwards: the gate then searches across those splits that hard). True: every
    sample; a bool per sample: the samples a split made afterwards may cut off (the validation
    candidates). They query their own group as a smaller group queries a larger one, the rest of
    their group queries them as a larger group queries a smaller one, and their pairs are refined:
    every pair that could cross the cut is searched for as hard as a pair between groups, at a third
    of the cost of searching every sample so (CIFAR-10: 42 s against 62 s on 2 cores).
    ``cross_only``: only pairs between groups are wanted (the smallest group is still searched
    within, to measure the look-alike level).
    """
    thr = settings.thresholds
    if isinstance(prints, SearchRows):
        assert groups is None, "the search rows carry their groups"
        rows = prints
    else:
        rows = SearchRows.of(prints, groups)
    prints, groups, origin = rows.prints, rows.groups, rows.origin
    n = len(prints)
    usable = prints.contrast >= thr.min_contrast
    if prints.side is not None:
        usable &= prints.side >= MIN_SIDE
    usable &= usable[origin]  # a view only of a sample that is searched
    active = np.flatnonzero(usable)
    if len(active) < 2:
        return NearResult(*_empty(), threshold=thr.near)
    device = settings.torch_device()
    # a view's row in ``active``, mapped to its sample's row there (the sample itself: its own row)
    position = np.full(n, -1, np.int64)
    position[active] = np.arange(len(active))
    owner = position[origin[active]]
    hard = (np.asarray(thorough, bool)[origin[active]] if isinstance(thorough, np.ndarray)
            else np.full(len(active), bool(thorough)))
    try:
        a, b, score, near, level = _search(prints, active, groups[active], settings, device, hard, cross_only,
                                           owner)
    except torch.cuda.OutOfMemoryError:
        if device.type != "cuda":
            raise
        log.warning("integrity gate: the GPU ran out of memory searching %d images for near-duplicates; "
                    "searching on the CPU instead (slower; data.integrity.device=cpu skips the attempt)", len(active))
        a, b, score, near, level = _search(prints, active, groups[active], settings, torch.device("cpu"),
                                           hard, cross_only, owner)
    a, b = origin[active[a]], origin[active[b]]
    a, b = np.minimum(a, b), np.maximum(a, b)
    a, b, score = _best_per_pair(a[a != b], b[a != b], score[a != b], near)
    # a correlation summed in float32 can come out a hair above 1 (on the H200: a pair of identical
    # content scored 1 + 1e-7, and the report a negative distance)
    return NearResult(a, b, np.minimum(score, 1.0), near, level)


def unshifted_views(thumbs: np.ndarray | None, boxes: np.ndarray | None, value: np.ndarray | None = None,
                    darkest: float = BLACK) -> tuple[Views, np.ndarray | None]:
    """Thumbnails of shifted-looking images moved back, and their value thumbnails moved the same way
    (when ``value`` is given): content with black fill on one side of an axis, and none on the other,
    is translated against that fill, to where a shift would have taken it from.

    A copy shifted 4 px along both axes keeps 28 x 28 of its original's pixels, 4 px off centre each
    way; the windowed bispectrum the search retrieves with is not translation-invariant at that
    distance, and most such copies it missed were never proposed. Moved back, the view lines up with
    its original except for the strips the shift dropped. Black fill only (RandomCrop's padding and
    most shifts'): a plain sky trimmed from a photo is not a shift's fill."""
    none = (Views.empty(), None if value is None else np.zeros((0, *np.shape(value)[1:]), np.uint8))
    if thumbs is None or boxes is None or len(thumbs) == 0:
        return none
    size = thumbs.shape[-1]
    b = boxes.astype(np.int64)

    def against_fill(before: np.ndarray, after: np.ndarray, least: int) -> np.ndarray:
        return np.where((before >= least) & (after == 0), -before,
                        np.where((after >= least) & (before == 0), after, 0))

    dy, dx = against_fill(b[:, 0], size - b[:, 1], 2), against_fill(b[:, 2], size - b[:, 3], 2)
    # a fill of one pixel counts along an axis when the other axis has a shift's fill: a diagonal shift
    # then cropped keeps its fill along one axis while the crop cut the other's to a pixel, and moved
    # back (and zoomed out about that edge) along that one too it is its original again (4-px diagonal
    # shifts cropped to 80-90%: 8 of the tuning suites' 9 missed shift-then-crop copies)
    dy, dx = (np.where((dy == 0) & (dx != 0), against_fill(b[:, 0], size - b[:, 1], 1), dy),
              np.where((dx == 0) & (dy != 0), against_fill(b[:, 2], size - b[:, 3], 1), dx))
    rows = np.flatnonzero((dy != 0) | (dx != 0))
    inside = box_masks(torch.from_numpy(b[rows]), size).numpy() > 0
    fill = ~inside
    dark = (thumbs[rows] * fill).sum((1, 2)) / fill.sum((1, 2)) <= darkest
    rows = rows[dark]
    if len(rows) == 0:
        return none
    moves = np.stack([dy[rows], dx[rows]], 1)
    moved_boxes = (b[rows] + np.repeat(moves, 2, 1)).astype(np.int16)
    views = Views(rows, _moved(thumbs, rows, moved_boxes, boxes).astype(np.float32, copy=False), moved_boxes)
    return views, None if value is None else moved_like(views, boxes, value)


def moved_like(views: Views, boxes: np.ndarray, plane: np.ndarray) -> np.ndarray:
    """Another plane of the same images (value or min-channel thumbnails; ``boxes``: the images') moved
    back as ``unshifted_views`` moved them into ``views``."""
    return _moved(plane, views.rows, views.boxes, boxes)


def _moved(plane: np.ndarray, rows: np.ndarray, moved_boxes: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """``plane``'s ``rows`` moved so that their content boxes become ``moved_boxes``: the fill zeroed, then
    rolled; what wraps round is fill, so the content lands on zeros."""
    if len(rows) == 0:
        return np.zeros((0, *np.shape(plane)[1:]), np.asarray(plane).dtype)
    b = np.asarray(boxes)[rows].astype(np.int64)
    moves = moved_boxes[:, [0, 2]].astype(np.int64) - b[:, [0, 2]]
    inside = box_masks(torch.from_numpy(b), plane.shape[-1]).numpy() > 0
    return np.stack([np.roll(np.where(m, x, 0), tuple(d), (0, 1)) for x, m, d in zip(plane[rows], inside, moves)])


def _search(prints: Prints, active: np.ndarray, g: np.ndarray, settings: IntegritySettings, device: torch.device,
            hard: np.ndarray, cross_only: bool, owner: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, float]:
    """Retrieval and verification on ``device``: pairs as rows of ``active``, scores, threshold, look-alike level.
    ``owner[i]``: the row of the sample that row i is a view of (i itself for a sample); ``hard[i]``:
    row i is searched within its group as hard as across groups (``near_pairs``' ``thorough``)."""
    thr = settings.thresholds

    def rows(x: np.ndarray) -> np.ndarray:
        # every row searched (the usual case): the array itself, read only, not a copy (a copy of
        # CIFAR-10's thumbnails is 250 MB of fresh pages, 1.2 s on the 2-core machine)
        return x if len(active) == len(x) else x[active]

    # on the CPU the search uses torch's threads (OMP_NUM_THREADS) and the verification as many worker
    # processes (``_verified``); on a machine other jobs keep busy, OMP_NUM_THREADS=1 avoids threads
    # waiting for each other (the test suite's workers do that) and keeps the search in this process
    with _gpu_search(device):
        thumbs = torch.from_numpy(np.ascontiguousarray(rows(prints.thumbs), dtype=np.float32)).to(device)
        boxes = torch.from_numpy(rows(prints.boxes).astype(np.int64)).to(device)
        levels = zoom_levels(thr.max_scale)
        start = time.perf_counter()
        (a, b, flip, scale, aligned), deep = _proposals(thumbs, boxes, g, thr.candidates, levels, hard, cross_only,
                                                        owner, thr.crop_zoom)
        proposed = time.perf_counter()
        verifier = Verifier(rows(prints.thumbs), rows(prints.boxes), thr.max_shift, thr.min_overlap, thr.near,
                            layout_min=thr.layout, refine=thr.refine, device=device, deep=thr.crop_zoom > 0,
                            sides=None if prints.side is None else rows(prints.side),
                            aspects=None if prints.aspect is None else rows(prints.aspect),
                            colour=None if prints.value_thumbs is None else rows(prints.value_thumbs),
                            low=None if prints.low_thumbs is None else rows(prints.low_thumbs))
        near, level = thr.near, -1.0
        if thr.adaptive:
            level, high = _lookalike_level(verifier, a, b, flip, scale, aligned, g, owner == np.arange(len(g)))
            if level >= _LOOKALIKE_MEDIAN:
                near = max(thr.near, min(_MAX_ADAPTIVE, high + _LOOKALIKE_MARGIN))
        if deep is not None and near < _DEEP_CEILING:
            a, b, flip, scale, aligned = _normalised([(a, b, flip, scale, aligned), deep()])
        elif deep is not None:
            log.info("integrity gate: deep-crop search skipped: the threshold (%.4f) is above what crops "
                     "deeper than thresholds.max_scale score against their originals", near)
        del deep  # the proposals' images and descriptors it holds
        # the refinement only for pairs between splits (what the gate refuses; within a split most
        # candidate pairs are look-alikes, and refining them doubled the gate's time on CIFAR-10),
        # and for every pair that a cut made later could separate (``hard``)
        refined = None if hard.all() else (g[a] != g[b]) | hard[a] | hard[b]
        score = _verified(verifier, (a, b, flip, scale, aligned), near, refined, search_workers(device))
        a, b, score = _best_per_pair(a, b, score, near)
        # a copy in one split may be found next to only some members of a cluster of copies in
        # another: check it against the rest of that cluster too
        a2, b2, flip2, scale2, aligned2 = _closure(a, b, g, levels)
        if len(a2):
            score2 = verifier.score(a2, b2, flip2, scale2, aligned2, near)
            a, b, score = _best_per_pair(np.r_[a, a2], np.r_[b, b2], np.r_[score, score2], near)
        log.debug("near duplicates: %d images, %d hypotheses proposed in %.1f s, verified in %.1f s: %d pairs "
                  "(threshold %.3f, look-alike level %.3f)", len(active), len(flip), proposed - start,
                  time.perf_counter() - proposed, len(a), near, level)
    return a, b, score, near, level


def _verified(verifier: Verifier, hypotheses: Hypotheses, near: float, refinable: np.ndarray | None,
              workers: int) -> np.ndarray:
    """``verifier.score`` of the hypotheses, the pairs shared among ``workers`` processes (``forked``).

    Every hypothesis of a pair goes to the same part: the rescorings take each pair's best hypothesis.
    A pair's score does not depend on which others share its part (the verifier scores row by row).
    Measured on the 2-core machine, CIFAR-10's 1.39 million hypotheses: 27.7 s on two threads, 22.7 s
    in two processes of one thread (the same scores bit for bit), in two parts each to even out their
    costs."""
    a, b, flip, scale, aligned = hypotheses
    if workers < 2 or len(a) < _FORK_MIN_HYPOTHESES:
        return verifier.score(a, b, flip, scale, aligned, near, refinable)
    _, pair = np.unique(a.astype(np.int64) * (int(b.max()) + 1) + b, return_inverse=True)
    parts = [np.flatnonzero(pair % (2 * workers) == i) for i in range(2 * workers)]

    def scored(rows: np.ndarray) -> np.ndarray:
        return verifier.score(a[rows], b[rows], flip[rows], scale[rows], aligned[rows], near,
                              None if refinable is None else refinable[rows])

    out = np.empty(len(a), np.float32)
    for rows, score in zip(parts, forked_map(scored, parts, workers)):
        out[rows] = score
    return out


def _lookalike_level(verifier: Verifier, a, b, flip, scale, aligned, groups: np.ndarray,
                     indexed: np.ndarray) -> tuple[float, float]:
    """How alike different images of this dataset are: over a seeded sample of images, the median and
    the 98th percentile of each one's best similarity to another image of its own split.

    Photos differ in texture: on CIFAR-10 the median is 0.54 (most photos have no copy) and the
    threshold stays. Line drawings do not: on MNIST the median is 0.95 and different straight "1"s
    score 0.998 after alignment, so a planted copy cannot be told from a look-alike below that. When
    the median reaches _LOOKALIKE_MEDIAN the threshold is raised above the look-alikes (0.9995 on
    MNIST, where the official split then comes out clean) and the report says so. Only same-split
    pairs count, so a leaked split (all its images copies of another) cannot raise it. The sample
    is of samples (``indexed``), not of extra views.
    """
    n = len(groups)
    rng = np.random.default_rng(0)
    sample = np.zeros(n, bool)
    samples = np.flatnonzero(indexed)
    sample[rng.choice(samples, size=min(len(samples), _LEVEL_SAMPLE), replace=False)] = True
    rows = np.flatnonzero((groups[a] == groups[b]) & (sample[a] | sample[b]))
    if len(rows) == 0:
        return -1.0, -1.0
    scores = verifier.fine_scores(a, b, flip, scale, aligned, rows)[rows]
    best = np.full(n, -1.0)
    np.maximum.at(best, a[rows], scores)
    np.maximum.at(best, b[rows], scores)
    return float(np.median(best[sample])), float(np.quantile(best[sample], 0.98))


def _best_per_pair(a: np.ndarray, b: np.ndarray, score: np.ndarray, near: float) -> Pairs:
    keep = score >= near
    a, b, score = a[keep], b[keep], score[keep]
    order = np.lexsort((-score, b, a))
    a, b, score = a[order], b[order], score[order]
    first = np.r_[True, (a[1:] != a[:-1]) | (b[1:] != b[:-1])] if len(a) else np.zeros(0, bool)
    return a[first], b[first], score[first]


def _closure(a: np.ndarray, b: np.ndarray, groups: np.ndarray, levels: list[float]):
    """Hypotheses pairing each side of a verified cross-group pair with the other side's verified
    same-group duplicates (every orientation and zoom), when not already verified."""
    same = groups[a] == groups[b]
    neighbours_of: dict[int, list[int]] = {}
    for x, y in zip(a[same], b[same]):
        neighbours_of.setdefault(int(x), []).append(int(y))
        neighbours_of.setdefault(int(y), []).append(int(x))
    known = set(zip(a.tolist(), b.tolist()))
    wanted = set()
    for x, y in zip(a[~same].tolist(), b[~same].tolist()):
        for u, v in ((x, y), (y, x)):
            for w in neighbours_of.get(v, ()):
                pair = (min(u, w), max(u, w))
                if groups[u] != groups[w] and pair not in known:
                    wanted.add(pair)
    if not wanted:
        return (np.zeros(0, np.int64),) * 2 + (np.zeros(0, bool), np.zeros(0), np.zeros(0, bool))
    pairs = np.array(sorted(wanted), dtype=np.int64)
    zooms = sorted({z for z in levels} | {1.0 / z for z in levels})
    rows = [(p, f, z, True) for p in range(len(pairs)) for f in (False, True) for z in zooms]
    rows += [(p, f, 1.0, False) for p in range(len(pairs)) for f in (False, True)]
    idx = np.array([r[0] for r in rows])
    return (pairs[idx, 0], pairs[idx, 1], np.array([r[1] for r in rows]), np.array([r[2] for r in rows]),
            np.array([r[3] for r in rows]))


def _empty() -> Pairs:
    return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32)


def _proposals(thumbs: torch.Tensor, boxes: torch.Tensor, groups: np.ndarray, k: int, levels: list[float],
               thorough: bool | np.ndarray = False, cross_only: bool = False, owner: np.ndarray | None = None,
               crop_zoom: float = 0.0) -> tuple[Hypotheses, Callable[[], Hypotheses] | None]:
    """Candidate hypotheses (a < b, flip, scale, aligned): b mirrored/magnified this way should look
    like a; ``aligned`` rows need a translation search, the others (from the grid) are compared as is.
    With them, the deep-crop search still to be made (``_deep_proposals``; None when ``crop_zoom`` is 0).

    Every group is searched by the images of every group no larger than itself (and by its own):
    a cross pair is proposed from its smaller side, which halves the work on a 50k/10k split.
    Rows that are extra views of a sample (``owner[i] != i``) only query: in the index they would
    take candidate places from the other members of a cluster of copies (CIFAR-10's dozens of white
    car photos, many of them with white bars), and which members come back would then turn on
    float rounding. A view's own sample is excluded from its candidates, as a query's own row is.
    ``thorough``: True, or per row whether it searches its own group as hard as another (``near_pairs``).
    """
    n = len(thumbs)
    owner = np.arange(n) if owner is None else np.asarray(owner)
    hard = np.asarray(thorough, bool) if isinstance(thorough, np.ndarray) else np.full(n, bool(thorough))
    indexed = owner == np.arange(n)
    pixel, mirrored = pixel_descriptors(thumbs)
    # zoomed-in views find a crop of the query; zoomed-out views (border filled) find the image the
    # query is a crop of. Within a split zooming in suffices (both images are queries); across
    # splits only the smaller split queries the larger, so it needs both.
    # The whitening is fitted on a sample of the samples' descriptors at every zoom, computed first on
    # their own: views must not move the axes everybody is searched along (with them fitted in, a
    # float-rounding difference reordered clusters of copies). Every image's descriptors then go
    # through the axes chunk by chunk, never held raw (with them and their copies for the fit, the
    # search's peak memory on CIFAR-10 was 1.3 GB higher)
    fit = torch.as_tensor(np.flatnonzero(indexed), device=thumbs.device)

    def sampled(picks: torch.Tensor) -> dict[str, torch.Tensor]:
        at = fit[picks.to(fit.device)]
        return dict(thumbs=thumbs[at], boxes=boxes[at])

    project = Whitener(torch.cat([bispectrum_descriptors(**sampled(p), prepare=partial(zoom, scale=z))
                                  for z, p in zip(levels, Whitener.positions([len(fit)] * len(levels)))]))
    first, second = Whitener.positions([len(fit)] * 2)
    oriented = Whitener(torch.cat([bispectrum_descriptors(**sampled(first), oriented=True)[1],
                                   bispectrum_descriptors(**sampled(second), oriented=True)[2]]))
    spectra = {}
    spectra[1.0], plain, mirror = bispectrum_descriptors(thumbs, boxes=boxes, oriented=True,
                                                         project=(project, oriented, oriented))
    for z in levels[1:]:
        spectra[z] = bispectrum_descriptors(thumbs, boxes=boxes, prepare=partial(zoom, scale=z), project=[project])
    names, sizes = np.unique(groups[indexed], return_counts=True)
    # zoomed-out views only for the images that query a larger split (all but the largest split),
    # through the same axes (fitted on what the images are, not on their shrunken versions)
    last = names[np.lexsort((names, sizes))[-1]]  # the split no other split counts as larger
    # and for every view moved back against a shift's fill, whichever split it is in: the only way
    # a copy shifted and then cropped finds its original (``_zoom_anchors``)
    anchors = _zoom_anchors(boxes, owner, thumbs.shape[-1])
    moved_back = (anchors != 0).any(1)
    askers = np.union1d(np.union1d(np.flatnonzero(groups != last), np.flatnonzero(moved_back)), np.flatnonzero(hard))
    outward = [1.0 / z for z in levels[1:]]
    for z in levels[1:]:
        out = torch.zeros_like(spectra[1.0])
        for anchor in np.unique(anchors[askers], axis=0):
            rows = torch.as_tensor(askers[(anchors[askers] == anchor).all(1)], device=thumbs.device)
            out[rows] = bispectrum_descriptors(thumbs[rows], boxes=boxes[rows], project=[project], prepare=partial(
                zoom, scale=1.0 / z, anchor=tuple(int(a) for a in anchor)))
        spectra[1.0 / z] = out
    rows_a, rows_b, flips, scales, search = [], [], [], [], []

    def add(this, other, flip, scale, aligned):
        rows_a.append(this), rows_b.append(other), flips.append(flip), scales.append(scale), search.append(aligned)

    every_zoom = sorted(spectra)
    for g, size in zip(names, sizes):
        members = np.flatnonzero((groups == g) & indexed)
        # a leak between splits is what the gate refuses: smaller splits search g more thoroughly
        # (15 % of the index: the whitened descriptor space has little cell structure, and 4 of 97
        # cells found only 71 % of the 4-px-shifted copies that an exhaustive search finds 96 % of)
        smaller = np.flatnonzero(np.isin(groups, names[(sizes < size) | ((sizes == size) & (names < g))]))
        larger = np.flatnonzero(np.isin(groups, names[(sizes > size) | ((sizes == size) & (names > g))]))
        inward = [1.0] + list(levels[1:])
        # (queries, their views, share of cells scanned, candidates): own split; smaller splits with
        # every view; larger splits too, with few candidates: a small split has few look-alikes, so a
        # copy ranks high there (this direction finds 4-px shifts the other misses at 50k images)
        own_rows = np.flatnonzero(groups == g)  # its samples and their views
        # rows a later cut may separate from the rest of their group (``hard``) query it as a smaller
        # split queries a larger one; the rest of the group queries them as a larger split queries a
        # smaller one (an index of them alone: without it, 10 of 388 train-val pairs that searching
        # every sample hard finds were missed on CIFAR-10; with it, 3, and 111 more were found)
        own_hard, own_rest = own_rows[hard[own_rows]], own_rows[~hard[own_rows]]
        own_search = (own_rest, inward, 0.0, max(2, k - 2), members)
        if cross_only and g != names[np.lexsort((names, sizes))[0]]:
            own_search = (own_rows[:0], inward, 0.0, k, members)
        hard_members = members[hard[members]]
        towards_hard = own_rest if len(hard_members) else own_rest[:0]
        larger_views = larger[moved_back[larger]] if outward else larger[:0]
        for queries, view_zooms, scan, kq, index in (own_search, (own_hard, every_zoom, _CROSS_SCAN, k, members),
                                                     (smaller, every_zoom, _CROSS_SCAN, k, members),
                                                     (larger, inward, _CROSS_SCAN, max(2, k // 2), members),
                                                     (larger_views, outward, _CROSS_SCAN, max(2, k // 2), members),
                                                     (towards_hard, inward, _CROSS_SCAN, max(2, k // 2),
                                                      hard_members)):
            if len(queries) == 0:
                continue
            tq = torch.as_tensor(queries, device=thumbs.device)
            self_index = np.full(len(queries), -1, np.int64)
            across = index is not members or queries is larger or queries is larger_views
            if index is members:  # (a query of the rest is never a member of the hard rows' index)
                own = groups[queries] == g
                self_index[own] = np.searchsorted(members, owner[queries[own]])
            if not across:
                # photometric / compression / resize / grayscale / flip copies: 8x8 grid, both
                # orientations; such a copy is its original's nearest grid neighbour, so few
                # candidates and probes suffice (and one direction between two splits)
                idx, _, view = neighbours([pixel[tq], mirrored[tq]], pixel[index], max(2, k // 2), _PIXEL_FLOOR,
                                          self_index, probes=2, scan=scan / 4)
                q, j = np.nonzero(idx >= 0)
                add(queries[q], index[idx[q, j]], view[q, j] == 1, np.ones(len(q)), np.zeros(len(q), bool))
            # shifted / cropped copies: the bispectrum at each zoom
            idx, _, view = neighbours([spectra[z][tq] for z in view_zooms], spectra[1.0][index], kq,
                                      _BISPECTRUM_FLOOR, self_index, probes=4, scan=scan)
            q, j = np.nonzero(idx >= 0)
            this, other = queries[q], index[idx[q, j]]
            z = np.asarray(view_zooms)[view[q, j]]
            # the bispectrum is mirror-symmetric: the orientation is decided per pair by the oriented
            # bispectrum and by the grid (both orientations when they disagree)
            ta, tb = torch.as_tensor(this, device=thumbs.device), torch.as_tensor(other, device=thumbs.device)
            # a slice of pairs at a time (gathered whole: four descriptor sets of every candidate pair at once)
            by_spectrum, by_grid = (x.cpu().numpy() for x in by_rows(lambda i, j: (
                (plain[i] * mirror[j]).sum(1) > (plain[i] * plain[j]).sum(1),
                (pixel[i] * mirrored[j]).sum(1) > (pixel[i] * pixel[j]).sum(1)), ta, tb))
            for choice, rows in ((by_spectrum, np.arange(len(q))), (by_grid, np.flatnonzero(by_grid != by_spectrum))):
                add(this[rows], other[rows], choice[rows], 1.0 / z[rows], np.ones(len(rows), bool))
            if scan and view_zooms is every_zoom and len(levels) > 1:
                # the zoom that matched best can be a step off for a cropped copy (the bispectrum
                # tolerates some zoom): the closest candidates in another split get every zoom
                top = np.flatnonzero(j < _ALL_ZOOMS_TOP)
                for zz in every_zoom:
                    add(this[top], other[top], by_spectrum[top], np.full(len(top), 1.0 / zz), np.ones(len(top), bool))
    deep = (partial(_deep_proposals, thumbs, boxes, project, spectra[1.0], pixel, mirrored, groups, indexed,
                    crop_zoom, hard & ~hard.all())
            if crop_zoom and (len(names) > 1 or hard.any() and not hard.all()) else None)
    return _normalised([(np.concatenate(rows_a), np.concatenate(rows_b), np.concatenate(flips),
                         np.concatenate(scales), np.concatenate(search))]), deep


def _normalised(parts: list[Hypotheses]) -> Hypotheses:
    """Hypotheses joined, each pair as a < b, and each (pair, flip, zoom, search) once."""
    a, b, flip, scale, aligned = (np.concatenate(x) for x in zip(*parts))
    # query a zoomed by z looks like b, so b magnified by 1/z looks like a; swapping the pair inverts the zoom
    swap = a > b
    a, b = np.where(swap, b, a), np.where(swap, a, b)
    scale = np.where(swap, 1.0 / scale, scale)
    key = [a, b, flip.astype(np.int64), np.round(np.log(scale) * 1e4).astype(np.int64), aligned.astype(np.int64)]
    uniq = _first_of_each(key)
    return a[uniq], b[uniq], flip[uniq], scale[uniq], aligned[uniq]


def _deep_proposals(thumbs: torch.Tensor, boxes: torch.Tensor, project: "Whitener", base: torch.Tensor,
                    pixel: torch.Tensor, mirrored: torch.Tensor, groups: np.ndarray, indexed: np.ndarray,
                    crop_zoom: float, hard: np.ndarray | None = None) -> Hypotheses:
    """Crops deeper than the zoom searched (``thresholds.crop_zoom``): the other splits' samples zoomed
    in about the centre, each corner and each edge's midpoint, against each split (``base``: the
    samples' unzoomed bispectrum descriptors). A copy keeping 70 % of each side ranked first at one
    of these nine anchors for each of an airplane suite's 16; with the centre and corners alone the
    ten suites missed 14 of their 160 such copies, most never proposed (1 with all nine; four corners
    alone lost half on two suites). Made after the look-alike level, so that it can be skipped where
    the threshold is above what such a crop scores (``_DEEP_CEILING``); each image's fill is replaced
    here again (``fill_outside``, row by row) rather than the proposals' filled copy held through the
    verifier's set-up (with it held, the CIFAR-10 audit's peak was 250 MB higher and its wall time
    about 9 % longer on the 2-core machine).

    Within a split, the rows a later cut may separate from the rest (``hard``, per row) are searched
    against it both ways, as two splits are: without it, 7 of the 18 train-val pairs that a second
    audit of CIFAR-10's carved train and val found were deep crops."""
    names = np.unique(groups[indexed])
    cache: dict = {}
    rows_a, rows_b, flips, scales = [], [], [], []

    def search(queries: np.ndarray, views: torch.Tensor, members: np.ndarray, self_index=None) -> None:
        idx, _, view = neighbours(views, base[members], _CROP_K, _CROP_FLOOR, self_index, probes=2)
        q, j = np.nonzero(idx >= 0)
        this, other = queries[q], members[idx[q, j]]
        flip, both = _deep_orientation(thumbs, boxes, this, other, view[q, j], pixel, mirrored, crop_zoom)
        rows_a.extend([this, this[both]])
        rows_b.extend([other, other[both]])
        flips.extend([flip, ~flip[both]])
        scales.append(np.full(len(q) + int(both.sum()), 1.0 / crop_zoom))

    for g in names if len(names) > 1 else ():  # between splits
        members = np.flatnonzero((groups == g) & indexed)
        others, views = _deep_views(cache, names[names != g], groups, indexed, thumbs, boxes, project, crop_zoom)
        search(others, views, members)
    for g in names if hard is not None else ():  # inside a split: its hard rows and the rest
        mine = (groups == g) & indexed
        if not (mine & hard).any() or not (mine & ~hard).any():
            continue
        rows, views = _deep_views(cache, np.array([g]), groups, indexed, thumbs, boxes, project, crop_zoom)
        hard_rows = np.flatnonzero(mine & hard)
        # every sample's zoomed views against the hard rows (a hard row's own sample excluded), then
        # the hard rows' views against the rest
        own = np.full(len(rows), -1, np.int64)
        at = np.isin(rows, hard_rows)
        own[at] = np.searchsorted(hard_rows, rows[at])
        search(rows, views, hard_rows, own)
        picked = torch.as_tensor(np.flatnonzero(hard[rows]), device=views.device)
        search(rows[hard[rows]], views[:, picked], np.flatnonzero(mine & ~hard))
    if not rows_a:
        return _normalised([(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, bool), np.zeros(0),
                             np.zeros(0, bool))])
    a, b = np.concatenate(rows_a), np.concatenate(rows_b)
    return _normalised([(a, b, np.concatenate(flips), np.concatenate(scales), np.ones(len(a), bool))])


def _deep_views(cache: dict, splits: np.ndarray, groups: np.ndarray, indexed: np.ndarray, thumbs: torch.Tensor,
                boxes: torch.Tensor, project: "Whitener", crop_zoom: float) -> tuple[np.ndarray, torch.Tensor]:
    """The samples of ``splits`` (rows) and their descriptors zoomed in by ``crop_zoom`` about each of
    ``_CROP_ANCHORS`` as one (anchors, samples, D) tensor; each split's made once (``cache``) and its
    images gathered once for all anchors (gathered per anchor, and the views then copied into one
    array and out of it again, the deep search cost the 2-core machine 3 s more on CIFAR-10), a
    slice of rows at a time (a multiple of the descriptors' chunk: the same chunks, the same values):
    a filled copy of the largest split's images was 400 MB of fresh memory."""
    rows, parts = [], []
    for h in splits:
        if h not in cache:
            mine = np.flatnonzero((groups == h) & indexed)
            out = None
            for s in range(0, max(len(mine), 1), SLICE_ROWS):  # a slice of its images at a time, none copied whole
                at = torch.as_tensor(mine[s:s + SLICE_ROWS], device=thumbs.device)
                # the fill replaced once for all nine anchors (per anchor, 0.7-0.9 s of one core on CIFAR-10's train
                # split against 0.2 s once: the same values, ``fill_outside`` is row by row)
                filled = fill_outside(thumbs[at], boxes[at])
                part = torch.stack([bispectrum_descriptors(filled, project=[project], prepare=partial(
                    zoom, scale=crop_zoom, anchor=anchor)) for anchor in _CROP_ANCHORS])
                if out is None:
                    out = torch.empty((len(_CROP_ANCHORS), len(mine), part.shape[-1]), device=part.device)
                out[:, s:s + len(at)] = part
            cache[h] = mine, out
        rows.append(cache[h][0])
        parts.append(cache[h][1])
    return np.concatenate(rows), parts[0] if len(parts) == 1 else torch.cat(parts, 1)


def _deep_orientation(thumbs: torch.Tensor, boxes: torch.Tensor, this: np.ndarray, other: np.ndarray,
                      view: np.ndarray, pixel: torch.Tensor, mirrored: torch.Tensor,
                      crop_zoom: float) -> tuple[np.ndarray, np.ndarray]:
    """Per deep-crop candidate (``this`` zoomed about anchor ``view`` looked like ``other``): whether it
    looks like ``other`` mirrored, by the 8 x 8 grid of that zoomed view, and whether the grid cannot
    tell (within ``_DEEP_FLIP_MARGIN``: both orientations are then verified). The bispectrum the
    candidates came from is mirror-symmetric; with both orientations of every candidate verified,
    CIFAR-10 had 240,000 deep hypotheses, 173,000 with this (the same pairs)."""
    flip, both = np.zeros(len(this), bool), np.zeros(len(this), bool)
    for v in np.unique(view):
        at = np.flatnonzero(view == v)
        ta = torch.as_tensor(this[at], device=thumbs.device)
        tb = torch.as_tensor(other[at], device=thumbs.device)
        grid, _ = pixel_descriptors(zoom(fill_outside(thumbs[ta], boxes[ta]), crop_zoom, _CROP_ANCHORS[int(v)]))
        gap = ((grid * mirrored[tb]).sum(1) - (grid * pixel[tb]).sum(1)).cpu().numpy()
        flip[at], both[at] = gap > 0, np.abs(gap) < _DEEP_FLIP_MARGIN
    return flip, both


def _zoom_anchors(boxes: torch.Tensor, owner: np.ndarray, size: int) -> np.ndarray:
    """Per row and axis (rows, columns), where its zoomed-out views are zoomed about: the centre (0),
    except along an axis a view was moved back against a shift's fill (``unshifted_views``): about
    the edge the fill was on (-1 first, 1 last), which the moved content now reaches.

    A copy shifted and then cropped and resized keeps the shift's fill, magnified. Moved back against
    it, it is its original magnified about that edge, not about the centre: zoomed out about the
    centre it lands 16 (1/c - 1) px off its original for a crop keeping c of the side (4 px at 0.8),
    further than the bispectrum tolerates (the diagonal 4-px shifts then cropped that the search
    missed); zoomed out about the edge it lands on it."""
    b = boxes.cpu().numpy().astype(np.int64)
    mine = b[np.asarray(owner)]  # the box of the sample each row stands for
    anchors = np.zeros((len(b), 2), np.int64)
    for axis in (0, 1):
        low, high = 2 * axis, 2 * axis + 1
        anchors[(b[:, low] == 0) & (mine[:, low] > 0) & (mine[:, high] == size), axis] = -1
        anchors[(b[:, high] == size) & (mine[:, high] < size) & (mine[:, low] == 0), axis] = 1
    return anchors


def _first_of_each(columns: list[np.ndarray]) -> np.ndarray:
    """Index of the first row holding each distinct key (rows of ``columns``), in the keys' sorted
    order: what ``np.unique(np.stack(columns, 1), axis=0, return_index=True)[1]`` returns, by one
    stable sort of the columns packed into one integer when they fit in 63 bits (a lexsort of the
    columns otherwise: np.unique's sort of rows as records took ~2 s for CIFAR-10's 1.4 million
    hypotheses, the lexsort 0.8 s, the packed sort a fraction of that)."""
    if len(columns[0]) == 0:
        return np.zeros(0, np.int64)
    lows = [int(c.min()) for c in columns]
    bits = [max(1, int(int(c.max()) - low).bit_length()) for c, low in zip(columns, lows)]
    if sum(bits) <= 63:
        key = np.zeros(len(columns[0]), np.int64)
        for c, low, width in zip(columns, lows, bits):  # the first column the most significant
            key = (key << width) | (c.astype(np.int64) - low)
        order = np.argsort(key, kind="stable")  # equal keys keep their order: the first comes first
        sorted_key = key[order]
        return order[np.r_[True, sorted_key[1:] != sorted_key[:-1]]]
    order = np.lexsort(columns[::-1])  # stable: equal keys keep their order, the first comes first
    new = np.zeros(len(order), bool)
    new[0] = True
    for c in columns:
        sorted_c = c[order]
        new[1:] |= sorted_c[1:] != sorted_c[:-1]
    return order[new]


class _gpu_search:
    """Full float32 precision while the search runs on a GPU, and its cached memory handed back after.

    A training run on a GPU turns on TF32 matrix products (``torch.set_float32_matmul_precision``)
    for the whole process, and the next sweep job's gate would inherit it: the verifier's scores are
    matrix products (blurs, warps, correlations), and TF32's 10-bit mantissa moves scores near the
    threshold. Measured on the H200: 50 cross-split pairs instead of the CPU's 59 on a CIFAR-10
    subset gated after a training job, the same 1,451 as the CPU on all of CIFAR-10 in a fresh
    process. The previous settings are restored for training.
    """

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"

    def __enter__(self) -> None:
        if self.cuda:
            self.saved = (torch.get_float32_matmul_precision(), torch.backends.cudnn.allow_tf32)
            torch.set_float32_matmul_precision("highest")
            torch.backends.cudnn.allow_tf32 = False

    def __exit__(self, *exc) -> None:
        if self.cuda:
            torch.set_float32_matmul_precision(self.saved[0])
            torch.backends.cudnn.allow_tf32 = self.saved[1]
            torch.cuda.empty_cache()  # training starts right after
