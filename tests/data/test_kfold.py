"""k-fold cross-validation in the DataModule: folds disjoint, covering train+val, groups whole, test fixed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from data.test_imagefolder import write_class_tree
from trueval.core.errors import UserError
from trueval.data.digits import DigitsDataModule
from trueval.data.imagefolder import ImageFolderDataModule


def _origins(ss) -> list[str]:
    return list(ss.origin)


def test_digits_folds_partition_train_and_val_and_leave_test_alone(tmp_path: Path) -> None:
    plain = DigitsDataModule(cache_dir=str(tmp_path), seed=7).sample_sets()
    pool = set(_origins(plain["train"])) | set(_origins(plain["val"]))
    vals, tests = [], []
    for fold in range(5):
        sets = DigitsDataModule(cache_dir=str(tmp_path), seed=7, folds=5, fold=fold).sample_sets()
        train, val = set(_origins(sets["train"])), set(_origins(sets["val"]))
        assert not train & val and train | val == pool
        vals.append(val)
        tests.append(_origins(sets["test"]))
    assert all(t == _origins(plain["test"]) for t in tests)  # the same test split as without folds
    assert sum(len(v) for v in vals) == len(pool) and set().union(*vals) == pool
    sizes = [len(v) for v in vals]
    assert max(sizes) - min(sizes) <= 5


def test_folds_keep_group_regex_groups_whole(tmp_path: Path) -> None:
    root = tmp_path / "images"
    write_class_tree(root, per_class=20, seed=0)  # file names img_0_<i>.png: group by i // 4 (5 files a group)
    for path in root.rglob("*.png"):
        i = int(path.stem.split("_")[-1])
        path.rename(path.with_name(f"patient{i // 4}_{path.name}"))
    seen = []
    for fold in range(3):
        dm = ImageFolderDataModule(root=str(root), cache_dir=str(tmp_path / "cache"), split=[0.8, 0.1, 0.1],
                                   group_regex=r"^(patient\d+)_", folds=3, fold=fold, seed=0)
        sets = dm.sample_sets()
        group = {s: {Path(p).parent.name + Path(p).name.split("_")[0] for p in sets[s].paths} for s in sets}
        assert not group["train"] & group["val"] and not group["val"] & group["test"]
        assert not group["train"] & group["test"]
        seen.append(group["val"])
    assert not seen[0] & seen[1] and not seen[1] & seen[2] and not seen[0] & seen[2]


def test_fold_without_folds_and_folds_without_fold_are_user_errors(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="range\\(5\\)"):
        DigitsDataModule(cache_dir=str(tmp_path), folds=5)
    with pytest.raises(UserError, match="data.folds"):
        DigitsDataModule(cache_dir=str(tmp_path), fold=1)
    with pytest.raises(UserError, match="0..4"):
        DigitsDataModule(cache_dir=str(tmp_path), folds=5, fold=5)
