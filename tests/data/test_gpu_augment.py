"""The GPU-resident augmentations, checked on CPU tensors: shapes, values, that they really happen,
and that a seed reproduces them."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from trueval.data.gpu_augment import (
    AugmentSpec,
    augment_batch,
    normalize,
    parse_spec,
    random_crop,
    random_cutout,
    random_hflip,
    random_rot90,
)
from trueval.core.errors import UserError


def batch(n: int = 64, c: int = 3, h: int = 8, w: int = 8, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, c, h, w), generator=g, dtype=torch.uint8)


def gen(seed: int = 1) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def crop_offsets(x: torch.Tensor, out: torch.Tensor, padding: int, mode: str) -> list[tuple[int, int]]:
    """For each sample, the (dy, dx) whose crop of the padded input equals the output (fails if none)."""
    pad_mode = "reflect" if mode == "reflect" else "constant"
    padded = F.pad(x.float(), (padding,) * 4, mode=pad_mode)
    h, w = x.shape[2:]
    found = []
    for i in range(len(x)):
        matches = [
            (dy, dx)
            for dy in range(-padding, padding + 1)
            for dx in range(-padding, padding + 1)
            if torch.equal(padded[i, :, padding + dy : padding + dy + h, padding + dx : padding + dx + w], out[i].float())
        ]
        assert matches, f"sample {i} is not a crop of its padded input"
        found.append(matches[0])
    return found


@pytest.mark.parametrize("mode", ["reflect", "zero"])
def test_random_crop_is_a_crop_of_the_padded_image_and_moves(mode: str) -> None:
    x = batch()
    out = random_crop(x, 2, gen(), mode)
    assert out.shape == x.shape and out.dtype == torch.uint8
    offsets = crop_offsets(x, out, 2, mode)
    # with 64 samples and 25 offsets, both the identity and real shifts must occur
    assert len(set(offsets)) > 10
    assert any(o != (0, 0) for o in offsets)


def test_random_crop_refuses_padding_larger_than_the_image_for_reflect() -> None:
    with pytest.raises(UserError, match="crop_padding"):
        random_crop(batch(h=4, w=4), 4, gen(), "reflect")


def test_hflip_mirrors_about_half_of_the_samples() -> None:
    x = batch()
    out = random_hflip(x, gen())
    flipped = [torch.equal(o, s.flip(2)) for o, s in zip(out, x)]
    kept = [torch.equal(o, s) for o, s in zip(out, x)]
    assert all(f or k for f, k in zip(flipped, kept))
    assert 10 < sum(flipped) < 54


def test_rot90_uses_all_four_rotations_and_needs_square_images() -> None:
    x = batch()
    out = random_rot90(x, gen())
    ks = []
    for o, s in zip(out, x):
        k = [k for k in range(4) if torch.equal(o, torch.rot90(s, k, dims=(1, 2)))]
        assert k, "output is not a rotation of its input"
        ks.append(k[0])
    assert set(ks) == {0, 1, 2, 3}
    with pytest.raises(UserError, match="square"):
        random_rot90(batch(h=8, w=6), gen())


def test_cutout_zeroes_one_clipped_square_per_sample() -> None:
    x = torch.full((64, 3, 10, 10), 5.0)
    out = random_cutout(x, 4, gen())
    assert out.shape == x.shape
    erased = out == 0
    assert bool((out[~erased] == 5.0).all())
    for mask in erased:
        assert torch.equal(mask[0], mask[1]) and torch.equal(mask[0], mask[2])  # same square in every channel
        rows, cols = mask[0].any(1).nonzero().flatten(), mask[0].any(0).nonzero().flatten()
        assert 1 <= len(rows) <= 4 and 1 <= len(cols) <= 4
        # a filled rectangle: the rows x cols block is erased and nothing else
        assert int(mask[0].sum()) == len(rows) * len(cols)
    assert int(erased[:, 0].sum(dim=(1, 2)).max()) == 16  # some squares lie fully inside
    assert int(erased[:, 0].sum(dim=(1, 2)).min()) < 16  # some are clipped by the border


def test_augment_batch_is_reproducible_with_a_seed_and_leaves_input_alone() -> None:
    x = batch()
    before = x.clone()
    spec = {"crop_padding": 2, "hflip": True, "rot90": True, "cutout": 3}
    a = augment_batch(x, spec, gen(7))
    b = augment_batch(x, spec, gen(7))
    c = augment_batch(x, spec, gen(8))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert torch.equal(x, before)
    assert a.shape == x.shape and a.dtype == x.dtype


def test_augment_batch_identity_spec_returns_the_same_values() -> None:
    x = batch()
    assert torch.equal(augment_batch(x, None, gen()), x)
    assert torch.equal(augment_batch(x, {"crop_padding": 0, "hflip": False, "rot90": False, "cutout": 0}, gen()), x)


def test_augment_batch_works_on_float_normalised_batches() -> None:
    x = normalize(batch(), (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    out = augment_batch(x, {"crop_padding": 2, "hflip": True, "cutout": 2}, gen())
    assert out.dtype == torch.float32
    assert float(out.min()) >= -2.0 - 1e-6 and float(out.max()) <= 2.0 + 1e-6


def test_normalize_matches_the_formula() -> None:
    x = batch(c=3)
    mean, std = (0.1, 0.2, 0.3), (0.5, 0.25, 0.2)
    expected = (x.float() / 255 - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    assert torch.allclose(normalize(x, mean, std), expected, atol=1e-5)
    assert torch.allclose(normalize(batch(c=1), (0.5,), (0.5,)).abs().max(), torch.tensor(1.0), atol=1e-6)
    with pytest.raises(ValueError):
        normalize(x, (0.1, 0.2), (0.5, 0.5))


@pytest.mark.parametrize(
    "spec",
    [{"crop_padding": -1}, {"hflip": "yes"}, {"cutout": 2.5}, {"colour_jitter": 0.4}, {"pad_mode": "wrap"}, [1, 2]],
)
def test_bad_specs_are_user_errors_naming_the_key(spec: object) -> None:
    with pytest.raises(UserError, match="data.augment.train"):
        parse_spec(spec, "data.augment.train")  # type: ignore[arg-type]


def test_parse_spec_fills_defaults() -> None:
    assert parse_spec(None) == AugmentSpec()
    assert parse_spec({"hflip": True}) == AugmentSpec(hflip=True)
    assert parse_spec({"hflip": True}).is_identity is False
    assert AugmentSpec().is_identity
