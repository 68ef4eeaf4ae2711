"""Fixtures: an isolated log directory per test, and Hydra's global state reset between tests.

Under pytest-xdist the workers share the cores: each worker (and every process a test starts) gets
its share of threads, and files with slow tests are handed out first so that the short files, not a
long end-to-end file, fill the end of the run.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
# the suite's own helper callbacks (tests/tasks/lifecycle_helpers.py), in this process and the
# train.py processes it starts; a checkpoint's config can never extend the allow-list
os.environ["TRUEVAL_ALLOWED_TARGETS"] = "lifecycle_helpers."


def _share_the_cores() -> None:
    """One worker's share of the cores for torch, BLAS and OpenMP, here and in the processes tests start.

    Two workers each running torch's default thread count on 2 cores wait on each other's threads:
    under load a model test took 10x longer than alone (the same effect as trueval.quality.threads).
    """
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers <= 1:
        return
    threads = max(1, (os.cpu_count() or 1) // workers)
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(name, str(threads))
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    threadpool_limits(int(os.environ["OMP_NUM_THREADS"]))


_share_the_cores()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Files with slow tests first (in collection order), so xdist's --dist loadfile starts them early.

    With ``--no-loadscope-reorder`` (the Makefile's test target) xdist hands out files in this order;
    a long file handed out last would be the end of the run on one worker while the other idles.
    """
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow_files)


@pytest.fixture(autouse=True)
def _reset_hydra():
    yield
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    return tmp_path / "run"
