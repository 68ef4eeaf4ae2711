"""Detection through the real entry points: train.py's task on a generated YOLO dataset, then eval.py's."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers import load_ckpt, run_inprocess
from trueval.data.detection.synthetic import write_synthetic_yolo
from trueval.tasks.evaluate import evaluate
from trueval.tasks.train import train

pytestmark = pytest.mark.slow


def _args(yaml_path: Path, *extra: str) -> list[str]:
    return ["data=yolo", "model=detector", f"data.yaml_path={yaml_path}", "data.image_size=96", "data.num_workers=0",
            "data.batch_size=8", "data.augment.color=0", "optimizer=adamw", "optimizer.lr=2e-3",
            "optimized_metric=val/map50_best", "trainer.max_epochs=2", "seed=0",
            "+model.options.box_batch_size_per_image=32", "+model.options.rpn_post_nms_top_n_test=100",
            "bootstrap.detection_resamples=20", *extra]


@pytest.fixture(scope="module")
def detection_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("det")
    yaml_path = write_synthetic_yolo(root / "shapes", {"train": 24, "val": 8, "test": 8}, size=96, seed=3)
    out = root / "run"
    _, metrics = run_inprocess(train, "train", _args(yaml_path), out)
    return out, metrics


def test_train_reports_detection_metrics(detection_run: tuple[Path, dict]) -> None:
    out, record = detection_run
    assert record["status"] == "ok", record["error"]
    m = record["metrics"]
    for key in ("train/loss", "train/box_loss", "train/cls_loss", "val/loss", "val/map50", "val/map", "val/map50_best",
                "test/map50", "test/map", "test/ap50/rectangle", "test/ap50/ellipse", "test/ap50/triangle"):
        assert key in m, key
    assert 0 <= m["test/map"] <= m["test/map50"] <= 1
    lo, hi = record["ci95"]["test/map50"]  # bootstrap over test images
    assert lo <= m["test/map50"] <= hi and record["ci95_method"]["over"] == "test images"
    splits = json.loads((out / "splits.json").read_text())
    assert splits["task"] == "detection" and splits["splits"]["train"]["count"] == 24
    assert (out / "leak_report.json").is_file() and not record["leaky"]
    ckpt = load_ckpt(record["best_checkpoint"])
    assert ckpt["hyper_parameters"]["cfg"]["model"]["name"] == "fasterrcnn_mobilenet_v3_large_fpn"
    assert ckpt["trueval"]["train_digest"]


def test_eval_on_a_detector_checkpoint_reproduces_test_map(detection_run: tuple[Path, dict], tmp_path: Path) -> None:
    _, record = detection_run
    _, ev = run_inprocess(evaluate, "eval", [f"ckpt_path={record['best_checkpoint']}"], tmp_path / "eval")
    assert ev["status"] == "ok", ev["error"]
    for key, value in record["metrics"].items():
        if key.startswith("test/"):
            assert ev["metrics"][key] == pytest.approx(value, abs=1e-5), key
    assert ev["ci95"]["test/map50"] == pytest.approx(record["ci95"]["test/map50"], abs=1e-5)


def test_validation_on_the_training_folder_is_refused(tmp_path: Path) -> None:
    yaml_path = write_synthetic_yolo(tmp_path / "shapes", {"train": 6, "val": 2, "test": 2}, size=32)
    leaky = yaml_path.parent / "leaky.yaml"
    leaky.write_text("path: .\ntrain: images/train\nval: images/train\ntest: images/test\n"
                     "names: [rectangle, ellipse, triangle]\n")
    code, record = _refused_before_training(leaky, tmp_path)
    assert code == 3  # LeakError
    assert record["status"] == "failed" and "6" in record["error"]


def test_a_yaml_without_a_test_split_is_refused_before_training(tmp_path: Path) -> None:
    """The run used to warn "there will be no test metrics", train every epoch, then stop with exit 2 at
    the test step (seen on an Ultralytics-style yaml with train and val only): the refusal comes first."""
    yaml_path = write_synthetic_yolo(tmp_path / "shapes", {"train": 6, "val": 2, "test": 2}, size=32)
    no_test = yaml_path.parent / "no_test.yaml"
    no_test.write_text("path: .\ntrain: images/train\nval: images/val\nnames: [rectangle, ellipse, triangle]\n")
    code, record = _refused_before_training(no_test, tmp_path)
    assert code == 2  # UserError
    assert record["status"] == "failed" and "test=false" in record["error"]


def _refused_before_training(yaml_path: Path, tmp_path: Path) -> tuple[int, dict]:
    """(exit code, metrics.json) of a train run that must stop before its first training step."""
    with pytest.raises(SystemExit) as exit_info:
        run_inprocess(train, "train", _args(yaml_path), tmp_path / "run")
    assert not list((tmp_path / "run").rglob("*.ckpt"))  # refused before any training step
    return exit_info.value.code, json.loads((tmp_path / "run" / "metrics.json").read_text())
