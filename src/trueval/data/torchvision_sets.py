"""MNIST, CIFAR-10, CIFAR-100 and SVHN through torchvision, held in memory as uint8 arrays.

The official test split is the test set; validation is carved from the training set by the base
class. Files are looked for in `data.data_dir` (torchvision's layout); `data.download=true` lets
torchvision fetch them when the network allows. `data.root` instead reads an image-folder copy
(`<root>/train/<class>/*`, `<root>/test/<class>/*`), such as the CIFAR-10 JPEG copy, decoded once
and cached.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from trueval.data.base import ClassificationData, lightning_classes
from trueval.core.samples import SampleSet, resolve
from trueval.core.errors import UserError

# where torchvision expects each dataset's files under data_dir, for the error message
_EXPECTED = {
    "mnist": "MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]",
    "cifar10": "cifar-10-batches-py/ (or cifar-10-python.tar.gz)",
    "cifar100": "cifar-100-python/ (or cifar-100-python.tar.gz)",
    "svhn": "train_32x32.mat and test_32x32.mat",
}


class TorchvisionData(ClassificationData):
    """One of mnist, cifar10, cifar100, svhn (``name``)."""

    def __init__(self, name: str, download: bool = False, root: str | None = None, image_mode: str | None = None,
                 **kwargs: Any) -> None:
        if name not in _EXPECTED:
            raise UserError(f"unknown torchvision dataset {name!r}; choose one of {sorted(_EXPECTED)}", key="data.name")
        super().__init__(name=name, **kwargs)
        self.download = bool(download)
        self.root = root
        # an image-folder copy is read in the dataset's own colour mode
        self.image_mode = image_mode or ("L" if name == "mnist" else "RGB")

    def load_splits(self) -> dict[str, SampleSet]:
        if self.root:
            from trueval.data.imagefolder import read_presplit

            sets, classes = read_presplit(Path(self.root), self.name, image_size=self.image_size,
                                          cache_dir=self._array_cache(), in_memory=True, mode=self.image_mode)
            self.class_names = classes
            return sets
        sets = {}
        content = self._content_digest()
        for split in ("train", "test"):
            images, targets, classes = self._read_cached(split == "train", content)
            self.class_names = classes
            source = resolve(Path(self.data_dir)) + f"#{self.name}:{split}"
            sets[split] = SampleSet(split=split, targets=targets, images=images, sources=[source], name=self.name)
        return sets

    def _content_digest(self) -> str | None:
        """Digest of the bytes of the dataset's files in data_dir (None: files missing, or no caching)."""
        cache_dir = self._array_cache()
        root = Path(self.data_dir).expanduser()
        if cache_dir is None:
            return None
        if self.name == "mnist":
            _gunzip_mnist(root / "MNIST" / "raw")
        folder = {"mnist": root / "MNIST" / "raw", "cifar10": root / "cifar-10-batches-py",
                  "cifar100": root / "cifar-100-python", "svhn": root}[self.name]
        pattern = {"mnist": "*-ubyte", "svhn": "*_32x32.mat"}.get(self.name, "*")
        files = sorted(str(f) for f in folder.glob(pattern) if f.is_file()) if folder.is_dir() else []
        if not files:
            return None
        from trueval.integrity.cache import file_digests

        names = "\n".join(Path(f).name for f in files).encode()
        return hashlib.blake2b(names + b"".join(file_digests(files)), digest_size=20).hexdigest()

    def _read_cached(self, train: bool, content: str | None) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """``_read``, from the array cache when the dataset's files are unchanged (by content): a warm
        audit then imports neither torch nor torchvision (5 s of a 10 s warm MNIST audit)."""
        from trueval.integrity.cache import GateCache, key_of
        from trueval.integrity.console import stage

        cache = GateCache(None if content is None else Path(self._array_cache()) / "arrays")
        key = key_of("torchvision", 1, self.name, train, self.image_size, content)
        hit = cache.load("read", key, ["images", "targets", "classes"])
        if hit is not None and hit["images"].ndim == 4 and hit["images"].dtype == np.uint8 \
                and len(hit["images"]) == len(hit["targets"]):
            return hit["images"], hit["targets"].astype(np.int64), [str(c) for c in hit["classes"]]
        with stage(f"reading {self.name} {'train' if train else 'test'}", total=None):
            images, targets, classes = self._read(train)
        cache.save("read", key, {"images": images, "targets": targets, "classes": np.array(classes)})
        return images, targets, classes

    def _read(self, train: bool) -> tuple[np.ndarray, np.ndarray, list[str]]:
        from torchvision import datasets

        root = Path(self.data_dir).expanduser()
        if self.name == "mnist":
            _gunzip_mnist(root / "MNIST" / "raw")
        try:
            if self.name == "mnist":
                ds = datasets.MNIST(root, train=train, download=self.download)
                images, targets = ds.data.numpy()[:, :, :, None], ds.targets.numpy()
                classes = [c.split(" - ")[0] for c in ds.classes]
            elif self.name in ("cifar10", "cifar100"):
                cls = datasets.CIFAR10 if self.name == "cifar10" else datasets.CIFAR100
                ds = cls(root, train=train, download=self.download)
                images, targets, classes = ds.data, np.asarray(ds.targets), list(ds.classes)
            else:
                ds = datasets.SVHN(root, split="train" if train else "test", download=self.download)
                images, targets = ds.data.transpose(0, 2, 3, 1), ds.labels
                classes = [str(i) for i in range(10)]
        except (RuntimeError, OSError) as exc:
            hint = "" if self.download else " or allow the download with data.download=true"
            raise UserError(
                f"{self.name} files not found or unreadable in {root} ({exc}). Put {_EXPECTED[self.name]} "
                f"there (data.data_dir={root}){hint}.", key="data.data_dir") from exc
        if self.image_size and images.shape[1] != self.image_size:
            from trueval.data.imagefolder import resize_array

            images = resize_array(images, self.image_size)
        return np.ascontiguousarray(images, dtype=np.uint8), np.asarray(targets, dtype=np.int64), classes


LIGHTNING_FREE = {"TorchvisionDataModule": TorchvisionData}


def __getattr__(name: str) -> type:  # TorchvisionDataModule: TorchvisionData with Lightning, made on first use
    return lightning_classes(__name__, name, LIGHTNING_FREE)


def _gunzip_mnist(raw: Path) -> None:
    """torchvision reads MNIST's IDX files unzipped; unzip the .gz copies people usually have."""
    import gzip
    import shutil

    for gz in raw.glob("*-ubyte.gz"):
        target = gz.with_suffix("")
        if not target.exists():
            with gzip.open(gz, "rb") as src, open(target, "wb") as dst:
                shutil.copyfileobj(src, dst)
