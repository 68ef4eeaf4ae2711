"""The verification's layout check: one silhouette on a differently lit sky is not a copy, while
brightened (sky clipped to white) and lower-contrast copies still are."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance

from trueval.core.samples import SampleSet
from trueval.integrity.fingerprints import compute_prints
from trueval.integrity.verify import Verifier


def _bomber(top: int, bottom: int, size: int = 32) -> np.ndarray:
    """A dark flying-wing silhouette on a plain sky shading from ``top`` to ``bottom`` (grey levels)."""
    sky = np.linspace(top, bottom, size)[:, None] * np.ones((1, size))
    img = Image.fromarray(np.repeat(sky[:, :, None], 3, 2).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    draw.polygon([(3, 9), (28, 5), (24, 14), (19, 12), (16, 24), (12, 18), (8, 27)], fill=(40, 40, 45))
    draw.line([(6, 12), (22, 9)], fill=(90, 90, 95), width=1)
    return np.asarray(img)


def _scores(images: list[np.ndarray], layout_from: float) -> np.ndarray:
    """Verified similarity of every image after the first to the first (aligned, no mirror or zoom)."""
    prints = compute_prints(SampleSet("x", np.zeros(len(images), np.int64), images=np.stack(images),
                                      sources=["gen"], name="gen"))
    verifier = Verifier(prints.thumbs, prints.boxes, max_shift=0.2, min_overlap=0.5, layout_from=layout_from)
    n = len(images) - 1
    return verifier.score(np.zeros(n, np.int64), np.arange(1, n + 1), np.zeros(n, bool), np.ones(n),
                          np.ones(n, bool), near=0.9)


def test_same_silhouette_on_another_sky_is_not_a_copy() -> None:
    original = _bomber(225, 150)
    other_sky = _bomber(150, 225)  # another photo of the same shape: the sky is lit the other way
    brighter = np.asarray(ImageEnhance.Brightness(Image.fromarray(original)).enhance(1.6))  # sky clips at 255
    flatter = np.asarray(ImageEnhance.Contrast(Image.fromarray(original)).enhance(0.6))
    assert (brighter[:4] == 255).all()  # the copy's upper sky is clipped: no longer one affine map
    images = [original, other_sky, brighter, flatter]
    band_only = _scores(images, layout_from=2.0)  # layout check never applies
    checked = _scores(images, layout_from=0.9)
    # the band-pass correlation alone takes the look-alike for a copy ...
    assert band_only[0] >= 0.9
    # ... the layout check does not, and keeps the brightened and the lower-contrast copy
    assert checked[0] < 0.9
    assert checked[1] >= 0.9 and checked[2] >= 0.9


def test_layout_threshold_is_a_setting_and_zero_turns_the_check_off() -> None:
    from trueval.integrity import IntegritySettings, run_gate

    original, other_sky = _bomber(225, 150), _bomber(150, 225)
    rng = np.random.default_rng(0)
    fillers = [np.clip(rng.normal(128, 60, (32, 32, 3)), 0, 255).astype(np.uint8) for _ in range(6)]
    sets = {"train": SampleSet("train", np.zeros(4, np.int64), images=np.stack([original, *fillers[:3]]),
                               sources=["gen-train"], name="gen"),
            "test": SampleSet("test", np.zeros(4, np.int64), images=np.stack([other_sky, *fillers[3:]]),
                              sources=["gen-test"], name="gen")}

    def pairs(layout: float) -> int:
        settings = IntegritySettings.from_config({"cache": False, "thresholds": {"layout": layout, "adaptive": False}})
        return sum(p.kind == "near" for p in run_gate(sets, settings, cache_dir=None, dataset="gen").pairs)

    assert pairs(0.97) == 0  # the default: another photo of the silhouette
    assert pairs(0.0) == 1  # check off: the band-pass score alone pairs them
    assert IntegritySettings.from_config({"thresholds": {"layout": 0.5}}).digest() != \
        IntegritySettings.from_config({}).digest()  # cached reports are per setting


def test_colour_images_get_value_thumbnails_and_grey_ones_none() -> None:
    from trueval.integrity.fingerprints import Prints, THUMB, resized

    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (3, 40, 40, 3), dtype=np.uint8)
    prints = compute_prints(SampleSet("x", np.zeros(3, np.int64), images=rgb, sources=["x"], name="x"))
    assert prints.value_thumbs is not None and prints.value_thumbs.shape == (3, THUMB, THUMB)
    # max(R, G, B) of each pixel: never below the grayscale (a weighted mean of the same channels)
    assert prints.value_thumbs.dtype == np.uint8  # rounded: within half a level of max(R, G, B)
    assert (prints.value_thumbs >= prints.thumbs - 0.5).all() and (prints.value_thumbs > prints.thumbs + 1).any()
    grey = rgb[..., :1]
    assert compute_prints(SampleSet("x", np.zeros(3, np.int64), images=grey, sources=["x"], name="x")).value_thumbs is None
    both = Prints.concat([prints, prints]).take(np.array([1, 4]))
    assert np.array_equal(both.value_thumbs, prints.value_thumbs[[1, 1]])
    assert resized(prints, 16).value_thumbs.shape == (3, 16, 16)



def test_a_folder_of_mixed_sizes_and_modes_gets_value_thumbnails_without_garbage() -> None:
    """Files of several shapes are thumbnailed shape by shape; the value thumbnails of grey files are
    their grayscale, whichever shape comes first (they once started from uninitialised memory)."""
    import warnings

    from trueval.integrity.fingerprints import _prints_of_batch, as_bytes

    rng = np.random.default_rng(1)
    files = [rng.integers(0, 256, (24, 24, 1), dtype=np.uint8), rng.integers(0, 256, (40, 40, 3), dtype=np.uint8),
             rng.integers(0, 256, (30, 30, 1), dtype=np.uint8), rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)]
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        for _ in range(20):  # freed NaN blocks of the thumbnails' size: what uninitialised memory would reuse
            junk = np.full((len(files), 32, 32), np.nan, np.float32)
            del junk
            prints = _prints_of_batch(files, want_thumbs=True)
    grey = [0, 2]
    assert np.array_equal(prints.value_thumbs[grey], as_bytes(prints.thumbs[grey]))
    colour = [1, 3]
    assert (prints.value_thumbs[colour] >= prints.thumbs[colour] - 0.5).all()


def test_scores_do_not_depend_on_how_many_rows_are_scored_at_once(monkeypatch) -> None:
    """The GPU scores many more hypothesis rows per step than the CPU: the step size must not change
    any score, through every stage (coarse, fine, refinement, sharpness and colour rescoring)."""
    from PIL import ImageFilter
    from synthetic import photos

    from trueval.integrity.fingerprints import compute_prints

    grey = photos(8, seed=5).astype(np.float64).mean(-1, keepdims=True)
    tint = photos(8, seed=105, cells=(2, 4)).astype(np.float64)
    base = np.clip(0.6 * grey + 0.4 * tint, 0, 255).astype(np.uint8)  # channels share structure, as photos'

    def hue_turned(x: np.ndarray) -> np.ndarray:
        hsv = np.asarray(Image.fromarray(x).convert("HSV")).copy()
        hsv[..., 0] = (hsv[..., 0].astype(np.int64) + 128) % 256
        return np.asarray(Image.fromarray(hsv, "HSV").convert("RGB"))

    copies = [np.asarray(Image.fromarray(base[0]).rotate(6, resample=Image.BICUBIC)),
              np.asarray(Image.fromarray(base[5]).filter(ImageFilter.GaussianBlur(2.5))),
              hue_turned(base[2]), hue_turned(base[3]), np.roll(base[4], 2, axis=1)]
    images = np.stack([*base, *copies])
    prints = compute_prints(SampleSet("x", np.zeros(len(images), np.int64), images=images, sources=["gen"], name="gen"))
    a, b = (x.ravel() for x in np.triu_indices(len(images), 1))
    a, b = np.repeat(a, 2), np.repeat(b, 2)
    flip = np.tile([False, True], len(a) // 2)
    scale = np.random.default_rng(0).choice([1.0, 1.1, 1 / 1.1], len(a))
    aligned = np.arange(len(a)) % 5 != 0
    scored: dict[str, int] = {}
    for name in ("refined_scores", "_colour_scores", "_matched_scores"):
        def spy(self, *args, _stage=getattr(Verifier, name), _name=name, **kwargs):
            out = _stage(self, *args, **kwargs)
            scored[_name] = scored.get(_name, 0) + int((out > -1).sum())
            return out
        monkeypatch.setattr(Verifier, name, spy)

    def scores(batch: int | None) -> np.ndarray:
        verifier = Verifier(prints.thumbs, prints.boxes, max_shift=0.2, min_overlap=0.5, layout_from=0.8,
                            sides=prints.side, colour=prints.value_thumbs, batch=batch)
        return verifier.score(a, b, flip, scale, aligned, near=0.9)

    whole = scores(None)
    assert all(scored.get(stage, 0) > 0 for stage in ("refined_scores", "_colour_scores", "_matched_scores")), scored
    np.testing.assert_allclose(scores(3), whole, rtol=0, atol=1e-5)


def test_the_refinement_stops_hopeless_rows_early_and_scores_the_others_as_without_the_stop(monkeypatch) -> None:
    """Rows whose correlation after the first step is far below ``near`` stop refining; a step depends
    on the map alone, so every row that goes on ends where it would have: its score is unchanged,
    and rotated copies are still verified."""
    from synthetic import photos

    from trueval.integrity import verify

    base = photos(8, seed=11)
    copies = [np.asarray(Image.fromarray(x).rotate(angle, resample=Image.BICUBIC))
              for x, angle in zip(base, (3, -4, 5, -6, 7, -8, 9, -9))]
    images = np.concatenate([base, np.stack(copies)])
    prints = compute_prints(SampleSet("x", np.zeros(len(images), np.int64), images=images, sources=["gen"],
                                      name="gen"))
    a = np.repeat(np.arange(8, 16), 8)  # every copy against every photo: its original and seven others
    b = np.tile(np.arange(8), 8)
    n = len(a)
    coarse: list[np.ndarray] = []
    steps: list[int] = []  # rows in each call of the Gauss-Newton steps
    step, fit = Verifier._refined_coarse, verify.align.refine

    def spy(self, *args, **kwargs):
        out = step(self, *args, **kwargs)
        coarse.append(out[0])
        return out

    def counted(pyramid, mask_a, *args, **kwargs):
        steps.append(len(mask_a))
        return fit(pyramid, mask_a, *args, **kwargs)

    monkeypatch.setattr(Verifier, "_refined_coarse", spy)
    monkeypatch.setattr(verify.align, "refine", counted)

    def refined() -> tuple[np.ndarray, np.ndarray, int]:
        coarse.clear(), steps.clear()
        verifier = Verifier(prints.thumbs, prints.boxes, max_shift=0.2, min_overlap=0.5, layout_from=0.8)
        scores = verifier.refined_scores(a, b, np.zeros(n, bool), np.ones(n), np.arange(n), near=0.9)
        return scores, np.concatenate(coarse), steps[2]  # the rows of the second pyramid level

    stopped, stopped_coarse, went_on_rows = refined()
    monkeypatch.setattr(verify, "_REFINE_EARLY_MARGIN", 10.0)  # no row stops
    full, full_coarse, all_rows = refined()
    assert all_rows == n and 8 <= went_on_rows <= n // 2, went_on_rows  # most pairs of different photos stopped
    went_on = stopped_coarse > -1
    assert np.array_equal(stopped_coarse[went_on], full_coarse[went_on])
    assert np.array_equal(stopped, full)
    originals = a - 8 == b
    assert (stopped[originals] >= 0.9).all(), stopped[originals]
