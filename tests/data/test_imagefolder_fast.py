"""Deciding whether an image folder is held in memory costs nothing per file: no header of every
file is read (60,000 CIFAR files took 10-19 s on every run), and a warm run decodes nothing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

import trueval.data.imagefolder as imagefolder
import trueval.integrity.fingerprints as fingerprints


def _write(folder: Path, n: int, size: int, seed: int, start: int = 0) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(folder / f"{start + i:04d}.png")


def _count_calls(monkeypatch, module, name: str) -> list[int]:
    calls: list[int] = []
    real = getattr(module, name)

    def counted(paths, *args, **kwargs):
        calls.append(len(paths))
        return real(paths, *args, **kwargs)

    monkeypatch.setattr(module, name, counted)
    return calls


def test_one_size_folder_is_held_without_reading_every_header(tmp_path: Path, monkeypatch) -> None:
    _write(tmp_path / "a", 300, 8, seed=0)
    paths = imagefolder.image_files(tmp_path / "a")
    headers = _count_calls(monkeypatch, imagefolder, "header_sizes")
    ss = imagefolder.make_set("train", paths, [0] * 300, ["x"], "t", "RGB", None, tmp_path / "c", "auto")
    assert ss.images is not None and ss.images.shape == (300, 8, 8, 3)
    assert sum(headers) <= 64


def test_mixed_sizes_the_sample_missed_stay_files_and_warm_runs_decode_nothing(tmp_path: Path, monkeypatch) -> None:
    _write(tmp_path / "a", 300, 8, seed=0)
    _write(tmp_path / "a", 1, 12, seed=1, start=301)  # the last file: past every sampled header
    paths = imagefolder.image_files(tmp_path / "a")
    ss = imagefolder.make_set("train", paths, [0] * 301, ["x"], "t", "RGB", None, tmp_path / "c", "auto")
    assert ss.images is None and ss.paths == paths  # mixed sizes accepted: decoded per item
    decodes = _count_calls(monkeypatch, fingerprints, "decode_files")
    headers = _count_calls(monkeypatch, imagefolder, "header_sizes")
    again = imagefolder.make_set("train", paths, [0] * 301, ["x"], "t", "RGB", None, tmp_path / "c", "auto")
    assert again.images is None and decodes == [] and sum(headers) <= 64
