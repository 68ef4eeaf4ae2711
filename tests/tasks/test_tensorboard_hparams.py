"""The HParams entry names the run's curves (test twin of the optimised metric first) and the user's choices."""

from __future__ import annotations

from pathlib import Path

from helpers import compose_cfg
from trueval.tasks.tensorboard_hparams import collect_hparams, metric_tags

FINAL = {"val/acc": 0.9, "val/acc_best": 0.92, "val/loss": 0.3, "test/acc": 0.91, "test/loss": 0.31,
         "test/samples": 270.0, "test/ap50/cat": 0.5, "train/loss": 0.2, "time/run_seconds": 3.0}


def test_headline_metrics_lead_and_counts_are_left_out() -> None:
    assert metric_tags(FINAL, "val/acc_best") == ["test/acc", "val/acc_best", "test/loss", "val/acc", "val/loss"]
    assert metric_tags(FINAL, "test/acc")[:2] == ["test/acc", "test/loss"]  # eval: no duplicate column
    assert metric_tags({"val/map50_best": 0.5, "test/map50": 0.4, "test/map": 0.3}, "val/map50_best") == [
        "test/map50", "val/map50_best", "test/map"]


def test_hyperparameters_are_choices_and_knobs_not_constants(tmp_path: Path) -> None:
    cfg = compose_cfg("train", ["optimizer=sgd", "trainer.max_epochs=3", "optimizer.lr=0.05"], tmp_path / "run")
    hparams, differs, _ = collect_hparams(cfg)
    assert hparams["optimizer"] == "sgd" and hparams["optimizer.lr"] == 0.05 and hparams["trainer.max_epochs"] == 3
    assert hparams["data"] == "digits" and hparams["model"] == "mlp" and hparams["seed"] == 42
    assert set(differs) == {"optimizer", "trainer.max_epochs", "optimizer.lr"}  # what this run changed
    assert not [k for k in hparams if "_target_" in k or k.startswith("paths")]
