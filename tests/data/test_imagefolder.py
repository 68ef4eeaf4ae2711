"""Image folders the tests generate: pre-split, ratio-split, and every kind of bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from helpers import run_inprocess
from trueval.data.imagefolder import ImageFolderDataModule
from trueval.tasks.train import train
from trueval.core.errors import UserError

COLOURS = [(220, 40, 40), (40, 200, 40), (40, 40, 220)]


def write_class_tree(root: Path, per_class: int, seed: int, size: int = 16) -> None:
    """Noisy images tinted by class: distinct from each other, separable by colour."""
    rng = np.random.default_rng(seed)
    for k, colour in enumerate(COLOURS):
        folder = root / f"class_{k}"
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            noise = rng.integers(0, 90, size=(size, size, 3))
            img = np.clip(np.array(colour)[None, None, :] * 0.6 + noise, 0, 255).astype(np.uint8)
            Image.fromarray(img).save(folder / f"img_{seed}_{i:03d}.png")


def write_mixed_size_tree(root: Path, per_class: int, seed: int, sides: range, scale: float = 1.0) -> None:
    """Class-tinted noisy images, each of a side drawn from ``sides``, pixel values times ``scale``."""
    rng = np.random.default_rng(seed)
    for k, colour in enumerate(COLOURS):
        (root / f"class_{k}").mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            side = int(rng.choice(sides))
            img = np.array(colour)[None, None, :] * 0.6 + rng.integers(0, 90, size=(side, side, 3))
            Image.fromarray(np.clip(img * scale, 0, 255).astype(np.uint8)).save(root / f"class_{k}" / f"{seed}_{i}.png")


def test_presplit_folders_train(tmp_path: Path) -> None:
    root = tmp_path / "images"
    for split, seed in (("train", 1), ("val", 2), ("test", 3)):
        write_class_tree(root / split, per_class=12 if split == "train" else 5, seed=seed)
    _, m = run_inprocess(train, "train", ["data=imagefolder", f"data.root={root}",
                                          "trainer.max_epochs=8", "logger=none"], tmp_path / "run")
    assert m["status"] == "ok", m["error"]
    splits = json.loads((tmp_path / "run" / "splits.json").read_text())["splits"]
    assert [splits[s]["count"] for s in ("train", "val", "test")] == [36, 15, 15]
    assert splits["test"]["sources"] == [str((root / "test").resolve())]
    assert m["metrics"]["test/acc"] > 0.6


def test_ratio_split_is_seeded_and_stratified(tmp_path: Path) -> None:
    root = tmp_path / "pool"
    write_class_tree(root, per_class=20, seed=5)
    dm = ImageFolderDataModule(root=str(root), split=[0.6, 0.2, 0.2], seed=3, cache_dir=str(tmp_path / "c"))
    dm.setup()
    counts = {s: np.bincount(dm.sets[s].targets, minlength=3) for s in ("train", "val", "test")}
    assert counts["train"].tolist() == [12, 12, 12] and counts["test"].tolist() == [4, 4, 4]
    again = ImageFolderDataModule(root=str(root), split=[0.6, 0.2, 0.2], seed=3, cache_dir=str(tmp_path / "c"))
    again.setup()
    assert dm.sets["test"].paths == again.sets["test"].paths
    other = ImageFolderDataModule(root=str(root), split=[0.6, 0.2, 0.2], seed=4, cache_dir=str(tmp_path / "c"))
    other.setup()
    assert dm.sets["test"].paths != other.sets["test"].paths


def test_train_and_test_only_carves_val_from_train(tmp_path: Path) -> None:
    root = tmp_path / "images"
    write_class_tree(root / "train", per_class=20, seed=1)
    write_class_tree(root / "test", per_class=4, seed=2)
    dm = ImageFolderDataModule(root=str(root), val_fraction=0.25, seed=0, cache_dir=str(tmp_path / "c"))
    dm.setup()
    assert len(dm.sets["test"]) == 12 and len(dm.sets["val"]) == 15 and len(dm.sets["train"]) == 45
    test_dir = str((root / "test").resolve())
    assert all(not p.startswith(test_dir) for p in dm.sets["val"].paths)


@pytest.mark.parametrize("val_name", ["valid", "validation"])
def test_a_validation_folder_by_another_name_is_the_val_split(val_name: str, tmp_path: Path, caplog) -> None:
    """Roboflow's exports write valid/, Keras and many Kaggle sets validation/: before, such a folder
    was silently ignored and validation carved from train/ instead. A folder that is no split is named."""
    root = tmp_path / "images"
    write_class_tree(root / "train", per_class=20, seed=1)
    write_class_tree(root / val_name, per_class=3, seed=3)
    write_class_tree(root / "test", per_class=4, seed=2)
    write_class_tree(root / "unlabelled", per_class=2, seed=4)
    dm = ImageFolderDataModule(root=str(root), val_fraction=0.25, seed=0, cache_dir=str(tmp_path / "c"))
    dm.setup()
    assert [len(dm.sets[s]) for s in ("train", "val", "test")] == [60, 9, 12]
    assert all(p.startswith(str((root / val_name).resolve())) for p in dm.sets["val"].paths)
    assert "unlabelled/ not read" in caplog.text


def test_two_spellings_of_val_or_splits_without_train_are_refused(tmp_path: Path) -> None:
    root = tmp_path / "images"
    write_class_tree(root / "val", per_class=3, seed=3)
    write_class_tree(root / "test", per_class=3, seed=2)
    with pytest.raises(UserError, match="test/, val/ but no train/ folder"):  # not classes named val and test
        ImageFolderDataModule(root=str(root), cache_dir=str(tmp_path / "c")).setup()
    write_class_tree(root / "train", per_class=3, seed=1)
    write_class_tree(root / "valid", per_class=3, seed=4)
    with pytest.raises(UserError, match="both val/ and valid/"):
        ImageFolderDataModule(root=str(root), cache_dir=str(tmp_path / "c")).setup()


def test_an_archive_as_root_is_unpacked_once_into_the_cache(tmp_path: Path) -> None:
    """`data.root=<set>.tar.gz` (how datasets travel, e.g. ../shared/data/cifar10-jpg.tar.gz): the same
    splits as the unpacked folder, unpacked once into the cache, whatever the archive's file name."""
    import tarfile

    root = tmp_path / "images"
    write_class_tree(root / "train", per_class=8, seed=1)
    write_class_tree(root / "test", per_class=3, seed=2)
    archive = tmp_path / "images.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(root, arcname="images")
    folder = ImageFolderDataModule(root=str(root), seed=0, cache_dir=str(tmp_path / "c1"))
    folder.setup()
    packed = ImageFolderDataModule(root=str(archive), seed=0, cache_dir=str(tmp_path / "c2"))
    packed.setup()
    for split in ("train", "val", "test"):
        assert [Path(p).name for p in packed.sets[split].paths] == [Path(p).name for p in folder.sets[split].paths]
        assert all(p.startswith(str(tmp_path / "c2" / "unpacked")) for p in packed.sets[split].paths)
    unpacked_dirs = list((tmp_path / "c2" / "unpacked").iterdir())
    again = ImageFolderDataModule(root=str(archive), seed=0, cache_dir=str(tmp_path / "c2"))
    again.setup()
    assert list((tmp_path / "c2" / "unpacked").iterdir()) == unpacked_dirs and len(unpacked_dirs) == 1


def test_undecodable_image_is_named(tmp_path: Path) -> None:
    root = tmp_path / "pool"
    write_class_tree(root, per_class=6, seed=1)
    bad = root / "class_1" / "broken.png"
    bad.write_bytes(b"this is not a png")
    dm = ImageFolderDataModule(root=str(root), split=[0.5, 0.25, 0.25], cache_dir=str(tmp_path / "c"))
    with pytest.raises(UserError, match="broken.png"):
        dm.setup()


def test_every_unreadable_file_is_named_in_one_message(tmp_path: Path) -> None:
    """Three broken files (empty, not an image, a stray non-image in a class folder) are all named
    by the first run, not one per run."""
    root = tmp_path / "pool"
    write_class_tree(root, per_class=6, seed=1)
    (root / "class_0" / "empty.jpg").write_bytes(b"")
    (root / "class_1" / "broken.png").write_bytes(b"this is not a png")
    (root / "class_2" / "notes.jpeg").write_text("a text file someone renamed")
    dm = ImageFolderDataModule(root=str(root), split=[0.5, 0.25, 0.25], cache_dir=str(tmp_path / "c"))
    with pytest.raises(UserError) as err:
        dm.setup()
    message = str(err.value)
    assert "3 image file(s) cannot be read" in message
    assert all(name in message for name in ("empty.jpg", "broken.png", "notes.jpeg"))


@pytest.mark.parametrize("in_memory,checks", [("auto", True), ("false", True), ("false", False)])
def test_truncated_files_in_two_splits_are_named_in_one_message(in_memory: str, checks: bool, tmp_path: Path) -> None:
    """A truncated JPEG's header reads; its pixels do not. Whether the images are decoded into memory,
    by the gate from the files, or (pixel checks off) only for the fingerprints a checkpoint keeps,
    both splits' truncated files are named by the first run (before, the first one stopped the run;
    with the checks off, the first split decoded was the only one named)."""
    import io

    root = tmp_path / "images"
    write_class_tree(root / "train", per_class=6, seed=1)
    write_class_tree(root / "test", per_class=3, seed=2)
    buffer = io.BytesIO()
    Image.fromarray(np.full((16, 16, 3), 120, np.uint8)).save(buffer, "JPEG")
    cut = buffer.getvalue()[:len(buffer.getvalue()) // 2 + 40]
    for where in (root / "train" / "class_0" / "cut.jpg", root / "test" / "class_2" / "cut.jpg",
                  root / "test" / "class_1" / "also_cut.jpg"):
        where.write_bytes(cut)
    dm = ImageFolderDataModule(root=str(root), in_memory=in_memory, cache_dir=str(tmp_path / "c"),
                               integrity=None if checks else {"exact": False, "near": False})
    with pytest.raises(UserError) as err:
        dm.setup()
    message = str(err.value)
    assert "3 image file(s) cannot be read" in message, message
    assert all(str(p) in message for p in ("train/class_0/cut.jpg", "test/class_2/cut.jpg", "test/class_1/also_cut.jpg"))


def test_a_truncated_file_in_a_split_left_as_files_is_named_with_a_later_splits_broken_header(tmp_path: Path) -> None:
    """Train of mixed sizes stays files (nothing decodes it before the gate); test's empty file fails
    its header first. The message names train's truncated file too (before, only test's)."""
    import io

    root = tmp_path / "images"
    write_mixed_size_tree(root / "train", 6, seed=1, sides=range(14, 20))
    write_class_tree(root / "test", per_class=3, seed=2)
    buffer = io.BytesIO()  # its header intact, its pixels cut short: only a decode finds it
    noise = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(noise).save(buffer, "JPEG")
    (root / "train" / "class_0" / "cut.jpg").write_bytes(buffer.getvalue()[:len(buffer.getvalue()) * 3 // 4])
    (root / "test" / "class_1" / "empty.png").write_bytes(b"")
    with pytest.raises(UserError) as err:
        ImageFolderDataModule(root=str(root), cache_dir=str(tmp_path / "c")).setup()
    message = str(err.value)
    assert "2 image file(s) cannot be read" in message, message
    assert "train/class_0/cut.jpg" in message and "test/class_1/empty.png" in message


def test_hidden_files_and_folders_are_not_images(tmp_path: Path) -> None:
    """A folder copied from a Mac holds a ``._<name>`` metadata file beside every photo (it ends in
    .png but is no image) and tools leave hidden folders (.thumbnails/): left out, as ``ls`` does,
    instead of stopping on a file the user never saw."""
    root = tmp_path / "pool"
    write_class_tree(root, per_class=6, seed=1)
    for photo in list((root / "class_0").glob("*.png")):
        (photo.parent / f"._{photo.name}").write_bytes(b"\x00\x05\x16\x07 AppleDouble metadata")
    (root / "class_1" / ".thumbnails").mkdir()
    (root / "class_1" / ".thumbnails" / "small.png").write_bytes(b"not an image either")
    dm = ImageFolderDataModule(root=str(root), split=[0.5, 0.25, 0.25], cache_dir=str(tmp_path / "c"))
    dm.setup()
    paths = [p for s in ("train", "val", "test") for p in dm.sets[s].paths]
    assert len(paths) == 18 and not any("/." in p for p in paths)


def test_empty_class_folder_is_named(tmp_path: Path) -> None:
    root = tmp_path / "pool"
    write_class_tree(root, per_class=6, seed=1)
    (root / "class_empty").mkdir()
    dm = ImageFolderDataModule(root=str(root), split=[0.5, 0.25, 0.25], cache_dir=str(tmp_path / "c"))
    with pytest.raises(UserError, match="class_empty"):
        dm.setup()


def test_files_that_are_not_read_are_counted_aloud(tmp_path: Path, caplog) -> None:
    """GIFs and other files torchvision's ImageFolder does not read were left out without a word:
    a researcher's photos neither trained on nor audited. Counted by extension, in one warning."""
    root = tmp_path / "pool"
    write_class_tree(root, per_class=6, seed=1)
    for i, photo in enumerate(sorted((root / "class_0").glob("*.png"))[:2]):
        Image.open(photo).save(root / "class_0" / f"as_gif_{i}.gif")
    (root / "class_2" / "notes.txt").write_text("labels checked")
    dm = ImageFolderDataModule(root=str(root), split=[0.5, 0.25, 0.25], cache_dir=str(tmp_path / "c"))
    with caplog.at_level("WARNING", logger="trueval"):
        dm.setup()
    said = [r.getMessage() for r in caplog.records if "left out" in r.getMessage()]
    assert len(said) == 1 and "3 files left out" in said[0] and "2 .gif, 1 .txt" in said[0], said
    (root / "class_gif").mkdir()
    Image.open(next((root / "class_1").glob("*.png"))).save(root / "class_gif" / "only.gif")
    again = ImageFolderDataModule(root=str(root), split=[0.5, 0.25, 0.25], cache_dir=str(tmp_path / "c"))
    with pytest.raises(UserError, match=r"class_gif.*1 \.gif: not read"):
        again.setup()


@pytest.mark.parametrize("split", [[0.5, 0.1, 0.1], [0.8, 0.2], [1.2, -0.1, -0.1]])
def test_split_must_sum_to_one(split: list[float], tmp_path: Path) -> None:
    with pytest.raises(UserError, match="data.split"):
        ImageFolderDataModule(root=str(tmp_path), split=split)


def test_missing_root_is_named(tmp_path: Path) -> None:
    dm = ImageFolderDataModule(root=str(tmp_path / "nowhere"), split=[0.8, 0.1, 0.1])
    with pytest.raises(UserError, match="nowhere"):
        dm.setup()


def test_mixed_sizes_train_resized_once_and_in_memory_names_files(tmp_path: Path, caplog) -> None:
    root = tmp_path / "pool"
    write_class_tree(root, per_class=6, seed=1, size=16)
    write_class_tree(root, per_class=2, seed=9, size=20)
    dm = ImageFolderDataModule(root=str(root), split=[0.5, 0.25, 0.25], cache_dir=str(tmp_path / "c"), num_workers=0)
    dm.setup()  # no setting needed: files stay on disk, training resizes to one size and says so
    assert dm.in_shape == (3, 16, 16) and "resized to 16x16 for training" in caplog.text
    images, _ = next(iter(dm.train_dataloader()))
    assert images.shape[1:] == (3, 16, 16)
    with pytest.raises(UserError, match=r"img_1_000.png 16x16.*img_9_000.png 20x20"):
        ImageFolderDataModule(root=str(root), split=[0.5, 0.25, 0.25], in_memory=True,
                              cache_dir=str(tmp_path / "c")).setup()
    dm = ImageFolderDataModule(root=str(root), split=[0.5, 0.25, 0.25], image_size=12, cache_dir=str(tmp_path / "c"))
    dm.setup()
    assert dm.in_shape == (3, 12, 12)

@pytest.mark.parametrize("name", ["cifar10", "imagefolder"])
def test_a_root_that_is_neither_a_folder_nor_an_archive_is_named(name: str, tmp_path: Path) -> None:
    """`data.root=../shared/data/cifar10-jpg.tar.gz` typed from a folder where that path does not exist
    said "expected a train/ folder inside"; a missing path and a file of another kind say what they are."""
    from trueval.data.torchvision_sets import TorchvisionDataModule

    make = (lambda r: TorchvisionDataModule(name="cifar10", root=str(r), cache_dir=str(tmp_path / "c"))) \
        if name == "cifar10" else (lambda r: ImageFolderDataModule(root=str(r), cache_dir=str(tmp_path / "c")))
    with pytest.raises(UserError, match="no such folder or archive") as info:
        make(tmp_path / "cifar10-jpg.tar.gz").load_splits()
    assert "data.root" in str(info.value) and "cifar10-jpg.tar.gz" in str(info.value)
    (tmp_path / "notes.txt").write_text("not a dataset")
    with pytest.raises(UserError, match="a file, not a folder or an archive"):
        make(tmp_path / "notes.txt").load_splits()


def test_a_presplit_folder_of_mixed_sizes_reads_its_image_sizes_in_one_stage(tmp_path: Path, monkeypatch) -> None:
    """Training on files of several sizes reads every split's headers for one side: one stage on the
    console (before: one per split, each its own line and timer)."""
    from trueval.integrity import console

    root = tmp_path / "images"
    write_class_tree(root / "train", per_class=4, seed=1, size=16)
    write_class_tree(root / "train", per_class=1, seed=8, size=20)
    write_class_tree(root / "test", per_class=2, seed=2, size=20)
    write_class_tree(root / "test", per_class=1, seed=3, size=24)  # every split stays files
    stages: list[str] = []
    shown = console.stage

    def spy(description: str, total: int | None):
        stages.append(description)
        return shown(description, total)

    monkeypatch.setattr(console, "stage", spy)
    dm = ImageFolderDataModule(root=str(root), cache_dir=str(tmp_path / "c"), num_workers=0)
    dm.setup()
    assert dm.in_shape == (3, 18, 18)  # the median side of every split's files
    assert stages.count("reading image sizes") == 1, stages
