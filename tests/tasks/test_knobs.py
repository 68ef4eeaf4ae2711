"""A config value of the wrong type or range is one message naming its key, before anything runs."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from omegaconf import OmegaConf, open_dict

from helpers import compose_cfg, run_cli
from trueval.core.errors import UserError
from trueval.tasks.knobs import check_knobs

BAD = [("optimizer.lr", "abc"), ("optimizer.lr", 0), ("seed", "abc"), ("optimizer.momentum", -3),
       ("data.batch_size", "abc"), ("data.batch_size", 8.5), ("trainer.max_epochs", "abc"),
       ("trainer.limit_train_batches", 2.5), ("optimizer.nesterov", "yes"), ("loss.label_smoothing", 1.0),
       ("optimizer.lr", float("nan")), ("data.fraction", True), ("tta.translate", "abc")]


def test_bad_values_name_their_key(tmp_path: Path) -> None:
    cfg = compose_cfg("train", ["optimizer=sgd"], tmp_path / "run")
    check_knobs(cfg)  # the defaults pass
    for key, value in BAD:
        bad = copy.deepcopy(cfg)
        with open_dict(bad):
            OmegaConf.update(bad, key, value)
        with pytest.raises(UserError, match=rf"`{key}`.*got {repr(value)[:4]}"):
            check_knobs(bad)


def test_nulls_and_words_where_allowed(tmp_path: Path) -> None:
    check_knobs({"data": {"num_workers": "auto", "image_size": None},
                 "optimizer": {"fused": "auto", "betas": [0.9, 0.99]},
                 "trainer": {"max_epochs": None, "limit_val_batches": 0.5, "limit_train_batches": 3}, "seed": None})
    with pytest.raises(UserError, match="optimizer.betas"):
        check_knobs({"optimizer": {"betas": [0.9]}})
    with pytest.raises(UserError, match="data.batch_size"):
        check_knobs({"data": {"batch_size": None}})
    check_knobs(compose_cfg("eval", ["ckpt_path=x.ckpt"], tmp_path / "eval"))  # eval's nulls (tta) pass


@pytest.mark.slow
def test_cli_bad_value_exits_2_before_training(tmp_path: Path) -> None:
    proc = run_cli("train.py", ["optimizer.lr=abc", f"paths.log_dir={tmp_path}", "logger=none"], timeout=120)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "`optimizer.lr`" in proc.stderr and "Traceback" not in proc.stderr
    assert "integrity gate" not in proc.stdout + proc.stderr  # refused before any data was read


def test_run_record_says_which_key(tmp_path: Path) -> None:
    """What eval.py/train.py run (cli.py wraps every task): the record fails, naming the key."""
    from helpers import FAST
    from trueval.tasks.knobs import with_checked_knobs
    from trueval.tasks.runner import run_task
    from trueval.tasks.train import train

    cfg = compose_cfg("train", FAST + ["seed=abc", "logger=none"], tmp_path / "run")
    with pytest.raises(SystemExit) as exit_info:
        run_task(with_checked_knobs(train), cfg)
    assert exit_info.value.code == 2
    record = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert record["status"] == "failed" and "`seed`" in record["error"] and "'abc'" in record["error"]


@pytest.mark.parametrize("script", ["audit.py", "train.py"])
def test_a_required_key_left_unset_is_a_usage_error_naming_it(tmp_path: Path, script: str) -> None:
    """``data=yolo`` without ``data.yaml_path`` (``???`` in its config): audit.py called it a crash, "a
    bug in trueval" (exit 4), and train.py let omegaconf's MissingMandatoryValue reach Hydra (exit 1,
    which for the audit means a leak). Now a usage error, exit 2, naming the key and what to set."""
    args = ["data=yolo", f"paths.log_dir={tmp_path}"] + (["model=detector", "logger=none"] if script == "train.py" else [])
    proc = run_cli(script, args, timeout=120)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "`data.yaml_path`" in proc.stderr and "data.yaml_path=" in proc.stderr
    assert "Traceback" not in proc.stderr and "bug in trueval" not in proc.stderr


def test_required_keys_are_checked_where_the_run_reads_them(tmp_path: Path) -> None:
    cfg = compose_cfg("audit", ["data=yolo"], tmp_path / "run")
    with pytest.raises(UserError, match="data.yaml_path"):
        check_knobs(cfg)
    with open_dict(cfg):
        cfg.data.yaml_path = "any.yaml"
    check_knobs(cfg)  # set: nothing else is missing
