"""The in-memory description of one split that every part of the template shares.

A ``SampleSet`` is what a DataModule produces before any training: the integrity gate hashes
it, the splitter partitions it, the manifest records it, and the loaders (CPU DataLoader or
GPU-resident) read it. Small datasets keep decoded pixels in ``images``; large image folders
keep ``paths`` and decode lazily.

Every image is seen as a viewer shows it: a file's EXIF orientation is applied when it is decoded
and when its size is read (a phone photo stored sideways with an orientation tag and the same photo
saved upright are one image, to training and to the integrity gate alike; YOLO labels, as
Ultralytics writes and reads them, are relative to that upright image).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
from PIL import Image, ImageOps

from trueval.core.errors import UnreadableImages, UserError

_ORIENTATION = 0x0112  # the EXIF tag
_SIDEWAYS = (5, 6, 7, 8)  # orientations that swap width and height


def load_image(path: str, mode: str | None = None) -> np.ndarray:
    """Decode one image file to uint8 HWC (C=1 for grayscale, 3 for colour), upright (its EXIF
    orientation applied); names the file on failure."""
    try:
        with Image.open(path) as im:
            im.load()
            ImageOps.exif_transpose(im, in_place=True)  # no copy when there is no tag
            if im.mode.startswith("I"):  # 16/32-bit: PIL's convert clips to 255 (near-white), so scale
                im = _eight_bit(im)
            if mode is not None:
                im = im.convert(mode)
            elif im.mode not in ("L", "RGB"):
                im = im.convert("RGB")
            arr = np.array(im, dtype=np.uint8)  # writable: torch.from_numpy warns on read-only memory
    except Exception as exc:  # PIL raises many types for a broken file
        raise UserError(f"cannot decode image file: {exc}", path=str(path)) from exc
    if arr.ndim == 2:
        arr = arr[:, :, None]
    return arr


def unreadable(paths: Sequence[str], mode: str | None = None) -> list[UserError]:
    """The error of every file of ``paths`` that does not decode (threads: decoders release the GIL).
    Used once a decode has failed, to name all the broken files in one run instead of one per run."""
    return [e for e in _each(lambda p: load_image(p, mode), paths) if isinstance(e, UserError)]


def _each(read: Callable[[str], Any], paths: Sequence[str]) -> list[Any]:
    """``read(path)`` of every path, or the ``UserError`` it raised; in threads from 256 files (file
    I/O, and decoders release the GIL)."""
    def one(path: str) -> Any:
        try:
            return read(path)
        except UserError as exc:
            return exc

    if len(paths) < 256:
        return [one(p) for p in paths]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=min(16, (os.cpu_count() or 1) * 2)) as pool:
        return list(pool.map(one, paths, chunksize=64))


def displayed_size(path: str) -> tuple[int, int]:
    """(width, height) of an image file as a viewer shows it, from its header (no decoding): swapped
    when its EXIF orientation turns it sideways. Names the file when it cannot be read."""
    (w, h), orientation = _header(path)
    return (h, w) if orientation in _SIDEWAYS else (w, h)


def displayed_sizes(paths: Sequence[str]) -> dict[str, tuple[int, int]]:
    """``displayed_size`` of every file (in threads); every unreadable file is named in one error
    (``UnreadableImages``)."""
    sizes = _each(displayed_size, paths)
    broken = [s for s in sizes if isinstance(s, UserError)]
    if broken:
        raise UnreadableImages(broken)
    return dict(zip(paths, sizes))


def turned(path: str) -> bool:
    """Whether an image file carries an EXIF orientation that turns or mirrors it (2-8), from its header."""
    return _header(path)[1] in range(2, 9)


def _header(path: str) -> tuple[tuple[int, int], int | None]:
    try:
        with Image.open(path) as im:
            return im.size, im.getexif().get(_ORIENTATION)
    except Exception as exc:  # PIL raises many types for a broken file
        raise UserError(f"cannot read image: {exc}", path=str(path)) from exc


def _eight_bit(im: Image.Image) -> Image.Image:
    """A 16-bit (or 32-bit integer) greyscale image scaled to 8 bits: 65535 -> 255, not clipped."""
    a = np.asarray(im).astype(np.float64)
    top = 65535.0 if im.mode.startswith("I;16") or a.max() <= 65535 else float(a.max())
    if im.mode == "I" and a.max() <= 255 and a.min() >= 0:
        top = 255.0  # an 8-bit image stored as 32-bit integers
    return Image.fromarray(np.clip(np.round(a * (255.0 / top)), 0, 255).astype(np.uint8), mode="L")


@dataclass
class SampleSet:
    """One split: targets plus either decoded pixels or image files.

    ``images``: uint8 array N x H x W x C (C is 1 or 3), or None when file-backed.
    ``paths``: absolute file paths (resolved), or None for array-backed datasets.
    ``sources``: the directories / list files / files the split was read from, resolved, so the
    gate can tell two splits that point at the same place.
    ``name``: dataset name for reports ("digits", "mnist", "imagefolder:<root>").
    ``origin``: per sample, an identifier stable across runs ("mnist:train:123" or the path).
    """

    split: str
    targets: np.ndarray
    images: np.ndarray | None = None
    paths: list[str] | None = None
    sources: list[str] = field(default_factory=list)
    name: str = ""
    origin: list[str] | None = None
    image_mode: str | None = None  # "L" or "RGB" to force when decoding files

    def __post_init__(self) -> None:
        self.targets = np.asarray(self.targets, dtype=np.int64)
        if self.images is None and self.paths is None:
            raise ValueError("SampleSet needs images or paths")
        n = len(self.targets)
        if self.images is not None and len(self.images) != n:
            raise ValueError(f"{self.split}: {len(self.images)} images but {n} targets")
        if self.paths is not None and len(self.paths) != n:
            raise ValueError(f"{self.split}: {len(self.paths)} paths but {n} targets")
        if self.origin is None:
            self.origin = list(self.paths) if self.paths is not None else [
                f"{self.name}:{self.split}:{i}" for i in range(n)
            ]

    def __len__(self) -> int:
        return len(self.targets)

    def load(self, i: int) -> np.ndarray:
        """Decoded uint8 HWC pixels of sample ``i``."""
        if self.images is not None:
            return self.images[i]
        assert self.paths is not None
        return load_image(self.paths[i], self.image_mode)

    def path(self, i: int) -> str | None:
        return None if self.paths is None else self.paths[i]

    def subset(self, indices: Sequence[int] | np.ndarray, split: str | None = None,
               pixels: bool = True) -> "SampleSet":
        """A new SampleSet with the given samples (order kept as given). ``pixels`` False: without
        their decoded pixels where the samples are files (no copy of them is made)."""
        idx = np.asarray(indices, dtype=np.int64)
        keep = self.images is not None and (pixels or self.paths is None)
        return SampleSet(
            split=split or self.split,
            targets=self.targets[idx],
            images=self.images[idx] if keep else None,
            paths=None if self.paths is None else [self.paths[i] for i in idx.tolist()],
            sources=list(self.sources),
            name=self.name,
            origin=[self.origin[i] for i in idx.tolist()] if self.origin is not None else None,
            image_mode=self.image_mode,
        )

    def materialize(self) -> "SampleSet":
        """Decode every file into memory (same size images only); used for small image folders."""
        if self.images is not None:
            return self
        arrays = [self.load(i) for i in range(len(self))]
        shapes = {a.shape for a in arrays}
        if len(shapes) != 1:
            raise UserError(
                f"{self.split}: images have different sizes {sorted(shapes)[:3]}...; set data.image_size",
                key="data.image_size",
            )
        return SampleSet(
            split=self.split, targets=self.targets, images=np.stack(arrays), paths=self.paths,
            sources=self.sources, name=self.name, origin=self.origin, image_mode=self.image_mode,
        )


def resolve(path: str | Path) -> str:
    """Absolute path with symlinks resolved: the identity the same-source check compares."""
    return str(Path(path).expanduser().resolve())
