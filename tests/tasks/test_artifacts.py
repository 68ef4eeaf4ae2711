"""The run record's LEAKY flag follows what the policy did with the leak, not only that one was found."""

from __future__ import annotations

from pathlib import Path

import pytest

from data.test_imagefolder import write_class_tree
from helpers import run_inprocess
from trueval.tasks.train import train


@pytest.mark.parametrize("policy,leaky,dropped", [("warn", True, 0), ("drop", False, 1)])
def test_leaky_flag_only_when_the_copies_stay(tmp_path: Path, policy: str, leaky: bool, dropped: int) -> None:
    root = tmp_path / "images"
    for split, seed in (("train", 1), ("val", 2), ("test", 3)):
        write_class_tree(root / split, per_class=8 if split == "train" else 3, seed=seed, size=16)
    first = sorted((root / "train" / "class_0").iterdir())[0]
    (root / "test" / "class_0" / "copied.png").write_bytes(first.read_bytes())
    _, m = run_inprocess(train, "train", ["data=imagefolder", f"data.root={root}", f"data.integrity.policy={policy}",
                                          "trainer.max_epochs=1", "callbacks=none", "logger=csv"], tmp_path / "run")
    assert m["status"] == "ok", m["error"]
    assert m["integrity"]["cross_split_pairs"] == 1 and m["integrity"]["dropped"] == dropped
    assert m["integrity"]["look_alikes"] == 0
    assert m["leaky"] is leaky
    assert ("integrity/leaky" in m["metrics"]) is leaky
    assert m["metrics"]["test/samples"] == 3 * 3 + 1  # test is never reduced
