"""Fixtures: an isolated log directory per test, and Hydra's global state reset between tests."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))


@pytest.fixture(autouse=True)
def _reset_hydra():
    yield
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    return tmp_path / "run"
