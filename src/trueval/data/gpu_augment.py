"""Batched augmentations for images that already live on the GPU.

The GPU-resident loader cannot use torchvision's per-sample CPU transforms without giving up its
speed (one Python call per image), so the same augmentation spec (`data.augment.<stage>`) is
implemented here as a handful of whole-batch tensor operations: each is one or two kernels for
the batch, draws its randomness from the generator it is given (so a seeded run is repeatable),
and never synchronises with the host. The functions take any device and dtype, so they run on
CPU tensors too (the tests do).

Spec keys (shared with the CPU torchvision-v2 path):

- ``crop_padding`` (int, 0 = off): random crop of the original size after padding each side by
  this many pixels; ``pad_mode`` picks ``reflect`` (default) or ``zero`` padding, the latter being
  a random translation that fills with zeros.
- ``hflip`` (bool or ``alternate``): mirror left-right with probability 1/2; ``alternate`` takes the
  per-sample mirror decisions from the caller (``flip``: the loader mirrors a fixed half of the
  images in even epochs and the other half in odd ones).
- ``rot90`` (bool): rotate by k*90 degrees, k uniform in {0, 1, 2, 3} (square images only).
- ``cutout`` (int, 0 = off): zero a square of this side at a uniformly random centre (the square
  may be clipped by the border, as in DeVries & Taylor 2017). Applied after normalisation by the
  loader, so the erased area holds the dataset mean.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import torch

from trueval.core.errors import UserError
from trueval.data.augment_options import valid_hflip

PAD_MODES = ("reflect", "zero")


@dataclass(frozen=True)
class AugmentSpec:
    """A validated `data.augment.<stage>` mapping."""

    crop_padding: int = 0
    hflip: bool | str = False
    rot90: bool = False
    cutout: int = 0
    pad_mode: str = "reflect"

    @property
    def is_identity(self) -> bool:
        return not (self.crop_padding or self.hflip or self.rot90 or self.cutout)


def parse_spec(spec: Mapping[str, Any] | AugmentSpec | None, key: str = "data.augment") -> AugmentSpec:
    """Check a spec mapping; unknown keys are refused rather than silently ignored.

    ``key`` names the config key in error messages (e.g. ``data.augment.train``).
    """
    if spec is None:
        return AugmentSpec()
    if isinstance(spec, AugmentSpec):
        return spec
    if not isinstance(spec, Mapping):
        raise UserError(f"expected a mapping of augmentation settings, got {type(spec).__name__}", key=key)
    known = set(AugmentSpec.__dataclass_fields__)
    unknown = sorted(set(spec) - known)
    if unknown:
        raise UserError(
            f"unknown augmentation setting(s) {unknown} for the GPU-resident loader; "
            f"it knows {sorted(known)} (use data.loader=torch for other transforms)",
            key=key,
        )
    values = dict(spec)
    for name in ("crop_padding", "cutout"):
        value = values.get(name, 0)
        if value is None or value is False:
            value = 0
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise UserError(f"{name} must be a non-negative integer, got {value!r}", key=f"{key}.{name}")
        values[name] = value
    for name in ("hflip", "rot90"):
        value = values.get(name, False)
        if not (valid_hflip(value) if name == "hflip" else isinstance(value, bool)):
            choices = "true, false or alternate" if name == "hflip" else "true or false"
            raise UserError(f"{name} must be {choices}, got {value!r}", key=f"{key}.{name}")
        values[name] = value
    pad_mode = values.get("pad_mode", "reflect")
    if pad_mode not in PAD_MODES:
        raise UserError(f"pad_mode must be one of {PAD_MODES}, got {pad_mode!r}", key=f"{key}.pad_mode")
    return AugmentSpec(**values)


def _reflect(index: torch.Tensor, size: int) -> torch.Tensor:
    """Map indices in [-size+1, 2*size-2] into [0, size-1] the way reflect padding does."""
    index = index.abs()
    return torch.where(index > size - 1, 2 * (size - 1) - index, index)


def random_crop(
    x: torch.Tensor, padding: int, generator: torch.Generator, pad_mode: str = "reflect"
) -> torch.Tensor:
    """Per-sample random crop of the original size from the image padded by ``padding``.

    Done as one gather with per-sample row/column indices instead of padding the batch and
    slicing per sample: no padded copy, no Python loop over samples, any dtype.
    """
    if padding <= 0:
        return x
    n, c, h, w = x.shape
    if pad_mode == "reflect" and padding >= min(h, w):
        raise UserError(
            f"crop_padding={padding} needs images larger than {padding} pixels for reflect padding, got {h}x{w}",
            key="data.augment",
        )
    dev = x.device
    dy = torch.randint(-padding, padding + 1, (n, 1), generator=generator, device=dev)
    dx = torch.randint(-padding, padding + 1, (n, 1), generator=generator, device=dev)
    rows = torch.arange(h, device=dev) + dy  # (n, h): source row of each output row
    cols = torch.arange(w, device=dev) + dx  # (n, w)
    if pad_mode == "reflect":
        rows, cols = _reflect(rows, h), _reflect(cols, w)
        valid = None
    else:
        valid = ((rows >= 0) & (rows < h))[:, None, :, None] & ((cols >= 0) & (cols < w))[:, None, None, :]
        rows, cols = rows.clamp(0, h - 1), cols.clamp(0, w - 1)
    batch_index = torch.arange(n, device=dev)[:, None, None, None]
    channel_index = torch.arange(c, device=dev)[None, :, None, None]
    out = x[batch_index, channel_index, rows[:, None, :, None], cols[:, None, None, :]]
    if valid is not None:
        out = out * valid.to(out.dtype)
    return out


def random_hflip(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Mirror each sample left-right with probability 1/2."""
    flip = torch.rand(x.shape[0], generator=generator, device=x.device) < 0.5
    return torch.where(flip[:, None, None, None], x.flip(3), x)


def random_rot90(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Rotate each sample by a uniformly drawn multiple of 90 degrees (square images only)."""
    if x.shape[2] != x.shape[3]:
        raise UserError(
            f"rot90 needs square images, got {x.shape[2]}x{x.shape[3]}; set data.image_size or turn rot90 off",
            key="data.augment",
        )
    k = torch.randint(0, 4, (x.shape[0], 1, 1, 1), generator=generator, device=x.device)
    out = x
    for quarter_turns in (1, 2, 3):
        out = torch.where(k == quarter_turns, torch.rot90(x, quarter_turns, dims=(2, 3)), out)
    return out


def random_cutout(x: torch.Tensor, size: int, generator: torch.Generator, fill: float = 0.0) -> torch.Tensor:
    """Set a ``size`` x ``size`` square (clipped at the border) of each sample to ``fill``."""
    if size <= 0:
        return x
    n, _, h, w = x.shape
    dev = x.device
    cy = torch.randint(0, h, (n, 1), generator=generator, device=dev)
    cx = torch.randint(0, w, (n, 1), generator=generator, device=dev)
    top, left = cy - size // 2, cx - size // 2
    ys, xs = torch.arange(h, device=dev), torch.arange(w, device=dev)
    in_rows = (ys >= top) & (ys < top + size)  # (n, h)
    in_cols = (xs >= left) & (xs < left + size)  # (n, w)
    mask = in_rows[:, None, :, None] & in_cols[:, None, None, :]
    return x.masked_fill(mask, fill)


def augment_batch(
    x: torch.Tensor,
    spec: Mapping[str, Any] | AugmentSpec | None,
    generator: torch.Generator,
    cutout_fill: float = 0.0,
    flip: torch.Tensor | None = None,
) -> torch.Tensor:
    """Apply the spec to a batch N,C,H,W (uint8 or float): crop, flip, rot90, then cutout.

    ``flip``: N booleans, which samples to mirror, for ``hflip: alternate`` (required there).
    Returns a new tensor of the same shape and dtype; the input is never modified.
    """
    if x.ndim != 4:
        raise ValueError(f"augment_batch expects N,C,H,W, got shape {tuple(x.shape)}")
    spec = parse_spec(spec)
    if spec.crop_padding:
        x = random_crop(x, spec.crop_padding, generator, spec.pad_mode)
    if spec.hflip == "alternate":
        if flip is None or flip.shape != (x.shape[0],):
            raise ValueError("hflip: alternate needs the per-sample flip decisions (flip=, N booleans)")
        x = torch.where(flip[:, None, None, None], x.flip(3), x)
    elif spec.hflip:
        x = random_hflip(x, generator)
    if spec.rot90:
        x = random_rot90(x, generator)
    if spec.cutout:
        x = random_cutout(x, spec.cutout, generator, cutout_fill)
    return x


def normalization_constants(
    mean: Sequence[float], std: Sequence[float], channels: int, device: torch.device | str
) -> tuple[torch.Tensor, torch.Tensor]:
    """(scale, shift) shaped 1,C,1,1 so that ``uint8 * scale + shift == (x/255 - mean) / std``."""
    # validated on the host, before anything reaches the device (no synchronisation)
    mean_l = [float(v) for v in torch.as_tensor(mean, dtype=torch.float64).flatten().tolist()]
    std_l = [float(v) for v in torch.as_tensor(std, dtype=torch.float64).flatten().tolist()]
    for name, values in (("mean", mean_l), ("std", std_l)):
        if len(values) not in (1, channels):
            raise ValueError(f"{name} has {len(values)} values for {channels}-channel images")
    if min(std_l) <= 0:
        raise ValueError(f"std must be positive, got {std_l}")
    mean_t = torch.tensor(mean_l, dtype=torch.float32).expand(channels).to(device)
    std_t = torch.tensor(std_l, dtype=torch.float32).expand(channels).to(device)
    scale = (1.0 / (255.0 * std_t)).view(1, channels, 1, 1)
    shift = (-mean_t / std_t).view(1, channels, 1, 1)
    return scale, shift


def normalize(
    x: torch.Tensor, mean: Sequence[float], std: Sequence[float], dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """uint8 (0-255) batch to ``(x/255 - mean) / std`` in ``dtype``; mean/std on the 0-1 scale."""
    scale, shift = normalization_constants(mean, std, x.shape[1], x.device)
    return normalize_with(x, scale, shift, dtype)


def normalize_with(
    x: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """``normalize`` with precomputed constants: one fused multiply-add per batch."""
    return torch.addcmul(shift, x.to(torch.float32), scale).to(dtype)
