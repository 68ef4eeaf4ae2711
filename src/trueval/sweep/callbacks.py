"""Hydra callback that writes the sweep summary when a multirun ends.

Configured in ``configs/hydra/default.yaml`` under ``hydra.callbacks``. A summary that cannot be
written must not turn a finished sweep into a failure, so errors are logged, not raised.
"""

from __future__ import annotations

import logging
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

log = logging.getLogger(__name__)


class SweepSummaryCallback(Callback):
    """Write summary.csv/.md/.png into the sweep directory and print the leaderboard."""

    def __init__(self, plot: bool = True, print_table: bool = True) -> None:
        self.plot = plot
        self.print_table = print_table

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        from trueval.sweep.summary import summarize_sweep

        sweep_dir = str(config.hydra.sweep.dir)
        metric = OmegaConf.select(config, "optimized_metric", default=None)
        direction = OmegaConf.select(config, "hydra.sweeper.direction", default=None)
        if not isinstance(direction, str):  # multi-objective lists: let the summary decide
            direction = None
        try:
            summarize_sweep(sweep_dir, metric=metric, direction=direction, plot=self.plot,
                            print_table=self.print_table)
            log.info(f"Sweep summary written to {sweep_dir}/summary.csv|md|png")
        except Exception:  # noqa: BLE001 - see module docstring
            log.exception(f"Could not write the summary of {sweep_dir}; rebuild it with "
                          f"`python -m trueval.summary {sweep_dir}`")
