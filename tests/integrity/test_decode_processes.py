"""Many small JPEGs are decoded in worker processes: the same pixels in the same order as one
thread decodes, in the chunks asked for, and an unreadable file fails as it does without workers."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import trueval.integrity.fingerprints as fingerprints
from trueval.core.errors import UserError


def _jpegs(folder: Path, n: int, seed: int = 0) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        size = (12, 12) if i % 7 else (12, 10)  # some of another shape: sent back as a list, not one array
        buf = io.BytesIO()
        Image.fromarray(rng.integers(0, 255, (*size, 3), dtype=np.uint8)).save(buf, "JPEG", quality=80)
        path = folder / f"{i:04d}.jpg"
        path.write_bytes(buf.getvalue())
        paths.append(str(path))
    return paths


@pytest.fixture
def small_tasks(monkeypatch):
    """Processes from a few dozen files on (the defaults wait for thousands), two workers anywhere."""
    monkeypatch.setattr(fingerprints, "_PROCESS_TASK_FILES", 16)
    monkeypatch.setattr(fingerprints, "_PROCESS_MIN_FILES", 32)
    monkeypatch.setattr(fingerprints, "cores", lambda: 2)
    here: list[int] = []  # chunks decoded in this process (a forked worker appends to its own copy)
    real = fingerprints._decode_chunk
    monkeypatch.setattr(fingerprints, "_decode_chunk", lambda paths, mode: here.append(len(paths)) or real(paths, mode))
    return here


def test_processes_decode_what_one_thread_decodes_in_order(tmp_path: Path, small_tasks, monkeypatch) -> None:
    paths = _jpegs(tmp_path / "a", 100)
    chunks = list(fingerprints.decode_in_chunks(paths, "RGB", 30))
    assert [len(c) for c in chunks] == [30, 30, 30, 10]
    assert small_tasks == []  # the workers decoded every file
    monkeypatch.setattr(fingerprints, "_PROCESS_MIN_FILES", 10**9)
    alone = list(fingerprints.decode_in_chunks(paths, "RGB", 30))
    assert sum(small_tasks) == 100  # one thread, here
    got, want = [a for c in chunks for a in c], [a for c in alone for a in c]
    assert len(got) == len(want) == 100
    assert all(g.shape == w.shape and np.array_equal(g, w) for g, w in zip(got, want))


def test_an_unreadable_file_fails_as_without_workers(tmp_path: Path, small_tasks) -> None:
    paths = _jpegs(tmp_path / "a", 64)
    Path(paths[40]).write_bytes(b"not a jpeg at all")
    with pytest.raises(UserError, match=Path(paths[40]).name):
        list(fingerprints.decode_in_chunks(paths, "RGB", 30))


def _alike(folder: Path, n: int, seed: int = 0) -> list[str]:
    """``n`` JPEGs of one size (CIFAR's case)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        path = folder / f"{i:04d}.jpg"
        Image.fromarray(rng.integers(0, 255, (12, 14, 3), dtype=np.uint8)).save(path, "JPEG", quality=80)
        paths.append(str(path))
    return paths


def test_workers_decode_straight_into_one_shared_array(tmp_path: Path, small_tasks, monkeypatch) -> None:
    """``decode_alike``: forked workers write the pixels into the array itself (no pipe, no copy here),
    the same pixels in the same order as this process decodes alone, and the bar reaches the count."""
    import mmap

    import trueval.integrity.console as console

    paths = _alike(tmp_path / "a", 100)
    moved: list[int] = []
    monkeypatch.setattr(console, "advance", moved.append)
    got = fingerprints.decode_alike(paths, "RGB")
    assert small_tasks == [1]  # only the first file here, for the shape; the workers decoded the rest
    assert isinstance(got, np.ndarray) and got.shape == (100, 12, 14, 3) and got.dtype == np.uint8
    assert isinstance(got.base, mmap.mmap)  # the shared memory the workers wrote
    assert sum(moved) == 100
    monkeypatch.setattr(fingerprints, "_PROCESS_MIN_FILES", 10**9)
    alone = fingerprints.decode_alike(paths, "RGB")
    assert np.array_equal(got, alone)
    assert np.array_equal(got, np.stack([a for c in fingerprints.decode_in_chunks(paths, "RGB", 30) for a in c]))


def test_a_file_of_another_size_is_named_with_the_first_one(tmp_path: Path, small_tasks) -> None:
    paths = _alike(tmp_path / "a", 100)
    Image.new("RGB", (9, 9)).save(paths[70], "JPEG")
    assert fingerprints.decode_alike(paths, "RGB") == {(12, 14, 3): paths[0], (9, 9, 3): paths[70]}
    assert fingerprints.decode_alike(paths, "RGB", size=12) == {(12, 14, 3): paths[0]}  # not 12 x 12: at once
    assert small_tasks == [1, 1]


def test_files_that_do_not_decode_are_all_named_from_workers(tmp_path: Path, small_tasks) -> None:
    """A worker that cannot decode its span leaves it to this process, whose error names that file and
    every other one that does not decode, as ``decode_in_chunks`` does."""
    paths = _alike(tmp_path / "a", 100)
    for i in (40, 90):
        Path(paths[i]).write_bytes(b"not a jpeg at all")
    with pytest.raises(UserError) as err:
        fingerprints.decode_alike(paths, "RGB")
    assert Path(paths[40]).name in str(err.value) and Path(paths[90]).name in str(err.value)
