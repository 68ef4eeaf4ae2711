"""benchmarks/quality_label_noise.py keeps working: a tiny fake MNIST, flipped labels, the JSON it reports."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from data.test_torchvision_sets import fake_mnist
from helpers import ROOT

SCRIPT = ROOT / "benchmarks" / "quality_label_noise.py"


@pytest.mark.slow
def test_benchmark_reports_precision_at_k(tmp_path: Path) -> None:
    fake_mnist(tmp_path / "mnist", n_train=300, n_test=60)
    out = tmp_path / "result.json"
    proc = subprocess.run([sys.executable, str(SCRIPT), "--mnist", str(tmp_path / "mnist"), "--root",
                           str(tmp_path / "noisy"), "--train", "200", "--test", "40", "--logs", str(tmp_path / "logs"),
                           "--out", str(out), f"paths.cache_dir={tmp_path / 'cache'}", "quality.labels.epochs=2",
                           "quality.labels.folds=2"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(out.read_text())
    assert result["flipped"] == 20 and 0 <= result["precision_at_k"] <= 1
    assert result["baseline"]["folds"] == 2 and set(result["splits"]) == {"train", "val", "test"}
