"""What a checkpoint remembers of its training split, so eval.py can refuse its own training images.

``train_fingerprint`` is plain JSON-able data (str, int, lists; loads with
``torch.load(weights_only=True)``): the exact pixel hash of every training image and, for the
near-duplicate check, a 16 x 16 grayscale thumbnail (0.25 kB an image, base64) with its content box.
``match_fingerprint`` finds the samples of another split that are identical to, or near-duplicates
of, a fingerprinted training image, with the gate's detector (on thumbnails reduced to the same
16 pixels on both sides, so the comparison is like with like).
"""

from __future__ import annotations

import base64
import hashlib
import logging
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from trueval.core.samples import SampleSet, turned
from trueval.integrity.cache import GateCache, split_digest
from trueval.integrity.fingerprints import THUMB, Prints, compute_prints, resized
from trueval.integrity.near_duplicates import SearchRows, near_pairs
from trueval.integrity.settings import IntegritySettings
from trueval.core.errors import UserError

# 2: made from images read upright (their EXIF orientation applied); a version 1 fingerprint holds
# the stored pixels of a photo with an orientation tag
VERSION = 2
log = logging.getLogger("trueval")


def _prints(ss: SampleSet, thumbs: bool) -> Prints:
    return compute_prints(ss, thumbs=thumbs)


def content_hashes(ss: SampleSet) -> list[str]:
    """Hex blake2b-128 of every sample's decoded pixels (the gate's exact hashes)."""
    return _prints(ss, thumbs=False).hex()


def train_fingerprint(ss: SampleSet, settings: IntegritySettings | None = None,
                      prints: Prints | None = None) -> dict[str, Any]:
    """Compact, JSON-able fingerprint of a training split for the checkpoint (``prints``: the
    split's fingerprints when the gate step already has them)."""
    settings = settings or IntegritySettings()
    size = settings.fingerprint_size
    if prints is None or (size > 0 and prints.thumbs is None):
        prints = _prints(ss, thumbs=size > 0)
    fp: dict[str, Any] = {"version": VERSION, "count": len(prints), "hashes": prints.hex(), "thumb_size": 0}
    if size > 0 and prints.thumbs is not None:
        small = resized(prints, size)
        side = small.side if small.side is not None else np.full(len(small), 255)
        fp.update(thumb_size=size,
                  thumbs=_b64(small.thumbs.round().clip(0, 255).astype(np.uint8)),
                  boxes=_b64(small.boxes.clip(0, 255).astype(np.uint8)),
                  contrast=_b64(small.contrast.clip(0, 255).round().astype(np.uint8)),
                  side=_b64(np.clip(side, 0, 255).astype(np.uint8)))
    return fp


def match_fingerprint(fp: dict[str, Any], ss: SampleSet, settings: IntegritySettings,
                      cache_dir: str | Path | None = None, prints: Prints | None = None) -> list[int]:
    """Indices of ``ss`` identical to (or, with near detection, near-duplicates of) a fingerprinted
    image; cached under ``cache_dir`` (keyed by the fingerprint, the split and the settings).
    ``prints``: the split's fingerprints when the gate step already has them (saves decoding)."""
    if not isinstance(fp, dict) or "hashes" not in fp:
        raise UserError("the checkpoint's train fingerprint is not in a known format", key="ckpt_path")
    if int(fp.get("version", 1)) < 2:
        _warn_if_turned(ss)
    cache = GateCache(cache_dir if settings.cache else None)
    key = hashlib.sha256("|".join([hashlib.sha256("".join(fp["hashes"]).encode()).hexdigest(),
                                   str(fp.get("thumb_size")), split_digest(ss), settings.digest()]).encode()
                         ).hexdigest()[:32]
    hit = cache.load("overlap", key, ["indices"])
    if hit is not None and hit["indices"].ndim == 1 and (hit["indices"] < len(ss)).all():
        return [int(i) for i in hit["indices"]]
    known = {bytes.fromhex(h) for h in fp["hashes"]}
    size = int(fp.get("thumb_size", 0))
    wants_thumbs = settings.near and size > 0
    mine = prints if prints is not None and (prints.thumbs is not None or not wants_thumbs) else None
    mine = mine if mine is not None and len(mine) == len(ss) else _prints(ss, thumbs=wants_thumbs)
    hits = {i for i, h in enumerate(mine.hashes) if bytes(h) in known}
    if settings.near and size > 0 and mine.thumbs is not None and "thumbs" in fp:
        n = int(fp["count"])
        theirs = Prints(hashes=np.array([bytes.fromhex(h) for h in fp["hashes"]], dtype="S16"),
                        thumbs=_unb64(fp["thumbs"], (n, size, size)).astype(np.float32),
                        boxes=_unb64(fp["boxes"], (n, 4)).astype(np.int16),
                        contrast=_unb64(fp["contrast"], (n,)).astype(np.float32),
                        side=_unb64(fp["side"], (n,)).astype(np.int16) if "side" in fp else np.full(n, 255, np.int16))
        small = resized(mine, size)
        if small.side is None:
            small = Prints(small.hashes, small.thumbs, small.boxes, small.contrast, np.full(len(small), 255, np.int16))
        groups = np.r_[np.zeros(n, np.int64), np.ones(len(mine), np.int64)]
        both = SearchRows.of([resized(theirs, THUMB), resized(small, THUMB)], groups)  # joined once, with views
        result = near_pairs(both, None, settings, cross_only=True)
        a, b = result.a, result.b
        cross = groups[a] != groups[b]
        hits |= {int(max(x, y)) - n for x, y in zip(a[cross], b[cross])}
    out = sorted(hits)
    cache.save("overlap", key, {"indices": np.asarray(out, np.int64)})
    return out


def _warn_if_turned(ss: SampleSet) -> None:
    """A version 1 fingerprint was made from the stored pixels; this split is now read upright. The
    two differ only for photos with an EXIF orientation tag: say so when this split holds any."""
    turned_files = [p for p in (ss.paths or []) if turned(p)]
    if turned_files:
        log.warning("the checkpoint's training fingerprint was made before images were read upright (EXIF "
                    "orientation): %d of the %d %s images carry an orientation tag (e.g. %s), and a copy of one "
                    "of them in the checkpoint's training split may go unmatched; train again, or compare the "
                    "splits with audit.py", len(turned_files), len(ss), ss.split, turned_files[0])


def find_overlap(train: Sequence[str] | dict[str, Any], ss: SampleSet, settings: IntegritySettings) -> list[int]:
    """Indices of ``ss`` that were in the training data: ``train`` is a fingerprint (exact + near) or a
    list of hex hashes (exact only)."""
    if isinstance(train, dict):
        return match_fingerprint(train, ss, settings)
    known = set(train)
    return [i for i, h in enumerate(content_hashes(ss)) if h in known]


def _b64(a: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(a).tobytes()).decode("ascii")


def _unb64(text: str, shape: tuple[int, ...]) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), dtype=np.uint8).reshape(shape)
