"""The launcher, sweeper and trainer configs of configs/ compose with train.yaml and instantiate."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.utils import instantiate
from omegaconf import OmegaConf

from trueval.utils.resolvers import register_resolvers

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


@pytest.fixture
def train_cfg():  # noqa: ANN201
    register_resolvers()
    GlobalHydra.instance().clear()
    with initialize_config_dir(str(CONFIGS), version_base="1.3"):
        yield lambda *overrides: compose("train", overrides=list(overrides), return_hydra_config=True)
    GlobalHydra.instance().clear()


def test_slurm_launcher_composes_with_resources_as_keys(train_cfg) -> None:
    cfg = train_cfg("hydra/launcher=slurm", "hydra.launcher.partition=gpu", "hydra.launcher.gpus_per_node=2",
                    "hydra.sweep.dir=/tmp/x")
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("submitit_launcher.SlurmLauncher")
    assert (launcher.partition, launcher.gpus_per_node, launcher.timeout_min) == ("gpu", 2, 240)
    assert OmegaConf.select(cfg, "hydra.launcher.submitit_folder") == "/tmp/x/.submitit/%j"
    built = instantiate(launcher)
    assert type(built).__name__ == "SlurmLauncher" and built.params["gpus_per_node"] == 2


def test_gpu_pool_launcher_composes(train_cfg) -> None:
    cfg = train_cfg("hydra/launcher=gpu_pool", "hydra.launcher.jobs_per_gpu=4")
    built = instantiate(cfg.hydra.launcher)
    assert type(built).__name__ == "GpuPoolLauncher" and built.jobs_per_gpu == 4 and built.gpus is None


def test_optuna_search_config_declares_space_metric_and_direction(train_cfg) -> None:
    cfg = train_cfg("hparams_search=optuna_lr_bs")
    sweeper = cfg.hydra.sweeper
    assert sweeper._target_ == "hydra_plugins.trueval_optuna.optuna_sweeper.TruevalOptunaSweeper"
    assert (sweeper.direction, sweeper.metric, cfg.optimized_metric) == ("maximize", "val/acc_best", "val/acc_best")
    assert set(sweeper.params) == {"optimizer", "optimizer.lr", "data.batch_size", "optimizer.weight_decay"}
    assert sweeper.sampler.seed == cfg.seed and sweeper.storage == "journal"
    built = instantiate(sweeper)
    assert built._impl.direction == "maximize" and built._impl.n_trials == 20


def test_ddp_trainer_config_uses_the_hydra_aware_strategy(train_cfg) -> None:
    cfg = train_cfg("trainer=ddp")
    assert cfg.trainer.strategy._target_ == "trueval.sweep.ddp.HydraDDPStrategy"
    assert cfg.trainer.devices == -1 and cfg.trainer.use_distributed_sampler is True


def test_sweeper_is_discovered_by_hydra() -> None:
    from hydra.core.plugins import Plugins
    from hydra.plugins.sweeper import Sweeper

    names = {cls.__name__ for cls in Plugins.instance().discover(Sweeper)}
    assert "TruevalOptunaSweeper" in names
