"""What Hydra knows about the running job: its overrides, its config-group choices, its sweep.

Read in one place for the console header, the TensorBoard HParams entry and the job names.
Outside a Hydra app (a test composing configs by hand) everything is empty.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from trueval.utils.resolvers import sweep_plan


@dataclass
class JobView:
    overrides: list[str] = field(default_factory=list)
    choices: dict[str, str] = field(default_factory=dict)
    #: keys that vary within the sweep, in the order the user wrote them (empty for a single run)
    varying: list[str] = field(default_factory=list)
    #: every job's overrides when the sweep is Hydra's grid
    grid: list[list[str]] | None = None


def job_view() -> JobView:
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        hc = HydraConfig.get()
    except (ImportError, ValueError):
        return JobView()
    overrides = [str(o) for o in hc.overrides.task]
    choices = {str(k): str(v) for k, v in (hc.runtime.choices or {}).items() if v is not None}
    varying, grid = sweep_plan(hc.sweep.dir) if hc.mode == RunMode.MULTIRUN else ([], None)
    return JobView(overrides, choices, varying, grid)
