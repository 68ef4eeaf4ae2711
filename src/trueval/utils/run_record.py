"""``metrics.json``: the stable, machine-readable outcome of every run (see PRODUCT.md).

It is written at the start with status ``running`` so a killed run is recognisable, and rewritten
atomically at the end with ``ok`` or ``failed``. Other tools (sweep summaries, notebooks) read it.
"""

from __future__ import annotations

import json
import math
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any, Mapping


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in ("torch", "torchvision", "pytorch_lightning", "torchmetrics", "timm", "hydra", "omegaconf"):
        mod = sys.modules.get(name)
        if mod is None:
            try:
                mod = __import__(name)
            except Exception:
                continue
        out[name] = str(getattr(mod, "__version__", "?"))
    try:
        import torch

        out["cuda"] = str(torch.version.cuda)
        if torch.cuda.is_available():
            out["gpu"] = torch.cuda.get_device_name(0)
    except Exception:
        pass
    return out


def _plain(value: Any) -> Any:
    """JSON-safe numbers: tensors to floats, NaN/inf to strings JSON can carry."""
    if hasattr(value, "item") and callable(value.item):
        try:
            value = value.item()
        except Exception:
            value = str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def write_json_atomic(path: Path, data: Mapping[str, Any], indent: int | None = 2) -> None:
    """Write JSON through a temporary file and rename, so readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(_plain(dict(data)), indent=indent) + "\n")
    os.replace(tmp, path)


class RunRecord:
    """Collects what goes into ``metrics.json`` over the life of one run."""

    def __init__(self, run_dir: Path, overrides: list[str], seed: int | None, task: str) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / "metrics.json"
        self.started = time.time()
        self.data: dict[str, Any] = {
            "status": "running",
            "error": None,
            "task": task,
            "overrides": list(overrides),
            "seed": seed,
            "metrics": {},
            "wall_seconds": 0.0,
            "versions": _versions(),
            "leaky": False,
            "run_dir": str(self.run_dir),
            "best_checkpoint": None,
        }
        write_json_atomic(self.path, self.data)

    def update(self, **fields: Any) -> None:
        self.data.update(fields)

    def finish(self, metrics: Mapping[str, Any]) -> None:
        self.data["metrics"] = _plain(dict(metrics))
        self.data["status"] = "ok"
        self._write()

    def fail(self, error: BaseException, metrics: Mapping[str, Any] | None = None) -> None:
        self.data["status"] = "failed"
        self.data["error"] = f"{type(error).__name__}: {error}"
        if metrics:
            self.data["metrics"] = _plain(dict(metrics))
        self._write()

    def _write(self) -> None:
        self.data["wall_seconds"] = round(time.time() - self.started, 3)
        write_json_atomic(self.path, self.data)

    def append_history(self, history_file: Path) -> None:
        """One line per finished run in logs/history.jsonl (O_APPEND keeps concurrent lines whole)."""
        line = json.dumps(_plain({k: self.data[k] for k in (
            "status", "task", "run_dir", "overrides", "seed", "metrics", "wall_seconds", "leaky")}))
        history_file.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(history_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            os.write(fd, (line + "\n").encode())
        finally:
            os.close(fd)
