"""Files as data: their content digest, and which ones a dataset folder leaves out."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def file_digest(path: str | Path) -> bytes:
    """blake2b-128 of a file's bytes, read in 1 MiB blocks (a missing file gets a digest of its own)."""
    h = hashlib.blake2b(digest_size=16)
    try:
        fd = os.open(path, os.O_RDONLY)
        try:
            while block := os.read(fd, 1 << 20):
                h.update(block)
        finally:
            os.close(fd)
    except OSError:
        h.update(b"\x00missing")
    return h.digest()


def hidden_under(path: str | Path, folder: str | Path) -> bool:
    """Whether ``path`` or a folder between ``folder`` and it is hidden (its name starts with a dot).
    Dataset folders leave such files out, as ``ls`` does: macOS writes a ``._photo.jpg`` of metadata
    beside every photo it copies to a foreign disk or zip, which is no image (nor a label file)."""
    return any(part.startswith(".") for part in Path(path).relative_to(folder).parts)
