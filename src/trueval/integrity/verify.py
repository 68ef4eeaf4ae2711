"""Verification of candidate pairs: align, then correlate, on the grayscale thumbnails.

Retrieval descriptors are coarse on purpose, and tiny photos of one class (planes on blue sky) look
alike at that level. Here each candidate pair is aligned (mirror, zoom, then the translation found
by phase correlation, to a fraction of a pixel) and scored by the normalised cross-correlation of
the overlapping content (fill borders masked out, overlap at least ``min_overlap`` of the smaller
content area) after a band-pass filter, held to a stricter standard when little of the picture
carries structure (``_information_adjusted``). The band-pass is what keeps look-alikes apart: it
compares edges and texture, not the smooth layout (sky above, ground below) unrelated photos share.
Measured on CIFAR-10 (40 planted copies per transform and strength, 38,800 retrieved pairs of
different classes): plain low-pass correlation let 4,000 unrelated pairs reach 0.85, the band-pass
with sub-pixel alignment 2, while keeping >= 97 % of every transform's copies.

The band-pass alone still pairs different photos of one silhouette: the same bomber shape on skies
lit another way scores 0.90-0.97, since what differs is the smooth layout it filters out. So a pair
that reaches the threshold must also pass a layout check (``_layout``): brightness, contrast, JPEG,
resizing and grayscale copies map grey levels by one increasing function, so the smoothed images of
a copy keep one brightness order (Spearman correlation >= ``thresholds.layout``, 0.97, over the
unclipped overlap). On five one-class CIFAR-10 suites (benchmarks/planted_duplicates.py: airplane, cat, deer,
ship, truck; 3,000 images and 1,040 planted copies each) the pairs of different photos (labelled by
eye) fell from 31 / 0 / 1 / 4 / 2 to 3 / 0 / 1 / 1 / 1, recall per transform stayed >= 0.97 and per
strength >= 0.945 (brightness x 1.5, where a clipped sky leaves little to rank; 0.96 before).

A cheap pass at half resolution discards most candidates; survivors are scored at full resolution
at three zooms around the hypothesis, and that score is the reported similarity.

Pairs that come within ``_REFINE_REACH`` of the threshold without reaching it get one more chance:
their best hypothesis is refined to a zoom, rotation, one-axis stretch and translation
(``align``), first at half resolution, then at full resolution for the pairs still close, and the
refined score, held ``_REFINE_PENALTY`` higher, counts. Black fill reaching in from the border (a
rotation's corners) is inpainted and left out of every comparison. On the CIFAR-10 suites this
took copies rotated by 3-10 degrees from 0-38 % found to 93-97 %, and copies stretched along one
axis and cropped back from 26 % to 100 % (benchmarks/planted_duplicates.py).
"""

from __future__ import annotations

import logging
import math
from functools import lru_cache, partial

import numpy as np
import torch

from trueval.integrity import align, occlusion
from trueval.integrity.descriptors import box_masks, corner_fill, dilate, fill_outside, hann_2d, inpaint
from trueval.integrity.fingerprints import THUMB
from trueval.integrity.slices import by_rows

log = logging.getLogger("trueval")

_BATCH = 1024  # hypothesis rows per step on the CPU (sized for its caches)
# on a GPU each step is a few hundred small kernels whatever its size: steps of 1,024 rows left the
# H200 waiting on launches (1,962 scoring steps took 7.3 s of a 17 s CIFAR-10 search), so a GPU
# takes this many times more rows per step: a cold CIFAR-10 audit's verification took 1.8 s with 32x,
# 2.4 s with 8x, 15.2 s with 1x, for a peak of 3.2 GiB allocated against 2.2 GiB with 1x
_GPU_BATCH_FACTOR = 32
_BAND = (1.0, 4.0)  # difference-of-Gaussians sigmas, thumbnail pixels
_EDGE = 2  # pixels dropped next to a trimmed fill border (the band-pass responds to the border there)
_COARSE_MARGIN = 0.15  # half-resolution score a pair needs (near - margin) to be scored at full resolution
_SCALE_REFINE = (1 / 1.045, 1.0, 1.045)  # midway between the zoom levels (steps of 1.095)
# rows within this of ``near`` at their best of those zooms are scored again at the peak of a parabola
# through the three (``Verifier._vertex_scores``), unless it lies within _VERTEX_NEW steps of one of them
_VERTEX_REACH, _VERTEX_NEW = 0.06, 0.15
_TENT_SIZE = 16  # ``_axis_matrices``: the largest side whose matrices are built as tents
_DEEP_ZOOM = 1.3  # hypotheses zoomed more than this come from the deep-crop search (``thresholds.crop_zoom``)
_N_REF = 150.0  # effective pixels (of 32 x 32) from which the plain correlation is trusted
_CROP_N_REF = 2 * _N_REF  # a deep crop fits a zoom, and silhouettes on plain skies reach 0.92 at it (as refined, below)
# layout check (``_layout``): rank correlation of the smoothed grayscale, which a copy keeps
_LAYOUT_SIGMA = 1.0  # blur before ranking, thumbnail pixels (then ranked at half resolution)
_CLIP = (5.0, 250.0)  # grayscale values at or beyond which a pixel may be clipped (left out of the ranks)
_CLIP_REACH = 2  # pixels next to a clipped one are left out too (the blur mixes them)
_LAYOUT_PIXELS = 10  # fewest unclipped half-resolution pixels to rank; with fewer the check passes
_LOW_SHARE = 0.35  # share of the overlap saturated in one image only from which the min channel is ranked too
# affine refinement (``align``): smoothing per level, and the maps a copy may need
_REFINE_SIGMAS = (2.0, 1.0)  # full-resolution pixels (halved at half resolution)
_REFINE_STEPS, _REFINE_FINE_STEPS = 4, 2
# rows still this far below ``near`` after this many steps stop refining (``Verifier._refined_coarse``)
_REFINE_EARLY_STEPS, _REFINE_EARLY_MARGIN = 1, 0.2
_REFINE_COARSE_MARGIN = 0.15
_REFINE_PENALTY = 0.03
_REFINE_N_REF = 2 * _N_REF  # and more structure before its score is trusted (silhouettes on plain skies have little)
_REFINE_MARGIN = 2.5  # pixels left out along both frames (a rotated copy's fill corners reach ~3 px deep)
_REFINE_REACH = 0.35  # pairs whose best score is within this of ``near`` (at near = 0.9; less nearer 1) get refined
_REFINE_MAX_SCALE, _REFINE_MAX_ROTATION, _REFINE_MAX_STRETCH = 1.6, 15.0, 1.3
# resolution matching (``_matched_scores``): a pair of images saved at different resolutions, the
# smaller below the thumbnail's, within _MATCH_REACH of ``near``, is scored again with the sharper
# thumbnail brought down to the other's resolution (resolutions at least _MATCH_RATIO apart)
_MATCH_REACH, _MATCH_RATIO = 0.1, 1.25
# pairs of two resolutions: native pixels of the smaller image left out on each side whose edge is
# darker than _DARK_EDGE times what lies inside it (a shift's fill scaled down: ``_dark_edges``)
_EDGE_RING, _DARK_EDGE = 1, 0.8
# the refinement rotates in the pictures' proportions when the two images' aspects agree this closely
_ASPECT_AGREE = 1.05
# sharpness matching (same place): a pair whose thumbnails' sharpness (high-pass energy over variance)
# differs by _SHARP_RATIO or more is scored again with the sharper one blurred to the other's sharpness
# (the sigma of _SHARP_SIGMAS that comes closest): a blurred copy lost the detail the band-pass compares
_SHARP_RATIO = 1.5
_SHARP_PENALTY = 0.05  # held this much higher: blurring both sides also brings look-alikes closer
_SHARP_SIGMAS = (0.5, 0.7, 1.0, 1.4, 2.0)
# colour rescoring (``score`` with ``colour``): a pair that came within _COLOUR_REACH of ``near`` (at
# near = 0.9; less nearer 1), or above it, without its grayscale score reaching it is scored again
# on value thumbnails, max(R, G, B), which a hue rotation keeps (the hue copies the cat suite missed
# scored -0.19 to 0.29 in grayscale and 0.99-1.00 in value); a grayscale copy keeps its grayscale
# score (its value is its luma)
_COLOUR_REACH = 0.2
_COLOUR_PENALTY = 0.06  # held this much higher: value thumbnails of two airplanes on blue skies agree more
_COLOUR_GAIN = 0.0  # and only pairs whose 8 x 8 value images correlate this much more than their grayscale


def _axis_matrices(scale: torch.Tensor, shift: torch.Tensor, flip: torch.Tensor | None,
                   size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample (n, size, size) bilinear sampling matrices of one axis and the valid-output mask.

    Output pixel i samples the input at (i + .5 - c - shift) / scale + c - .5 (c: the centre), mirrored
    when ``flip``: one matrix per axis applies zoom, translation and mirror in a single interpolation.
    """
    n = len(scale)
    out = torch.arange(size, dtype=torch.float32, device=scale.device)[None, :] + 0.5
    c = size / 2
    src = (out - c - shift[:, None]) / scale[:, None] + c - 0.5
    if flip is not None:
        src = torch.where(flip[:, None], (size - 1) - src, src)
    valid = (src >= -0.5) & (src <= size - 0.5)
    s = src.clamp(0, size - 1)
    if size <= _TENT_SIZE:
        # the weights as a tent around each source position (the same values): at the half-resolution
        # size the scatter below cost the CPU 60 % more (about 1.4 s of CIFAR-10's search), beyond it less
        cols = torch.arange(size, dtype=torch.float32, device=scale.device)
        return (1 - (s[:, :, None] - cols).abs_()).clamp_(min=0), valid
    lo = s.floor()
    frac = s - lo
    hi = (lo + 1).clamp(max=size - 1)
    m = torch.zeros(n, size, size, device=scale.device)
    m.scatter_add_(2, torch.stack([lo, hi], 2).long(), torch.stack([1 - frac, frac], 2))
    return m, valid


def spectrum(x: torch.Tensor) -> torch.Tensor:
    """Windowed zero-mean spectrum used by the phase correlation."""
    return torch.fft.rfft2((x - x.mean((1, 2), keepdim=True)) * hann_2d(x.shape[-1], x.device))


def _phase_shift(fa: torch.Tensor, b: torch.Tensor, max_shift: int,
                 rows_reach: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Sub-pixel translation (dy, dx) moving ``b`` onto the image of spectrum ``fa`` (phase
    correlation, parabolic peak fit)."""
    size = b.shape[-1]
    # cross-power spectrum in real arithmetic (torch's complex element-wise ops are ~5x slower on CPU)
    a_ri, b_ri = torch.view_as_real(fa), torch.view_as_real(spectrum(b))
    ar, ai, br, bi = a_ri[..., 0], a_ri[..., 1], b_ri[..., 0], b_ri[..., 1]
    re = ar * br + ai * bi
    im = ai * br - ar * bi
    norm = (re * re + im * im).sqrt_().add_(1e-3)
    cross = torch.complex(re / norm, im / norm)
    corr = torch.fft.irfft2(cross, s=(size, size))
    corr = torch.roll(corr, (max_shift, max_shift), (1, 2))
    span = 2 * max_shift + 1
    window = corr[:, :span, :span]
    if rows_reach is not None and bool((rows_reach < max_shift).any()):
        off = (torch.arange(span, device=corr.device) - max_shift).abs()
        far = (off[None, :, None] > rows_reach[:, None, None]) | (off[None, None, :] > rows_reach[:, None, None])
        window = window.masked_fill(far, float("-inf"))
    best = window.reshape(len(corr), -1).argmax(1)
    iy, ix = best // span, best % span
    n = torch.arange(len(corr), device=corr.device)
    c0 = corr[n, iy, ix]

    def vertex(minus: torch.Tensor, plus: torch.Tensor) -> torch.Tensor:
        den = minus - 2 * c0 + plus
        return torch.where(den.abs() > 1e-6, 0.5 * (minus - plus) / den, torch.zeros_like(den)).clamp(-0.5, 0.5)

    dy = (iy - max_shift).float() + vertex(corr[n, (iy - 1) % size, ix], corr[n, (iy + 1) % size, ix])
    dx = (ix - max_shift).float() + vertex(corr[n, iy, (ix - 1) % size], corr[n, iy, (ix + 1) % size])
    return dy, dx


def _information_adjusted(ncc: torch.Tensor, a: torch.Tensor, b: torch.Tensor, m: torch.Tensor,
                          n_ref: float = _N_REF) -> torch.Tensor:
    """Similarity held to a stricter standard when little of the overlap carries structure.

    n_eff, the participation ratio of the band-pass energy, counts the pixels that carry the
    comparison: hundreds for a textured photo, a few dozen for a small plane on a plain sky. Two
    different small planes can correlate at 0.9 on their silhouettes alone (measured on a one-class
    CIFAR-10 suite, where a planted copy of such an image still scores >= 0.96), so the distance
    1 - ncc is scaled by sqrt(_N_REF / n_eff) below _N_REF pixels.
    """
    e = (a * a + b * b) * m
    total = e.sum((1, 2))
    n_eff = total * total / (e * e).sum((1, 2)).clamp(min=1e-12)
    stretch = (n_ref / n_eff.clamp(min=1.0)).clamp(min=1.0).sqrt()
    return 1 - (1 - ncc) * stretch


def _ranks(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """Rank of each pixel among the pixels of its image where ``m`` is set (others rank below them)."""
    flat = torch.where(m > 0, x, torch.full_like(x, -1e9)).reshape(len(x), -1)
    order = flat.argsort(1)
    ranks = torch.empty_like(flat)
    ranks.scatter_(1, order, torch.arange(flat.shape[1], dtype=flat.dtype, device=flat.device).expand_as(flat).contiguous())
    return ranks.reshape(x.shape)


def _half(x: torch.Tensor) -> torch.Tensor:
    """2 x 2 means of (N, H, W) images (H, W even): ``avg_pool2d``'s values, summed in its order, at
    about half its cost on the CPU (a one-channel ``avg_pool2d`` took 1.4 s of MNIST's search)."""
    return (x[:, 0::2, 0::2] + x[:, 0::2, 1::2] + x[:, 1::2, 0::2] + x[:, 1::2, 1::2]) / 4


def _warped_overlap(level: "_Level", a: torch.Tensor, b: torch.Tensor, theta: torch.Tensor,
                    margin: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Images of ``b`` warped onto ``a`` by the affine maps ``theta``, and where both are compared:
    inside both contents and ``margin`` pixels clear of the frames (the refinement's judging)."""
    (warped, mb), inside = align.warp_stacks([level.images[b], level.mask(b)], theta, margin)
    return warped, (mb > 0.99).float() * inside.float() * level.mask(a)


def _layout(sa: torch.Tensor, sb: torch.Tensor, unclipped: torch.Tensor, mask: torch.Tensor,
            empty: float = 1.0) -> torch.Tensor:
    """Spearman correlation of the smoothed, aligned grayscale images over the unclipped overlap.

    Brightness, contrast, gamma, JPEG, resizing and grayscale conversion change an image's grey levels
    by one increasing map, so its smoothed version keeps the brightness order of the original (clipped
    pixels aside: a brightened sky saturates, so pixels at or next to 0/255 in either image are left
    out; when fewer than ``_LAYOUT_PIXELS`` are left there is nothing to judge and the result is ``empty``).
    The band-pass score does not see this order, and different photos of one silhouette (the same
    bomber on a sky lit another way) reach 0.9 there; their smooth layouts disagree. Ranked at half
    resolution: the smoothed images hold little more, and sorting 256 values instead of 1,024 keeps
    the check's cost small.
    """
    mask = (_half(mask) > 0.99).float()
    sa, sb = _half(sa), _half(sb)
    m = mask * (_half(unclipped) > 0.99).float()
    rho = _masked_ncc(_ranks(sa, m), _ranks(sb, m), m)[0]
    return torch.where(m.sum((1, 2)) >= _LAYOUT_PIXELS, rho, torch.full_like(rho, empty))


def _masked_ncc(a: torch.Tensor, b: torch.Tensor, m: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    count = m.sum((1, 2))
    n = count.clamp(min=1)
    ma = (a * m).sum((1, 2)) / n
    mb = (b * m).sum((1, 2)) / n
    da = (a - ma[:, None, None]) * m
    db = (b - mb[:, None, None]) * m
    den = (da.square().sum((1, 2)) * db.square().sum((1, 2))).sqrt()
    return (da * db).sum((1, 2)) / den.clamp(min=1e-6), count


def _erode_trimmed(boxes: torch.Tensor, size: int) -> torch.Tensor:
    """Shrink each content box by _EDGE pixels on the sides where fill was trimmed."""
    t, b, l, r = boxes.long().unbind(1)
    return torch.stack([torch.where(t > 0, t + _EDGE, t), torch.where(b < size, b - _EDGE, b),
                        torch.where(l > 0, l + _EDGE, l), torch.where(r < size, r - _EDGE, r)], 1)


def _content_masks(boxes: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """1 where a pixel is compared: inside the content box, eroded where fill was trimmed, and valid."""
    size = valid.shape[-1]
    return box_masks(_erode_trimmed(boxes, size), size) * valid


def _dark_edges(thumbs: np.ndarray, width: np.ndarray) -> np.ndarray:
    """(N, 4) pixels to leave out at the top, bottom, left and right of each thumbnail: ``width`` on
    the sides whose outermost ``width`` rows (columns) are markedly darker than the ones inside them.

    A shift's 1-2 px of black fill, scaled down to x0.5-x0.75, becomes a half-dark edge row that no
    content box trims, and it held such copies at 0.80-0.90 against their originals. Only dark sides:
    leaving out every side's edge also cost plain half-size copies their match (less area to compare)."""
    n, size = len(thumbs), thumbs.shape[-1]
    out = np.zeros((n, 4), np.int64)
    for i in np.flatnonzero((width >= 1) & (3 * width <= size)).tolist():
        w = int(width[i])
        t = thumbs[i]
        strips = [(t[:w], t[w:2 * w]), (t[-w:], t[-2 * w:-w]), (t[:, :w], t[:, w:2 * w]), (t[:, -w:], t[:, -2 * w:-w])]
        for side, (edge, inner) in enumerate(strips):
            if edge.mean() <= _DARK_EDGE * inner.mean():
                out[i, side] = w * _EDGE_RING
    return out


@lru_cache(maxsize=16)
def _blur_matrix(sigma: float, size: int, device: torch.device = torch.device("cpu")) -> torch.Tensor:
    """(size, size) Gaussian blur with replicated edges, as a matrix (one axis)."""
    radius = max(1, int(round(2 * sigma)))
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float64)
    k = torch.exp(-offsets ** 2 / (2 * sigma * sigma))
    k = k / k.sum()
    m = torch.zeros(size, size, dtype=torch.float64)
    rows = torch.arange(size)
    for o, w in zip(offsets.long(), k):
        m[rows, (rows + o).clamp(0, size - 1)] += w
    return m.float().to(device)


def _band(x: torch.Tensor, sigmas: tuple[float, float] = _BAND) -> torch.Tensor:
    """The difference-of-Gaussians band images are compared in (``_BAND`` at full resolution)."""
    return blur(x, sigmas[0]) - blur(x, sigmas[1])


def _unclipped(x: torch.Tensor) -> torch.Tensor:
    """1 where a grayscale pixel and its _CLIP_REACH neighbours are all clear of clipping (``_layout``)."""
    clipped = (x <= _CLIP[0]) | (x >= _CLIP[1])
    for _ in range(_CLIP_REACH):  # a (2 reach + 1)-square maximum filter: max_pool2d's, several times faster
        clipped = dilate(clipped)
    return (~clipped).float()


def _low_layout(la: torch.Tensor, lb: torch.Tensor, va: torch.Tensor, vb: torch.Tensor, onto_a,
                mask: torch.Tensor) -> torch.Tensor:
    """The layout check on min(R, G, B), the channel a brightened copy saturates last (``la``, ``lb``:
    uint8 rows; ``va``, ``vb``: their max(R, G, B); ``onto_a(planes, k=None)`` brings planes of b, of
    every row or of the rows ``k``, onto a).

    A brightened blue sky saturates its green and blue channels and not its red one: its grayscale
    stays under the clipping level, yet no longer follows the original's by one increasing map (two
    pixels of one grey and other hues brighten differently), while its red channel, and so its
    minimum, still does. On the second draw's tuning suites the grayscale check refused 3 of the 10
    missed copies cropped by 80-85 % and brightened x1.5 (Spearman 0.85-0.96, band-pass scores
    0.918-0.922 without the check). Only where a channel saturates in one image and not in the
    other over _LOW_SHARE of the overlap: those copies' shares were 0.45-0.86; without the condition
    the first draw's airplane suite reported six more pairs that count as false (five labelled
    different photos), whose shares were 0-0.26 where looked at. -1 elsewhere, and where too few
    pixels are clear of clipping in both (nothing to judge is no evidence here: the grayscale check
    has already failed)."""
    one_sided = ((va >= _CLIP[1]) ^ (onto_a(vb.float()) > _CLIP[1] - 0.5)).float() * mask
    order = torch.full((len(la),), -1.0, device=la.device)
    # ranked only where it applies: on CIFAR-10, 467 of the 15,831 rows the grayscale check refused (1 passed)
    rows = torch.nonzero(one_sided.sum((1, 2)) >= _LOW_SHARE * mask.sum((1, 2)).clamp(min=1))[:, 0]
    if len(rows) == 0:
        return order
    la, lb, mask = la[rows].float(), lb[rows].float(), mask[rows]
    clear = _unclipped(la) * (onto_a(_unclipped(lb), rows) > 0.99).float()
    order[rows] = _layout(blur(la, _LAYOUT_SIGMA), onto_a(blur(lb, _LAYOUT_SIGMA), rows), clear, mask, empty=-1.0)
    return order


def blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur with replicated edges, as two small matrix products (a 1-channel
    conv2d is ~50x slower on CPU)."""
    m = _blur_matrix(float(sigma), x.shape[-1], x.device)
    return m @ x @ m.T


def _best_rows(rows: np.ndarray, a: np.ndarray, b: np.ndarray, score: np.ndarray, done: np.ndarray) -> np.ndarray:
    """Of ``rows``, the best-scoring hypothesis of each pair (a, b) that no ``done`` row already verified."""
    if len(rows) == 0:
        return rows
    verified = set(zip(a[done].tolist(), b[done].tolist()))
    rows = rows[np.lexsort((-score[rows], b[rows], a[rows]))]
    first = np.r_[True, (a[rows][1:] != a[rows][:-1]) | (b[rows][1:] != b[rows][:-1])]
    return np.array([r for r in rows[first] if (int(a[r]), int(b[r])) not in verified], np.int64)


def _degrade(first: np.ndarray, second: np.ndarray, first_sharper: np.ndarray, second_sharper: np.ndarray,
             target: np.ndarray, how) -> None:
    """In place: the sharper thumbnail of each marked row degraded by ``how(thumbs, target)``."""
    for images, rows in ((first, np.flatnonzero(first_sharper)), (second, np.flatnonzero(second_sharper))):
        if len(rows):
            images[rows] = how(images[rows], target[rows])


def _resample(thumbs: np.ndarray, sides: np.ndarray) -> np.ndarray:
    """Each thumbnail down to its ``sides`` pixels (antialiased) and back up to THUMB."""
    out = torch.from_numpy(np.ascontiguousarray(thumbs))
    for size in np.unique(sides):
        rows = torch.as_tensor(np.flatnonzero(sides == size))
        small = torch.nn.functional.interpolate(out[rows][:, None], size=(int(size), int(size)), mode="bilinear",
                                                antialias=True, align_corners=False)
        out[rows] = torch.nn.functional.interpolate(small, size=(THUMB, THUMB), mode="bilinear",
                                                    align_corners=False)[:, 0]
    return out.numpy()


def _sharpness(thumbs: np.ndarray) -> np.ndarray:
    """High-pass energy over variance of each thumbnail: lower for a blurred or low-resolution image."""
    def of(x: torch.Tensor) -> tuple[torch.Tensor]:
        high = x - blur(x, 1.0)
        return (high * high).mean((1, 2)) / (x.var((1, 2)) + 1.0),

    # a slice of rows at a time: MNIST's 75,632 pairs near the threshold made 1.5 GB of temporaries at once
    return _numpy(by_rows(of, torch.from_numpy(np.ascontiguousarray(thumbs, dtype=np.float32)))[0])


def _blur_to(thumbs: np.ndarray, sharpness: np.ndarray) -> np.ndarray:
    """Each thumbnail blurred by the sigma of _SHARP_SIGMAS whose result's sharpness is closest to ``sharpness``."""
    x = torch.from_numpy(np.ascontiguousarray(thumbs, dtype=np.float32))
    tried = torch.stack([blur(x, s) for s in _SHARP_SIGMAS])  # sigmas, n, H, W
    got = np.stack([_sharpness(t.numpy()) for t in tried])
    pick = np.abs(np.log(got + 1e-9) - np.log(np.asarray(sharpness)[None] + 1e-9)).argmin(0)
    return tried[torch.as_tensor(pick), torch.arange(len(x))].numpy()


def _numpy(x: torch.Tensor) -> np.ndarray:
    return x.cpu().numpy()


def _unit_rows(x: torch.Tensor) -> torch.Tensor:
    x = x.reshape(len(x), -1)
    x = x - x.mean(1, keepdim=True)
    return x / x.norm(dim=1, keepdim=True).clamp(min=1e-6)


class _Level:
    """Band-passed images, content masks and content areas at one resolution (rows: ``ids``)."""

    def __init__(self, images: torch.Tensor, masks: torch.Tensor, keep_spectra: bool,
                 ids: torch.Tensor | None = None, total: int = 0, smooth: torch.Tensor | None = None,
                 unclipped: torch.Tensor | None = None) -> None:
        self.images = images.contiguous()
        # full resolution only: smoothed grayscale and its unclipped pixels, for the layout check
        self.smooth = smooth
        # 0/1 planes as given: the full-resolution level's are booleans, made floats a batch at a time
        # (``mask``, ``clear``; a quarter of the memory, 375 MB less on CIFAR-10), the half-resolution
        # level's floats (as booleans they would be converted in every batch of its 1.4 million
        # hypotheses, to save 47 MB)
        self._unclipped = unclipped
        self._masks = masks.contiguous()
        self.area = masks.sum((1, 2), dtype=torch.float32).clamp(min=1)
        self.size = images.shape[-1]
        # spectra of every image, computed once: each image is the fixed side of many hypotheses; a
        # slice of rows at a time (``by_rows``: the whole set's zero-mean, windowed copies were 120 MB
        # of temporaries on CIFAR-10)
        self.spectra = by_rows(lambda x: (spectrum(x),), self.images)[0] if keep_spectra else None
        self.row = None  # global index -> row, when only some images are held
        self.ids = ids  # row -> global index (None: every image, in order)
        if ids is not None:
            self.row = torch.full((total,), -1, dtype=torch.long, device=ids.device)
            self.row[ids] = torch.arange(len(ids), device=ids.device)

    def rows(self, idx: torch.Tensor) -> torch.Tensor:
        return idx if self.row is None else self.row[idx]

    def mask(self, rows: torch.Tensor) -> torch.Tensor:
        """The content masks of these rows (1 inside, 0 outside), as floats."""
        return self._masks[rows].float()  # no copy when held as floats

    def clear(self, rows: torch.Tensor) -> torch.Tensor:
        """1 where these rows' pixels are clear of clipping (full resolution only)."""
        return self._unclipped[rows].float()


class Verifier:
    """Scores alignment hypotheses for pairs of one set of thumbnails (prepared once)."""

    def __init__(self, thumbs: np.ndarray, boxes: np.ndarray, max_shift: float, min_overlap: float,
                 layout_from: float = -1.0, layout_min: float = 0.97, refine: bool = True,
                 device: torch.device | str = "cpu", sides: np.ndarray | None = None, match: bool = True,
                 colour: np.ndarray | None = None, batch: int | None = None,
                 aspects: np.ndarray | None = None, holes: np.ndarray | None = None, deep: bool = False,
                 low: np.ndarray | None = None, value: np.ndarray | None = None) -> None:
        """``layout_from``: the full-resolution score from which the layout check applies (the lowest
        threshold the scores will be held to; below it a pair is not kept whatever the check says).
        ``device``: where the images are held and compared (the scores come back as numpy arrays).
        ``sides``: each image's shorter side as decoded, pixels (None: no resolution matching).
        ``match``: score pairs that lost different amounts of detail again (``_matched_scores``).
        ``colour``: value thumbnails of the same images (colour data), for the colour rescoring.
        ``batch``: hypothesis rows per step (None: by device); every row's score is the same whatever it is.
        ``aspects``: each image's width over height as decoded (None: square), for the refinement's rotations.
        ``holes``: (N, H, W) 1 where an image is to be left out of every comparison (and inpainted), as
        a rotation's black corners are (``occlusion``: an overlay's region).
        ``deep``: hypotheses zoomed past ``_DEEP_ZOOM`` come from the deep-crop search
        (``thresholds.crop_zoom``): verify them in the crop's frame (``_crop_score``) with the
        translation reach such a crop needs (off: every hypothesis verified as by the usual search,
        with no work for it per batch).
        ``low``: min(R, G, B) thumbnails of the same images (colour data), for a second layout check
        (``_low_layout``), and ``value`` their max(R, G, B) (default ``colour``), which tells where it applies."""
        self.device = torch.device(device)
        self.batch = batch or _BATCH * (_GPU_BATCH_FACTOR if self.device.type == "cuda" else 1)
        self.thumbs = np.asarray(thumbs, dtype=np.float32)
        self.box_rows = np.asarray(boxes)
        self.sides = None if sides is None else np.asarray(sides, dtype=np.int64)
        # all square (CIFAR-10, MNIST): the refinement's rotations need no aspect (no work per step for it)
        square = aspects is None or bool(np.all(np.asarray(aspects) == 1))
        self.aspects = None if square else torch.as_tensor(np.asarray(aspects, np.float32), device=self.device)
        self.match = match
        self.deep = deep
        self.settings = (max_shift, min_overlap, layout_from, layout_min)
        t = torch.from_numpy(np.ascontiguousarray(thumbs, dtype=np.float32)).to(self.device)
        self.boxes = torch.from_numpy(np.asarray(boxes, dtype=np.int64)).to(self.device)
        size = t.shape[-1]
        half = size // 2
        # band-pass and 2x2 average in one pair of matrix products per image
        pool = torch.zeros(half, size, device=self.device)
        rows = torch.arange(half, device=self.device)
        pool[rows, 2 * rows] = 0.5
        pool[rows, 2 * rows + 1] = 0.5
        lo, hi = pool @ _blur_matrix(_BAND[0], size, self.device), pool @ _blur_matrix(_BAND[1], size, self.device)

        # the filled images and valid planes differ from the thumbnails and from all-valid only where
        # an image has fill or holes (a few % of CIFAR-10's rows): those rows alone are held
        # (``_filled``, ``_valid``). Held for every row, with the unit rows of the quick score (now made
        # a batch at a time), they were 375 MB: the set-up's page faults on CIFAR-10 went from 136,000
        # to 73,000, and on the 2-core machine a fresh page can cost 50 us (``by_rows``). The rows are
        # written in order as found into arrays of every row's size, whose rows never written cost no
        # memory (joined at the end, MNIST's, nearly every row, were held twice for a moment)
        patch_filled, patch_valid = torch.empty_like(t), torch.empty(t.shape, dtype=torch.bool, device=self.device)
        patched: list[torch.Tensor] = []
        seen = [0, 0]  # rows prepared, rows patched

        def prepared(x: torch.Tensor, box: torch.Tensor, *hole: torch.Tensor) -> tuple[torch.Tensor, ...]:
            # a rotated copy's fill corners: inpainted, and left out of every comparison
            corners = corner_fill(x)
            if hole:
                corners = torch.maximum(corners, hole[0])
            filled = inpaint(fill_outside(x, box), corners)
            valid = ~dilate(corners > 0)
            changed = torch.nonzero((filled != x).flatten(1).any(1) | ~valid.flatten(1).all(1))[:, 0]
            at, k = seen[1], len(changed)
            patch_filled[at:at + k], patch_valid[at:at + k] = filled[changed], valid[changed]
            patched.append(changed + seen[0])
            seen[0], seen[1] = seen[0] + len(x), at + k
            band = lo @ filled @ lo.T - hi @ filled @ hi.T
            mask = _content_masks(box, valid)
            coarse_mask = (_half(mask) > 0.99).float()
            small = _half(filled)  # affine refinement
            return band, coarse_mask, small

        extra = () if holes is None else (torch.from_numpy(np.asarray(holes, np.float32)).to(self.device),)
        # a slice of rows at a time (``by_rows``): the same arrays; on CIFAR-10 its peak 0.9 GB lower, 55 % fewer page faults
        band, coarse_mask, self.small = by_rows(prepared, t, self.boxes, *extra)
        self._images = t
        changed = torch.cat(patched)
        self._patch_filled, self._patch_valid = patch_filled[:seen[1]], patch_valid[:seen[1]]
        self._patch_at = torch.full((len(t),), -1, dtype=torch.long, device=self.device)
        self._patch_at[changed] = torch.arange(len(changed), device=self.device)
        self.coarse = _Level(band, coarse_mask, keep_spectra=True)
        self.max_shift = max_shift
        self.min_overlap = min_overlap
        self.layout_from = layout_from
        self.layout_min = layout_min  # 0: no layout check
        self.refine = refine
        self._colour_thumbs = colour
        self._low, self._value = low, (colour if value is None else value)
        # the search's own arrays on the CPU (no copies)
        self.low = None if low is None or self._value is None else torch.from_numpy(np.asarray(low)).to(self.device)
        self.value = None if self.low is None else torch.from_numpy(np.asarray(self._value)).to(self.device)

    def _checked_on_low(self, order: torch.Tensor, could: torch.Tensor | None, ga: torch.Tensor, gb: torch.Tensor,
                        onto_a, mask: torch.Tensor) -> torch.Tensor:
        """The layout check's ``order`` with the rows it refused (those of them ``could`` count, None:
        all) checked again on the min channel (``_low_layout``); ``ga``, ``gb``: the rows' images (global
        indices); ``onto_a(planes, k)`` brings planes of b of the rows ``k`` onto a."""
        refused = order < self.layout_min
        again = torch.nonzero(refused if could is None else refused & could)[:, 0]
        if self.low is None or len(again) == 0:
            return order
        ia, ib = ga[again], gb[again]
        low = _low_layout(self.low[ia], self.low[ib], self.value[ia], self.value[ib],
                          lambda x, k=None: onto_a(x, again if k is None else again[k]), mask[again])
        order = order.clone()
        order[again] = torch.maximum(order[again], low)
        return order

    def _t(self, x: np.ndarray, dtype: torch.dtype | None = None) -> torch.Tensor:
        """An index or parameter array as a tensor on the verifier's device."""
        return torch.as_tensor(x, dtype=dtype, device=self.device)

    def _patched(self, idx: torch.Tensor, plain: torch.Tensor, patch: torch.Tensor) -> torch.Tensor:
        """``plain`` (rows ``idx``) with the rows that have a patch replaced by it."""
        at = self._patch_at[idx]
        own = torch.nonzero(at >= 0)[:, 0]
        if len(own):
            plain[own] = patch[at[own]]
        return plain

    def _filled(self, idx: torch.Tensor) -> torch.Tensor:
        """These rows' thumbnails with their fill and holes filled in (``fill_outside``, ``inpaint``)."""
        return self._patched(idx, self._images[idx], self._patch_filled)

    def _valid(self, idx: torch.Tensor) -> torch.Tensor:
        """True where these rows' pixels are compared (not in or next to a hole or a rotation's corners)."""
        plain = torch.ones((len(idx),) + self._images.shape[1:], dtype=torch.bool, device=self.device)
        return self._patched(idx, plain, self._patch_valid)

    def _fine_level(self, needed: np.ndarray) -> _Level:
        """Full-resolution band-passed images of the images some surviving hypothesis needs."""
        ids = self._t(np.unique(needed))

        def prepared(rows: torch.Tensor) -> tuple[torch.Tensor, ...]:
            x = self._filled(rows)
            mask = _content_masks(self.boxes[rows], self._valid(rows))
            return _band(x), mask > 0.5, blur(x, _LAYOUT_SIGMA), _unclipped(x) > 0.5  # 0/1 planes as booleans

        band, mask, smooth, unclipped = by_rows(prepared, ids)
        return _Level(band, mask, keep_spectra=False, ids=ids, total=len(self._images), smooth=smooth,
                      unclipped=unclipped)

    def _translation(self, level: _Level, a: torch.Tensor, b: torch.Tensor, flip: torch.Tensor,
                     scale: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Translation (dy, dx) that moves b, mirrored and magnified as hypothesised, onto a (level rows)."""
        size = level.size
        reach, rows_reach = max(1, int(round(self.max_shift * size))), None
        if self.deep and len(scale):
            # a deep crop's centre sits further from its original's: the reach grows with its zoom (a
            # copy keeping 70 % of each side is up to 15 % of a side off centre, 22 % once magnified);
            # hypotheses of the usual search (zoom <= 1.2, refined by 4.5 %) keep theirs
            zoomed = torch.maximum(scale, 1.0 / scale)
            deep = torch.where(zoomed > _DEEP_ZOOM, zoomed / 1.2, torch.ones_like(zoomed))
            rows_reach = torch.clamp(torch.round(self.max_shift * size * deep), min=1).long()
            reach = int(rows_reach.max())
        zero = torch.zeros(len(a), device=a.device)
        my, _ = _axis_matrices(scale, zero, None, size)
        mx, _ = _axis_matrices(scale, zero, flip, size)
        fa = level.spectra[a] if level.spectra is not None else spectrum(level.images[a])
        return _phase_shift(fa, my @ level.images[b] @ mx.transpose(1, 2), reach, rows_reach)

    def _score(self, level: _Level, a: torch.Tensor, b: torch.Tensor, flip: torch.Tensor,
               scale: torch.Tensor) -> torch.Tensor:
        size = level.size
        a, b = level.rows(a), level.rows(b)
        ia = level.images[a]
        ib = level.images[b]
        dy, dx = self._translation(level, a, b, flip, scale)
        my, vy = _axis_matrices(scale, dy, None, size)
        mx, vx = _axis_matrices(scale, dx, flip, size)
        warped = my @ ib @ mx.transpose(1, 2)
        mask = (my @ level.mask(b) @ mx.transpose(1, 2)) > 0.99
        mask = (mask & vy[:, :, None] & vx[:, None, :]).float() * level.mask(a)
        mt = mx.transpose(1, 2)
        least = None
        if self.deep:
            # a crop keeping 1/z of each side shares 1/z^2 of its original (0.49 for 70 %, under
            # min_overlap): deep crops need 90 % of that; the usual search's hypotheses keep min_overlap
            zoomed = torch.maximum(scale, 1.0 / scale)
            least = torch.where(zoomed > _DEEP_ZOOM, torch.clamp(0.9 / (zoomed * zoomed), max=self.min_overlap),
                                torch.full_like(zoomed, self.min_overlap))
        return self._judge(level, a, b, ia, warped, mask, lambda x, r: my[r] @ x @ mt[r], least=least)

    def _judge(self, level: _Level, a, b, ia, ib, mask, align=None, n_ref: float = _N_REF,
               least: torch.Tensor | None = None) -> torch.Tensor:
        """Masked correlation, -1 below the minimum overlap; at full resolution adjusted for how much
        structure the overlap holds (``_information_adjusted``), and -1 where a score of at least
        ``layout_from`` comes with smoothed images that do not keep one brightness order (``_layout``).
        ``align(images, rows)`` brings full-resolution images of ``b`` onto ``a`` as for those rows."""
        ncc, count = _masked_ncc(ia, ib, mask)
        if level.row is not None:
            ncc = _information_adjusted(ncc, ia, ib, mask, n_ref)
            r = torch.nonzero(ncc >= self.layout_from)[:, 0]
            if len(r) and self.layout_min > 0 and align is not None and level.smooth is not None:
                ra, rb = a[r], b[r]
                unclipped = level.clear(ra) * (align(level.clear(rb), r) > 0.99).float()
                order = _layout(level.smooth[ra], align(level.smooth[rb], r), unclipped, mask[r])
                order = self._checked_on_low(order, None, level.ids[ra], level.ids[rb], lambda x, k: align(x, r[k]),
                                             mask[r])
                ncc[r] = torch.where(order >= self.layout_min, ncc[r], torch.full_like(order, -1.0))
        overlap = count / torch.minimum(level.area[a], level.area[b])
        return torch.where(overlap >= (self.min_overlap if least is None else least), ncc, torch.full_like(ncc, -1.0))

    def score(self, a: np.ndarray, b: np.ndarray, flip: np.ndarray, scale: np.ndarray, aligned: np.ndarray,
              near: float, refinable: np.ndarray | None = None) -> np.ndarray:
        """Similarity per hypothesis row: b (mirrored if ``flip``, magnified by ``scale``) against a;
        rows with ``aligned`` False are compared as they are (no translation search). Only rows
        marked ``refinable`` (default all) may get the affine refinement."""
        n = len(a)
        out = np.full(n, -1.0, np.float32)
        ta, tb, tf = (self._t(x) for x in (a, b, flip))
        # half resolution first: as-is rows by a dot product, aligned rows by the full alignment
        quick = np.full(n, -1.0, np.float32)
        plain = np.flatnonzero(~aligned)
        for s in range(0, len(plain), self.batch):  # 1 MB temporaries (each process's fresh memory: ``by_rows``)
            rows = plain[s:s + self.batch]
            r = self._t(rows)
            other = self.coarse.images[tb[r]]
            other = _unit_rows(torch.where(tf[r, None, None], other.flip(-1), other))
            quick[rows] = _numpy((_unit_rows(self.coarse.images[ta[r]]) * other).sum(1))
        quick = np.maximum(quick, self._batched(self.coarse, a, b, flip, scale, np.flatnonzero(aligned)))
        # the half-resolution score tracks the full one less closely than the margin at low thresholds;
        # near 1 (look-alike datasets) both are close to 1 and a narrower margin keeps the work small
        margin = float(np.clip(_COARSE_MARGIN * (1 - near) / 0.15, 0.03, _COARSE_MARGIN))
        out = self.fine_scores(a, b, flip, scale, aligned, np.flatnonzero(quick >= near - margin), out, near=near)
        if self.match:
            np.maximum(out, self._matched_scores(a, b, flip, scale, aligned, out, near, quick, refinable), out=out)
        if self._colour_thumbs is not None:
            np.maximum(out, self._colour_scores(a, b, flip, scale, aligned, np.where(out > -1, out, quick), near,
                                                refinable, out >= near), out=out)
        # pairs that came close without reaching ``near``: the best hypothesis of each, refined
        reach = float(np.clip(_REFINE_REACH * (1 - near) / 0.1, 0.0, _REFINE_REACH)) if self.refine else 0.0
        best = np.where(out > -1, out, quick)
        wanted = (best >= near - reach) & (best < near)
        if refinable is not None:
            wanted &= refinable
        close = np.flatnonzero(wanted) if reach > 0 else np.zeros(0, np.int64)
        if len(close):
            todo = _best_rows(close, a, b, best, out >= near)
            # the refinement fits four more parameters, and lifts look-alikes too: its score is held
            # _REFINE_PENALTY higher (measured on the airplane suite: 8 pairs of different photos
            # reached 0.92-0.98 refined, the rotated copies mostly 0.93-0.99)
            np.maximum(out, self.refined_scores(a, b, flip, scale, todo, near) - _REFINE_PENALTY, out=out)
        if reach > 0:  # still below: an overlay's copy matches without one region (a corner, a band)
            best = np.where(out > -1, out, quick)
            np.maximum(out, self._occluded_scores(a, b, flip, scale, aligned, best, near, reach, refinable,
                                                  out >= near), out=out)
        return out

    def _colour_scores(self, a: np.ndarray, b: np.ndarray, flip: np.ndarray, scale: np.ndarray,
                       aligned: np.ndarray, best: np.ndarray, near: float, refinable: np.ndarray | None,
                       done: np.ndarray) -> np.ndarray:
        """Full-resolution scores on the value thumbnails (others -1), held _COLOUR_PENALTY higher, of
        the best hypothesis of each pair that came within _COLOUR_REACH of ``near`` and that no row
        reached yet (``best`` is the half-resolution score where the grayscale one was refused outright:
        a hue rotation reorders the grayscale layout, and the layout check refused most hue copies
        the cat suite still missed, at half-resolution scores above ``near``);
        only ``refinable`` rows (the pairs the refinement may take: between splits), as scoring is the
        costly part (the gate refuses on pairs between splits; pairs within a split are only reported)."""
        out = np.full(len(a), -1.0, np.float32)
        reach = float(np.clip(_COLOUR_REACH * (1 - near) / 0.1, 0.0, _COLOUR_REACH))
        wanted = (best >= near - reach) & ~done
        if refinable is not None:
            wanted &= refinable
        todo = _best_rows(np.flatnonzero(wanted), a, b, best, done)
        todo = todo[self._value_agrees_more(a[todo], b[todo], flip[todo])]
        if len(todo) == 0:
            return out
        # a verifier of the images these rows name only (preparing all of them cost more than scoring)
        images, pair = np.unique(np.r_[a[todo], b[todo]], return_inverse=True)
        colour = self._plain_verifier(self._colour_thumbs[images], self.box_rows[images])
        k = len(todo)
        log.debug("colour rescoring: %d pairs, %d images", k, len(images))
        out[todo] = colour.fine_scores(pair[:k], pair[k:], flip[todo], scale[todo], aligned[todo], np.arange(k))
        return np.where(out > -1, out - _COLOUR_PENALTY, out)

    def _plain_verifier(self, images: np.ndarray, boxes: np.ndarray, holes: np.ndarray | None = None,
                        of: np.ndarray | None = None) -> "Verifier":
        """A verifier of other images (a pair's images changed for a rescoring) with this one's settings,
        device and batch, and none of the rescorings (no refinement, no resolution matching). ``of``:
        the rows of this verifier the images were made from (their min-channel layout stays known)."""
        low = None if of is None or self.low is None else np.asarray(self._low)[of]
        value = None if low is None else np.asarray(self._value)[of]
        return Verifier(images, boxes, *self.settings, refine=False, device=self.device, match=False, deep=self.deep,
                        batch=self.batch, holes=holes, low=low, value=value)

    def _occluded_scores(self, a: np.ndarray, b: np.ndarray, flip: np.ndarray, scale: np.ndarray,
                         aligned: np.ndarray, best: np.ndarray, near: float, reach: float,
                         refinable: np.ndarray | None, done: np.ndarray) -> np.ndarray:
        """Full-resolution scores (others -1), held ``occlusion.PENALTY`` higher, of the best unzoomed
        hypothesis of each pair within ``reach`` of ``near`` that no row verified (``done``), with one of
        ``occlusion.regions`` inpainted and left out of both images (the best of the six): a copy
        with a caption or a logo drawn over it matches its original everywhere else. Only pairs
        whose 8 x 8 grids agree at ``occlusion.GRID_AGREE`` outside one region are scored, and only
        ``refinable`` rows (between splits), as the refinement's."""
        out = np.full(len(a), -1.0, np.float32)
        # not ``best < near``: a copy whose full-resolution score was refused outright (an overlay
        # reorders the layout the check ranks) keeps its half-resolution score, often above ``near``
        wanted = (best >= near - reach) & ~done & (np.abs(np.log(scale)) < 0.01)
        if refinable is not None:
            wanted &= refinable
        todo = _best_rows(np.flatnonzero(wanted), a, b, best, done)
        if len(todo) == 0:
            return out
        todo = todo[occlusion.agree_outside(self.thumbs[a[todo]], self.thumbs[b[todo]], flip[todo])
                    >= occlusion.GRID_AGREE]
        if len(todo) == 0:
            return out
        m = len(todo)
        log.debug("occlusion rescoring: %d pairs", m)
        images = np.concatenate([self.thumbs[a[todo]], self.thumbs[b[todo]]])
        boxes = np.concatenate([self.box_rows[a[todo]], self.box_rows[b[todo]]])
        rows = np.arange(m)
        scores = np.full(m, -1.0, np.float32)
        for region in occlusion.regions(self.thumbs.shape[-1]):
            # the region in each image's own frame: mirrored for the mirrored side of the pair
            second = np.where(flip[todo][:, None, None], region[None, :, ::-1], region[None])
            holes = np.concatenate([np.broadcast_to(region, second.shape), second])
            pairwise = self._plain_verifier(images, boxes, holes, of=np.r_[a[todo], b[todo]])
            np.maximum(scores, pairwise.score(rows, rows + m, flip[todo], scale[todo], aligned[todo], near),
                       out=scores)
        out[todo] = np.where(scores > -1, scores - occlusion.PENALTY, -1.0)
        return out

    def _value_agrees_more(self, a: np.ndarray, b: np.ndarray, flip: np.ndarray) -> np.ndarray:
        """Whether each pair's 8 x 8 value images correlate _COLOUR_GAIN more than their grayscale
        ones: a hue-rotated copy's do (its grayscale changed, its value did not), two look-alikes'
        mostly do not. A cheap filter: on CIFAR-10, 34,105 close pairs between splits would be scored
        again at full resolution without it."""
        if len(a) == 0:
            return np.zeros(0, bool)
        images, pair = np.unique(np.r_[a, b], return_inverse=True)
        first, second = torch.from_numpy(pair[:len(a)]), torch.from_numpy(pair[len(a):])
        mirrored = torch.from_numpy(flip)[:, None, None]

        def corr(thumbs: np.ndarray) -> np.ndarray:
            t = torch.from_numpy(np.ascontiguousarray(thumbs, dtype=np.float32))
            small = torch.nn.functional.adaptive_avg_pool2d(t[:, None], 8)[:, 0]
            other = torch.where(mirrored, small[second].flip(-1), small[second])
            return (_unit_rows(small[first]) * _unit_rows(other)).sum(1).numpy()

        return corr(self._colour_thumbs[images]) >= corr(self.thumbs[images]) + _COLOUR_GAIN

    def _matched_scores(self, a: np.ndarray, b: np.ndarray, flip: np.ndarray, scale: np.ndarray,
                        aligned: np.ndarray, score: np.ndarray, near: float, quick: np.ndarray | None = None,
                        refinable: np.ndarray | None = None) -> np.ndarray:
        """Scores of pairs whose images lost different amounts of detail, the sharper one degraded first.

        A copy saved at half size, or blurred, lost the detail its original keeps, and the band-pass
        compares that detail: on the CIFAR-10 suites a copy scaled to x0.5 scored 0.93-0.98 against its
        original, 0.99-1.00 against the original scaled down and up the same way. Pairs within
        _MATCH_REACH of ``near``: saved at different resolutions (``sides``), the sharper thumbnail goes
        down to the other's resolution and back; otherwise, when their sharpness differs by
        _SHARP_RATIO, the sharper one is blurred to the other's. -1 for every other row.

        With ``quick`` (the half-resolution scores), also the pairs refused outright at full resolution
        (-1) whose half-resolution score reached ``near``: the layout check refuses some copies blurred
        or saved smaller, whose finer detail no longer ranks as the original's, and passes them once
        the sharper side lost the same detail (gate version 18: over the four suite runs 12 rows up,
        none down, no false pair more, CIFAR-10's pairs unchanged). Only ``refinable`` rows (between
        splits), as the colour rescoring's."""
        out = np.full(len(a), -1.0, np.float32)
        close, done = (score >= near - _MATCH_REACH) & (score < near), score >= near
        if quick is not None:
            refused = (score == -1) & (quick >= near)
            if refinable is not None:
                refused &= refinable
            close |= refused
            score = np.where(refused, quick, score)
        todo = _best_rows(np.flatnonzero(close), a, b, score, done)
        if len(todo) == 0:
            return out
        first, second = self.thumbs[a[todo]], self.thumbs[b[todo]]  # the pair as hypothesised
        changed = np.zeros(len(todo), bool)
        if self.sides is not None:
            sa, sb = np.minimum(self.sides[a[todo]], THUMB), np.minimum(self.sides[b[todo]], THUMB)
            apart = np.maximum(sa, sb) >= _MATCH_RATIO * np.minimum(sa, sb)
            _degrade(first, second, apart & (sa > sb), apart & (sa < sb), np.minimum(sa, sb), _resample)
            changed |= apart
        sharp_a, sharp_b = _sharpness(first), _sharpness(second)
        ratio = np.maximum(sharp_a, sharp_b) / np.maximum(np.minimum(sharp_a, sharp_b), 1e-6)
        # look-alike datasets (``near`` raised towards 1, MNIST): the reach narrows as the refinement's does;
        # at the full reach MNIST sent 12,926 pairs of different digits through it for nothing (5 s)
        reach = float(np.clip(_MATCH_REACH * (1 - near) / 0.1, 0.0, _MATCH_REACH))
        blurry = ~changed & (ratio >= _SHARP_RATIO) & (score[todo] >= near - reach)
        target = np.minimum(sharp_a, sharp_b)
        _degrade(first, second, blurry & (sharp_a > sharp_b), blurry & (sharp_a < sharp_b), target, _blur_to)
        changed |= blurry
        todo, first, second, blurred = todo[changed], first[changed], second[changed], blurry[changed]
        if len(todo) == 0:
            return out
        m = len(todo)
        images = np.concatenate([first, second])
        boxes = np.concatenate([self.box_rows[a[todo]], self.box_rows[b[todo]]])
        if self.sides is not None:
            small = np.where((sa <= sb)[changed], a[todo], b[todo])  # the copy saved smaller
            width = np.ceil(THUMB / np.minimum(sa, sb)[changed]).astype(np.int64) * ~blurred
            ring = _dark_edges(self.thumbs[small], width)
            boxes = boxes.astype(np.int64) + np.r_[ring, ring] * np.array([1, -1, 1, -1])
        pairwise = self._plain_verifier(images, boxes, of=np.r_[a[todo], b[todo]])
        rows = np.arange(m)
        out[todo] = pairwise.score(rows, rows + m, flip[todo], scale[todo], aligned[todo], near)
        out[todo[blurred]] -= _SHARP_PENALTY
        return out

    def fine_scores(self, a: np.ndarray, b: np.ndarray, flip: np.ndarray, scale: np.ndarray, aligned: np.ndarray,
                    todo: np.ndarray, out: np.ndarray | None = None, near: float | None = None) -> np.ndarray:
        """Full-resolution similarity of the hypothesis rows ``todo`` (others: -1, or as in ``out``).
        With ``near``: rows whose best zoom comes within _VERTEX_REACH of it without reaching it are
        scored once more at the zoom where a parabola through their three zooms' scores peaks."""
        out = np.full(len(a), -1.0, np.float32) if out is None else out
        if len(todo) == 0:
            return out
        fine = self._fine_level(np.r_[a[todo], b[todo]])
        as_is = todo[~aligned[todo]]
        for s in range(0, len(as_is), self.batch):
            r = as_is[s:s + self.batch]
            out[r] = _numpy(self._as_is(fine, self._t(a[r]), self._t(b[r]), self._t(flip[r])))
        search = todo[aligned[todo]]
        # the hypothesis' zoom is on a grid; the copy's zoom lies between
        around = [self._batched(fine, a, b, flip, scale * refine, search) for refine in _SCALE_REFINE]
        for x in around:
            np.maximum(out, x, out=out)
        if near is not None and len(search):
            # counted only where it reaches ``near``: a higher score that still misses it would change which
            # hypothesis of a pair the rescorings take, and nothing else
            peak = self._vertex_scores(fine, a, b, flip, scale, search, [x[search] for x in around], near)
            np.maximum(out, np.where(peak >= near, peak, -1.0), out=out)
        return out

    def _vertex_scores(self, level: _Level, a, b, flip, scale, rows: np.ndarray, around: list[np.ndarray],
                       near: float) -> np.ndarray:
        """Scores (others -1) at the peak of a parabola through each row's scores at the three zooms of
        _SCALE_REFINE, for the rows whose best of the three is within _VERTEX_REACH below ``near``.

        A crop's zoom is any number, and its score falls fast away from it: on the second draw's tuning
        suites, two copies cropped by 85 % and brightened x1.5 scored 0.906 and 0.915 at a zoom midway
        between two of the three (0.815, against 0.797 and 0.833) and under 0.9 at them. The affine
        refinement would find that zoom, but it fits four more parameters and its score is held
        _REFINE_PENALTY higher; this fits the one parameter already searched."""
        out = np.full(len(a), -1.0, np.float32)
        lo, mid, hi = around
        best = np.maximum(np.maximum(lo, mid), hi)
        den = lo - 2 * mid + hi
        wanted = (best >= near - _VERTEX_REACH) & (best < near) & (np.minimum(np.minimum(lo, mid), hi) > -1) & (den < 0)
        rows, lo, hi, den = rows[wanted], lo[wanted], hi[wanted], den[wanted]
        # the peak's offset in steps of the zoom grid, at most half a step beyond the outer zooms
        at = np.clip(0.5 * (lo - hi) / den, -1.5, 1.5)
        new = np.min(np.abs(at[:, None] - np.array([-1.0, 0.0, 1.0])[None]), 1) >= _VERTEX_NEW
        rows, at = rows[new], at[new]
        if len(rows) == 0:
            return out
        zoom = scale.astype(np.float32).copy()
        zoom[rows] = scale[rows] * np.exp(at * math.log(_SCALE_REFINE[2]))
        return self._batched(level, a, b, flip, zoom, rows)

    def _as_is(self, level: _Level, a: torch.Tensor, b: torch.Tensor, flip: torch.Tensor) -> torch.Tensor:
        a, b = level.rows(a), level.rows(b)
        ib, mb = level.images[b], level.mask(b)
        f = flip[:, None, None]
        ib = torch.where(f, ib.flip(-1), ib)
        mb = torch.where(f, mb.flip(-1), mb)
        mask = level.mask(a) * mb
        return self._judge(level, a, b, level.images[a], ib, mask, lambda x, r: torch.where(f[r], x.flip(-1), x))

    def _batched(self, level: _Level, a, b, flip, scale, rows: np.ndarray) -> np.ndarray:
        out = np.full(len(a), -1.0, np.float32)
        batch = max(1, self.batch * 256 // (level.size * level.size))  # on the CPU ~2 MB per image stack: stays in cache
        crops = np.zeros(len(rows), bool)
        if self.deep:  # deep crops are scored in the crop's frame
            zoomed = np.maximum(scale[rows], 1.0 / scale[rows])
            crops = zoomed > _DEEP_ZOOM
        crop_judge = self._crop_score
        if level.row is None:  # half resolution: at 16 px the crop frame's translation misses a few (3 of
            # the ten suites' 160 crops keeping 70 %) that the usual alignment finds: the better of both
            crop_judge = lambda *x: torch.maximum(self._crop_score(*x), self._score(*x))  # noqa: E731
        for part, judge in ((rows[~crops], self._score), (rows[crops], crop_judge)):
            for s in range(0, len(part), batch):
                r = part[s:s + batch]
                out[r] = _numpy(judge(level, self._t(a[r]), self._t(b[r]), self._t(flip[r]),
                                      self._t(scale[r], torch.float32)))
        return out

    def _crop_score(self, level: _Level, a: torch.Tensor, b: torch.Tensor, flip: torch.Tensor,
                    scale: torch.Tensor) -> torch.Tensor:
        """A deep-crop hypothesis scored in the crop's own frame: the original (the side the hypothesis
        magnifies) is magnified onto the crop as it is, then band-passed there like the crop.

        ``_score`` band-passes each image in its own frame and then shrinks the crop onto its original:
        at a zoom of 1.43 the two bands differ by that factor (the crop's fine band is its original's
        coarser one), and its linear shrinking aliases. Crops keeping 70 % scored 0.83-0.90 that way
        (by the best zoom of a fine grid, 63 of the tuning suites' 80 reached 0.9); magnified onto the
        crop before the band-pass, 78 of 80 reached 0.9 at the search's three zooms, and random pairs
        of one class stayed under 0.71. At half resolution (``coarse``) the same on the 2 x 2 means."""
        size = level.size
        full = level.row is not None
        raw, sigmas = (self._filled, _BAND) if full else ((lambda rows: self.small[rows]), (_BAND[0] / 2, _BAND[1] / 2))
        band = partial(_band, sigmas=sigmas)
        grow = scale < 1  # b magnified by scale looks like a: a magnified by 1/scale looks like b
        orig, crop = torch.where(grow, a, b), torch.where(grow, b, a)
        zoom = torch.where(grow, 1.0 / scale, scale)
        rc = level.rows(crop)
        source = raw(orig)
        cb = level.images[rc] if full else band(raw(crop))
        zero = torch.zeros(len(a), device=a.device)
        my, _ = _axis_matrices(zoom, zero, None, size)
        mx, _ = _axis_matrices(zoom, zero, flip, size)
        reach = torch.clamp(torch.round(self.max_shift * size * zoom / 1.2), min=1).long()
        dy, dx = _phase_shift(spectrum(cb), band(my @ source @ mx.transpose(1, 2)), int(reach.max()), reach)
        my, vy = _axis_matrices(zoom, dy, None, size)
        mx, vx = _axis_matrices(zoom, dx, flip, size)
        mt = mx.transpose(1, 2)
        warped = my @ source @ mt
        boxes = self.boxes[orig] if full else self.boxes[orig] // 2
        inside = (my @ box_masks(_erode_trimmed(boxes, size), size) @ mt > 0.99)
        inside &= vy[:, :, None] & vx[:, None, :]
        # the band-pass reaches _EDGE pixels past where the original ends inside the crop's frame, and
        # past the frame itself (replicated edges: the original's pixels beyond it are not the crop's)
        edge = _EDGE if full else 1
        for _ in range(edge):
            inside = ~dilate(~inside)
        inside[:, :edge], inside[:, -edge:], inside[:, :, :edge], inside[:, :, -edge:] = False, False, False, False
        mask = inside.float() * level.mask(rc)
        wb = band(warped)
        ncc, count = _masked_ncc(cb, wb, mask)
        if full:
            ncc = _information_adjusted(ncc, cb, wb, mask, _CROP_N_REF)
            if self.layout_min > 0:
                order = _layout(level.smooth[rc], blur(warped, _LAYOUT_SIGMA), level.clear(rc) * _unclipped(warped),
                                mask)
                order = self._checked_on_low(order, ncc >= self.layout_from, crop, orig,
                                             lambda x, k: my[k] @ x @ mt[k], mask)
                ncc = torch.where(order >= self.layout_min, ncc, torch.full_like(order, -1.0))
        # of the smaller of the two contents as they lie in the crop's frame (an original with fill
        # bars, magnified, covers less of it than the crop's own content)
        overlap = count / torch.minimum(inside.sum((1, 2)).clamp(min=1), level.area[rc])
        return torch.where(overlap >= self.min_overlap, ncc, torch.full_like(ncc, -1.0))

    def refined_scores(self, a: np.ndarray, b: np.ndarray, flip: np.ndarray, scale: np.ndarray,
                       todo: np.ndarray, near: float = 0.0) -> np.ndarray:
        """Full-resolution similarity of the rows ``todo`` after an affine refinement of their
        hypothesis (``align.refine``), -1 elsewhere or where the fitted map is not a copy's kind
        (``align.plausible``). Refined at half resolution first (4x cheaper: most close pairs are
        look-alikes that stay below ``near`` there), the survivors once more at full resolution."""
        out = np.full(len(a), -1.0, np.float32)
        thetas = torch.zeros(len(a), 2, 3, device=self.device)
        quick = np.full(len(a), -1.0, np.float32)
        for s in range(0, len(todo), self.batch):
            r = todo[s:s + self.batch]
            quick[r], thetas[self._t(r)] = self._refined_coarse(self._t(a[r]), self._t(b[r]), self._t(flip[r]),
                                                                self._t(scale[r], torch.float32), near)
        todo = todo[quick[todo] >= near - _REFINE_COARSE_MARGIN]
        if len(todo) == 0:
            return out
        level = self._fine_level(np.r_[a[todo], b[todo]])
        for s in range(0, len(todo), self.batch):
            r = todo[s:s + self.batch]
            out[r] = _numpy(self._refined_fine(level, self._t(a[r]), self._t(b[r]), self._t(flip[r]), thetas[self._t(r)]))
        return out

    def _refined_coarse(self, a: torch.Tensor, b: torch.Tensor, flip: torch.Tensor, scale: torch.Tensor,
                        near: float) -> tuple[np.ndarray, torch.Tensor]:
        """Half-resolution refinement of these rows: their score (-1 for rows stopped early) and maps.

        After _REFINE_EARLY_STEPS steps of the first level, rows whose band-passed correlation is
        still _REFINE_EARLY_MARGIN below ``near`` stop: measured on CIFAR-10, the 1,116 of 164,271
        close pairs the refinement verified correlated at least 0.795 after one step (0.843 after
        two; ``near`` 0.9), and 66 % of the others under 0.7. The rest of the steps are the same for
        the rows that go on (a step depends on the map alone), so their scores are as without the stop."""
        level = self.coarse
        dy, dx = self._translation(level, a, b, flip, scale)
        theta = align.initial_theta(scale, flip, dy, dx, level.size)
        ra, rb = self.small[a], self.small[b]
        pyramid = [(blur(ra, s / 2), blur(rb, s / 2)) for s in _REFINE_SIGMAS]
        ma, mb, margin = level.mask(a), level.mask(b), _REFINE_MARGIN / 2
        aspect = self._pair_aspect(a, b)
        theta = align.refine(pyramid[:1], ma, mb, theta, steps=_REFINE_EARLY_STEPS, margin=margin, aspect=aspect)
        so_far, _ = _masked_ncc(level.images[a], *_warped_overlap(level, a, b, theta, margin))
        go = torch.nonzero(so_far >= near - _REFINE_EARLY_MARGIN)[:, 0]
        score = torch.full((len(a),), -1.0, device=a.device)
        if len(go):
            a, b, flip = a[go], b[go], flip[go]
            aspect = None if aspect is None else aspect[go]
            pyramid = [(x[go], y[go]) for x, y in pyramid]
            t = align.refine(pyramid[:1], ma[go], mb[go], theta[go], steps=_REFINE_STEPS - _REFINE_EARLY_STEPS,
                             margin=margin, aspect=aspect)
            t = align.refine(pyramid[1:], ma[go], mb[go], t, steps=_REFINE_STEPS, margin=margin, aspect=aspect)
            theta[go] = t
            score[go] = self._judge_affine(level, a, b, flip, t, margin, aspect)
        return _numpy(score), theta

    def _refined_fine(self, level: _Level, a: torch.Tensor, b: torch.Tensor, flip: torch.Tensor,
                      theta: torch.Tensor) -> torch.Tensor:
        aspect = self._pair_aspect(a, b)
        a, b = level.rows(a), level.rows(b)
        theta = align.refine([(level.smooth[a], level.smooth[b])], level.mask(a), level.mask(b), theta,
                             steps=_REFINE_FINE_STEPS, margin=_REFINE_MARGIN, aspect=aspect)
        return self._judge_affine(level, a, b, flip, theta, _REFINE_MARGIN, aspect)

    def _pair_aspect(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor | None:
        """Width over height of each pair's pictures, where the two agree within _ASPECT_AGREE (a rotated
        copy keeps its canvas); 1 (the thumbnail's square frame) where they do not: one of the two was
        squashed, and a rotation in either's proportions is no better guess (on CIFAR-10, letterbox
        content views of squashed photos paired one more B-2 silhouette that way). None: not known."""
        if self.aspects is None:
            return None
        ka, kb = self.aspects[a], self.aspects[b]
        agree = (ka / kb).log().abs() <= math.log(_ASPECT_AGREE)
        return torch.where(agree, (ka * kb).sqrt(), torch.ones_like(ka))

    def _judge_affine(self, level: _Level, a, b, flip, theta, margin: float,
                      aspect: torch.Tensor | None = None) -> torch.Tensor:
        ok = align.plausible(theta, flip, _REFINE_MAX_SCALE, _REFINE_MAX_ROTATION, _REFINE_MAX_STRETCH, aspect)
        warped, mask = _warped_overlap(level, a, b, theta, margin)
        score = self._judge(level, a, b, level.images[a], warped, mask, lambda x, r: align.warp(x, theta[r])[0],
                            n_ref=_REFINE_N_REF)
        return torch.where(ok, score, torch.full_like(score, -1.0))
