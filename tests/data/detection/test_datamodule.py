"""The YOLO DataModule: setup on a generated dataset, the data report, the integrity gate per image."""

from __future__ import annotations

import shutil
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

from trueval.data.detection import YoloDataModule
from trueval.data.detection.synthetic import write_synthetic_yolo
from trueval.core.errors import LeakError, UserError


@pytest.fixture()
def tiny(tmp_path: Path) -> Path:
    return write_synthetic_yolo(tmp_path / "ds", {"train": 12, "val": 6, "test": 6}, size=48, seed=1)


def _dm(yaml_path, tmp_path, **kw) -> YoloDataModule:
    kw.setdefault("integrity", {"policy": "fail"})
    return YoloDataModule(str(yaml_path), image_size=64, batch_size=4, num_workers=0,
                          cache_dir=str(tmp_path / "cache"), **kw)


def _written_boxes(root: Path, split: str) -> list[int]:
    rows = [line.split()[0] for f in sorted((root / "labels" / split).glob("*.txt"))
            for line in f.read_text().splitlines() if line.strip()]
    return np.bincount([int(c) for c in rows], minlength=3).tolist()


def test_setup_report_and_loaders(tiny: Path, tmp_path: Path) -> None:
    # one background image without a label file
    shutil.copy(tiny.parent / "images" / "train" / "train_0000.png", tiny.parent / "images" / "train" / "bg.png")
    dm = _dm(tiny, tmp_path)
    dm.setup("fit")
    assert dm.task == "detection" and dm.num_classes == 3 and dm.class_names == ["rectangle", "ellipse", "triangle"]
    assert {s: len(dm.sets[s]) for s in ("train", "val", "test")} == {"train": 13, "val": 6, "test": 6}
    report = dm.report["splits"]
    assert report["train"]["background_images"] == 1 and report["train"]["images_without_label_file"] == 1
    for split in ("train", "val", "test"):
        per_class = [report[split]["per_class"][c]["boxes"] for c in dm.class_names]
        assert per_class == _written_boxes(tiny.parent, split)
    assert dm.leak_report is not None and not dm.leak_report.has_leak
    assert dm.manifest["task"] == "detection" and dm.manifest["splits"]["val"]["count"] == 6
    assert dm.manifest["train_digest"] and isinstance(dm.train_fingerprint, dict)

    images, targets = next(iter(dm.train_dataloader()))
    assert len(images) == 4 and all(i.shape == (3, 64, 64) for i in images)
    assert all(t["boxes"].shape[1] == 4 and len(t["boxes"]) == len(t["labels"]) for t in targets)
    images, targets = next(iter(dm.val_dataloader()))
    # validation is not augmented: the boxes are the file's boxes, letterboxed 48 -> 64 px
    item = dm.split_items("val")[0]
    expected = torch.tensor(item.boxes) * 64
    xyxy = torch.cat([expected[:, :2] - expected[:, 2:] / 2, expected[:, :2] + expected[:, 2:] / 2], 1)
    torch.testing.assert_close(targets[0]["boxes"], xyxy.float(), atol=1e-3, rtol=0)
    assert targets[0]["labels"].tolist() == item.classes.tolist()


def test_hidden_files_are_neither_images_nor_labels(tiny: Path, tmp_path: Path) -> None:
    """macOS's ``._<name>`` metadata files beside every image and label file (a dataset zipped on a
    Mac) are left out: not decoded as images, not reported as orphan label files."""
    root = tiny.parent
    for folder, suffix in ((root / "images" / "train", ".png"), (root / "labels" / "train", ".txt")):
        for f in list(folder.glob(f"*{suffix}")):
            (folder / f"._{f.name}").write_bytes(b"\x00\x05\x16\x07 AppleDouble metadata")
    dm = _dm(tiny, tmp_path, labels={"policy": "fail"})
    dm.setup("fit")
    assert len(dm.sets["train"]) == 12 and not any("/._" in p for p in dm.sets["train"].paths)


def test_val_pointing_at_train_is_refused_before_training(tiny: Path, tmp_path: Path) -> None:
    leaky = tiny.parent / "leaky.yaml"
    leaky.write_text("path: .\ntrain: images/train\nval: images/train\ntest: images/test\n"
                     "names: [rectangle, ellipse, triangle]\n")
    with pytest.raises(LeakError) as err:
        _dm(leaky, tmp_path).setup("fit")
    assert "12" in str(err.value)  # the count of shared images


def test_leaky_validation_is_allowed_with_warn_and_flagged(tiny: Path, tmp_path: Path) -> None:
    dm = _dm(tiny, tmp_path, val_split="train", integrity={"policy": "warn"})
    dm.setup("fit")
    assert dm.leaky and dm.leak_report.has_leak
    assert dm.sets["val"].paths == dm.sets["train"].paths
    with pytest.raises(LeakError):
        _dm(tiny, tmp_path, val_split="train").setup("fit")


def test_duplicate_image_across_splits_is_found(tiny: Path, tmp_path: Path) -> None:
    root = tiny.parent
    shutil.copy(root / "images" / "train" / "train_0003.png", root / "images" / "test" / "copy.png")
    shutil.copy(root / "labels" / "train" / "train_0003.txt", root / "labels" / "test" / "copy.txt")
    with pytest.raises(LeakError):
        _dm(tiny, tmp_path).setup("fit")


def test_label_problems_stop_setup_with_file_and_line(tiny: Path, tmp_path: Path) -> None:
    bad = tiny.parent / "labels" / "val" / "val_0002.txt"
    bad.write_text(bad.read_text() + "5 0.5 0.5 0.1 0.1\n")
    n_lines = len(bad.read_text().splitlines())
    with pytest.raises(UserError) as err:
        _dm(tiny, tmp_path).setup("fit")
    assert f"{bad}:{n_lines}: class id 5 out of range" in str(err.value)
    dm = _dm(tiny, tmp_path, labels={"policy": "skip"})
    dm.setup("fit")
    assert len(dm.sets["val"]) == 5 and dm.manifest["label_problems"]


def test_every_unreadable_image_is_named_in_one_message(tiny: Path, tmp_path: Path) -> None:
    images = tiny.parent / "images"
    (images / "train" / "train_0003.png").write_bytes(b"")
    (images / "test" / "test_0001.png").write_bytes(b"truncated by a failed copy")
    with pytest.raises(UserError) as err:
        _dm(tiny, tmp_path).setup("fit")
    message = str(err.value)
    assert "2 image file(s) cannot be read" in message
    assert "train_0003.png" in message and "test_0001.png" in message


def test_fraction_and_archive(tiny: Path, tmp_path: Path) -> None:
    archive = tmp_path / "ds.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tiny.parent, arcname="ds")
    data_dir = tmp_path / "data"
    dm = _dm(data_dir / "ds" / "data.yaml", tmp_path, archive=str(archive), data_dir=str(data_dir), fraction=0.5)
    dm.setup("fit")
    assert (data_dir / "ds" / "data.yaml").is_file()
    assert len(dm.sets["train"]) == 6 and len(dm.sets["val"]) == 6
    with pytest.raises(UserError, match="data.yaml_path"):
        YoloDataModule("???")
