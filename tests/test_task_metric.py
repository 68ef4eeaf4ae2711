"""The optimised metric defaults to the data's task: choosing a detector is enough to train one."""

from __future__ import annotations

from pathlib import Path

from helpers import compose_cfg
from trueval.utils.resolvers import task_metric


def test_detection_data_defaults_to_map50(tmp_path: Path) -> None:
    cfg = compose_cfg("train", ["data=yolo", "model=detector", "data.yaml_path=x.yaml"], tmp_path / "run")
    assert cfg.optimized_metric == "val/map50_best"
    assert cfg.callbacks.model_checkpoint.monitor == "val/map50_best"
    assert cfg.callbacks.early_stopping.monitor == "val/map50_best"


def test_classification_keeps_accuracy_and_an_explicit_choice_wins(tmp_path: Path) -> None:
    assert compose_cfg("train", [], tmp_path / "a").optimized_metric == "val/acc_best"
    cfg = compose_cfg("train", ["data=yolo", "data.yaml_path=x.yaml", "optimized_metric=val/map_best"], tmp_path / "b")
    assert cfg.optimized_metric == "val/map_best"


def test_unknown_targets_fall_back_to_classification() -> None:
    assert task_metric("no.such.Module") == "val/acc_best"
    assert task_metric("trueval.data.detection.YoloDataModule") == "val/map50_best"
