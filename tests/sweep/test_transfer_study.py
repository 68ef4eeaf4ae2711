"""experiment=transfer_quick / transfer_cifar, and the callback configs of fine-tuning studies."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from helpers import compose_cfg, run_cli, run_inprocess
from trueval.tasks.train import train

VARIANTS = ["pretrain", "scratch", "linear_probe", "finetune_last_stage", "finetune_all", "finetune_all_layer_decay"]
BASELINES = ["logreg_pixels", "svm_pixels", "logreg_features", "svm_features"]


@pytest.mark.parametrize("variant", ["pretrain", "linear_probe", "finetune_last_stage", "finetune_all_layer_decay"])
def test_cifar_variants_compose(tmp_path: Path, variant: str) -> None:
    cfg = compose_cfg("train", ["experiment=transfer_cifar", f"+experiment/transfer_variants={variant}",
                                "data.root=/nowhere"], tmp_path / "job")
    OmegaConf.resolve(cfg)
    assert cfg.transfer.variant == variant and cfg.model.depth == 18
    if variant == "pretrain":
        assert list(cfg.data.classes) == ["airplane", "automobile", "ship", "truck", "bird"]
        assert cfg.callbacks.model_checkpoint.dirpath.endswith("/pretrain")
    else:
        assert list(cfg.data.classes) == ["cat", "deer", "dog", "frog", "horse"] and cfg.data.fraction == 0.1
    if variant in ("scratch", "pretrain"):
        assert cfg.model.pretrained is None
    else:
        assert cfg.model.pretrained.endswith("/pretrain/last.ckpt")
    expected_freeze = {"linear_probe": "all_but_head", "finetune_last_stage": ["stem", "stage1", "stage2", "stage3"]}
    freeze = cfg.model.freeze if isinstance(cfg.model.freeze, str) else list(cfg.model.freeze)
    assert freeze == expected_freeze.get(variant, "none")
    assert cfg.optimizer.layer_decay == (0.5 if variant == "finetune_all_layer_decay" else None)


def test_callback_presets_by_name(tmp_path: Path) -> None:
    stopping = compose_cfg("train", ["callbacks=early_stopping"], tmp_path / "a").callbacks
    assert stopping.early_stopping.patience == 5 and "model_checkpoint" in stopping
    ema = compose_cfg("train", ["callbacks=ema"], tmp_path / "b").callbacks
    assert ema.ema._target_ == "pytorch_lightning.callbacks.EMAWeightAveraging" and "model_checkpoint" in ema


@pytest.mark.slow
def test_ema_and_mixup_train_end_to_end(tmp_path: Path) -> None:
    _, record = run_inprocess(train, "train", ["callbacks=ema", "callbacks.ema.decay=0.9", "mixup.mixup_alpha=0.2",
                                               "mixup.cutmix_alpha=1.0",
                                               "trainer.max_epochs=2", "logger=none"], tmp_path / "run")
    assert record["status"] == "ok" and record["metrics"]["test/acc"] > 0.5, record


@pytest.mark.slow
def test_quick_transfer_study_end_to_end(tmp_path: Path) -> None:
    """`python train.py experiment=transfer_quick` writes one row per variant and baseline."""
    result = run_cli("train.py", ["experiment=transfer_quick", f"paths.log_dir={tmp_path / 'logs'}",
                                  f"paths.cache_dir={tmp_path / 'cache'}", "extras.print_config=false",
                                  "extras.print_metrics=false"], timeout=900, env={"OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    (sweep,) = [p.parent for p in (tmp_path / "logs").rglob("transfer_study.csv")]
    assert (sweep / "transfer_study.png").read_bytes()[:4] == b"\x89PNG"
    assert "| finetune_all |" in (sweep / "transfer_study.md").read_text()
    rows = {r["variant"]: r for r in csv.DictReader((sweep / "transfer_study.csv").open())}
    assert set(rows) == set(VARIANTS + BASELINES), rows
    assert all(r["status"] == "ok" for r in rows.values()), rows
    acc = {name: float(r["test_acc"]) for name, r in rows.items()}
    assert acc["pretrain"] > 0.9  # digits 0-4, the source task
    # every target variant learns digits 5-9 far above chance (0.2) from about 30 of their images
    assert min(acc[v] for v in VARIANTS[1:] + BASELINES) > 0.4, acc
    # and starting from the source network beats starting from random weights (measured: +13 points)
    assert acc["finetune_all"] > acc["scratch"] + 0.05, acc
