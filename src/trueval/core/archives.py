"""Dataset archives (.tar, .tar.gz, .tgz, .tar.bz2, .tar.xz, .zip), unpacked safely and atomically.

Datasets travel as archives (the CIFAR-10 JPEG copy and the BCCD set in ``../shared/data`` are
``.tar.gz`` files). ``data.root`` of an image-folder dataset may name one: it is unpacked once into
the cache, in a folder named by a digest of the archive's bytes, so a changed archive is unpacked
again and an unchanged one never is. An archive is data: members that are links or would land
outside the folder are refused (tar's ``data`` filter; the same rule for zip), and the folder
appears whole or not at all (unpacked beside it, then renamed), so concurrent sweep jobs never see
half a dataset.
"""

from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

from trueval.core.errors import UserError
from trueval.core.files import file_digest

ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz", ".zip")
_MACOS_METADATA = "__MACOSX"  # the folder of ._ files macOS adds to every zip it makes


def is_archive(path: str | Path) -> bool:
    """Whether ``path`` is a file named like an archive this module unpacks."""
    return str(path).lower().endswith(ARCHIVE_SUFFIXES) and Path(path).expanduser().is_file()


def unpack(archive: str | Path, dest: str | Path, key: str = "data.root") -> None:
    """Unpack ``archive`` into ``dest`` (created): into a temporary folder inside it first, then
    each top-level entry renamed into place unless ``dest`` has it already (another job won)."""
    archive, dest = Path(archive).expanduser(), Path(dest).expanduser()
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest, prefix=".unpack-") as tmp:
        try:
            if str(archive).lower().endswith(".zip"):
                _unzip(archive, Path(tmp))
            else:
                with tarfile.open(archive) as tar:
                    tar.extractall(tmp, filter="data")  # refuses links and paths leaving tmp
        except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError, ValueError) as exc:
            raise UserError(f"cannot unpack the archive: {exc}", key=key, path=str(archive)) from exc
        for entry in Path(tmp).iterdir():
            target = dest / entry.name
            if not target.exists():
                try:
                    os.rename(entry, target)
                except OSError:  # another job won the race
                    shutil.rmtree(entry, ignore_errors=True)


def _unzip(archive: Path, into: Path) -> None:
    with zipfile.ZipFile(archive) as z:
        for info in z.infolist():
            name = PurePosixPath(info.filename)
            if name.is_absolute() or ".." in name.parts:
                raise ValueError(f"member {info.filename!r} would land outside the folder")
            if name.parts and name.parts[0] == _MACOS_METADATA:
                continue
            if (info.external_attr >> 16) & 0o170000 == 0o120000:
                raise ValueError(f"member {info.filename!r} is a symbolic link")
            z.extract(info, into)


def unpacked(archive: str | Path, cache_dir: str | Path | None, key: str = "data.root") -> Path:
    """The folder ``archive`` unpacks to, under ``<cache_dir>/unpacked/<digest of its bytes>/``
    (a temporary folder, removed at exit, without a cache); unpacked on first use. When everything
    inside lies in one folder (``cifar10/train/...``), that folder."""
    archive = Path(archive).expanduser()
    if cache_dir is None:
        import atexit

        folder = Path(tempfile.mkdtemp(prefix="trueval-unpacked-"))
        atexit.register(shutil.rmtree, folder, True)
    else:
        folder = Path(cache_dir).expanduser() / "unpacked" / file_digest(archive).hex()
    done = folder / ".complete"
    if not done.is_file():
        unpack(archive, folder, key)
        done.touch()
    inside = [e for e in folder.iterdir() if not e.name.startswith(".")]
    return inside[0] if len(inside) == 1 and inside[0].is_dir() else folder


