"""Digests of sample sets and the on-disk cache of gate results.

A split's digest covers what the gate's answer depends on: the pixels (array bytes, or for files
their resolved path, size and modification time: stat-ing 60,000 files takes a fraction of a second
where reading them takes several) and the sample identities (paths / origin ids, which the
same-source check compares). Digests are memoised on the SampleSet object, so the several calls
of one run (grouping, gate, manifest, fingerprint) hash the arrays once.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from trueval.core.samples import SampleSet
from trueval.integrity.fingerprints import Prints

_MEMO = "_trueval_digest"


def split_digest(ss: SampleSet) -> str:
    """Hex digest of a split's content and sample identities (memoised on the object)."""
    cached = getattr(ss, _MEMO, None)
    if cached is not None:
        return cached
    h = hashlib.blake2b(digest_size=20)
    h.update(f"n={len(ss)};mode={ss.image_mode}".encode())
    if ss.images is not None:
        images = np.ascontiguousarray(ss.images)
        h.update(f"array{images.shape}{images.dtype}".encode())
        h.update(memoryview(images).cast("B"))
    else:
        assert ss.paths is not None
        for p in ss.paths:
            try:
                st = os.stat(p)
                h.update(f"{p}|{st.st_size}|{st.st_mtime_ns}\n".encode())
            except OSError:
                h.update(f"{p}|missing\n".encode())
    h.update("\n".join(ss.paths or []).encode())
    h.update(b"\x00")
    h.update("\n".join(ss.origin or []).encode())
    digest = h.hexdigest()
    try:
        setattr(ss, _MEMO, digest)
    except AttributeError:  # pragma: no cover - SampleSet has no slots today
        pass
    return digest


class GateCache:
    """Directory of cached results: reports (JSON) and per-split fingerprints (npz). ``None`` dir: no-op."""

    def __init__(self, directory: str | Path | None) -> None:
        self.dir = Path(directory) if directory else None

    def _path(self, kind: str, key: str, suffix: str) -> Path | None:
        return None if self.dir is None else self.dir / kind / f"{key}{suffix}"

    def load_json(self, kind: str, key: str) -> Any | None:
        path = self._path(kind, key, ".json")
        if path is None or not path.is_file():
            return None
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            return None  # a corrupt entry is recomputed

    def save_json(self, kind: str, key: str, data: Any) -> None:
        path = self._path(kind, key, ".json")
        if path is None:
            return
        from trueval.integrity.report import write_json

        try:
            write_json(path, data)
        except OSError:
            pass  # a read-only cache only costs time

    def load_prints(self, key: str) -> Prints | None:
        """Cached hashes and small (fingerprint-size) thumbnails of a split, or None."""
        path = self._path("prints", key, ".npz")
        if path is None or not path.is_file():
            return None
        try:
            with np.load(path) as z:
                return Prints(hashes=z["hashes"].astype("S16"), thumbs=z["thumbs"].astype(np.float32),
                              boxes=z["boxes"], contrast=z["contrast"], side=z["side"])
        except (OSError, ValueError, KeyError):
            return None  # a corrupt entry is recomputed

    def save_prints(self, key: str, prints: Prints) -> None:
        """Hashes and small thumbnails (uint8, 16 px: 0.25 kB an image) of a split."""
        path = self._path("prints", key, ".npz")
        if path is None or prints.thumbs is None:
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npz")  # parallel writers never share it
            np.savez(tmp, hashes=prints.hashes, thumbs=prints.thumbs.round().clip(0, 255).astype(np.uint8),
                     boxes=prints.boxes, contrast=prints.contrast, side=prints.side)
            os.replace(tmp, path)
        except OSError:
            pass  # a read-only cache only costs time
