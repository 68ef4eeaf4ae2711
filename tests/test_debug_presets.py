"""The debug presets run: fast dev run, limited batches, overfitting a few batches, the profiler."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import run_inprocess
from trueval.tasks.train import train


@pytest.mark.parametrize("preset", ["fdr", "limit", "profiler"])
def test_debug_preset_runs(preset: str, tmp_path: Path) -> None:
    _, m = run_inprocess(train, "train", [f"debug={preset}", "logger=none"], tmp_path / "r")
    assert m["status"] == "ok", m["error"]


def test_overfit_drives_loss_down(tmp_path: Path) -> None:
    _, m = run_inprocess(train, "train", ["debug=overfit", "logger=none", "callbacks=none", "test=false",
                                          "trainer.max_epochs=30"], tmp_path / "r")
    assert m["metrics"]["train/loss"] < 0.1, m["metrics"]
