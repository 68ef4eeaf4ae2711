"""eval.py against the checkpoint's training data: which copies it looks for, and what it drops."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from data.test_imagefolder import write_class_tree, write_mixed_size_tree
from helpers import run_inprocess
from trueval.tasks.evaluate import evaluate
from trueval.tasks.train import train


def _folders(root: Path, seed: int) -> None:
    for split, offset in (("train", 0), ("val", 1), ("test", 2)):
        write_class_tree(root / split, per_class=10 if split == "train" else 4, seed=seed + offset, size=32)


def test_eval_relies_on_the_gate_for_its_own_data_and_on_the_fingerprint_for_other_data(tmp_path: Path) -> None:
    ours = tmp_path / "ours"
    _folders(ours, seed=1)
    _, m = run_inprocess(train, "train", ["data=imagefolder", f"data.root={ours}", "trainer.max_epochs=1",
                                          "logger=none"], tmp_path / "run")
    assert m["status"] == "ok", m["error"]
    ckpt = m["best_checkpoint"]

    # the same data: this run's gate compared test with exactly the checkpoint's training split
    _, same = run_inprocess(evaluate, "eval", [f"ckpt_path={ckpt}"], tmp_path / "same")
    assert same["status"] == "ok", same["error"]
    assert same["eval_overlap_check"].startswith("exact copies (the gate")
    assert same["metrics"]["test/samples"] == 12
    assert same["ci95"]["test/acc"] == m["ci95"]["test/acc"]  # the same predictions, the same seeded draws

    # other data, whose test split holds a brightened copy of one of our training images
    other = tmp_path / "other"
    _folders(other, seed=11)
    source = sorted((ours / "train" / "class_0").iterdir())[0]
    brighter = np.clip(np.asarray(Image.open(source), dtype=np.float32) * 1.2, 0, 255).astype(np.uint8)
    Image.fromarray(brighter).save(other / "test" / "class_0" / "copy.png")
    _, moved = run_inprocess(evaluate, "eval", [f"ckpt_path={ckpt}", f"+data.root={other}",
                                                "+data.integrity.policy=drop"], tmp_path / "other_eval")
    assert moved["status"] == "ok", moved["error"]
    assert moved["eval_overlap_check"].startswith("exact and near copies")
    assert moved["eval_overlap"]["count"] == 1
    assert moved["metrics"]["test/samples"] == 12  # 13 test images, the copy dropped
    record = json.loads((tmp_path / "other_eval" / "metrics.json").read_text())
    assert record["eval_overlap"]["policy"] == "drop"


def test_a_checkpoint_scores_a_test_split_as_it_was_trained_whatever_train_split_the_data_has(tmp_path: Path) -> None:
    """Scoring on another dataset: the images are normalised by the training run's statistics and
    resized to the side the training run chose for its mixed sizes, not to this data's. Before,
    the train split read at eval time set both: a darker train split of smaller images gave exit 2
    (its median side differed) and, at one size, other predictions for the same test images."""
    import shutil

    ours = tmp_path / "ours"
    write_mixed_size_tree(ours / "train", 10, seed=1, sides=range(20, 29))
    write_mixed_size_tree(ours / "val", 4, seed=2, sides=range(20, 29))
    write_mixed_size_tree(ours / "test", 4, seed=3, sides=range(20, 29))
    _, m = run_inprocess(train, "train", ["data=imagefolder", f"data.root={ours}", "trainer.max_epochs=2",
                                          "logger=none"], tmp_path / "run")
    assert m["status"] == "ok", m["error"]

    other = tmp_path / "other"
    write_mixed_size_tree(other / "train", 10, seed=11, sides=range(14, 19), scale=0.5)
    write_mixed_size_tree(other / "val", 4, seed=12, sides=range(14, 19), scale=0.5)
    shutil.copytree(ours / "test", other / "test")
    _, scored = run_inprocess(evaluate, "eval", [f"ckpt_path={m['best_checkpoint']}", f"+data.root={other}"],
                              tmp_path / "other_eval")
    assert scored["status"] == "ok", scored["error"]
    trained = np.load(tmp_path / "run" / "test_predictions.npz")
    again = np.load(tmp_path / "other_eval" / "test_predictions.npz")
    order = [list(again["hash"]).index(h) for h in trained["hash"]]
    np.testing.assert_array_equal(again["pred"][order], trained["pred"])
    np.testing.assert_allclose(again["prob"][order], trained["prob"], atol=1e-5)
