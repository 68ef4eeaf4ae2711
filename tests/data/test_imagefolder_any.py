"""Image folders nobody prepared: mixed sizes, colour modes and bit depths, tiny classes, planted copies."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from helpers import compose_cfg
from trueval.data.imagefolder import ImageFolderDataModule
from trueval.tasks.audit import audit
from trueval.tasks.runner import run_task

import sys

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integrity"))
from synthetic import jpeg, photos  # noqa: E402


def test_audit_finds_planted_copies_in_a_folder_of_mixed_sizes(tmp_path: Path) -> None:
    """JPEG and PNG files of several sizes, with resized and re-encoded copies planted in test: exit 1."""
    big = photos(24, seed=31, size=64)
    root = tmp_path / "mixed"
    for i, a in enumerate(big[:18]):
        folder = root / "train" / f"c{i % 2}"
        folder.mkdir(parents=True, exist_ok=True)
        size = (64, 64) if i % 3 else (48, 40)
        img = Image.fromarray(a).resize(size)
        img.save(folder / f"t{i:02d}.{'jpg' if i % 2 else 'png'}", **({"quality": 90} if i % 2 else {}))
    for i, a in enumerate(big[18:]):
        folder = root / "test" / f"c{i % 2}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(a).resize((56, 56)).save(folder / f"own{i}.png")
    # planted: train images 1 and 4 again in test, resized (x1.5) and re-encoded as JPEG q70
    Image.fromarray(big[1]).resize((96, 96)).save(root / "test" / "c1" / "copy_a.jpg", quality=70)
    Image.fromarray(jpeg(big[4], 70)).resize((32, 32)).save(root / "test" / "c0" / "copy_b.png")
    out = tmp_path / "run"
    try:
        run_task(audit, compose_cfg("audit", ["data=imagefolder", f"data.root={root}"], out))
        code = 0
    except SystemExit as exc:
        code = exc.code
    report = json.loads((out / "leak_report.json").read_text())
    assert code == 1
    found = {Path(p["b"]["path"]).name for p in report["pairs"] if p["b"]["split"] == "test"}
    assert {"copy_a.jpg", "copy_b.png"} <= found


def _write(path: Path, img: Image.Image) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)


def test_one_colour_mode_for_the_dataset_and_16_bit_scaled(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    root = tmp_path / "modes"
    for split in ("train", "test"):
        for c in ("a", "b"):
            for i in range(4):
                arr = rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)
                _write(root / split / c / f"{i}.png", Image.fromarray(arr))
    # a greyscale JPEG first in sort order, and a 16-bit PNG (mid-grey, 32768 of 65535)
    _write(root / "train" / "a" / "-grey.jpg", Image.fromarray(rng.integers(0, 255, (16, 16), dtype=np.uint8)))
    _write(root / "train" / "b" / "-16bit.png", Image.fromarray(np.full((16, 16), 32768, np.uint16)))
    dm = ImageFolderDataModule(root=str(root), cache_dir=str(tmp_path / "c"), num_workers=0)
    dm.setup()
    assert dm.in_shape[0] == 3 and dm.sets["train"].images.shape[-1] == 3
    paths = dm.sets["train"].paths + dm.sets["val"].paths
    images = np.concatenate([dm.sets["train"].images, dm.sets["val"].images])
    sixteen = images[[i for i, p in enumerate(paths) if p.endswith("-16bit.png")][0]]
    assert abs(int(sixteen.mean()) - 128) <= 1  # scaled, not clipped to 255
    grey = ImageFolderDataModule(root=str(root), cache_dir=str(tmp_path / "c"), num_workers=0, image_mode="L")
    grey.setup()
    assert grey.in_shape[0] == 1


def test_a_class_of_one_image_stays_in_train(tmp_path: Path, caplog) -> None:
    rng = np.random.default_rng(1)
    root = tmp_path / "tiny"
    for c, n in (("big", 12), ("other", 12), ("single", 1)):
        for i in range(n):
            _write(root / c / f"{i}.png", Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)))
    for seed in range(4):
        dm = ImageFolderDataModule(root=str(root), split=[0.6, 0.2, 0.2], seed=seed, cache_dir=str(tmp_path / "c"),
                                   num_workers=0, integrity={"cache": False})
        dm.setup()
        single = dm.class_names.index("single")
        assert (dm.sets["train"].targets == single).sum() == 1
    assert "no sample of class(es) single" in caplog.text
