"""Re-running a sweep killed half-way: finished trials are kept, the killed one resumes, one summary."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import ROOT, load_ckpt

ARGS = ["-m", "optimizer.lr=0.001,0.002", "trainer=cpu", "trainer.max_epochs=2", "model.width=16", "model.depth=2",
        "callbacks.progress_bar=null", "extras.print_config=false", "extras.print_metrics=false",
        "+callbacks.sleep._target_=lifecycle_helpers.Sleep", "+callbacks.sleep.seconds=0.3"]


def _sweep(tmp_path: Path, sweep: Path) -> subprocess.Popen:
    env = {**os.environ, "PROJECT_ROOT": str(ROOT),
           "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT / "tests" / "tasks")])}
    env.pop("TRUEVAL_UID", None)
    return subprocess.Popen([sys.executable, str(ROOT / "train.py"), *ARGS, f"paths.log_dir={tmp_path / 'logs'}",
                             f"paths.cache_dir={tmp_path / 'cache'}", f"hydra.sweep.dir={sweep}"],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _trial(sweep: Path, override: str) -> Path | None:
    """The job directory of the trial with ``override`` (long names are shortened with a digest)."""
    for overrides in sweep.glob("*/.hydra/overrides.yaml"):
        if override in overrides.read_text():
            return overrides.parent.parent
    return None


@pytest.mark.slow
def test_a_rerun_sweep_skips_finished_trials_and_resumes_the_killed_one(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    proc = _sweep(tmp_path, sweep)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:  # SIGTERM once trial 2 finished an epoch
        second = _trial(sweep, "optimizer.lr=0.002")
        if second is not None and (second / "checkpoints" / "last.ckpt").exists():
            proc.send_signal(signal.SIGTERM)
            break
        time.sleep(0.05)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 143, err[-3000:]
    first, second = _trial(sweep, "optimizer.lr=0.001"), _trial(sweep, "optimizer.lr=0.002")
    assert json.loads((first / "metrics.json").read_text())["status"] == "ok"
    killed = json.loads((second / "metrics.json").read_text())
    assert killed["status"] == "interrupted" and killed["signal"]["name"] == "SIGTERM"
    first_record = (first / "metrics.json").read_text()

    proc = _sweep(tmp_path, sweep)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-3000:]
    assert (first / "metrics.json").read_text() == first_record  # not trained again
    resumed = json.loads((second / "metrics.json").read_text())
    assert resumed["status"] == "ok" and resumed["resumed_from"].endswith("last.ckpt")
    assert load_ckpt(second / "checkpoints" / "last.ckpt")["epoch"] == 1
    assert not list(second.rglob("*-v1.ckpt")) and not list(sweep.rglob("*.tmp*"))
    history = [json.loads(line) for line in (tmp_path / "logs" / "history.jsonl").read_text().splitlines()]
    assert sorted((h["run_dir"], h["status"]) for h in history) == sorted([
        (str(first), "ok"), (str(second), "interrupted"), (str(second), "ok")])
    with (sweep / "summary.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 2 and all(r["status"] == "ok" for r in rows)
