"""MNIST, CIFAR-10, CIFAR-100 and SVHN through torchvision, held in memory as uint8 arrays.

The official test split is the test set; validation is carved from the training set by the base
class. Files are looked for in `data.data_dir` (torchvision's layout; MNIST's four IDX files may
also lie in data_dir itself, gzipped or not); `data.download=true` lets torchvision fetch them when
the network allows. `data.root` instead reads an image-folder copy
(`<root>/train/<class>/*`, `<root>/test/<class>/*`), such as the CIFAR-10 JPEG copy, decoded once
and cached; an archive of one (`cifar10-jpg.tar.gz`) is unpacked into the cache first.
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
    "mnist": "{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz] (in data_dir itself or in its MNIST/raw/)",
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

            sets, classes = read_presplit(self._folder(self.root), self.name, image_size=self.image_size,
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
            found = mnist_files(root)
            files = sorted(str(f) for f in found.values()) if found else []
        else:
            folder = {"cifar10": root / "cifar-10-batches-py", "cifar100": root / "cifar-100-python",
                      "svhn": root}[self.name]
            pattern = "*_32x32.mat" if self.name == "svhn" else "*"
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
        root = Path(self.data_dir).expanduser()
        try:
            if self.name == "mnist":  # read without torchvision (1 s to import) unless it downloads them
                if mnist_files(root) is None and self.download:
                    from torchvision import datasets

                    datasets.MNIST(root, train=train, download=True)  # into root/MNIST/raw
                images, targets = _read_mnist(root, train)
                classes = [str(d) for d in range(10)]
            elif self.name in ("cifar10", "cifar100"):
                from torchvision import datasets

                cls = datasets.CIFAR10 if self.name == "cifar10" else datasets.CIFAR100
                ds = cls(root, train=train, download=self.download)
                images, targets, classes = ds.data, np.asarray(ds.targets), list(ds.classes)
            else:
                from torchvision import datasets

                ds = datasets.SVHN(root, split="train" if train else "test", download=self.download)
                images, targets = ds.data.transpose(0, 2, 3, 1), ds.labels
                classes = [str(i) for i in range(10)]
        except (RuntimeError, OSError, EOFError, ValueError) as exc:
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


_MNIST_NAMES = {True: ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
                False: ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


def mnist_files(root: Path) -> dict[str, Path] | None:
    """MNIST's four IDX files, each unzipped or ``.gz``, from torchvision's ``<root>/MNIST/raw/`` or
    from ``root`` itself (the flat folder of .gz files MNIST is usually handed around as); None when
    neither holds all four."""
    for folder in (root / "MNIST" / "raw", root):
        found = {}
        for name in (*_MNIST_NAMES[True], *_MNIST_NAMES[False]):
            present = [f for f in (folder / name, folder / f"{name}.gz") if f.is_file()]
            if present:
                found[name] = present[0]  # the unzipped file when both are there
        if len(found) == 4:
            return found
    return None


def _read_mnist(root: Path, train: bool) -> tuple[np.ndarray, np.ndarray]:
    files = mnist_files(root)
    if files is None:
        raise FileNotFoundError(f"no MNIST files in {root} or {root / 'MNIST' / 'raw'}")
    images, labels = (read_idx(files[name]) for name in _MNIST_NAMES[train])
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise ValueError(f"{files[_MNIST_NAMES[train][0]]} holds {images.shape} images and "
                         f"{files[_MNIST_NAMES[train][1]]} {labels.shape} labels")
    return images[:, :, :, None], labels


def read_idx(path: Path) -> np.ndarray:
    """An IDX file of unsigned bytes (MNIST's format), unzipped or ``.gz``, as an array, read in memory.
    torchvision's reader (``datasets.mnist.read_image_file``) takes unzipped files only, so a .gz
    copy would have to be unzipped next to itself, which a read-only folder does not allow."""
    import gzip

    try:
        with (gzip.open if path.suffix == ".gz" else open)(path, "rb") as fh:
            data = fh.read()
    except (EOFError, gzip.BadGzipFile) as exc:  # gzip's messages do not name the file
        raise ValueError(f"{path} is damaged: {exc}") from exc
    if len(data) < 4 or data[:3] != b"\0\0\x08" or not 1 <= data[3] <= 3:
        raise ValueError(f"{path} is not an IDX file of unsigned bytes (magic {data[:4].hex()})")
    dims = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(dims))
    body = np.frombuffer(data, np.uint8, offset=4 + 4 * dims)
    if body.size != int(np.prod(shape)):
        raise ValueError(f"{path} is truncated or padded: {body.size} bytes for a {shape} array")
    # writable, as torchvision's reader returns it (a read-only array gets copied downstream)
    return body.reshape(shape).copy()
