"""Archives as dataset roots: unpacked once by content, safely, whole or not at all."""

from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path

import pytest

from trueval.core.archives import is_archive, unpacked
from trueval.core.errors import UserError


def _tar(path: Path, files: dict[str, bytes], links: dict[str, str] | None = None) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
    return path


def test_unpacked_once_by_content_and_entered_when_one_folder(tmp_path: Path) -> None:
    archive = _tar(tmp_path / "set.tar.gz", {"set/train/a/1.txt": b"one", "set/test/a/2.txt": b"two"})
    assert is_archive(archive) and not is_archive(tmp_path)
    root = unpacked(archive, tmp_path / "cache")
    assert root.name == "set" and (root / "train" / "a" / "1.txt").read_bytes() == b"one"
    (root / "train" / "a" / "1.txt").write_bytes(b"touched")  # a second call does not unpack again
    assert unpacked(archive, tmp_path / "cache") == root and (root / "train" / "a" / "1.txt").read_bytes() == b"touched"
    # other bytes, another folder
    changed = _tar(tmp_path / "set.tar.gz", {"set/train/a/1.txt": b"ONE", "set/test/a/2.txt": b"two"})
    again = unpacked(changed, tmp_path / "cache")
    assert again != root and (again / "train" / "a" / "1.txt").read_bytes() == b"ONE"


def test_zip_without_macos_metadata(tmp_path: Path) -> None:
    archive = tmp_path / "set.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("train/a/1.txt", b"one")
        z.writestr("test/a/2.txt", b"two")
        z.writestr("__MACOSX/train/a/._1.txt", b"metadata")
    root = unpacked(archive, None)
    assert sorted(p.name for p in root.iterdir() if not p.name.startswith(".")) == ["test", "train"]


@pytest.mark.parametrize("evil", ["link", "escape", "zip-escape"])
def test_an_archive_cannot_write_outside_its_folder(tmp_path: Path, evil: str) -> None:
    if evil == "link":
        archive = _tar(tmp_path / "x.tar.gz", {"train/a/1.txt": b"one"}, links={"train/a/2.txt": "/etc/passwd"})
    elif evil == "escape":
        archive = _tar(tmp_path / "x.tar.gz", {"../outside.txt": b"gotcha"})
    else:
        archive = tmp_path / "x.zip"
        with zipfile.ZipFile(archive, "w") as z:
            z.writestr("../outside.txt", b"gotcha")
    with pytest.raises(UserError) as info:
        unpacked(archive, tmp_path / "cache")
    assert "data.root" in str(info.value) and archive.name in str(info.value)
    assert not (tmp_path / "outside.txt").exists() and not (tmp_path / "cache" / "outside.txt").exists()


def test_a_damaged_archive_is_named(tmp_path: Path) -> None:
    archive = _tar(tmp_path / "x.tar.gz", {"train/a/1.txt": b"one" * 1000})
    archive.write_bytes(archive.read_bytes()[:40])
    with pytest.raises(UserError, match="x.tar.gz"):
        unpacked(archive, tmp_path / "cache")
