"""``metrics.json``: the stable, machine-readable outcome of every run (see PRODUCT.md).

It is written at the start with status ``running`` so a killed run is recognisable, and rewritten
atomically at the end with ``ok``, ``failed`` or ``interrupted`` (stopped by a signal; it names
the signal). Other tools (sweep summaries, notebooks, ``resume=auto``) read it.

Every file here is written through a temporary file and a rename: a full disk or a read-only
directory leaves the previous file (or none) and no temporary file, and raises ``OutputNotWritten``,
a user error that names the file, so the run ends with one line instead of a traceback.
"""

from __future__ import annotations

import json
import math
import os
import platform
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Any, Callable, Mapping

from trueval.core.errors import UserError


class OutputNotWritten(UserError):
    """A run output could not be written (full disk, read-only or missing directory): exit 2."""

    title = "output not written"

    def __init__(self, path: Path | str, error: OSError) -> None:
        reason = error.strerror or str(error)
        super().__init__(f"could not write {path}: {reason}. The run's outputs are incomplete; free space "
                         "or choose a writable directory (paths.log_dir, hydra.run.dir) and run again.")
        self.errno = error.errno


# distribution name of each package whose version a record carries
_PACKAGES = {"torch": "torch", "torchvision": "torchvision", "pytorch_lightning": "pytorch-lightning",
             "torchmetrics": "torchmetrics", "timm": "timm", "hydra": "hydra-core", "omegaconf": "omegaconf"}


def _versions() -> dict[str, str]:
    """Versions from the installed packages' metadata: importing them only to read ``__version__``
    took seconds (Lightning, torchvision, timm) in tasks that use none of them, such as the audit."""
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for name, dist in _PACKAGES.items():
        mod = sys.modules.get(name)
        try:
            out[name] = str(getattr(mod, "__version__", None) or version(dist))
        except PackageNotFoundError:
            continue
    torch = sys.modules.get("torch")  # the device, when the task used torch (the audit may not)
    if torch is not None:
        try:
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


def write_atomically(path: Path, write: Callable[[Path], Any]) -> None:
    """``write(tmp)`` into a temporary file beside ``path``, then rename it over ``path``.

    Readers see the old file or the new one, never half of one. On any failure the temporary file
    is removed; an OSError becomes ``OutputNotWritten`` naming ``path``.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write(tmp)
        os.replace(tmp, path)
    except OSError as exc:
        _remove_quietly(tmp)
        raise OutputNotWritten(path, exc) from None
    except BaseException:
        _remove_quietly(tmp)
        raise


def _remove_quietly(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError:
        pass


def write_json_atomic(path: Path, data: Mapping[str, Any], indent: int | None = 2) -> None:
    """Write JSON through a temporary file and rename, so readers never see half a file."""
    text = json.dumps(_plain(dict(data)), indent=indent) + "\n"
    write_atomically(path, lambda tmp: tmp.write_text(text))


def append_line(path: Path, line: str) -> None:
    """Append one line with O_APPEND (concurrent writers keep whole lines); OutputNotWritten on failure."""
    data = (line + "\n").encode()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            if os.write(fd, data) != len(data):
                raise OSError(28, "No space left on device (short write)")
        finally:
            os.close(fd)
    except OSError as exc:
        raise OutputNotWritten(path, exc) from None


def check_appendable(path: Path) -> None:
    """Fail now, before any training, when ``path`` (history.jsonl) could not be appended to later."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644))
    except OSError as exc:
        raise OutputNotWritten(path, exc) from None


def read_record(run_dir: Path) -> dict[str, Any] | None:
    """The ``metrics.json`` of ``run_dir``, or None when there is none (or it cannot be parsed)."""
    try:
        data = json.loads((Path(run_dir) / "metrics.json").read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def is_alive_here(record: Mapping[str, Any]) -> bool:
    """Whether a ``running`` record belongs to a process that still runs on this host."""
    pid, host = record.get("pid"), record.get("host")
    if record.get("status") != "running" or not isinstance(pid, int) or host != socket.gethostname():
        return False
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


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
            "pid": os.getpid(),
            "host": socket.gethostname(),
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

    def interrupt(self, signum: int, metrics: Mapping[str, Any] | None = None) -> None:
        """Stopped by signal ``signum``: status ``interrupted``, the signal by name and number."""
        name = signal.Signals(signum).name
        self.data["status"] = "interrupted"
        self.data["error"] = f"interrupted by {name} (signal {signum})"
        self.data["signal"] = {"name": name, "number": int(signum)}
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
        append_line(Path(history_file), line)
