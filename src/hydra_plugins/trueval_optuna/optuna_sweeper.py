"""The Hydra Sweeper class; the logic lives in trueval.sweep.optuna_sweeper (imported lazily so
that Hydra's plugin scan at every start-up does not import Optuna)."""

from typing import Any, List, Optional

from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig

from hydra_plugins.trueval_optuna import config as _config  # noqa: F401  registers the config node


class TruevalOptunaSweeper(Sweeper):
    def __init__(self, **kwargs: Any) -> None:
        from trueval.sweep.optuna_sweeper import TruevalOptunaSweeperImpl

        self._impl = TruevalOptunaSweeperImpl(**kwargs)

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self._impl.setup(hydra_context=hydra_context, task_function=task_function, config=config)

    def sweep(self, arguments: List[str]) -> Optional[Any]:
        return self._impl.sweep(arguments)
