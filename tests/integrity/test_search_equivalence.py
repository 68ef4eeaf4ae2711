"""The near-duplicate search's faster forms give exactly what the plain forms gave: the verdict must
not move when the search is made cheaper (the same pairs, the same scores bit for bit)."""

from __future__ import annotations

import numpy as np
import torch

from trueval.integrity import align, ann
from trueval.integrity.descriptors import corner_fill, dilate
from trueval.integrity.near_duplicates import _first_of_each


def test_first_of_each_is_np_unique_rows() -> None:
    rng = np.random.default_rng(0)
    columns = [rng.integers(0, 4, 3000) for _ in range(3)] + [rng.integers(-2, 2, 3000)]
    _, expected = np.unique(np.stack(columns, 1), axis=0, return_index=True)
    assert np.array_equal(_first_of_each(columns), expected)
    assert len(_first_of_each([np.zeros(0, np.int64)] * 2)) == 0


def test_warp_stacks_equals_one_warp_per_stack() -> None:
    gen = torch.Generator().manual_seed(0)
    images, masks = torch.rand(64, 16, 16, generator=gen) * 255, (torch.rand(64, 16, 16, generator=gen) > 0.3).float()
    theta = torch.eye(2, 3).expand(64, 2, 3) + 0.1 * torch.randn(64, 2, 3, generator=gen)
    (wi, wm), inside = align.warp_stacks([images, masks], theta, margin=1.25)
    grid = torch.nn.functional.affine_grid(theta, [64, 1, 16, 16], align_corners=False)
    for stack, warped in ((images, wi), (masks, wm)):
        alone = torch.nn.functional.grid_sample(stack[:, None], grid, mode="bilinear", padding_mode="border",
                                                align_corners=False)[:, 0]
        assert torch.equal(alone, warped)
    limit = torch.tensor([1.0 - 2.5 / 16, 1.0 - 2.5 / 16])
    edge = (torch.arange(16) + 0.5 >= 1.25) & (torch.arange(16) + 0.5 <= 16 - 1.25)
    expected = (grid.abs() <= limit).all(-1) & edge[:, None] & edge[None, :]
    assert torch.equal(inside, expected)


def test_corner_fill_grown_as_floats_or_booleans_alike() -> None:
    gen = torch.Generator().manual_seed(1)
    thumbs = torch.rand(32, 32, 32, generator=gen) * 255
    thumbs[:, :6, :6] = 0  # black corners, as a rotation leaves
    thumbs[::3, :, :4] = 3
    dark = (thumbs <= 16).float()
    seed = torch.zeros_like(dark)
    seed[:, 0, :], seed[:, -1, :], seed[:, :, 0], seed[:, :, -1] = 1, 1, 1, 1
    seed = seed * dark
    for _ in range(8):
        seed = dilate(seed) * dark
    share = (torch.cat([thumbs[:, 0], thumbs[:, -1], thumbs[:, :, 0], thumbs[:, :, -1]], 1) <= 16).float().mean(1)
    seed[~((share > 0) & (share <= 0.5))] = 0
    assert torch.equal(corner_fill(thumbs), seed)


def test_inverted_file_in_slot_blocks_is_unchanged(monkeypatch) -> None:
    gen = torch.Generator().manual_seed(2)
    base = torch.nn.functional.normalize(torch.randn(5000, 16, generator=gen), dim=1)
    queries = torch.nn.functional.normalize(base[:600] + 0.05 * torch.randn(600, 16, generator=gen), dim=1)
    exclude = torch.full((600,), -1, dtype=torch.long)
    whole = ann._inverted_file(queries, base, exclude, 5, 4)
    monkeypatch.setattr(ann, "_SLOT_BLOCK", 97)  # many blocks per cell
    blocked = ann._inverted_file(queries, base, exclude, 5, 4)
    assert torch.equal(whole[0], blocked[0]) and torch.equal(whole[1], blocked[1])


def test_the_search_reads_its_fingerprints_without_changing_them() -> None:
    """When every image is searched, the search holds the fingerprints' own arrays instead of copies
    (250 MB each on CIFAR-10): nothing in it may write to them, with extra views or without."""
    from synthetic import NEAR, photos

    from trueval.integrity.fingerprints import compute_prints
    from trueval.integrity.near_duplicates import near_pairs
    from trueval.integrity.settings import IntegritySettings
    from trueval.core.samples import SampleSet

    imgs = photos(60, seed=9)
    shifted = NEAR["shift"](imgs[2])  # black fill on one side: a view moved back against it
    for test in (imgs[40:], np.concatenate([imgs[40:], np.asarray(shifted)[None]])):
        images = np.concatenate([imgs[:40], test])
        prints = compute_prints(SampleSet("all", np.zeros(len(images), np.int64), images=images, sources=["gen"]))
        before = {k: np.copy(getattr(prints, k)) for k in ("thumbs", "boxes", "contrast", "value_thumbs")}
        groups = np.r_[np.zeros(40, np.int64), np.ones(len(test), np.int64)]
        near_pairs(prints, groups, IntegritySettings.from_config({"cache": False}))
        for k, v in before.items():
            assert np.array_equal(getattr(prints, k), v), k


def test_search_rows_from_the_splits_are_those_of_their_concatenation() -> None:
    """The gate makes the search's rows from each split's fingerprints in one copy: every array, view
    and group must be what joining the splits first gave (the search's order decides near-ties)."""
    from PIL import Image

    from synthetic import NEAR, photos

    from trueval.core.samples import SampleSet
    from trueval.integrity.fingerprints import Prints, compute_prints
    from trueval.integrity.near_duplicates import SearchRows

    imgs = photos(50, seed=11, size=48)
    boxed = imgs[:6].copy()
    boxed[:, :7], boxed[:, -7:] = 0, 0  # letterboxed: views of their content
    shifted = np.stack([np.asarray(NEAR["shift"](a)) for a in imgs[6:12]])  # views moved back
    shifted_small = np.stack([np.asarray(Image.fromarray(a).resize((32, 32))) for a in shifted])
    splits = [np.concatenate([imgs[12:40], boxed[:3], shifted[:3]]), np.concatenate([imgs[40:], boxed[3:]]),
              shifted_small]
    parts = [compute_prints(SampleSet(str(i), np.zeros(len(s), np.int64), images=s, sources=["gen"]))
             for i, s in enumerate(splits)]
    groups = np.concatenate([np.full(len(s), i, np.int64) for i, s in enumerate(splits)])
    joined, whole = SearchRows.of(parts, groups), SearchRows.of(Prints.concat(parts), groups)
    assert len(joined.prints) > len(groups)  # views were made
    assert joined.samples == whole.samples == len(groups)
    for field in ("hashes", "thumbs", "boxes", "contrast", "side", "value_thumbs", "aspect"):
        assert np.array_equal(getattr(joined.prints, field), getattr(whole.prints, field)), field
    assert np.array_equal(joined.groups, whole.groups) and np.array_equal(joined.origin, whole.origin)


def test_search_rows_grown_in_the_room_the_fingerprints_left_equal_a_copy() -> None:
    """The gate computes every split's fingerprints into one set of arrays with room for the views
    (``compute_prints(spare=)``) and the search's rows grow into it: no copy of the thumbnails, the
    same rows as joining copies, and a second set of rows from the same prints copies rather than
    overwrite the first's views."""
    from synthetic import NEAR, photos

    from trueval.core.samples import SampleSet
    from trueval.integrity.fingerprints import Prints, compute_prints
    from trueval.integrity.near_duplicates import SearchRows

    imgs = photos(30, seed=14, size=48)
    imgs[:4, :7], imgs[:4, -7:] = 0, 0  # letterboxed
    imgs[4:8] = np.stack([np.asarray(NEAR["shift"](a)) for a in imgs[4:8]])  # moved back
    sets = [SampleSet(str(i), np.zeros(len(x), np.int64), images=x, sources=["gen"]) for i, x in
            enumerate((imgs[:18], imgs[18:]))]
    groups = np.repeat([0, 1], [18, 12])
    copied = SearchRows.of([compute_prints(x) for x in sets], groups)
    prints = compute_prints(sets, spare=2 * len(groups))
    assert isinstance(prints, Prints) and prints.spare == 2 * len(groups)
    grown = SearchRows.of(prints, groups)
    assert len(grown.prints) > len(groups) and prints.spare == 0
    for field in ("thumbs", "value_thumbs", "low_thumbs", "boxes"):
        assert np.shares_memory(getattr(grown.prints, field), getattr(prints, field)), field
    again = SearchRows.of(prints, groups)
    for field in ("hashes", "thumbs", "boxes", "contrast", "side", "value_thumbs", "low_thumbs", "aspect"):
        assert np.array_equal(getattr(grown.prints, field), getattr(copied.prints, field)), field
        assert np.array_equal(getattr(again.prints, field), getattr(copied.prints, field)), field
    assert not np.shares_memory(again.prints.thumbs, prints.thumbs)
    assert np.array_equal(grown.origin, copied.origin) and np.array_equal(grown.groups, copied.groups)


def test_whitening_samples_the_rows_the_stacked_descriptors_gave() -> None:
    """The whitening is fitted before any image's descriptors are kept, on rows computed on their own:
    they must be exactly the rows every ``step``-th row of all the parts stacked gave (the axes, and
    through them the search's order, depend on which rows they are)."""
    from trueval.integrity.descriptors import Whitener

    for lengths, sample in (((5003, 7, 12000, 999), 700), ((10,), 20000), ((61004,) * 4, 20000), ((3, 0, 5), 2)):
        stacked = torch.arange(sum(lengths))
        parts = torch.split(stacked, list(lengths))
        picked = torch.cat([part[p] for part, p in zip(parts, Whitener.positions(lengths, sample))])
        assert torch.equal(picked, stacked[::max(1, sum(lengths) // sample)]), (lengths, sample)


def test_by_rows_gives_what_one_call_over_every_row_gives(monkeypatch) -> None:
    from trueval.integrity import slices
    from trueval.integrity.descriptors import fill_outside
    from trueval.integrity.slices import by_rows

    gen = torch.Generator().manual_seed(3)
    thumbs = torch.rand(23, 32, 32, generator=gen) * 255
    boxes = torch.tensor([[0, 32, 0, 32], [3, 29, 0, 32], [0, 32, 5, 30]] * 7 + [[1, 31, 1, 31]] * 2)

    def two(x: torch.Tensor, box: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        filled = fill_outside(x, box)
        return filled, filled.flatten(1).sum(1) > 0

    whole = two(thumbs, boxes)
    monkeypatch.setattr(slices, "SLICE_ROWS", 5)  # five slices, the last of three rows
    sliced = by_rows(two, thumbs, boxes)
    assert all(torch.equal(w, s) and w.dtype == s.dtype for w, s in zip(whole, sliced))
    empty = by_rows(two, thumbs[:0], boxes[:0])
    assert [tuple(e.shape) for e in empty] == [(0, 32, 32), (0,)]


def test_the_verifier_prepared_a_slice_at_a_time_scores_as_when_prepared_at_once(monkeypatch) -> None:
    """The verifier prepares its images in slices of rows (``by_rows``) and holds its 0/1 planes as
    booleans: every array and every score must be what preparing all rows at once gave, through
    fill, inpainted rotation corners, left-out holes and both resolutions."""
    from PIL import Image

    from synthetic import NEAR, photos

    from trueval.core.samples import SampleSet
    from trueval.integrity import slices
    from trueval.integrity.descriptors import fill_outside, inpaint
    from trueval.integrity.fingerprints import compute_prints
    from trueval.integrity.verify import Verifier

    base = photos(10, seed=13)
    copies = [np.asarray(Image.fromarray(base[0]).rotate(7, resample=Image.BICUBIC)),  # black corners
              np.asarray(NEAR["shift"](base[1])), np.roll(base[2], 2, axis=0), base[3][:, ::-1]]
    images = np.concatenate([base, np.stack(copies)])
    prints = compute_prints(SampleSet("x", np.zeros(len(images), np.int64), images=images, sources=["gen"]))
    holes = np.zeros(prints.thumbs.shape, np.float32)
    holes[4, 10:20, 5:15] = 1  # an overlay's region, left out
    a, b = (x.ravel() for x in np.triu_indices(len(images), 1))
    flip = np.arange(len(a)) % 3 == 0

    def prepared() -> tuple[Verifier, np.ndarray]:
        v = Verifier(prints.thumbs, prints.boxes, 0.2, 0.5, layout_from=0.8, sides=prints.side, holes=holes)
        return v, v.score(a, b, flip, np.ones(len(a)), np.ones(len(a), bool), near=0.9)

    (whole, whole_scores) = prepared()
    monkeypatch.setattr(slices, "SLICE_ROWS", 3)
    (sliced, sliced_scores) = prepared()
    every = torch.arange(len(images))
    assert torch.equal(whole.small, sliced.small)
    assert torch.equal(whole._filled(every), sliced._filled(every))
    assert torch.equal(whole._valid(every), sliced._valid(every))
    # only the rows with fill or holes are held filled: every row reads as filling all of them gives
    t, box = torch.from_numpy(prints.thumbs), torch.from_numpy(prints.boxes.astype(np.int64))
    corners = torch.maximum(corner_fill(t), torch.from_numpy(holes))
    assert torch.equal(whole._filled(every), inpaint(fill_outside(t, box), corners))
    assert torch.equal(whole._valid(every), ~dilate(corners > 0))
    assert 0 < len(whole._patch_filled) < len(images)
    assert torch.equal(whole.coarse.spectra, sliced.coarse.spectra)
    assert (whole_scores > 0.9).sum() >= 3  # the copies are found
    assert np.array_equal(whole_scores, sliced_scores)


def test_neighbours_over_several_views_merge_them_alike_in_slices(monkeypatch) -> None:
    """A base row that several of a query's views find is kept once, at its best view: decided a
    slice of queries at a time, it must be what deciding for all queries at once gave."""
    from trueval.integrity import slices

    gen = torch.Generator().manual_seed(4)
    base = torch.nn.functional.normalize(torch.randn(400, 8, generator=gen), dim=1)
    views = [torch.nn.functional.normalize(base[:90] + s * torch.randn(90, 8, generator=gen), dim=1)
             for s in (0.05, 0.1, 0.3)]  # the views of one query mostly find the same rows
    whole = ann.neighbours(views, base, 4, 0.0)
    monkeypatch.setattr(slices, "SLICE_ROWS", 7)
    sliced = ann.neighbours(views, base, 4, 0.0)
    assert all(np.array_equal(w, s) for w, s in zip(whole, sliced))
    assert (whole[0][:, :, None] == whole[0][:, None, :]).sum() == whole[0].size  # no row twice per query


def test_first_of_each_packs_the_columns_or_falls_back_to_the_lexsort() -> None:
    rng = np.random.default_rng(3)
    for high in (5, 2**40):  # packed into one integer / too wide to pack
        columns = [rng.integers(-high, high, 2000), rng.integers(0, 3, 2000), rng.integers(0, high, 2000) % 7]
        _, expected = np.unique(np.stack(columns, 1), axis=0, return_index=True)
        assert np.array_equal(_first_of_each(columns), expected)


def test_axis_matrices_built_as_tents_are_the_scattered_bilinear_weights() -> None:
    from trueval.integrity import verify

    gen = torch.Generator().manual_seed(4)
    scale = 0.6 + torch.rand(500, generator=gen)
    shift = 6 * torch.randn(500, generator=gen)
    flip = torch.rand(500, generator=gen) > 0.5
    for size in (8, 16):
        m, valid = verify._axis_matrices(scale, shift, flip, size)
        src = (torch.arange(size) + 0.5 - size / 2 - shift[:, None]) / scale[:, None] + size / 2 - 0.5
        src = torch.where(flip[:, None], (size - 1) - src, src)
        s = src.clamp(0, size - 1)
        lo, frac = s.floor(), s - s.floor()
        expected = torch.zeros(500, size, size)
        expected.scatter_add_(2, lo.long()[:, :, None], (1 - frac)[:, :, None])
        expected.scatter_add_(2, (lo + 1).clamp(max=size - 1).long()[:, :, None], frac[:, :, None])
        assert torch.equal(m, expected)
        assert torch.equal(valid, (src >= -0.5) & (src <= size - 0.5))


def test_unclipped_by_dilation_is_the_max_pool_of_the_clipped_pixels() -> None:
    from trueval.integrity import verify

    gen = torch.Generator().manual_seed(5)
    x = torch.rand(40, 16, 16, generator=gen) * 300 - 20  # clipped low and high, and clear
    clipped = ((x <= verify._CLIP[0]) | (x >= verify._CLIP[1])).float()[:, None]
    span = 2 * verify._CLIP_REACH + 1
    expected = 1.0 - torch.nn.functional.max_pool2d(clipped, span, 1, verify._CLIP_REACH)[:, 0]
    assert torch.equal(verify._unclipped(x), expected)


def _centred_refine(pyramid, mask_a, mask_b, theta, steps, margin):
    """The refinement's Gauss-Newton steps written plainly: the centred, normalised Jacobian held whole."""
    n, h, w = mask_a.shape
    ys = (torch.arange(h, dtype=torch.float32) + 0.5) * (2.0 / h) - 1.0
    xs = (torch.arange(w, dtype=torch.float32) + 0.5) * (2.0 / w) - 1.0
    uy, ux = ys[:, None].expand(h, w), xs[None, :].expand(h, w)
    theta = theta.clone()
    for ia, ib in pyramid:
        for _ in range(steps):
            (bw, mb), inside = align.warp_stacks([ib, mask_b], theta, margin)
            m = mask_a * inside.float() * (mb > 0.99).float()
            count = m.sum((1, 2), keepdim=True).clamp(min=1.0)
            an, _ = align._normalise(ia, m, count)
            bn, std = align._normalise(bw, m, count)
            gx, gy = align._gradients(bw)
            jac = torch.stack([gx * ux + gy * uy, gy * ux - gx * uy, gx * ux - gy * uy, gx, gy], 1)
            jmean = (jac * m[:, None]).sum((2, 3), keepdim=True) / count[:, None]
            jn = ((jac - jmean) * m[:, None] / std[:, None]).reshape(n, 5, -1)
            r = (an - bn).reshape(n, 1, -1)
            hess = jn @ jn.transpose(1, 2)
            grad = (jn * r).sum(2)
            hess = hess + align._DAMPING * hess.diagonal(dim1=1, dim2=2).mean(1).clamp(min=1e-6)[:, None, None] * torch.eye(5)
            delta = torch.nan_to_num(torch.linalg.solve(hess, grad[:, :, None])[:, :, 0]).clamp(-0.2, 0.2)
            step = torch.zeros(n, 3, 3)
            step[:, 0, 0], step[:, 0, 1], step[:, 1, 0] = 1 + delta[:, 0] + delta[:, 2], -delta[:, 1], delta[:, 1]
            step[:, 1, 1], step[:, 0, 2], step[:, 1, 2], step[:, 2, 2] = 1 + delta[:, 0] - delta[:, 2], delta[:, 3], delta[:, 4], 1
            theta = theta @ step
    return theta


def test_refinement_by_summed_normal_equations_fits_the_maps_the_centred_jacobian_fits() -> None:
    """``align.refine`` sums the normal equations (two batched products) instead of holding the centred
    Jacobian: the same fit up to float rounding, for rotated, zoomed and shifted copies and for pairs
    of different images."""
    from trueval.integrity.verify import blur

    gen = torch.Generator().manual_seed(6)
    base = blur(torch.rand(48, 16, 16, generator=gen) * 255, 1.0)
    angle = torch.linspace(-0.15, 0.15, 48)
    warp = torch.stack([torch.stack([torch.cos(angle) * 1.05, -torch.sin(angle), 0.05 * torch.ones(48)], 1),
                        torch.stack([torch.sin(angle), torch.cos(angle) * 1.05, -0.04 * torch.ones(48)], 1)], 1)
    (copies,), _ = align.warp_stacks([base], warp)
    other = torch.roll(base, 7, 0)  # each image against a different one
    mask = torch.ones(48, 16, 16)
    start = torch.eye(2, 3).expand(48, 2, 3).clone()
    for b in (copies, other):
        pyramid = [(blur(base, s), blur(b, s)) for s in (1.0, 0.5)]
        fitted = align.refine(pyramid, mask, mask, start, steps=4, margin=1.25)
        plain = _centred_refine(pyramid, mask, mask, start, steps=4, margin=1.25)
        assert torch.allclose(fitted, plain, atol=2e-3), (fitted - plain).abs().max()
    assert (fitted - start).abs().max() > 0.01  # the fit moved


def test_half_resolution_means_are_avg_pool2d_bit_for_bit() -> None:
    from trueval.integrity import verify

    gen = torch.Generator().manual_seed(7)
    for x in (torch.rand(50, 32, 32, generator=gen) * 255, torch.rand(50, 16, 16, generator=gen),
              (torch.rand(50, 32, 32, generator=gen) > 0.3).float()):
        assert torch.equal(verify._half(x), torch.nn.functional.avg_pool2d(x[:, None], 2)[:, 0])


def test_fingerprints_written_as_they_come_equal_the_chunks_joined(monkeypatch) -> None:
    """``compute_prints`` writes each chunk's rows into arrays made at the first instead of joining
    the chunks at the end: every field and letterbox view must be what joining them gave."""
    from synthetic import photos

    import trueval.integrity.fingerprints as fp
    from trueval.core.samples import SampleSet

    imgs = photos(40, seed=12)
    imgs[3:9, :5], imgs[3:9, -5:] = 0, 0  # letterboxed: views of their content, across two chunks
    ss = SampleSet("x", np.zeros(len(imgs), np.int64), images=imgs, sources=["gen"])
    monkeypatch.setattr(fp, "_CHUNK", 7)
    parts = [fp._prints_of_batch(batch, True) for batch in fp._batches(ss)]
    joined, written = fp.Prints.concat(parts), fp.compute_prints(ss)
    for name in fp._ROW_FIELDS:
        assert np.array_equal(getattr(joined, name), getattr(written, name)), name
    assert len(written.views) >= 6
    for name in ("rows", "thumbs", "boxes"):
        assert np.array_equal(getattr(joined.views, name), getattr(written.views, name)), name
    grey = [fp.Prints(p.hashes, p.thumbs, p.boxes, p.contrast, p.side) if i == 2 else p for i, p in enumerate(parts)]
    lacking = fp.Prints.joined(iter(grey), len(imgs))  # a part without value thumbnails: none for any row
    assert lacking.value_thumbs is None and lacking.low_thumbs is None and lacking.views is not None
    assert np.array_equal(lacking.thumbs, joined.thumbs)


def test_bispectrum_of_images_filled_a_chunk_at_a_time_is_that_of_the_filled_images() -> None:
    """The search's descriptors fill each chunk's borders as they go (``boxes=``) instead of from a
    filled copy of every image: the same descriptors, bit for bit, at every zoom."""
    from functools import partial

    from trueval.integrity.descriptors import bispectrum_descriptors, fill_outside, zoom

    gen = torch.Generator().manual_seed(5)
    thumbs = torch.rand(1100, 32, 32, generator=gen) * 255  # three chunks, the last a partial one
    boxes = torch.tensor([[0, 32, 0, 32], [4, 28, 0, 32], [0, 32, 3, 30]] * 366 + [[2, 30, 2, 30]] * 2)
    filled = fill_outside(thumbs, boxes)
    for prepare in (None, partial(zoom, scale=1.2), partial(zoom, scale=1 / 1.2, anchor=(1, -1))):
        assert torch.equal(bispectrum_descriptors(filled, prepare=prepare),
                           bispectrum_descriptors(thumbs, boxes=boxes, prepare=prepare))
    whole = bispectrum_descriptors(filled, oriented=True)
    chunked = bispectrum_descriptors(thumbs, boxes=boxes, oriented=True)
    assert all(torch.equal(w, c) for w, c in zip(whole, chunked))


def test_fingerprints_of_splits_in_memory_made_by_forked_workers_are_those_made_here(monkeypatch, capfd) -> None:
    """Splits held in memory are fingerprinted by forked workers writing into shared memory
    (``gate._fingerprints_forked``): every field, letterbox view and the room left for the search's
    views must be what this process makes alone, the stage's bar must reach each split's size, and
    the workers must end without a word (each printed a ``RunInterrupted`` traceback in every cold
    CIFAR-10 audit: the pool was closed before its last result was read, and stopped)."""
    from synthetic import photos

    import trueval.integrity.console as console
    import trueval.integrity.fingerprints as fp
    import trueval.integrity.forked as forked
    import trueval.integrity.gate as gate
    from trueval.core.samples import SampleSet

    train, test = photos(40, seed=21), photos(17, seed=22)
    train[3:9, :5], train[3:9, -5:] = 0, 0  # letterboxed: views of their content, across two chunks
    test[10:12, :, :5], test[10:12, :, -5:] = 0, 0  # pillarboxed, in the second split
    sets = {"train": SampleSet("train", np.zeros(40, np.int64), images=train, sources=["a"]),
            "test": SampleSet("test", np.zeros(17, np.int64), images=test, sources=["b"])}
    monkeypatch.setattr(fp, "_CHUNK", 7)
    forks: list[int] = []
    real_pool = forked.fork_pool
    monkeypatch.setattr(forked, "fork_pool", lambda n: forks.append(n) or real_pool(n))
    monkeypatch.setattr(forked, "search_workers", lambda device: 2)
    done: list[int] = []
    monkeypatch.setattr(console, "advance", done.append)
    monkeypatch.setattr(gate, "_FORK_PRINTS_ROWS", 10)
    from trueval.utils.signals import SignalGuard

    with SignalGuard():  # the runner's, around every task
        shared = gate._fingerprints(sets, ["train", "test"], True)
    assert forks == [2, 2] and sum(done) == 57  # one pool per split; every row counted once
    assert "Traceback" not in capfd.readouterr().err
    monkeypatch.setattr(gate, "_FORK_PRINTS_ROWS", 10**9)
    here = gate._fingerprints(sets, ["train", "test"], True)
    for name in fp._ROW_FIELDS:
        assert np.array_equal(getattr(shared, name), getattr(here, name)), name
        assert getattr(shared, name).dtype == getattr(here, name).dtype, name
    assert len(shared.views) == 8 and shared.views.rows.max() == 51 and shared.spare == here.spare == 2 * 57
    for name in ("rows", "thumbs", "boxes"):
        assert np.array_equal(getattr(shared.views, name), getattr(here.views, name)), name
    extra = shared.views.thumbs
    grown = shared.grown("thumbs", [extra])  # in the shared arrays' own room, not a copy
    assert np.shares_memory(grown, shared.thumbs) and np.array_equal(grown, np.concatenate([here.thumbs, extra]))
