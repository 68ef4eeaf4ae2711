"""What every study summary of a multirun shares (depth study, He et al. 2015, leakage demo,
transfer study): a Hydra callback that writes it when the sweep ends, where a failed summary
never hides the trials' results, and the ``python -m <module> <multirun_dir>`` that rebuilds it."""

from __future__ import annotations

import importlib
import logging
import math
import sys
from pathlib import Path
from typing import Any, Callable, TypeVar

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

log = logging.getLogger(__name__)

Rows = TypeVar("Rows")


def table_cell(value: Any, float_format: str, missing: str = "") -> str:
    """One cell of a study's Markdown table: ``missing`` for no value, yes/no for flags, floats in
    ``float_format`` (non-finite ones as they are)."""
    if value is None:
        return missing
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return format(value, float_format) if math.isfinite(value) else str(value)
    return str(value)


class StudyCallback(Callback):
    """Hydra callback: ``<module>.summarize(<sweep dir>)`` when the multirun ends. Subclasses set
    ``module`` (whose ``summarize`` writes the study; also the rerun hint) and ``what``."""

    module: str = ""
    what: str = "summary"

    def summarize(self, sweep_dir: Path) -> Any:
        return importlib.import_module(self.module).summarize(sweep_dir)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(str(config.hydra.sweep.dir))
        try:
            self.summarize(sweep_dir)
        except Exception:  # the trials' results are on disk; a failed summary must not hide them
            log.exception("could not write the %s in %s; rerun: python -m %s %s", self.what, sweep_dir, self.module,
                          sweep_dir)


def study_main(module: str, summarize: Callable[[str], Rows], render: Callable[[Rows], str],
               argv: list[str] | None = None) -> int:
    """``python -m <module> <multirun_dir>``: rebuild the study's files and print its table."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or not Path(args[0]).is_dir():
        print(f"usage: python -m {module} <multirun_dir>", file=sys.stderr)
        return 2
    print(render(summarize(args[0])), end="")
    return 0
