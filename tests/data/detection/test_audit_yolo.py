"""`python audit.py data=yolo` on every yaml training accepts: it reports, and never exits 1 on a crash."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers import compose_cfg
from trueval.data.detection.synthetic import write_synthetic_yolo
from trueval.tasks import audit as audit_task
from trueval.tasks.runner import run_task


def _audit(tmp_path: Path, overrides: list[str], name: str) -> tuple[int, dict]:
    out = tmp_path / name
    try:
        run_task(audit_task.audit, compose_cfg("audit", overrides, out))
        code = 0
    except SystemExit as exc:
        code = int(exc.code)
    report = out / "leak_report.json"
    return code, json.loads(report.read_text()) if report.is_file() else {}


@pytest.fixture()
def dataset(tmp_path: Path) -> Path:
    return write_synthetic_yolo(tmp_path / "ds", {"train": 10, "val": 4, "test": 4}, size=48, seed=3)


def test_yolo_audit_clean_and_val_is_train(dataset: Path, tmp_path: Path) -> None:
    code, report = _audit(tmp_path, ["data=yolo", f"data.yaml_path={dataset}"], "clean")
    assert code == 0 and report["splits"] == {"train": 10, "val": 4, "test": 4} and report["pairs"] == []
    # the Ultralytics sample-config pattern: `val:` is the train folder
    leaky = dataset.parent / "leaky.yaml"
    leaky.write_text(dataset.read_text().replace("val: images/val", "val: images/train"))
    code, report = _audit(tmp_path, ["data=yolo", f"data.yaml_path={leaky}"], "leaky")
    assert code == 1
    assert report["splits"]["val"] == 10
    assert {p["b"]["index"] for p in report["pairs"] if p["kind"] == "source" and p["b"]["split"] == "val"} == set(range(10))


def test_yolo_audit_list_files_and_names_mapping(dataset: Path, tmp_path: Path) -> None:
    root = dataset.parent
    for split in ("train", "val", "test"):
        files = sorted((root / "images" / split).iterdir())
        (root / f"{split}.txt").write_text("".join(f"./images/{split}/{f.name}\n" for f in files))
    listed = root / "listed.yaml"
    listed.write_text("path: .\ntrain: train.txt\nval: val.txt\ntest: [test.txt]\nnc: 3\n"
                      "names: {0: rectangle, 1: ellipse, 2: triangle}\n")
    code, report = _audit(tmp_path, ["data=yolo", f"data.yaml_path={listed}"], "listed")
    assert code == 0 and report["splits"] == {"train": 10, "val": 4, "test": 4}


def test_a_crash_never_exits_with_the_leak_code(tmp_path: Path, monkeypatch) -> None:
    def broken(cfg, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(audit_task, "build_datamodule", broken)
    code, _ = _audit(tmp_path, ["data=digits"], "crash")
    assert code == audit_task.EXIT_CRASH == 4
    metrics = json.loads((tmp_path / "crash" / "metrics.json").read_text())
    assert metrics["status"] == "failed" and "boom" in metrics["error"]
