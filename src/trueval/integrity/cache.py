"""Content digests of sample sets and the on-disk cache of gate results.

Everything the cache is keyed by is CONTENT: the bytes of every file (blake2b), or the bytes of an in-memory array, plus the sample identities
the same-source check compares. A path's size and modification time are not content: a test image
swapped for a copy of a training image with the same size and the old mtime (``cp -p``, ``rsync
-t``, tar) must not reuse a clean verdict. Hashing the bytes of 60,000 small JPEGs takes about 0.3 s
of CPU, a fraction of decoding them.

A cache entry is data, never trusted: every entry carries a checksum of its own body and its key,
and one that is damaged, truncated or does not match is a miss (recomputed, with one warning per
run). A cache directory that cannot be written only costs time.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, BinaryIO, Callable, Mapping, Sequence

import numpy as np

from trueval.core.files import file_digest
from trueval.core.samples import SampleSet

log = logging.getLogger("trueval")

_READ_THREADS = 8
_BIG_FILE = 256 * 1024
_CHECKSUMMED_BYTES = 64 * 1024 * 1024
# arrays read into shared 4 KiB pages (read_npz), a piece at a time
_SHARED_BYTES, _READ_BYTES = 16 * 1024 * 1024, 8 * 1024 * 1024
_warned: set[str] = set()


def file_digests(paths: Sequence[str]) -> list[bytes]:
    """blake2b-128 of every file's bytes, in the order of ``paths``. Small files (CIFAR's 1 kB JPEGs)
    are read in one thread: thread hand-offs cost 6x the hashing there; large ones in threads
    (hashlib releases the GIL while it hashes)."""
    try:
        big = len(paths) >= 64 and os.path.getsize(paths[0]) > _BIG_FILE
    except OSError:
        big = False
    if not big:
        return [file_digest(p) for p in paths]
    with ThreadPoolExecutor(max_workers=min(_READ_THREADS, 2 * (os.cpu_count() or 1))) as pool:
        return list(pool.map(file_digest, paths, chunksize=16))


def split_digest(ss: SampleSet) -> str:
    """Hex digest of a split's content (file bytes or array bytes) and sample identities."""
    h = hashlib.blake2b(digest_size=20)
    h.update(f"n={len(ss)};mode={ss.image_mode}".encode())
    if ss.images is not None:
        images = np.ascontiguousarray(ss.images)
        h.update(f"array{images.shape}{images.dtype}".encode())
        h.update(memoryview(images).cast("B"))
    else:
        assert ss.paths is not None
        for d in file_digests(ss.paths):
            h.update(d)
    h.update("\n".join(ss.paths or []).encode())
    h.update(b"\x00")
    h.update("\n".join(ss.origin or []).encode())
    return h.hexdigest()


def key_of(*parts: Any) -> str:
    """Cache key from JSON-able parts."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:32]


def warn_damaged(what: str, path: Path, why: str) -> None:
    """One warning per kind of entry and cache folder: a damaged entry is recomputed, not trusted."""
    seen = f"{what}|{Path(path).parent}"
    if seen in _warned:
        return
    _warned.add(seen)
    log.warning("cache: ignoring a damaged %s entry (%s: %s); recomputing it", what, path, why)


def _checksum(key: str, arrays: Mapping[str, np.ndarray]) -> str:
    """Over the key, every array's name, shape and dtype, and the bytes of the small ones: an entry
    written for another key, or edited, does not match. Large arrays (decoded images) are left to
    the zip format's own CRC-32, which ``np.load`` checks when it reads them."""
    h = hashlib.blake2b(key.encode(), digest_size=16)
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}{a.shape}{a.dtype.str}".encode())
        if 0 < a.nbytes <= _CHECKSUMMED_BYTES:
            h.update(memoryview(a).cast("B"))
    return h.hexdigest()


class GateCache:
    """Directory of cached results (``None`` directory: every call is a miss and nothing is written).

    Entries are ``.npz`` files of plain arrays (loaded with ``allow_pickle=False``: loading one never
    runs code) with a checksum over the key and the arrays, written atomically.
    """

    def __init__(self, directory: str | Path | None) -> None:
        self.dir = Path(directory) if directory else None

    def _path(self, kind: str, key: str) -> Path | None:
        return None if self.dir is None else self.dir / kind / f"{key}.npz"

    def load(self, kind: str, key: str, required: Sequence[str]) -> dict[str, np.ndarray] | None:
        """The arrays stored under ``kind/key``, or None (missing, damaged, or not matching its key)."""
        path = self._path(kind, key)
        if path is None or not path.is_file():
            return None
        try:
            arrays = read_npz(path)
            stored = str(arrays.pop("_checksum"))
            missing = [r for r in required if r not in arrays]
            if missing:
                raise ValueError(f"missing {missing}")
            if stored != _checksum(key, arrays):
                raise ValueError("checksum does not match its content")
            return arrays
        except Exception as exc:  # zip, npy and checksum errors alike: never trust the entry
            warn_damaged(kind, path, str(exc) or type(exc).__name__)
            return None

    def save(self, kind: str, key: str, arrays: Mapping[str, np.ndarray]) -> None:
        path = self._path(kind, key)
        if path is None:
            return
        arrays = {k: np.asarray(v) for k, v in arrays.items()}
        # written straight to the file: saved into memory first, CIFAR-10's decoded training images
        # (150 MB) were copied twice more (the growing buffer, then its bytes) before the write
        write_atomic(path, lambda f: np.savez(f, _checksum=np.array(_checksum(key, arrays)), **arrays))


def read_npz(path: Path) -> dict[str, np.ndarray]:
    """The arrays of an ``.npz`` file, as ``np.load(path, allow_pickle=False)`` reads them, the large
    ones into shared 4 KiB pages (``shared_array``) instead of NumPy's fresh huge-page memory: loading
    CIFAR-10's decoded training images (150 MB) right after an idle spell took 1.55-2.0 s that way
    (nearly all of it the first touch of that memory, in the kernel) against 0.31 s, in a warm audit
    of 2.3 s. The zip format's CRC-32 is checked as ``np.load`` checks it, when a member is read to
    its end; a member shorter than its header says is an error."""
    import zipfile

    from trueval.core.allocator import shared_array

    fmt = np.lib.format
    arrays: dict[str, np.ndarray] = {}
    with zipfile.ZipFile(path) as zf:
        for member in zf.namelist():
            name = member[:-4] if member.endswith(".npy") else member
            with zf.open(member) as fh:
                version = fmt.read_magic(fh)
                shape, fortran, dtype = (fmt.read_array_header_1_0 if version == (1, 0)
                                         else fmt.read_array_header_2_0)(fh)
                nbytes = int(np.prod(shape)) * dtype.itemsize
                if nbytes < _SHARED_BYTES or fortran or dtype.hasobject:
                    fh.seek(0)
                    arrays[name] = fmt.read_array(fh, allow_pickle=False)
                    continue
                out = shared_array(shape, dtype)
                view, got = memoryview(out).cast("B"), 0
                while got < nbytes:
                    n = fh.readinto(view[got:got + _READ_BYTES])
                    if not n:
                        raise ValueError(f"{member}: {got} of {nbytes} bytes")
                    got += n
                if fh.read(1):
                    raise ValueError(f"{member}: more bytes than its header says")
                arrays[name] = out
    return arrays


def write_atomic(path: Path, write: Callable[[BinaryIO], Any]) -> bool:
    """Write a cache file through ``write(file)`` atomically; False (and nothing half-written) when the
    directory is not writable."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as f:
            write(f)
        os.replace(tmp, path)
        return True
    except BaseException as exc:  # nothing half-written stays behind, whatever stopped the write
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        if isinstance(exc, OSError):
            return False  # a read-only (or full) cache only costs time
        raise
