"""Every option of every config group, and every experiment, composes and resolves."""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from helpers import CONFIGS, compose_cfg

GROUPS = ["data", "model", "optimizer", "scheduler", "trainer", "callbacks", "logger", "paths", "extras",
          "debug", "experiment", "hparams_search", "data/augment", "data/integrity"]


def _options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONFIGS / group).glob("*.yaml"))


CASES = [(g, o) for g in GROUPS for o in _options(g)]


def test_every_required_group_has_options() -> None:
    required = {"data": {"digits", "mnist", "cifar10", "cifar100", "svhn", "imagefolder"},
                "optimizer": {"adam", "adamw", "sgd", "rmsprop"},
                "scheduler": {"none", "step", "exponential", "cosine", "onecycle"},
                "trainer": {"default", "cpu", "gpu"}, "logger": {"tensorboard", "csv"},
                "debug": {"fdr", "limit", "overfit", "profiler"}, "model": {"mlp", "cnn"}}
    for group, options in required.items():
        assert options <= set(_options(group)), (group, options - set(_options(group)))
    assert (CONFIGS / "local").is_dir() and (CONFIGS / "hparams_search").is_dir()


@pytest.mark.parametrize("group,option", CASES, ids=[f"{g}={o}" for g, o in CASES])
def test_compose_option(group: str, option: str, tmp_path: Path) -> None:
    overrides = [f"{group}={option}"]
    if group == "data" and option == "imagefolder":
        overrides.append(f"data.root={tmp_path}")
    if group == "data" and option == "yolo":
        overrides.append(f"data.yaml_path={tmp_path / 'data.yaml'}")
    cfg = compose_cfg("train", overrides, tmp_path / "run")
    # every interpolation resolves (hydra: ones included, since HydraConfig is set)
    container = OmegaConf.to_container(cfg, resolve=True)
    for key in ("data", "model", "optimizer", "scheduler", "trainer", "paths"):
        assert key in container
    assert container["optimizer"]["lr"] > 0
    assert isinstance(container["data"]["batch_size"], int)
    from trueval.tasks.knobs import check_knobs

    check_knobs(cfg)  # every option's values have the types and ranges the knobs table expects


@pytest.mark.parametrize("name", ["eval", "audit"])
def test_compose_other_entry_points(name: str, tmp_path: Path) -> None:
    overrides = ["ckpt_path=x.ckpt"] if name == "eval" else []
    cfg = compose_cfg(name, overrides, tmp_path / "run")
    OmegaConf.to_container(cfg, resolve=True)


def test_canonical_keys(tmp_path: Path) -> None:
    cfg = compose_cfg("train", ["optimizer=sgd", "optimizer.lr=0.05", "optimizer.weight_decay=0.01",
                                "data.batch_size=17", "trainer.max_epochs=2", "seed=0"], tmp_path / "run")
    assert cfg.optimizer.lr == 0.05 and cfg.optimizer.weight_decay == 0.01
    assert cfg.data.batch_size == 17 and cfg.trainer.max_epochs == 2 and cfg.seed == 0
    assert cfg.data.seed == 0  # the split follows the run's seed
