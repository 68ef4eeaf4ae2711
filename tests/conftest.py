"""Fixtures: an isolated log directory per test, and Hydra's global state reset between tests."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
# the suite's own helper callbacks (tests/tasks/lifecycle_helpers.py), in this process and the
# train.py processes it starts; a checkpoint's config can never extend the allow-list
os.environ["TRUEVAL_ALLOWED_TARGETS"] = "lifecycle_helpers."


@pytest.fixture(autouse=True)
def _reset_hydra():
    yield
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    return tmp_path / "run"
