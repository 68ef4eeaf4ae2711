"""The leakage demonstration's summary: honest and LEAKY runs side by side (proposed: tests/sweep/test_leakage_demo.py)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import yaml
from omegaconf import OmegaConf

from trueval.sweep.leakage_demo import LeakageSummaryCallback, collect, summarize


def _job(root: Path, name: str, val_split: str, leaky: bool, val: float, test: float, num: int,
         policy: str = "warn", dropped: int = 0) -> None:
    job = root / name
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump([f"data.val_split={val_split}"]))
    (job / ".hydra" / "hydra.yaml").write_text(yaml.safe_dump({"hydra": {"job": {"num": num}}}))
    metrics = {"val/map50_best": val, "val/map50": val - 0.01, "test/map50": test}
    if leaky:
        metrics["integrity/leaky"] = 1.0
    (job / "metrics.json").write_text(json.dumps({
        "status": "ok", "error": None, "overrides": [f"data.val_split={val_split}"], "seed": 0,
        "metrics": metrics, "leaky": leaky,
        "integrity": {"policy": policy, "dropped": dropped,
                      "summary": ["val: 205 of 205 images are also in train (the same files)"]} if leaky else {}}))


def test_summary_puts_honest_and_leaky_side_by_side(tmp_path: Path) -> None:
    _job(tmp_path, "data.val_split=train", "train", True, 0.93, 0.61, 1)
    # the honest run: the gate found the dataset's own near-duplicates and policy drop removed them
    _job(tmp_path, "data.val_split=val", "val", True, 0.64, 0.62, 0, policy="drop", dropped=8)
    rows = summarize(tmp_path)
    assert [(r.val_split, r.leaky) for r in rows] == [("val", False), ("train", True)]
    assert abs(rows[1].gap - 0.32) < 1e-9 and abs(rows[0].gap - 0.02) < 1e-9
    md = (tmp_path / "leakage_summary.md").read_text()
    assert "| val | honest (8 copies dropped) | 0.640 | 0.620 | 0.020 | ok |" in md
    assert "| train | **LEAKY** | 0.930 | 0.610 | 0.320 | ok |" in md and "205 of 205 images" in md
    with (tmp_path / "leakage_summary.csv").open() as fh:
        table = list(csv.DictReader(fh))
    assert [r["leaky"] for r in table] == ["False", "True"]
    assert json.loads((tmp_path / "leakage_summary.json").read_text())[1]["test_map50"] == 0.61
    assert (tmp_path / "leakage_summary.png").stat().st_size > 0


def test_callback_and_partial_sweeps(tmp_path: Path) -> None:
    _job(tmp_path, "a", "val", False, 0.5, 0.5, 0)
    (tmp_path / "b" / ".hydra").mkdir(parents=True)  # a job still running: no metrics.json yet
    (tmp_path / "b" / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(["data.val_split=train"]))
    LeakageSummaryCallback().on_multirun_end(OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path)}}}))
    rows = collect(tmp_path)
    assert {r.job: r.status for r in rows} == {"a": "ok", "b": "incomplete"}
    assert "| train | honest | - | - | - | incomplete | b |" in (tmp_path / "leakage_summary.md").read_text()
