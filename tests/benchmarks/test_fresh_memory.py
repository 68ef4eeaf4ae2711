"""benchmarks/fresh_memory.py keeps working: every case runs in its own process and reports its seconds."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "fresh_memory.py"


def test_every_kind_of_fresh_memory_is_timed() -> None:
    out = subprocess.run([sys.executable, str(SCRIPT), "--mb", "8", "--idle", "0"], check=True,
                         capture_output=True, text=True, timeout=120).stdout.splitlines()
    assert [line.split()[0] for line in out] == ["numpy", "4k", "shared", "threads", "processes"]
    assert all(float(line.split()[-2]) >= 0 for line in out)
