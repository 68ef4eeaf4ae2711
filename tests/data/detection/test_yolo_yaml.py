"""Reading dataset yamls: names as list or mapping, folders / list files / lists, safe loading."""

from pathlib import Path

import pytest

from trueval.data.detection.synthetic import write_synthetic_yolo
from trueval.data.detection.yolo_yaml import label_path_for, load_yolo_yaml, resolve_split
from trueval.core.errors import UserError


@pytest.fixture()
def tiny(tmp_path):
    return write_synthetic_yolo(tmp_path / "ds", {"train": 4, "val": 2, "test": 2}, size=32)


def test_names_as_list_and_mapping(tiny):
    root = tiny.parent
    (root / "list.yaml").write_text("path: .\ntrain: images/train\nval: images/val\nnames: [a, b, c]\n")
    (root / "map.yaml").write_text("train: images/train\nval: images/val\nnames: {0: a, 1: b, 2: c}\n")
    assert load_yolo_yaml(root / "list.yaml").names == ["a", "b", "c"]
    assert load_yolo_yaml(root / "map.yaml").names == ["a", "b", "c"]
    (root / "gap.yaml").write_text("train: images/train\nval: images/val\nnames: {0: a, 2: c}\n")
    with pytest.raises(UserError, match="without gaps"):
        load_yolo_yaml(root / "gap.yaml")


def test_split_as_folder_list_file_and_list(tiny):
    root = tiny.parent
    listed = sorted((root / "images" / "train").glob("*.png"))[:2]
    (root / "subset.txt").write_text("".join(f"./images/train/{p.name}\n" for p in listed))
    (root / "mixed.yaml").write_text(
        "path: .\ntrain: [images/train, subset.txt]\nval: subset.txt\ntest: [images/val, images/test]\n"
        "names: [a, b, c]\n")
    spec = load_yolo_yaml(root / "mixed.yaml")
    train = resolve_split(spec, spec.entries["train"], "train")
    assert len(train.images) == 4 and train.duplicates == 2  # the listed files are in the folder too
    val = resolve_split(spec, spec.entries["val"], "val")
    assert [Path(p).name for p in val.images] == [p.name for p in listed]
    assert val.list_sources == {str((root / "subset.txt").resolve())}
    test = resolve_split(spec, spec.entries["test"], "test")
    assert len(test.images) == 4 and len(test.sources) == 2


def test_relative_path_key_is_relative_to_the_yaml(tiny, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # not the yaml's folder
    spec = load_yolo_yaml(tiny)
    assert spec.root == str(tiny.parent.resolve())
    assert len(resolve_split(spec, spec.entries["val"], "val").images) == 2


def test_a_roboflow_export_yaml_reads_its_splits_beside_it(tmp_path):
    """Roboflow's YOLO exports put data.yaml beside train/ and valid/ yet write `../train/images`;
    Ultralytics reads them by dropping the `../` when that path does not exist, and so does trueval."""
    root = write_synthetic_yolo(tmp_path / "made", {"train": 4, "val": 2}, size=32).parent
    export = tmp_path / "export"
    for split, folder in (("train", "train"), ("val", "valid")):
        (export / folder).mkdir(parents=True)
        (root / "images" / split).rename(export / folder / "images")
        (root / "labels" / split).rename(export / folder / "labels")
    (export / "data.yaml").write_text("train: ../train/images\nval: ../valid/images\nnc: 3\n"
                                      "names: ['a', 'b', 'c']\nroboflow:\n  version: 1\n")
    spec = load_yolo_yaml(export / "data.yaml")
    val = resolve_split(spec, spec.entries["val"], "val")
    assert len(val.images) == 2 and val.sources == [str((export / "valid" / "images").resolve())]
    assert len(resolve_split(spec, spec.entries["train"], "train").images) == 4
    # a `../` that exists is read as written
    (tmp_path / "valid" / "images").mkdir(parents=True)
    (export / "valid" / "images" / sorted(p.name for p in (export / "valid" / "images").iterdir())[0]).rename(
        tmp_path / "valid" / "images" / "only.png")
    assert [Path(p).name for p in resolve_split(spec, spec.entries["val"], "val").images] == ["only.png"]


def test_missing_entries_are_named(tiny):
    root = tiny.parent
    (root / "bad.yaml").write_text("train: images/train\nval: images/nope\nnames: [a, b, c]\n")
    spec = load_yolo_yaml(root / "bad.yaml")
    with pytest.raises(UserError, match=r"`val: images/nope` does not exist"):
        resolve_split(spec, spec.entries["val"], "val")
    (root / "noval.yaml").write_text("train: images/train\nnames: [a]\n")
    with pytest.raises(UserError, match="no `val:`"):
        load_yolo_yaml(root / "noval.yaml")
    (root / "list.txt").write_text("images/train/train_0000.png\nimages/train/missing.png\n")
    (root / "l.yaml").write_text("train: list.txt\nval: images/val\nnames: [a, b, c]\n")
    spec = load_yolo_yaml(root / "l.yaml")
    with pytest.raises(UserError, match=r"list.txt\] line 2: listed image does not exist"):
        resolve_split(spec, spec.entries["train"], "train")


def test_yaml_is_never_executed(tmp_path):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.yaml"
    evil.write_text(f"train: !!python/object/apply:os.system ['touch {marker}']\nval: x\nnames: [a]\n")
    with pytest.raises(UserError, match="safe_load"):
        load_yolo_yaml(evil)
    assert not marker.exists()


def test_label_path_convention():
    assert label_path_for("/d/images/train/a.jpg") == "/d/labels/train/a.txt"
    # only the last `images` folder is swapped
    assert label_path_for("/images/x/images/val/b.png") == "/images/x/labels/val/b.txt"
    assert label_path_for("/d/pics/c.jpeg") == "/d/pics/c.txt"


def test_files_of_a_split_folder_that_are_not_images_read_are_counted_in_a_warning(tiny, caplog):
    """A .gif or .heic among the images is left out (PIL reads neither without plugins here); the
    user is told how many, of which kinds, and which split, instead of a silently smaller split.
    Label files and caches next to the images are not images and not counted."""
    root = tiny.parent
    folder = root / "images" / "train"
    (folder / "clip.gif").write_bytes(b"GIF89a")
    (folder / "phone.HEIC").write_bytes(b"\x00")
    (folder / "phone2.heic").write_bytes(b"\x00")
    (folder / "notes.txt").write_text("0 0.5 0.5 0.1 0.1\n")
    (folder / "train.cache").write_bytes(b"\x00")
    (root / "d.yaml").write_text("train: images/train\nval: images/val\nnames: [a, b, c]\n")
    spec = load_yolo_yaml(root / "d.yaml")
    with caplog.at_level("WARNING"):
        train = resolve_split(spec, spec.entries["train"], "train")
        val = resolve_split(spec, spec.entries["val"], "val")
    assert len(train.images) == 4 and len(val.images) == 2
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warned) == 1, warned
    assert "3 files" in warned[0] and ".heic 2" in warned[0] and ".gif 1" in warned[0]
    assert "train: images/train" in warned[0]


def test_an_archive_or_other_binary_file_as_the_yaml_is_named_with_the_way_to_pass_it(tmp_path):
    """`data.yaml_path=bccd-yolo.tar.gz` crashed with a UnicodeDecodeError (exit 4, "a bug in
    trueval"); it is bad input: one message naming the file and data.archive."""
    import gzip

    archive = tmp_path / "set.tar.gz"
    archive.write_bytes(gzip.compress(b"not a yaml"))
    with pytest.raises(UserError, match="data.archive") as exc:
        load_yolo_yaml(archive)
    assert str(archive) in str(exc.value)
    binary = tmp_path / "data.yaml"
    binary.write_bytes(b"\xff\xfe\x00names")
    with pytest.raises(UserError, match="not a text file"):
        load_yolo_yaml(binary)
