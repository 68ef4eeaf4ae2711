"""An Optuna (TPE) search as a Hydra sweeper, on current Optuna (ask/tell), resumable from a file.

Why not hydra-optuna-sweeper 1.3: it pins ``optuna<3``; Optuna 2.10's SQL storage fails on
SQLAlchemy 2 (so its studies cannot persist), and the plugin neither resumes (``n_trials`` counts
new trials, job numbers restart at 0 so job directories collide) nor survives a failed trial
unless ``max_failure_rate`` is raised. This sweeper:

- keeps the study in ``<sweep dir>/optuna.journal`` (or a SQLite file / any Optuna URL), so
  running the same command with ``hydra.sweep.dir=<that dir>`` resumes it: ``n_trials`` is the
  total the study should reach, trials left running by a killed search are re-run first, and the
  sampler is re-seeded past the trials already drawn so a resumed search does not repeat them;
- records a trial whose job raised, returned NaN or wrote ``metrics.json`` status ``failed`` as
  a FAIL and goes on;
- passes floats rounded to ``float_digits`` significant digits (readable directory names);
- asks ``n_jobs`` trials at a time and hands them to the launcher together (with
  ``hydra/launcher=gpu_pool`` they run concurrently); job numbers are Optuna trial numbers.

The search space uses Hydra's sweep grammar, in ``hydra.sweeper.params`` or on the command line:
``optimizer.lr: tag(log, interval(1e-5, 1e-1))``, ``data.batch_size: choice(16, 32, 64, 128, 256)``.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import warnings
from pathlib import Path
from typing import Any, Mapping, Sequence

import optuna
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, Override, RangeSweep, Transformer
from hydra.core.plugins import Plugins
from hydra.core.utils import JobReturn, JobStatus
from hydra.types import HydraContext, TaskFunction
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState

from trueval.core.errors import UserError

log = logging.getLogger(__name__)

JOURNAL_FILE, SQLITE_FILE = "optuna.journal", "optuna.db"
RESULTS_FILE = "optimization_results.yaml"
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
INTERRUPTED_ATTR = "interrupted"


# ------------------------------------------------------------------------------------ search space
def distribution_from_override(override: Override) -> BaseDistribution | None:
    """The Optuna distribution of a sweep override; None for a plain (fixed) value."""
    if not override.is_sweep_override():
        return None
    value = override.value()
    if override.is_choice_sweep() or (override.is_range_sweep() and value.shuffle):
        return CategoricalDistribution(list(override.sweep_iterator(transformer=Transformer.encode)))
    if override.is_range_sweep():
        assert isinstance(value, RangeSweep)
        if any(isinstance(v, float) for v in (value.start, value.stop, value.step)):
            # range() excludes its stop, like Python's; Optuna's high is inclusive
            return FloatDistribution(value.start, value.stop - value.step, step=value.step)
        return IntDistribution(int(value.start), int(value.stop) - int(value.step), step=int(value.step))
    if override.is_interval_sweep():
        assert isinstance(value, IntervalSweep)
        log_scale = "log" in value.tags
        if isinstance(value.start, int) and isinstance(value.end, int):
            return IntDistribution(value.start, value.end, log=log_scale)
        return FloatDistribution(float(value.start), float(value.end), log=log_scale)
    raise UserError(f"{override.input_line!r}: unsupported sweep for the Optuna sweeper", key="hydra.sweeper.params")


def parse_search_space(arguments: Sequence[str]) -> tuple[dict[str, BaseDistribution], list[str]]:
    """Split overrides into the search space (key -> distribution) and fixed overrides."""
    space: dict[str, BaseDistribution] = {}
    fixed: dict[str, str] = {}
    for override in OverridesParser.create().parse_overrides(list(arguments)):
        key = override.get_key_element()
        distribution = distribution_from_override(override)
        space.pop(key, None)
        fixed.pop(key, None)
        if distribution is None:
            fixed[key] = override.input_line
        else:
            space[key] = distribution
    return space, list(fixed.values())


def params_to_overrides(params: Mapping[str, Any], float_digits: int | None = 4) -> list[str]:
    """``key=value`` overrides; floats rounded to ``float_digits`` significant digits, so that job
    directories and TensorBoard runs read ``optimizer.lr=0.0004657``, not 20 digits."""
    overrides = []
    for key, value in params.items():
        if isinstance(value, float) and float_digits:
            value = float(f"{value:.{float_digits}g}")
        overrides.append(f"{key}={value!r}" if isinstance(value, str) and _needs_quotes(value) else f"{key}={value}")
    return overrides


def _needs_quotes(value: str) -> bool:
    return any(ch in value for ch in " ,()[]{}='\"")


# ------------------------------------------------------------------------------------------ study
def storage_for(storage: str | None, sweep_dir: Path) -> Any:
    """``journal``/``sqlite`` -> a file in the sweep dir; a URL as is; None -> in memory."""
    if storage is None or str(storage).lower() in {"none", "null", "memory"}:
        return None
    if storage == "journal":
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend

        return JournalStorage(JournalFileBackend(str(sweep_dir / JOURNAL_FILE)))
    if storage == "sqlite":
        return f"sqlite:///{(sweep_dir / SQLITE_FILE).resolve()}"
    if "://" in storage:
        return storage
    raise UserError(f"must be journal, sqlite, null or an Optuna storage URL, got {storage!r}", key="hydra.sweeper.storage")


def requeue_interrupted(study: optuna.Study) -> int:
    """Fail the trials a killed search left RUNNING and enqueue their parameters again."""
    stale = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    for trial in stale:
        optuna.trial.Trial(study, trial._trial_id).set_user_attr(INTERRUPTED_ATTR, True)
        study.tell(trial.number, state=TrialState.FAIL)
        study.enqueue_trial(trial.params, user_attrs={"retry_of": trial.number})
        log.info(f"Trial {trial.number} was interrupted; its parameters are queued again")
    return len(stale)


def count_finished(study: optuna.Study) -> int:
    return sum(1 for t in study.get_trials(deepcopy=False, states=FINISHED) if not t.user_attrs.get(INTERRUPTED_ATTR))


def job_outcome(result: JobReturn, metric: str | None) -> tuple[float | None, str | None]:
    """(objective value, error) of one job; value None means the trial failed."""
    job_dir = OmegaConf.select(result.hydra_cfg, "hydra.runtime.output_dir", default=None) if result.hydra_cfg else None
    recorded: dict[str, Any] = {}
    if job_dir and (Path(job_dir) / "metrics.json").is_file():
        try:
            recorded = json.loads((Path(job_dir) / "metrics.json").read_text())
        except (OSError, ValueError):
            recorded = {}
    if result.status != JobStatus.COMPLETED:
        error = result._return_value
        return None, f"{type(error).__name__}: {error}"
    if recorded.get("status") == "failed":
        return None, str(recorded.get("error") or "metrics.json status failed")
    value = result.return_value
    if value is None and metric:
        value = (recorded.get("metrics") or {}).get(metric)
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None, f"the task returned {value!r}, not a number"
    if not math.isfinite(number):
        return None, f"non-finite objective {number}"
    return number, None


class TruevalOptunaSweeperImpl:
    """The sweeper logic; ``hydra_plugins.trueval_optuna`` exposes it to Hydra."""

    def __init__(
        self,
        direction: str | None = None,
        metric: str | None = None,
        n_trials: int = 20,
        n_jobs: int = 1,
        storage: str | None = "journal",
        study_name: str = "trueval",
        sampler: Any = None,
        params: Mapping[str, Any] | None = None,
        float_digits: int | None = 4,
    ) -> None:
        self.metric = metric
        self.float_digits = float_digits
        if direction is None:
            from trueval.sweep.summary import infer_direction

            direction = infer_direction(metric or "val/acc_best")
        if direction not in ("maximize", "minimize"):
            raise UserError(f"must be maximize or minimize, got {direction!r}", key="hydra.sweeper.direction")
        self.direction = direction
        self.n_trials = int(n_trials)
        self.n_jobs = max(1, int(n_jobs))
        self.storage = storage
        self.study_name = study_name
        self.sampler_cfg = sampler
        self.params = dict(params or {})
        self.config: DictConfig | None = None
        self.launcher: Any = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config = config
        self.launcher = Plugins.instance().instantiate_launcher(
            config=config, hydra_context=hydra_context, task_function=task_function
        )

    def _sampler(self, offset: int) -> optuna.samplers.BaseSampler:
        """The configured sampler, its seed moved past the ``offset`` trials already in the study.

        Hydra hands the sampler over as a partial (``_partial_: true``) so the seed can be set
        here: re-creating a seeded sampler unchanged would draw the first trials' values again.
        """
        factory = self.sampler_cfg
        if factory is None:
            return optuna.samplers.TPESampler()
        if isinstance(factory, optuna.samplers.BaseSampler):
            return factory
        if OmegaConf.is_config(factory) or isinstance(factory, Mapping):
            factory = instantiate(factory, _partial_=True)
        seed = factory.keywords.get("seed") if isinstance(factory, functools.partial) else None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return factory(seed=int(seed) + offset) if seed is not None else factory()

    def sweep(self, arguments: list[str]) -> list[Sequence[JobReturn]]:
        assert self.config is not None and self.launcher is not None
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
        space, fixed = parse_search_space([f"{k}={v}" for k, v in self.params.items()] + list(arguments))
        if not space:
            raise UserError("the Optuna sweeper has no search space: set it here or pass sweep overrides such as "
                            "'optimizer.lr=tag(log,interval(1e-5,1e-1))'", key="hydra.sweeper.params")

        study = optuna.create_study(storage=storage_for(self.storage, sweep_dir), study_name=self.study_name,
                                    direction=self.direction, load_if_exists=True)
        requeue_interrupted(study)
        done = count_finished(study)
        study.sampler = self._sampler(len(study.trials))
        to_go = max(0, self.n_trials - done)
        log.info(f"Optuna study '{self.study_name}' ({self.direction} {self.metric or 'the return value'}) in "
                 f"{sweep_dir}: {done} trials finished, {to_go} to go, {self.n_jobs} at a time")
        returns: list[Sequence[JobReturn]] = []
        while to_go > 0:
            batch = [study.ask(space) for _ in range(min(self.n_jobs, to_go))]
            overrides = [params_to_overrides(trial.params, self.float_digits) + fixed for trial in batch]
            results = self.launcher.launch(overrides, initial_job_idx=batch[0].number)
            for trial, result in zip(batch, results):
                value, error = job_outcome(result, self.metric)
                if value is None:
                    trial.set_user_attr("error", error)
                    study.tell(trial, state=TrialState.FAIL)
                    log.warning(f"Trial {trial.number} failed: {error}")
                else:
                    study.tell(trial, value)
            returns.append(results)
            to_go -= len(batch)
        self._write_results(study, sweep_dir)
        return returns

    def _write_results(self, study: optuna.Study, sweep_dir: Path) -> None:
        states = [t.state for t in study.trials if not t.user_attrs.get(INTERRUPTED_ATTR)]
        results: dict[str, Any] = {
            "name": "optuna", "study_name": self.study_name, "direction": self.direction, "metric": self.metric,
            "n_complete": states.count(TrialState.COMPLETE), "n_failed": states.count(TrialState.FAIL),
        }
        try:
            best = study.best_trial
            results.update(best_trial=best.number, best_value=best.value, best_params=best.params)
            log.info(f"Best trial {best.number}: {self.metric or 'value'}={best.value} with {best.params}")
        except ValueError:
            log.warning("No trial of the study finished successfully")
        OmegaConf.save(OmegaConf.create(results), sweep_dir / RESULTS_FILE)
