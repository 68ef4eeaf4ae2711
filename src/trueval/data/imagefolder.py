"""A user's own images in class folders: pre-split (`train/`, `val/`, `test/`) or one tree split by ratios.

Small images (or any images with `data.image_size` set) are decoded once, resized, and cached as
one uint8 array keyed by the files' paths, sizes and modification times: sweeps and repeated runs
skip decoding, and the GPU-resident loader can take them. Larger sets stay on disk and are decoded
per item in DataLoader workers.
"""

from __future__ import annotations

import hashlib
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torchvision.datasets.folder import IMG_EXTENSIONS

from trueval.data.base import ClassificationDataModule
from trueval.core.samples import SampleSet, load_image, resolve
from trueval.core.errors import UserError

log = logging.getLogger("trueval")

IN_MEMORY_LIMIT_BYTES = 4 * 1024**3


def list_class_folders(folder: Path, classes: list[str] | None = None) -> tuple[list[str], list[int], list[str]]:
    """(resolved paths, class indices, class names) of ``folder/<class>/<image>``."""
    if not folder.is_dir():
        raise UserError("image folder does not exist", key="data.root", path=str(folder))
    found = sorted(d.name for d in folder.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not found:
        raise UserError("no class folders inside (expected <root>/<class>/<image files>)", key="data.root",
                        path=str(folder))
    if classes is None:
        classes = found
    else:
        extra = sorted(set(found) - set(classes))
        if extra:
            raise UserError(f"classes {extra} are not in the training split", key="data.root", path=str(folder))
    paths, targets = [], []
    for name in found:
        files = sorted(str(p.resolve()) for p in (folder / name).rglob("*")
                       if p.is_file() and p.suffix.lower() in IMG_EXTENSIONS)
        if not files:
            raise UserError("empty class folder: no image files inside", key="data.root", path=str(folder / name))
        paths.extend(files)
        targets.extend([classes.index(name)] * len(files))
    return paths, targets, classes


def resize_array(images: np.ndarray, size: int) -> np.ndarray:
    """Resize a uint8 NHWC array to size x size (antialiased bilinear)."""
    from torchvision.transforms.v2 import functional as F

    x = torch.from_numpy(images).permute(0, 3, 1, 2)
    x = F.resize(x, [size, size], antialias=True)
    return x.permute(0, 2, 3, 1).contiguous().numpy()


def _image_mode(path: str) -> str:
    with Image.open(path) as im:
        return "L" if im.mode in ("L", "1", "I;16", "I") else "RGB"


def _decode(paths: list[str], mode: str, size: int | None) -> np.ndarray:
    def one(path: str) -> np.ndarray:
        arr = load_image(path, mode)
        if size and arr.shape[:2] != (size, size):
            arr = resize_array(arr[None], size)[0]
        return arr

    with ThreadPoolExecutor(max_workers=min(16, (os.cpu_count() or 1) * 2)) as pool:
        arrays = list(pool.map(one, paths, chunksize=64))
    shapes = {a.shape for a in arrays}
    if len(shapes) > 1:
        raise UserError(f"images have different sizes ({len(shapes)} distinct, e.g. {sorted(shapes)[:2]}); "
                        "set data.image_size to resize them", key="data.image_size")
    return np.stack(arrays)


def _cache_key(paths: list[str], mode: str, size: int | None) -> str:
    h = hashlib.sha256(f"{mode}|{size}".encode())
    for p in paths:
        st = os.stat(p)
        h.update(f"{p}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:32]


def decode_cached(paths: list[str], mode: str, size: int | None, cache_dir: Path | None) -> np.ndarray:
    """Decoded uint8 NHWC pixels of ``paths``, from the array cache when the files are unchanged."""
    file = None
    if cache_dir is not None:
        file = Path(cache_dir) / "arrays" / f"{_cache_key(paths, mode, size)}.npy"
        if file.is_file():
            return np.load(file)
    images = _decode(paths, mode, size)
    if file is not None:
        file.parent.mkdir(parents=True, exist_ok=True)
        tmp = file.with_suffix(f".tmp{os.getpid()}.npy")
        np.save(tmp, images)
        os.replace(tmp, file)
    return images


def _should_hold(paths: list[str], size: int | None, in_memory: Any) -> bool:
    if in_memory in (True, "true"):
        return True
    if in_memory in (False, "false"):
        return False
    with Image.open(paths[0]) as im:
        w, h = im.size
        channels = 1 if im.mode == "L" else 3
    pixels = (size * size) if size else (w * h)
    return pixels * channels * len(paths) < IN_MEMORY_LIMIT_BYTES


def make_set(split: str, paths: list[str], targets: list[int], sources: list[str], name: str, mode: str,
             size: int | None, cache_dir: Path | None, in_memory: Any) -> SampleSet:
    images = decode_cached(paths, mode, size, cache_dir) if _should_hold(paths, size, in_memory) else None
    return SampleSet(split=split, targets=np.asarray(targets), images=images, paths=paths, sources=sources,
                     name=name, image_mode=mode)


def read_presplit(root: Path, name: str, image_size: int | None, cache_dir: Path | None,
                  in_memory: Any = "auto") -> tuple[dict[str, SampleSet], list[str]]:
    """``root/train`` and ``root/test`` (and ``root/val`` if present) class-folder trees."""
    root = Path(root).expanduser()
    if not (root / "train").is_dir():
        raise UserError("expected a train/ folder of class folders inside", key="data.root", path=str(root))
    paths, targets, classes = list_class_folders(root / "train")
    mode = _image_mode(paths[0])
    sets = {"train": make_set("train", paths, targets, [resolve(root / "train")], name, mode, image_size, cache_dir,
                              in_memory)}
    for split in ("val", "test"):
        folder = root / split
        if folder.is_dir():
            p, t, _ = list_class_folders(folder, classes)
            sets[split] = make_set(split, p, t, [resolve(folder)], name, mode, image_size, cache_dir, in_memory)
    if "test" not in sets:
        raise UserError("expected a test/ folder next to train/ (or use one class-folder tree with data.split)",
                        key="data.root", path=str(root))
    return sets, classes


class ImageFolderDataModule(ClassificationDataModule):
    """`data.root` is either ``train/ [val/] test/`` class folders, or one class-folder tree plus `data.split`."""

    def __init__(self, root: str | None = None, in_memory: Any = "auto", **kwargs: Any) -> None:
        if not root:
            raise UserError("set the folder of your images: data.root=<dir>", key="data.root")
        kwargs.setdefault("name", f"imagefolder:{Path(root).name}")
        super().__init__(**kwargs)
        self.root = Path(root).expanduser()
        self.in_memory = in_memory

    def load_splits(self) -> dict[str, SampleSet]:
        if not self.root.is_dir():
            raise UserError("image folder does not exist", key="data.root", path=str(self.root))
        if (self.root / "train").is_dir():
            if self.split is not None:
                log.info("%s is already split into folders: data.split is ignored", self.root)
            sets, self.class_names = read_presplit(self.root, self.name, self.image_size, self.cache_dir,
                                                   self.in_memory)
            return sets
        paths, targets, self.class_names = list_class_folders(self.root)
        mode = _image_mode(paths[0])
        pool = make_set("all", paths, targets, [resolve(self.root)], self.name, mode, self.image_size,
                        self.cache_dir, self.in_memory)
        return {"all": pool}
