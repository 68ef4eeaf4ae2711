"""benchmarks/pair_sheets.py draws contact sheets of a leak report's pairs and lists the sample."""

from __future__ import annotations

import json
import runpy
import sys
from pathlib import Path

import numpy as np
from PIL import Image

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "pair_sheets.py"


def test_sheets_hold_the_sampled_pairs(tmp_path: Path, monkeypatch) -> None:
    rng = np.random.default_rng(0)
    pairs = []
    for i in range(30):
        paths = []
        for side in "ab":
            path = tmp_path / f"{side}{i}.png"
            Image.fromarray(rng.integers(0, 255, (20, 24, 3), dtype=np.uint8)).save(path)
            paths.append(str(path))
        pairs.append({"kind": "near", "distance": 0.01 * i, "a": {"split": "train", "index": i, "path": paths[0]},
                      "b": {"split": "test", "index": i, "path": paths[1]}})
    pairs.append({"kind": "exact", "distance": 0.0, "a": {"split": "train", "index": 99, "path": None},
                  "b": {"split": "test", "index": 99, "path": None}})  # arrays, no files: left out
    report = tmp_path / "leak_report.json"
    report.write_text(json.dumps({"pairs": pairs}))
    out = tmp_path / "sheets"
    monkeypatch.setattr(sys, "argv", ["pair_sheets.py", str(report), "--n", "27", "--seed", "1", "--out", str(out)])
    runpy.run_path(str(SCRIPT), run_name="__main__")
    sample = json.loads((out / "sample.json").read_text())
    assert len(sample) == 27 and len({(s["a"]["index"]) for s in sample}) == 27
    assert all(s["label"] == "" and s["a"]["path"] for s in sample)
    assert sorted(p.name for p in out.glob("sheet*.png")) == ["sheet0.png", "sheet1.png"]
    with Image.open(out / "sheet1.png") as second:  # 2 pairs left for the second sheet: one row
        assert second.height == 96 + 22
