"""``test_predictions.npz``: the per-sample test outputs of a run, for intervals and paired tests.

Arrays (one row per scored test sample, in test-split order): ``id`` (the sample's stable
identifier: ``digits:all:17`` or the image path), ``hash`` (blake2b of its decoded pixels, the
integrity gate's exact hash), ``target``, ``pred`` and ``prob`` (softmax of the logits, samples x
classes). Read with ``numpy.load(path)``: plain arrays, no pickles, so loading never runs code.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from trueval.core.errors import UserError

FILENAME = "test_predictions.npz"


@dataclass
class Predictions:
    """One run's test predictions."""

    ids: np.ndarray
    hashes: np.ndarray
    target: np.ndarray
    pred: np.ndarray
    prob: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.target)

    @property
    def correct(self) -> np.ndarray:
        return self.pred == self.target

    def keys(self) -> list[str]:
        """One key per sample that another run on the same test split gives the same sample: its content
        hash and the occurrence of that hash (a test split may hold two identical images)."""
        seen: dict[str, int] = {}
        out = []
        for h in self.hashes.tolist():
            seen[h] = seen.get(h, 0) + 1
            out.append(f"{h}#{seen[h]}")
        return out


def write_predictions(path: Path, ids: Sequence[str], hashes: Sequence[str], target: np.ndarray, pred: np.ndarray,
                      prob: np.ndarray | None = None) -> Path:
    """Write ``test_predictions.npz`` atomically (a temporary file renamed into place)."""
    arrays = {"id": np.asarray([str(i) for i in ids], dtype=str), "hash": np.asarray([str(h) for h in hashes], dtype=str),
              "target": np.asarray(target, dtype=np.int64), "pred": np.asarray(pred, dtype=np.int64)}
    if prob is not None:
        arrays["prob"] = np.asarray(prob, dtype=np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.npz")
    np.savez_compressed(tmp, **arrays)
    os.replace(tmp, path)
    return path


def load_predictions(run_dir: str | os.PathLike[str]) -> Predictions:
    """The predictions of a run directory (or of an ``.npz`` file given directly)."""
    path = Path(run_dir)
    path = path if path.suffix == ".npz" else path / FILENAME
    if not path.is_file():
        raise UserError(f"no {FILENAME} here: runs record per-sample test predictions since trueval's "
                        "confidence intervals; re-run the test (python eval.py ckpt_path=...)", path=str(path))
    try:
        with np.load(path, allow_pickle=False) as data:
            prob = data["prob"] if "prob" in data.files else None
            return Predictions(ids=data["id"], hashes=data["hash"], target=data["target"], pred=data["pred"], prob=prob)
    except (OSError, ValueError, KeyError) as exc:
        raise UserError(f"not a readable {FILENAME}: {exc}", path=str(path)) from exc
