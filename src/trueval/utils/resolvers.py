"""OmegaConf resolvers the configs use; registered before Hydra composes anything.

``trueval.uid``: a short random suffix, fixed for the life of the process, so that two runs or
sweeps started in the same second never share a directory (Hydra's ``now`` alone collides).
``trueval.job_dirname``: a multirun job directory named after its overrides
(``optimizer=sgd,optimizer.lr=0.01``), made safe for the file system.
``trueval.run_dir``: the run directory, or the earlier one that ``resume=`` continues
(``trueval.utils.run_dirs``).
"""

from __future__ import annotations

import hashlib
import os
import secrets

from omegaconf import OmegaConf

_UID_ENV = "TRUEVAL_UID"


def _uid() -> str:
    # Child processes of a launcher inherit the parent's suffix through the environment, so all
    # jobs of one sweep agree on the sweep directory.
    uid = os.environ.get(_UID_ENV)
    if not uid:
        # the pid makes two sweeps started in the same second on one host differ for certain
        uid = f"{os.getpid():x}{secrets.token_hex(1)}"
        os.environ[_UID_ENV] = uid
    return uid


def job_dirname(override_dirname: str | None, num: int | str = 0) -> str:
    """A readable, file-system-safe directory name for one multirun job."""
    name = (override_dirname or "").replace("/", "_").replace("\\", "_").strip()
    name = "".join(ch if ch.isprintable() and ch not in '<>:"|?*' else "_" for ch in name)
    if not name:
        return f"job{num}"
    if len(name) > 180:  # keep well under the 255-byte limit of most file systems
        digest = hashlib.sha1(name.encode()).hexdigest()[:8]
        name = f"{name[:170]}_{digest}"
    return name


def register_resolvers() -> None:
    """Idempotent: safe to call from every entry point and test."""
    if not OmegaConf.has_resolver("trueval.uid"):
        OmegaConf.register_new_resolver("trueval.uid", _uid, use_cache=True)
    if not OmegaConf.has_resolver("trueval.job_dirname"):
        OmegaConf.register_new_resolver("trueval.job_dirname", job_dirname)
    if not OmegaConf.has_resolver("trueval.run_dir"):
        from trueval.utils.run_dirs import run_dir

        OmegaConf.register_new_resolver("trueval.run_dir", run_dir)
