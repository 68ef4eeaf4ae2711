"""Continuing a run directory that an earlier attempt left unfinished (killed, preempted, failed).

With its ``last.ckpt`` (always the last completed epoch, see ``trueval.callbacks.checkpoint``) the
run is resumed: checkpoints the earlier attempt wrote after ``last.ckpt`` are removed (a kill
between a top-k save and ``last.ckpt`` would otherwise leave ``epoch_003.ckpt`` beside
``epoch_003-v1.ckpt``), and TensorBoard purges the events at and after the checkpoint's step, so
the curves continue without a repeated step. Without one, the earlier attempt's checkpoints and
event files are removed and the run starts over, so old and new files never mix.
"""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, open_dict

log = logging.getLogger("trueval")

LAST = "last.ckpt"


def checkpoint_dir(cfg: DictConfig, run_dir: Path) -> Path:
    node = (cfg.get("callbacks") or {}).get("model_checkpoint")
    return Path(node.dirpath) if node is not None and node.get("dirpath") else run_dir / "checkpoints"


def _tensorboard_nodes(cfg: DictConfig) -> list[DictConfig]:
    return [node for node in (cfg.get("logger") or {}).values()
            if node is not None and str(node.get("_target_", "")).endswith("TensorBoardLogger")]


def _inside(path: Path, run_dir: Path) -> bool:
    try:
        return path.resolve().is_relative_to(run_dir.resolve()) and path.resolve() != run_dir.resolve()
    except OSError:
        return False


def _load(path: Path) -> dict[str, Any] | None:
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as exc:  # a truncated file from before atomic writes: start over instead
        log.warning("cannot resume from %s (%s); starting the run over", path, exc)
        return None


def _referenced(ckpt: dict[str, Any]) -> set[str]:
    """The checkpoint files that the saved ModelCheckpoint states know about."""
    names: set[str] = set()
    for state in (ckpt.get("callbacks") or {}).values():
        if isinstance(state, dict) and "best_k_models" in state:
            names.update(Path(p).name for p in state.get("best_k_models") or {})
            for key in ("best_model_path", "last_model_path", "kth_best_model_path"):
                if state.get(key):
                    names.add(Path(state[key]).name)
    return names


def logged_step(ckpt: dict[str, Any]) -> int:
    """The step the loggers had reached when the checkpoint was written."""
    loop = ((ckpt.get("loops") or {}).get("fit_loop") or {}).get("epoch_loop.state_dict") or {}
    return int(loop.get("_batches_that_stepped", ckpt.get("global_step", 0)))


def _event_second(path: Path) -> int:
    """The creation second in an event file's name (``events.out.tfevents.<seconds>.<host>.<pid>...``)."""
    try:
        return int(path.name.split(".")[3])
    except (IndexError, ValueError):
        return -1


def after_earlier_events(folders: list[Path]) -> None:
    """Wait, if need be, until the clock has left the second in which the earlier attempt's newest
    event file was created.

    TensorBoard reads a run's event files in name order, and the name starts with the second the
    writer was created in, then the host and the process id. A resumed attempt whose writer starts
    in that same second (a quick resume in a warm process) could sort before the earlier file: its
    purge then comes first and the earlier attempt's later events stay (seen in the test suite as
    steps 39, 59, 19). Waiting at most a second keeps the new file after the old one."""
    newest = max((_event_second(f) for d in folders if d.is_dir() for f in d.rglob("events.out.tfevents.*")),
                 default=-1)
    wait = newest + 1 - time.time()
    if newest >= 0 and wait > 0:
        time.sleep(wait)


def prepare_resume(cfg: DictConfig, run_dir: Path, clean: bool) -> str | None:
    """The checkpoint to resume from (None: start over), with the run directory made consistent.

    ``clean``: this process may remove files (rank zero).
    """
    ckpt_dir = checkpoint_dir(cfg, run_dir)
    last = ckpt_dir / LAST
    ckpt = _load(last) if last.is_file() else None
    if ckpt is None:
        stale = [ckpt_dir] + [Path(n.save_dir) for n in _tensorboard_nodes(cfg)]
        for path in stale:
            if clean and path.exists() and _inside(path, run_dir):
                log.info("removing %s of an earlier attempt that left no last.ckpt", path)
                shutil.rmtree(path)
        return None
    if clean:
        keep = _referenced(ckpt) | {LAST}
        for path in ckpt_dir.iterdir():
            if path.is_file() and path.name not in keep and (path.suffix == ".ckpt" or ".tmp" in path.name):
                log.info("removing %s, written after %s", path, last)
                path.unlink()
    step = logged_step(ckpt)
    with open_dict(cfg):
        for node in _tensorboard_nodes(cfg):
            node.purge_step = step  # SummaryWriter hides the earlier attempt's events from this step on
    after_earlier_events([Path(n.save_dir) for n in _tensorboard_nodes(cfg)])
    log.info("resuming from %s (epoch %s, step %s)", last, ckpt.get("epoch"), step)
    return str(last)
