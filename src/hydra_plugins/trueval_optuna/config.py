"""The sweeper's config node, ``hydra/sweeper=trueval_optuna`` (used by configs/hparams_search/*.yaml)."""

from dataclasses import dataclass, field
from typing import Any, Dict, Optional

from hydra.core.config_store import ConfigStore


def _tpe() -> Dict[str, Any]:
    return {"_target_": "optuna.samplers.TPESampler", "_partial_": True, "seed": None, "n_startup_trials": 10,
            "multivariate": True, "constant_liar": True}


@dataclass
class TruevalOptunaSweeperConf:
    _target_: str = "hydra_plugins.trueval_optuna.optuna_sweeper.TruevalOptunaSweeper"
    # maximize | minimize; null: inferred from the metric name (loss-like -> minimize)
    direction: Optional[str] = None
    # the metric the task returns (read from the job's metrics.json when it returns nothing)
    metric: Optional[str] = None
    # finished trials the study should reach; a resumed study counts the trials it already has
    n_trials: int = 20
    # trials asked at once and launched together (with hydra/launcher=gpu_pool they run concurrently)
    n_jobs: int = 1
    # journal (<sweep dir>/optuna.journal) | sqlite (<sweep dir>/optuna.db) | null (memory) | an Optuna URL
    storage: Optional[str] = "journal"
    study_name: str = "trueval"
    sampler: Any = field(default_factory=_tpe)
    # search space in Hydra's sweep grammar: {optimizer.lr: "tag(log, interval(1e-5, 1e-1))", ...}
    params: Dict[str, Any] = field(default_factory=dict)
    # significant digits of the float values handed to trials (null: Optuna's exact value)
    float_digits: Optional[int] = 4


ConfigStore.instance().store(group="hydra/sweeper", name="trueval_optuna", node=TruevalOptunaSweeperConf, provider="trueval")
