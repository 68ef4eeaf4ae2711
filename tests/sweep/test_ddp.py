"""HydraDDPStrategy: DDP inside a multirun keeps one directory per job and tests every sample once."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

APP = Path(__file__).parent / "ddp_app" / "app.py"


@pytest.mark.slow
def test_two_ddp_jobs_of_a_multirun_each_write_one_directory(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    result = subprocess.run(
        [sys.executable, str(APP), "-m", "+x=1,2", f"hydra.sweep.dir={sweep}",
         'hydra.sweep.subdir="x=${hydra.job.num},lr=0.1"'],  # '=' and ',' as in trueval's job names
        cwd=tmp_path, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    jobs = sorted(p for p in sweep.iterdir() if p.is_dir())
    assert [p.name for p in jobs] == ["x=0,lr=0.1", "x=1,lr=0.1"]
    # no rank started a sweep or a run of its own
    assert not (tmp_path / "multirun").exists() and not (tmp_path / "outputs").exists()
    for job in jobs:
        ranks = {name: json.loads((job / f"{name}.json").read_text()) for name in ("rank0", "rank1")}
        assert ranks["rank0"]["pid"] != ranks["rank1"]["pid"]
        assert ranks["rank0"]["mode"] == "RunMode.MULTIRUN" and ranks["rank1"]["mode"] == "RunMode.RUN"
        assert (job / "app_rank1.log").exists() and not (job / "app_rank1_rank1.log").exists()
        test = json.loads((job / "test.json").read_text())
        assert test["n_test"] == 37  # the full test set, once, no DistributedSampler padding
