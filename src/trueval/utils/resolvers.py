"""OmegaConf resolvers the configs use; registered before Hydra composes anything.

``trueval.uid``: a short random suffix, fixed for the life of the process, so that two runs or
sweeps started in the same second never share a directory (Hydra's ``now`` alone collides).
``trueval.job_dirname``: a multirun job directory named after the keys that VARY within its sweep,
in the order the user wrote them (``optimizer=sgd,optimizer.lr=0.01``); constants are left out
(the sweep summary lists them in its header). Made safe for the file system.
``trueval.task_metric``: the default ``optimized_metric`` of the data's task (classification:
``val/acc_best``, detection: ``val/map50_best``).
``trueval.run_dir``: the run directory, or the earlier one that ``resume=`` continues
(``trueval.utils.run_dirs``).
"""

from __future__ import annotations

import hashlib
import os
import secrets
from pathlib import Path
from typing import Any, Sequence

from omegaconf import OmegaConf

_UID_ENV = "TRUEVAL_UID"
# the metric that picks the best checkpoint, per task (the DataModule class says its task)
TASK_METRICS = {"classification": "val/acc_best", "detection": "val/map50_best"}


def _uid() -> str:
    # Child processes of a launcher inherit the parent's suffix through the environment, so all
    # jobs of one sweep agree on the sweep directory.
    uid = os.environ.get(_UID_ENV)
    if not uid:
        # the pid makes two sweeps started in the same second on one host differ for certain
        uid = f"{os.getpid():x}{secrets.token_hex(1)}"
        os.environ[_UID_ENV] = uid
    return uid


def override_key(override: str) -> str:
    """``+optimizer.lr=0.1`` -> ``optimizer.lr`` (the key a job override sets)."""
    return override.strip().lstrip("+~").split("=", 1)[0]


def _sweep_arguments(multirun: Any) -> tuple[list[str], bool]:
    """The sweep's overrides as the sweeper reads them (config params first, then the command line),
    and whether the sweeper is Hydra's grid (BasicSweeper)."""
    hydra_cfg = multirun.get("hydra") or {}
    sweeper = hydra_cfg.get("sweeper") or {}
    params = sweeper.get("params") or {}
    arguments = [f"{k}={v}" for k, v in params.items()] if isinstance(params, dict) else []
    arguments += [str(a) for a in ((hydra_cfg.get("overrides") or {}).get("task") or [])]
    return arguments, str(sweeper.get("_target_", "")).endswith("BasicSweeper")


def sweep_plan(sweep_dir: str | os.PathLike[str] | None) -> tuple[list[str], list[list[str]] | None]:
    """The keys that vary within a sweep, in the user's order, and for a grid every job's overrides.

    Read from ``<sweep_dir>/multirun.yaml``, which Hydra's sweepers write before the first job
    starts; a key varies when its override is a sweep with more than one value (``a=1,2``,
    ``choice(..)``, ``interval(..)``). Empty when the file is missing or unreadable.
    """
    path = Path(sweep_dir) / "multirun.yaml" if sweep_dir else None
    if path is None or not path.is_file():
        return [], None
    import yaml

    try:
        multirun = yaml.safe_load(path.read_text()) or {}
        arguments, grid = _sweep_arguments(multirun)
        from hydra.core.override_parser.overrides_parser import OverridesParser

        parsed = OverridesParser.create().parse_overrides(arguments)
    except Exception:  # noqa: BLE001 - a sweep we cannot read is named by all its overrides
        return [], None
    varying: list[str] = []
    for override in parsed:
        key = override_key(override.get_key_element())
        if key in varying or not override.is_sweep_override():
            continue
        if override.is_discrete_sweep() and len(set(override.sweep_string_iterator())) < 2:
            continue
        varying.append(key)
    jobs = None
    if grid and all(o.is_discrete_sweep() or not o.is_sweep_override() for o in parsed):
        from hydra._internal.core_plugins.basic_sweeper import BasicSweeper

        jobs = BasicSweeper.split_arguments(parsed, None)[0]
    return varying, jobs


def trial_name(overrides: Sequence[str], varying: Sequence[str]) -> str:
    """``key=value`` of the varying keys, in ``varying``'s order (all overrides when none vary)."""
    by_key = {override_key(o): o.strip().lstrip("+") for o in overrides}
    chosen = [by_key[k] for k in varying if k in by_key]
    return ",".join(chosen if chosen else [o.strip() for o in overrides])


def _safe(name: str) -> str:
    name = name.replace("/", "_").replace("\\", "_").strip()
    name = "".join(ch if ch.isprintable() and ch not in '<>:"|?*' else "_" for ch in name)
    if len(name) > 180:  # keep well under the 255-byte limit of most file systems
        digest = hashlib.sha1(name.encode()).hexdigest()[:8]
        name = f"{name[:170]}_{digest}"
    return name


def job_dirname(override_dirname: str | None, num: int | str = 0, sweep_dir: str | None = None,
                task_overrides: Sequence[str] | None = None) -> str:
    """A readable, unique, file-system-safe directory name for one multirun job.

    With the sweep directory and the job's overrides: the varying keys only. Two jobs of a grid
    that would share a name (``seed=1,1``), and the trials of a non-grid sweeper (Optuna may draw
    the same values twice), get the job number in front.
    """
    if sweep_dir is not None and task_overrides is not None:
        overrides = [str(o) for o in task_overrides]
        varying, jobs = sweep_plan(sweep_dir)
        if varying:
            name = _safe(trial_name(overrides, varying))
            names = [_safe(trial_name(job, varying)) for job in jobs] if jobs is not None else None
            if names is None or names.count(name) > 1:
                name = f"{int(num):03d}_{name}"
            return name
    name = _safe(override_dirname or "")
    return name or f"job{num}"


def task_metric(data_target: str | None) -> str:
    """The default ``optimized_metric`` for the DataModule class ``data_target`` (its ``task`` attribute)."""
    task = "classification"
    if data_target:
        try:
            from hydra.utils import get_class

            task = getattr(get_class(str(data_target)), "task", task)
        except Exception:  # noqa: BLE001 - a bad target is reported when the data is built
            pass
    return TASK_METRICS.get(task, TASK_METRICS["classification"])


def register_resolvers() -> None:
    """Idempotent: safe to call from every entry point and test."""
    if not OmegaConf.has_resolver("trueval.uid"):
        OmegaConf.register_new_resolver("trueval.uid", _uid, use_cache=True)
    if not OmegaConf.has_resolver("trueval.job_dirname"):
        OmegaConf.register_new_resolver("trueval.job_dirname", job_dirname)
    if not OmegaConf.has_resolver("trueval.task_metric"):
        OmegaConf.register_new_resolver("trueval.task_metric", task_metric)
    if not OmegaConf.has_resolver("trueval.run_dir"):
        from trueval.utils.run_dirs import run_dir

        OmegaConf.register_new_resolver("trueval.run_dir", run_dir)
