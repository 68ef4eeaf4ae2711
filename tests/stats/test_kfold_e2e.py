"""The README's k-fold command end to end on digits: one trial per fold, folds disjoint and covering
train+val, the test split identical, per-run intervals and predictions, the summary over folds, and
``python -m trueval.compare`` on two folds (same test samples)."""

from __future__ import annotations

import csv
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import ROOT
from sweep.test_sweeps_e2e import QUICK, train


def readme_command(prefix: str) -> str:
    blocks = re.findall(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    return next(line.strip() for block in blocks for line in block.splitlines() if line.strip().startswith(prefix))


@pytest.mark.slow
def test_readme_kfold_command(tmp_path: Path) -> None:
    command = readme_command("python train.py -m data.folds=")
    sweep = tmp_path / "kfold"
    result = train(tmp_path, *shlex.split(command)[2:], *QUICK, "logger=none",
                   f"paths.log_dir={tmp_path / 'logs'}", f"hydra.sweep.dir={sweep}")
    assert result.returncode == 0, result.stderr[-3000:]
    jobs = sorted((p.parent for p in sweep.glob("*/metrics.json")),
                  key=lambda j: json.loads((j / "splits.json").read_text())["fold"])
    assert len(jobs) == 5
    splits = [json.loads((job / "splits.json").read_text())["splits"] for job in jobs]
    vals = [set(s["val"]["ids"]) for s in splits]
    pool = set(splits[0]["train"]["ids"]) | vals[0]
    for s, val in zip(splits, vals):
        assert not set(s["train"]["ids"]) & val and set(s["train"]["ids"]) | val == pool
        assert s["test"]["ids"] == splits[0]["test"]["ids"] and not set(s["test"]["ids"]) & pool
    assert sum(len(v) for v in vals) == len(pool) == len(set().union(*vals))
    for job in jobs:
        metrics = json.loads((job / "metrics.json").read_text())
        lo, hi = metrics["ci95"]["test/acc"]
        assert metrics["status"] == "ok" and lo <= metrics["metrics"]["test/acc"] <= hi
        assert (job / "test_predictions.npz").is_file()
    with (sweep / "summary_by_seed.csv").open() as handle:
        (group,) = list(csv.DictReader(handle))
    assert group["n_ok"] == "5" and float(group["test/acc ci95_lo"]) <= float(group["test/acc mean"])
    assert "over folds" in (sweep / "summary.md").read_text()
    with (sweep / "summary.csv").open() as handle:
        assert "test/acc_ci95_hi" in next(csv.DictReader(handle))

    compare = [sys.executable, "-m", "trueval.compare", str(jobs[0]), str(jobs[1])]
    assert readme_command("python -m trueval.compare").split()[:3] == ["python", "-m", "trueval.compare"]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    done = subprocess.run(compare, capture_output=True, text=True, cwd=ROOT, timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    assert f"on the same {len(splits[0]['test']['ids'])} test samples" in done.stdout and "McNemar" in done.stdout
