"""A verdict that cannot go stale: caches are keyed by content, damaged entries are recomputed,
cache=false bypasses every cache, and a cache that cannot be written only costs time."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from PIL import Image

from helpers import compose_cfg
from synthetic import photos
from trueval.tasks.audit import audit


def _tree(root: Path) -> None:
    """train/ and test/ class folders of distinct BMPs (uncompressed: one size in bytes per image size)."""
    imgs = photos(24, seed=7)
    for split, part in (("train", imgs[:16]), ("test", imgs[16:])):
        for i, a in enumerate(part):
            folder = root / split / f"c{i % 2}"
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(a).save(folder / f"{split}_{i:02d}.bmp")


_RUNS = [0]


def _audit(root: Path, cache_dir: Path, **integrity) -> dict:
    """`python audit.py data=imagefolder data.root=<root>` in-process: its exit code and leak_report.json."""
    _RUNS[0] += 1
    out = root.parent / f"run{_RUNS[0]}"
    overrides = ["data=imagefolder", f"data.root={root}", f"paths.cache_dir={cache_dir}"]
    overrides += [f"data.integrity.{k}={str(v).lower()}" for k, v in integrity.items()]
    try:
        from trueval.tasks.runner import run_task

        run_task(audit, compose_cfg("audit", overrides, out))
        code = 0
    except SystemExit as exc:
        code = exc.code
    report = json.loads((out / "leak_report.json").read_text())
    return {"code": code, "pairs": report["pairs"], "kinds": {p["kind"] for p in report["pairs"]}}


def _swap_keeping_size_and_mtime(root: Path) -> None:
    """A test image replaced by a copy of a training image, with the old size and mtime (like cp -p / tar)."""
    victim = root / "test" / "c0" / "test_00.bmp"
    st = victim.stat()
    source = root / "train" / "c0" / "train_00.bmp"
    assert source.stat().st_size == st.st_size
    shutil.copyfile(source, victim)
    os.utime(victim, ns=(st.st_atime_ns, st.st_mtime_ns))


@pytest.mark.parametrize("cache_setting", [True, False])
def test_swapped_file_with_old_size_and_mtime_is_found(tmp_path: Path, cache_setting: bool) -> None:
    root, cache = tmp_path / "data", tmp_path / "cache"
    _tree(root)
    assert _audit(root, cache)["code"] == 0
    _swap_keeping_size_and_mtime(root)
    report = _audit(root, cache, cache=cache_setting)
    assert report["code"] == 1 and report["kinds"] == {"exact"}


@pytest.mark.parametrize("damage", ["truncate", "forge"])
def test_damaged_cache_entries_are_recomputed(tmp_path: Path, damage: str, caplog) -> None:
    root, cache = tmp_path / "data", tmp_path / "cache"
    _tree(root)
    (root / "test" / "c0" / "copy.bmp").write_bytes((root / "train" / "c0" / "train_00.bmp").read_bytes())
    first = _audit(root, cache)
    assert first["code"] == 1
    entries = [p for p in cache.rglob("*") if p.is_file()]
    assert entries
    for p in entries:
        data = p.read_bytes()
        p.write_bytes(data[: len(data) // 2] if damage == "truncate" else b"{}")
    for _ in range(2):  # recomputed, then rewritten and read back
        again = _audit(root, cache)
        assert again["code"] == 1 and again["pairs"] == first["pairs"]
    assert "damaged" in caplog.text


def test_a_cache_that_cannot_be_written_only_costs_time(tmp_path: Path) -> None:
    root = tmp_path / "data"
    _tree(root)
    (root / "test" / "c0" / "copy.bmp").write_bytes((root / "train" / "c0" / "train_00.bmp").read_bytes())
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    report = _audit(root, blocked / "cache")
    assert report["code"] == 1 and report["kinds"] == {"exact"}


def test_an_entry_is_written_straight_to_its_file_and_a_failed_write_leaves_nothing(tmp_path: Path) -> None:
    """Entries are streamed into a hidden temporary file and renamed into place: an error in the middle
    (a full disk, an array that cannot be saved) leaves neither the entry nor the temporary file, and
    the error of a bug (not the disk's) is raised, not swallowed."""
    import numpy as np

    from trueval.integrity.cache import GateCache, write_atomic

    cache = GateCache(tmp_path)
    images = np.arange(2 * 8 * 8 * 3, dtype=np.uint8).reshape(2, 8, 8, 3)
    cache.save("decoded", "k1", {"images": images})
    assert np.array_equal(cache.load("decoded", "k1", ["images"])["images"], images)

    def half_then(exc: BaseException):
        def write(f) -> None:
            f.write(b"PK half an entry")
            raise exc
        return write

    target = tmp_path / "decoded" / "k2.npz"
    assert write_atomic(target, half_then(OSError(28, "No space left on device"))) is False
    with pytest.raises(ValueError):
        write_atomic(target, half_then(ValueError("a bug")))
    assert sorted(p.name for p in (tmp_path / "decoded").iterdir()) == ["k1.npz"]


def test_large_arrays_are_read_into_shared_pages_as_np_load_reads_them(tmp_path: Path, monkeypatch) -> None:
    """``read_npz`` reads a large array (decoded images) into shared 4 KiB pages, where a warm audit
    after an idle spell no longer waits 1.5-2 s for NumPy's fresh memory; the values are np.load's."""
    import mmap

    import numpy as np

    import trueval.integrity.cache as cache_mod

    monkeypatch.setattr(cache_mod, "_SHARED_BYTES", 1000)
    monkeypatch.setattr(cache_mod, "_READ_BYTES", 777)  # several pieces, the last one short
    rng = np.random.default_rng(0)
    images, labels = rng.integers(0, 255, (9, 16, 16, 3), dtype=np.uint8), np.arange(9)
    cache = cache_mod.GateCache(tmp_path)
    cache.save("decoded", "k", {"images": images, "labels": labels})
    got = cache.load("decoded", "k", ["images", "labels"])
    assert isinstance(got["images"].base, mmap.mmap) and np.array_equal(got["images"], images)
    assert not isinstance(got["labels"].base, mmap.mmap) and np.array_equal(got["labels"], labels)
    with np.load(tmp_path / "decoded" / "k.npz", allow_pickle=False) as z:
        assert set(z.files) == set(cache_mod.read_npz(tmp_path / "decoded" / "k.npz"))


@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_a_damaged_large_array_is_a_miss(tmp_path: Path, monkeypatch, damage: str, caplog) -> None:
    """A byte changed inside the images (the zip's CRC-32 no longer matches) or a file cut short:
    the entry is a miss, with a warning, as np.load's errors were."""
    import numpy as np

    import trueval.integrity.cache as cache_mod

    monkeypatch.setattr(cache_mod, "_SHARED_BYTES", 1000)
    images = np.zeros((9, 16, 16, 3), np.uint8)
    cache = cache_mod.GateCache(tmp_path)
    cache.save("decoded", "k", {"images": images})
    path = tmp_path / "decoded" / "k.npz"
    data = bytearray(path.read_bytes())
    start = data.index(b"images.npy") + 200  # inside the array's bytes
    if damage == "flip":
        data[start + 100] ^= 0xFF
    else:
        data = data[:start + 100]
    path.write_bytes(bytes(data))
    assert cache.load("decoded", "k", ["images"]) is None
    assert "damaged" in caplog.text
