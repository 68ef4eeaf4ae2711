"""Brightened colour copies whose sky saturates in some channels, and crops whose zoom lies between
the zooms the verification tries (gate version 17)."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance

from trueval.core.samples import SampleSet
from trueval.integrity.fingerprints import compute_prints
from trueval.integrity.verify import Verifier


def _plane_on_sky(seed: int, red_rising: bool = True) -> np.ndarray:
    """A dark silhouette on a blue sky whose red rises along x and whose green rises along y: its
    grayscale mixes the two; brightened x1.5, green and blue saturate and the grayscale follows red alone."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:32, 0:32] / 31.0
    red = 40 + 80 * (x if red_rising else 1 - x) + rng.normal(0, 5, (32, 32))
    green = 175 + 40 * y + rng.normal(0, 3, (32, 32))
    blue = 215 + 20 * (1 - y)
    img = Image.fromarray(np.clip(np.stack([red, green, blue], -1), 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    draw.polygon([(3, 9), (28, 5), (24, 14), (19, 12), (16, 24), (12, 18), (8, 27)], fill=(40, 40, 45))
    draw.line([(6, 12), (22, 9)], fill=(90, 90, 95), width=1)
    return np.asarray(img)


def _prints(images: list[np.ndarray]):
    return compute_prints(SampleSet("x", np.zeros(len(images), np.int64), images=np.stack(images),
                                    sources=["gen"], name="gen"))


def test_colour_images_get_min_channel_thumbnails_and_grey_ones_none() -> None:
    from trueval.integrity.fingerprints import Prints, THUMB, _prints_of_batch, as_bytes, resized

    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (3, 40, 40, 3), dtype=np.uint8)
    prints = _prints(list(rgb))
    assert prints.low_thumbs is not None and prints.low_thumbs.shape == (3, THUMB, THUMB)
    assert prints.low_thumbs.dtype == np.uint8
    # min(R, G, B) of each pixel: never above the grayscale (a weighted mean of the same channels)
    assert (prints.low_thumbs <= prints.thumbs + 0.5).all() and (prints.low_thumbs < prints.thumbs - 1).any()
    assert _prints(list(rgb[..., :1])).low_thumbs is None
    both = Prints.concat([prints, prints]).take(np.array([1, 4]))
    assert np.array_equal(both.low_thumbs, prints.low_thumbs[[1, 1]])
    assert resized(prints, 16).low_thumbs.shape == (3, 16, 16)
    mixed = _prints_of_batch([rng.integers(0, 256, (24, 24, 1), dtype=np.uint8), rgb[0]], want_thumbs=True)
    assert np.array_equal(mixed.low_thumbs[0], as_bytes(mixed.thumbs[0]))  # a grey file: its grayscale


def test_a_brightened_copy_whose_sky_saturates_in_two_channels_passes_the_layout_check() -> None:
    """Its grayscale no longer keeps the original's brightness order (refused before version 17); its
    unsaturated channel does. The same silhouette on a sky shaded the other way is still refused."""
    original = _plane_on_sky(0)
    copy = np.asarray(ImageEnhance.Brightness(Image.fromarray(original)).enhance(1.5))
    other = _plane_on_sky(1, red_rising=False)
    assert (copy[..., 1:] == 255).mean() > 0.6 and copy[..., 0].max() < 250  # green and blue saturate, red not
    prints = _prints([original, copy, other])
    assert prints.thumbs[1].max() < 250  # the copy's grayscale itself is not clipped

    def as_is(low):
        verifier = Verifier(prints.thumbs, prints.boxes, 0.2, 0.5, 0.9, low=low, value=prints.value_thumbs,
                            refine=False, match=False)
        return verifier.fine_scores(np.zeros(2, np.int64), np.array([1, 2]), np.zeros(2, bool), np.ones(2),
                                    np.zeros(2, bool), np.arange(2))

    grey_only, with_low = as_is(None), as_is(prints.low_thumbs)
    assert grey_only[0] == -1.0  # the layout check on the grayscale refuses the copy
    assert with_low[0] >= 0.95
    assert grey_only[1] == -1.0 and with_low[1] == -1.0


def test_a_crop_between_the_tried_zooms_is_scored_at_its_own_zoom(monkeypatch) -> None:
    """A copy keeping 81.5 % of each side is magnified 1.227x: between the zooms the verification
    tries around a hypothesis of 1.2 (1.148, 1.2, 1.254). A row that came close is scored again where
    a parabola through the three peaks: between two of them, and higher than any of the three."""
    from synthetic import photos

    base = photos(1, seed=7)[0]
    side = round(32 * 0.815)
    crop = np.asarray(Image.fromarray(base).crop((3, 2, 3 + side, 2 + side)).resize((32, 32), Image.BICUBIC))
    prints = _prints([base, crop])
    verifier = Verifier(prints.thumbs, prints.boxes, 0.2, 0.5, 0.9, refine=False, match=False)
    tried: list[tuple[float, float]] = []  # (zoom, score) of every row scored
    batched = Verifier._batched

    def spy(self, level, a, b, flip, scale, rows):
        out = batched(self, level, a, b, flip, scale, rows)
        tried.extend((float(scale[r]), float(out[r])) for r in rows)
        return out

    monkeypatch.setattr(Verifier, "_batched", spy)
    rows = (np.zeros(1, np.int64), np.ones(1, np.int64), np.zeros(1, bool), np.array([1 / 1.2]), np.ones(1, bool))
    three = verifier.fine_scores(*rows, np.arange(1))[0]
    assert len(tried) == 3
    # already above ``near``: nothing more is tried
    assert verifier.fine_scores(*rows, np.arange(1), near=float(three) - 0.01)[0] == three and len(tried) == 6
    # ``near`` just above the three zooms' best: the row is close, so it is scored at its peak
    missed = verifier.fine_scores(*rows, np.arange(1), near=float(three) + 0.01)[0]
    assert len(tried) == 10
    peak_zoom, peak = tried[-1]
    zooms = sorted(z for z, _ in tried[:3])
    assert zooms[0] < peak_zoom < zooms[2] and min(abs(np.log(peak_zoom / z)) for z in zooms) > 0.1 * np.log(1.045)
    assert three < peak < three + 0.01
    assert missed == three  # a peak that still misses ``near`` changes nothing
    # with ``near`` between the three zooms' best and the peak, the peak's score counts
    assert verifier.fine_scores(*rows, np.arange(1), near=(float(three) + peak) / 2)[0] == np.float32(peak)
