"""baseline.py: scikit-learn linear models on pixels and on a checkpoint's penultimate features."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from helpers import compose_cfg
from trueval.core.errors import UserError
from trueval.models.linear_baselines import fit_and_score, parse_method
from trueval.models.nets.mlp import MLP
from trueval.tasks.baseline import baseline


def _run(overrides: list[str], out: Path) -> tuple[float, dict]:
    from trueval.tasks.runner import run_task

    cfg = compose_cfg("baseline", ["extras.print_config=false", "extras.print_metrics=false", *overrides], out)
    value = run_task(baseline, cfg)
    return value, json.loads((out / "metrics.json").read_text())


def _fake_checkpoint(path: Path) -> MLP:
    """A trueval-style checkpoint of an untrained MLP for 8x8 digits (plain data only)."""
    model_cfg = {"_target_": "trueval.models.nets.mlp.MLP", "depth": 2, "width": 32, "residual": False,
                 "norm": "none", "activation": "relu", "dropout": 0.0, "pretrained": None, "freeze": "none"}
    net = MLP((1, 8, 8), 10, depth=2, width=32)
    torch.save({"hyper_parameters": {"cfg": {"model": model_cfg}, "num_classes": 10},
                "state_dict": {f"net.{k}": v for k, v in net.state_dict().items()}}, path)
    return net


def test_pixels_and_features_baselines_write_the_run_schema(tmp_path: Path) -> None:
    ckpt = tmp_path / "epoch_000.ckpt"
    _fake_checkpoint(ckpt)
    out = tmp_path / "run"
    value, record = _run([f"ckpt_path={ckpt}", "methods=[logreg_pixels,svm_features]", "C=[1.0]"], out)
    assert record["status"] == "ok"
    assert record["metrics"]["test/acc/logreg_pixels"] > 0.9  # digits are nearly linearly separable
    assert 0.0 < record["metrics"]["test/acc/svm_features"] <= 1.0
    assert value == record["metrics"]["test/acc/logreg_pixels"]
    per_method = json.loads((out / "svm_features" / "metrics.json").read_text())
    assert per_method["status"] == "ok" and set(per_method["metrics"]) >= {"test/acc", "test/f1_macro", "val/acc"}
    assert per_method["metrics"]["test/samples"] == json.loads((out / "splits.json").read_text())["splits"]["test"]["count"]


def test_features_need_a_checkpoint(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exit_info:
        _run(["methods=[logreg_features]"], tmp_path / "run")
    assert exit_info.value.code == 2
    record = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert record["status"] == "failed" and "ckpt_path" in record["error"]


def test_unknown_method_names_the_choices() -> None:
    with pytest.raises(UserError, match="logreg_pixels"):
        parse_method("forest_pixels")


def test_C_is_chosen_on_validation() -> None:
    rng = torch.Generator().manual_seed(0)
    x = torch.randn(300, 5, generator=rng).numpy()
    y = (x[:, 0] > 0).astype(int)
    split = {"train": (x[:100], y[:100]), "val": (x[100:200], y[100:200]), "test": (x[200:], y[200:])}
    metrics = fit_and_score("logreg_pixels", split, 2, Cs=[1e-6, 1.0])
    assert metrics["baseline/C"] == 1.0 and metrics["test/acc"] > 0.9


def test_baselines_on_images_of_mixed_sizes_with_a_checkpoint_trained_on_other_sizes(tmp_path: Path) -> None:
    """A folder of mixed sizes is resized to the side training uses (before: the pixel loader stacked
    images of different sizes and crashed); the features follow the checkpoint's side and statistics."""
    from data.test_imagefolder import write_mixed_size_tree
    from helpers import run_inprocess
    from trueval.tasks.train import train

    ours = tmp_path / "ours"
    for split, seed in (("train", 1), ("val", 2), ("test", 3)):
        write_mixed_size_tree(ours / split, 8 if split == "train" else 3, seed=seed, sides=range(20, 29))
    _, m = run_inprocess(train, "train", ["data=imagefolder", f"data.root={ours}", "trainer.max_epochs=1",
                                          "logger=none"], tmp_path / "train")
    assert m["status"] == "ok", m["error"]
    other = tmp_path / "other"
    for split, seed in (("train", 11), ("val", 12), ("test", 13)):
        write_mixed_size_tree(other / split, 8 if split == "train" else 3, seed=seed, sides=range(14, 19), scale=0.5)
    value, record = _run(["data=imagefolder", f"data.root={other}", f"ckpt_path={m['best_checkpoint']}",
                          "methods=[logreg_pixels,logreg_features]", "C=[1.0]"], tmp_path / "run")
    assert record["status"] == "ok", record["error"]
    assert record["metrics"]["test/samples/logreg_pixels"] == record["metrics"]["test/samples/logreg_features"] == 9
