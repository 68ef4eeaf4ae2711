"""The classifier path end to end on digits: accuracy, checkpoints, eval, seeds, run directory."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers import load_ckpt, run_inprocess
from trueval.tasks.evaluate import evaluate
from trueval.tasks.train import train


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("digits") / "run"
    _, metrics = run_inprocess(train, "train", ["trainer.max_epochs=6"], out)
    return out, metrics


def test_default_run_learns_digits(digits_run: tuple[Path, dict]) -> None:
    out, record = digits_run
    assert record["status"] == "ok" and record["error"] is None
    m = record["metrics"]
    assert m["test/acc"] >= 0.90, m
    splits = json.loads((out / "splits.json").read_text())
    assert m["test/samples"] == splits["splits"]["test"]["count"]  # every test sample scored once
    assert 0 <= m["val/acc_best"] <= 1 and m["val/acc_best"] >= m["val/acc"] - 1e-9
    for key in ("train/loss", "val/loss", "test/f1_macro", "test/precision_macro", "test/recall_macro",
                "model/params"):
        assert key in m, key
    assert record["seed"] == 42 and isinstance(record["overrides"], list) and record["wall_seconds"] > 0
    assert "torch" in record["versions"]


def test_run_directory_contents(digits_run: tuple[Path, dict]) -> None:
    out, record = digits_run
    for name in ("config.yaml", "config_tree.log", "metrics.json", "splits.json", "leak_report.json",
                 "confusion_matrix.png"):
        assert (out / name).is_file(), name
    assert list((out / "checkpoints").glob("epoch_*.ckpt")) and (out / "checkpoints" / "last.ckpt").is_file()
    assert list((out / "tensorboard").glob("events.out.tfevents.*"))
    splits = json.loads((out / "splits.json").read_text())
    sizes = {s: splits["splits"][s]["count"] for s in ("train", "val", "test")}
    assert sum(sizes.values()) == 1797 and sizes["test"] > 200
    # no sample is in two splits
    ids = [set(splits["splits"][s]["ids"]) for s in ("train", "val", "test")]
    assert not (ids[0] & ids[1]) and not (ids[0] & ids[2]) and not (ids[1] & ids[2])
    history = (out.parent / "logs" / "history.jsonl").read_text().strip().splitlines()
    assert json.loads(history[-1])["run_dir"] == str(out)


def test_checkpoint_loads_weights_only(digits_run: tuple[Path, dict]) -> None:
    out, record = digits_run
    ckpt = load_ckpt(record["best_checkpoint"])
    assert ckpt["hyper_parameters"]["cfg"]["model"]["_target_"].endswith("MLP")
    assert ckpt["trueval"]["train_digest"]
    assert any(k.startswith("net.") for k in ckpt["state_dict"])


def test_eval_reproduces_test_metrics(digits_run: tuple[Path, dict], tmp_path: Path) -> None:
    out, record = digits_run
    _, ev = run_inprocess(evaluate, "eval", [f"ckpt_path={record['best_checkpoint']}"], tmp_path / "eval")
    assert ev["status"] == "ok"
    for key, value in record["metrics"].items():
        if key.startswith("test/"):
            assert ev["metrics"][key] == pytest.approx(value, abs=1e-4), key


def test_same_seed_same_metrics(tmp_path: Path) -> None:
    args = ["trainer.max_epochs=2", "seed=0", "callbacks=none", "logger=none"]
    _, a = run_inprocess(train, "train", args, tmp_path / "a")
    _, b = run_inprocess(train, "train", args, tmp_path / "b")
    assert a["seed"] == 0
    assert a["metrics"]["test/acc"] == b["metrics"]["test/acc"]
    assert a["metrics"]["train/loss"] == b["metrics"]["train/loss"]
    _, c = run_inprocess(train, "train", ["trainer.max_epochs=2", "seed=1", "callbacks=none", "logger=none"],
                         tmp_path / "c")
    assert c["metrics"]["train/loss"] != a["metrics"]["train/loss"]


@pytest.mark.parametrize("optimizer,scheduler,lr", [("sgd", "onecycle", 0.2), ("rmsprop", "step", 1e-3)])
def test_other_optimizers_train_end_to_end(optimizer: str, scheduler: str, lr: float, tmp_path: Path) -> None:
    _, m = run_inprocess(train, "train", [f"optimizer={optimizer}", f"scheduler={scheduler}", f"optimizer.lr={lr}",
                                          "trainer.max_epochs=3",
                                          "callbacks=none", "logger=none", "test=false"], tmp_path / "r")
    assert m["status"] == "ok", m["error"]
    assert m["metrics"]["train/loss"] < 2.0


def test_label_smoothing_class_weights_tta(tmp_path: Path) -> None:
    _, m = run_inprocess(train, "train", ["loss.label_smoothing=0.1", "loss.class_weights=balanced", "tta.hflip=true",
                                          "trainer.max_epochs=2", "callbacks=none", "logger=csv"], tmp_path / "r")
    assert m["status"] == "ok", m["error"]
    assert (tmp_path / "r" / "csv" / "metrics.csv").is_file()


def test_fraction_takes_a_stratified_subset(tmp_path: Path) -> None:
    _, m = run_inprocess(train, "train", ["data.fraction=0.25", "trainer.max_epochs=1", "callbacks=none",
                                          "logger=none"], tmp_path / "r")
    splits = json.loads((tmp_path / "r" / "splits.json").read_text())["splits"]
    full = round(1797 * 0.7)
    assert abs(splits["train"]["count"] - full * 0.25) <= 12
    assert len(set(splits["train"]["targets"])) == 10


def test_grouped_steps_through_train_py(tmp_path: Path) -> None:
    """data.steps_per_call=4 with the GPU-resident loader (on CPU tensors) and Trainer-side clipping."""
    _, record = run_inprocess(train, "train", ["trainer.max_epochs=3", "data.loader=gpu", "data.steps_per_call=4",
                                               "+trainer.gradient_clip_val=1.0", "scheduler=onecycle"],
                              tmp_path / "run")
    assert record["status"] == "ok", record["error"]
    m = record["metrics"]
    assert m["test/acc"] >= 0.85 and m["train/loss"] > 0
    # 1,257 training digits at batch 64 = 20 optimizer steps per epoch, in 5 calls of 4
    ckpt = load_ckpt(tmp_path / "run" / "checkpoints" / "last.ckpt")
    assert ckpt["global_step"] == 60


def test_grouped_steps_refuse_gradient_accumulation(tmp_path: Path) -> None:
    from helpers import compose_cfg
    from trueval.tasks.runner import run_task

    cfg = compose_cfg("train", ["trainer.accelerator=cpu", "data.steps_per_call=2",
                                "+trainer.accumulate_grad_batches=2", "trainer.max_epochs=1"], tmp_path / "run")
    with pytest.raises(SystemExit) as exc:
        run_task(train, cfg)
    assert exc.value.code == 2
    record = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert record["status"] == "failed" and "data.steps_per_call" in record["error"]
