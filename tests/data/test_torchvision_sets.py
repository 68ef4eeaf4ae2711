"""MNIST read from IDX files the test writes; the message when dataset files are missing."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

from trueval.data.torchvision_sets import TorchvisionDataModule
from trueval.core.errors import UserError


def write_idx(raw: Path, prefix: str, images: np.ndarray, labels: np.ndarray) -> None:
    raw.mkdir(parents=True, exist_ok=True)
    n, h, w = images.shape
    with gzip.open(raw / f"{prefix}-images-idx3-ubyte.gz", "wb") as fh:
        fh.write(struct.pack(">IIII", 2051, n, h, w) + images.astype(np.uint8).tobytes())
    with gzip.open(raw / f"{prefix}-labels-idx1-ubyte.gz", "wb") as fh:
        fh.write(struct.pack(">II", 2049, n) + labels.astype(np.uint8).tobytes())


def fake_mnist(root: Path, n_train: int = 300, n_test: int = 60) -> None:
    rng = np.random.default_rng(0)
    raw = root / "MNIST" / "raw"
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = np.arange(n) % 10
        images = rng.integers(0, 255, size=(n, 28, 28))
        write_idx(raw, prefix, images, labels)


def test_mnist_from_idx_files(tmp_path: Path) -> None:
    fake_mnist(tmp_path / "data")
    dm = TorchvisionDataModule(name="mnist", data_dir=str(tmp_path / "data"), val_fraction=0.1, seed=0,
                               cache_dir=str(tmp_path / "cache"))
    dm.setup()
    assert [len(dm.sets[s]) for s in ("train", "val", "test")] == [270, 30, 60]
    assert dm.in_shape == (1, 28, 28) and dm.num_classes == 10
    # validation is carved from train, never from test
    assert all(o.startswith("mnist:train") for o in dm.sets["val"].origin)
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (64, 1, 28, 28) and x.dtype.is_floating_point


@pytest.mark.parametrize("name", ["mnist", "cifar10", "cifar100", "svhn"])
def test_missing_files_say_where_to_put_them(name: str, tmp_path: Path) -> None:
    dm = TorchvisionDataModule(name=name, data_dir=str(tmp_path / "empty"))
    with pytest.raises(UserError) as info:
        dm.setup()
    message = str(info.value)
    assert "data.data_dir" in message and str(tmp_path / "empty") in message


def test_read_arrays_cached_by_content(tmp_path: Path, monkeypatch) -> None:
    """A warm run reads the arrays from the cache (no torchvision); changed files are a miss."""
    fake_mnist(tmp_path / "data", n_train=40, n_test=20)
    make = lambda: TorchvisionDataModule(name="mnist", data_dir=str(tmp_path / "data"),  # noqa: E731
                                         cache_dir=str(tmp_path / "cache"))
    first = make().load_splits()
    reads: list[bool] = []
    real = TorchvisionDataModule._read
    monkeypatch.setattr(TorchvisionDataModule, "_read", lambda self, train: reads.append(train) or real(self, train))
    again = make().load_splits()
    assert reads == [] and all(np.array_equal(first[s].images, again[s].images) for s in ("train", "test"))
    for f in (tmp_path / "data" / "MNIST" / "raw").glob("*-ubyte"):
        f.unlink()
    fake_mnist(tmp_path / "data", n_train=50, n_test=20)  # same names, other content
    changed = make().load_splits()
    assert reads == [True, False] and len(changed["train"]) == 50


def test_mnist_from_a_flat_read_only_folder_of_gz_files(tmp_path: Path) -> None:
    """The four .gz files straight in data_dir (how MNIST is usually handed around, e.g. a shared
    read-only copy) are read as they are: nothing is unzipped or written next to them."""
    flat = tmp_path / "mnist"
    rng = np.random.default_rng(1)
    written = {}
    for prefix, n in (("train", 50), ("t10k", 20)):
        written[prefix] = rng.integers(0, 255, size=(n, 28, 28)).astype(np.uint8), np.arange(n) % 10
        write_idx(flat, prefix, *written[prefix])
    before = sorted(p.name for p in flat.iterdir())
    flat.chmod(0o555)
    try:
        sets = TorchvisionDataModule(name="mnist", data_dir=str(flat), cache_dir=str(tmp_path / "cache")).load_splits()
    finally:
        flat.chmod(0o755)
    assert sorted(p.name for p in flat.iterdir()) == before
    for split, prefix in (("train", "train"), ("test", "t10k")):
        assert np.array_equal(sets[split].images[..., 0], written[prefix][0])
        assert np.array_equal(sets[split].targets, written[prefix][1])


def test_a_truncated_mnist_file_is_named(tmp_path: Path) -> None:
    flat = tmp_path / "mnist"
    for prefix, n in (("train", 30), ("t10k", 10)):
        write_idx(flat, prefix, np.zeros((n, 28, 28)), np.arange(n) % 10)
    damaged = flat / "train-images-idx3-ubyte.gz"
    damaged.write_bytes(damaged.read_bytes()[:-20])  # the end of the stream cut off
    with pytest.raises(UserError) as info:
        TorchvisionDataModule(name="mnist", data_dir=str(flat)).load_splits()
    assert "train-images-idx3-ubyte.gz" in str(info.value) and "data.data_dir" in str(info.value)


def test_mnist_files_found_in_either_layout_unzipped_first(tmp_path: Path) -> None:
    from trueval.data.torchvision_sets import mnist_files

    fake_mnist(tmp_path / "data", n_train=20, n_test=10)  # .gz files in MNIST/raw
    raw = tmp_path / "data" / "MNIST" / "raw"
    assert {f.name for f in mnist_files(tmp_path / "data").values()} == {f.name for f in raw.glob("*.gz")}
    unzipped = raw / "train-images-idx3-ubyte"
    unzipped.write_bytes(gzip.decompress((raw / "train-images-idx3-ubyte.gz").read_bytes()))
    assert mnist_files(tmp_path / "data")["train-images-idx3-ubyte"] == unzipped
    (raw / "t10k-labels-idx1-ubyte.gz").unlink()  # three of four: neither layout holds MNIST
    assert mnist_files(tmp_path / "data") is None
