"""benchmarks/pooling.py keeps working: its --smoke mode times both pools and a net step on the CPU."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_smoke_run_times_every_pool_and_the_net_step(tmp_path: Path) -> None:
    out = tmp_path / "pooling.json"
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "pooling.py"), "--smoke", "--repeats", "2",
                           "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(out.read_text())
    assert set(report["pools"]) == {"group1 2x2", "group2 2x2", "group3 2x2", "global"}
    for row in [*report["pools"].values(), report["speedrun_net_step"]]:
        assert row["torch_s"] > 0 and row["trueval_s"] > 0
        assert abs(row["speedup"] - row["torch_s"] / row["trueval_s"]) < 1e-9
