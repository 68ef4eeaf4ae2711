"""quality.py end to end: flipped labels found, the fix manifest applied by a training run, exit codes."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from helpers import compose_cfg, run_inprocess
from planted import digits, write_digits_tree
from trueval.tasks.quality import quality
from trueval.tasks.runner import run_task
from trueval.tasks.train import train


def run_quality(overrides: list[str], run: Path) -> None:
    """quality.py in this process (it has no trainer, so helpers.run_inprocess's trainer keys do not apply)."""
    run_task(quality, compose_cfg("quality", overrides, run))


@pytest.mark.slow
def test_flipped_labels_ranked_first_then_left_out_of_training(tmp_path: Path) -> None:
    images, labels, _ = digits(0.0)
    order = np.random.default_rng(0).permutation(len(labels))
    tr, te = order[:1400], order[1400:]
    noisy = labels[tr].copy()
    rng = np.random.default_rng(1)
    flipped = rng.choice(len(tr), size=140, replace=False)  # 10% of the training labels
    noisy[flipped] = (noisy[flipped] + rng.integers(1, 10, size=len(flipped))) % 10
    root = tmp_path / "digits"
    paths = write_digits_tree(root / "train", images[tr], noisy, "tr")
    write_digits_tree(root / "test", images[te], labels[te], "te")
    wrong = {paths[i] for i in flipped}
    run = tmp_path / "quality"
    data = ["data=imagefolder", f"data.root={root}"]
    with pytest.raises(SystemExit) as stop:
        run_quality(data + ["quality.sections=[balance,diversity,labels]", "quality.fix=true"], run)
    assert stop.value.code == 1  # 10% of train looks mislabelled: flagged
    with open(run / "label_issues.csv", newline="") as fh:
        reader = csv.DictReader(fh)
        assert reader.fieldnames == ["split", "path", "given", "predicted", "score"]
        rows = list(reader)
    top = rows[:len(flipped)]
    precision = np.mean([r["path"] in wrong for r in top])
    assert precision >= 0.8, precision
    assert all(r["path"].startswith(("train/", "test/")) for r in rows)
    scores = [float(r["score"]) for r in rows]
    assert scores == sorted(scores, reverse=True)
    report = json.loads((run / "quality_report.json").read_text())
    assert report["flagged"] == ["labels"] and (run / "quality_report.md").is_file()
    assert (run / "figures" / "loss_histogram.png").is_file() and list((run / "tensorboard").iterdir())
    manifest = json.loads((run / "exclude_manifest.json").read_text())
    excluded = manifest["excluded"]
    assert excluded and all(e["split"] == "train" and e["reason"] for e in excluded)
    assert np.mean([e["path"] in wrong for e in excluded]) > 0.8

    _, m = run_inprocess(train, "train", data + [f"data.exclude={run / 'exclude_manifest.json'}",
                                                 "data.sampler=balanced", "loss.name=focal", "trainer.max_epochs=1",
                                                 "callbacks=none", "logger=csv"], tmp_path / "train")
    assert m["status"] == "ok", m["error"]
    assert sum(m["quality"]["balance"]["counts"]["train"]) == manifest["splits"]["train"]["kept"]
    assert set(m["quality"]["within_split_duplicates"]) == {"train", "val", "test"}


def test_unknown_section_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as stop:
        run_quality(["quality.sections=[balance,vibes]"], tmp_path / "run")
    assert stop.value.code == 2
    m = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert m["status"] == "failed" and "quality.sections" in m["error"]


@pytest.mark.slow
def test_detection_data_counts_boxes_per_class(tmp_path: Path) -> None:
    from trueval.data.detection.synthetic import write_synthetic_yolo

    yaml_path = write_synthetic_yolo(tmp_path / "ds", {"train": 12, "val": 6, "test": 6}, size=48, seed=1)
    run = tmp_path / "quality"
    with pytest.raises(SystemExit) as stop:
        run_quality(["data=yolo", f"data.yaml_path={yaml_path}", "data.image_size=48", "data.num_workers=0"], run)
    assert stop.value.code == 1  # a dozen training images hold fewer than 20 boxes of each class
    report = json.loads((run / "quality_report.json").read_text())
    balance = report["sections"]["balance"]
    assert balance["flagged"] and set(balance["underrepresented"]) == {"rectangle", "ellipse", "triangle"}
    assert sum(balance["boxes"]["train"]) >= 12 and balance["images"]["train"] != balance["boxes"]["train"]
    assert "labels" not in report["sections"] and {"diversity", "domain"} <= set(report["sections"])
