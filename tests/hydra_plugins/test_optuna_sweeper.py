"""The trueval_optuna sweeper: search space grammar, failed trials, resuming a study from its file."""

from __future__ import annotations

import csv
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
import yaml
from hydra.core.utils import JobReturn, JobStatus
from omegaconf import OmegaConf
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState

from trueval.sweep.optuna_sweeper import job_outcome, params_to_overrides, parse_search_space

APP = Path(__file__).parent / "optuna_app" / "app.py"
SPACE = {
    "optimizer.lr": FloatDistribution(1e-5, 1e-1, log=True),
    "data.batch_size": CategoricalDistribution([16, 32, 64, 128, 256]),
    "optimizer.name": CategoricalDistribution(["adam", "sgd"]),
}


def run_app(tmp_path: Path, *overrides: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, APP_OUT=str(tmp_path))
    result = subprocess.run([sys.executable, str(APP), "-m", *overrides], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def load_study(sweep: Path) -> optuna.Study:
    return optuna.load_study(study_name="trueval", storage=JournalStorage(JournalFileBackend(str(sweep / "optuna.journal"))))


def test_search_space_from_hydra_sweep_grammar() -> None:
    space, fixed = parse_search_space([
        "optimizer.lr=tag(log, interval(1e-5, 1e-1))", "data.batch_size=choice(16, 32, 64, 128, 256)",
        "optimizer=adam,sgd", "model.depth=range(2, 10, 2)", "optimizer.weight_decay=interval(0.0, 0.1)",
        "trainer.max_epochs=3", "+tags=[a]",
    ])
    assert space["optimizer.lr"] == FloatDistribution(1e-5, 1e-1, log=True)
    assert space["data.batch_size"] == CategoricalDistribution([16, 32, 64, 128, 256])
    assert space["optimizer"] == CategoricalDistribution(["adam", "sgd"])
    assert space["model.depth"] == IntDistribution(2, 8, step=2)
    assert space["optimizer.weight_decay"] == FloatDistribution(0.0, 0.1)
    assert fixed == ["trainer.max_epochs=3", "+tags=[a]"]


def test_float_values_are_rounded_for_readable_names() -> None:
    params = {"optimizer.lr": 0.00046568046379195655, "data.batch_size": 64, "optimizer": "adam", "tag": "a b"}
    assert params_to_overrides(params) == ["optimizer.lr=0.0004657", "data.batch_size=64", "optimizer=adam", "tag='a b'"]
    assert params_to_overrides(params, None)[0] == "optimizer.lr=0.00046568046379195655"


def test_command_line_overrides_replace_configured_params() -> None:
    space, fixed = parse_search_space(["optimizer.lr=tag(log, interval(1e-5, 1e-1))", "optimizer.lr=0.01"])
    assert space == {} and fixed == ["optimizer.lr=0.01"]


def _job(tmp_path: Path, value, status=JobStatus.COMPLETED, recorded: dict | None = None) -> JobReturn:  # noqa: ANN001
    result = JobReturn()
    result.hydra_cfg = OmegaConf.create({"hydra": {"runtime": {"output_dir": str(tmp_path)}}})
    result.status = status
    result.return_value = value
    if recorded is not None:
        (tmp_path / "metrics.json").write_text(json.dumps(recorded))
    return result


def test_failed_jobs_are_failures_not_crashes(tmp_path: Path) -> None:
    assert job_outcome(_job(tmp_path, 0.9), "val/acc_best") == (0.9, None)
    assert job_outcome(_job(tmp_path, math.nan), "val/acc_best")[0] is None
    value, error = job_outcome(_job(tmp_path, RuntimeError("CUDA out of memory"), JobStatus.FAILED), None)
    assert value is None and "CUDA out of memory" in error
    failed = {"status": "failed", "error": "NonFiniteLossError: at global step 3", "metrics": {}}
    assert job_outcome(_job(tmp_path, 0.5, recorded=failed), None) == (None, "NonFiniteLossError: at global step 3")
    ok = {"status": "ok", "metrics": {"val/acc_best": 0.7}}
    assert job_outcome(_job(tmp_path, None, recorded=ok), "val/acc_best") == (0.7, None)


@pytest.mark.slow
def test_search_runs_then_resumes_instead_of_starting_over(tmp_path: Path) -> None:
    sweep = tmp_path / "search"
    run_app(tmp_path, f"hydra.sweep.dir={sweep}")
    first = load_study(sweep)
    assert [t.state for t in first.trials] == [TrialState.COMPLETE] * 3
    first_params = [t.params for t in first.trials]
    assert len({p["optimizer.lr"] for p in first_params}) == 3

    # resume with a larger budget and a failure threshold: two more trials, numbered 3 and 4
    run_app(tmp_path, f"hydra.sweep.dir={sweep}", "hydra.sweeper.n_trials=5", "fail_above_lr=0.001")
    study = load_study(sweep)
    assert len(study.trials) == 5
    assert [t.params for t in study.trials[:3]] == first_params
    assert all(t.params["optimizer.lr"] not in {p["optimizer.lr"] for p in first_params} for t in study.trials[3:])
    jobs = sorted(p.name for p in sweep.iterdir() if p.is_dir())
    assert sorted(name.split("_", 1)[0] for name in jobs) == ["0", "1", "2", "3", "4"]
    for trial in study.trials[3:]:
        expected = TrialState.FAIL if float(f"{trial.params['optimizer.lr']:.4g}") > 0.001 else TrialState.COMPLETE
        assert trial.state == expected

    # the same budget again: nothing left to do
    run_app(tmp_path, f"hydra.sweep.dir={sweep}", "hydra.sweeper.n_trials=5")
    assert len(load_study(sweep).trials) == 5
    results = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert results["n_complete"] + results["n_failed"] == 5
    assert results["best_value"] == max(t.value for t in study.trials if t.state == TrialState.COMPLETE)
    with (sweep / "summary.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 5 and {"optimizer.lr", "data.batch_size", "optimizer.name", "status"} <= set(rows[0])
    assert float(rows[0]["val/acc_best"]) == pytest.approx(results["best_value"])


@pytest.mark.slow
def test_trial_left_running_by_a_killed_search_is_run_again(tmp_path: Path) -> None:
    sweep = tmp_path / "search"
    sweep.mkdir()
    storage = JournalStorage(JournalFileBackend(str(sweep / "optuna.journal")))
    study = optuna.create_study(study_name="trueval", storage=storage, direction="maximize")
    done = study.ask(SPACE)
    study.tell(done, 0.5)
    killed = study.ask(SPACE)  # never told: the search was killed while it ran

    run_app(tmp_path, f"hydra.sweep.dir={sweep}", "hydra.sweeper.n_trials=3")
    trials = load_study(sweep).trials
    assert trials[killed.number].state == TrialState.FAIL and trials[killed.number].user_attrs["interrupted"]
    retried = [t for t in trials if t.user_attrs.get("retry_of") == killed.number]
    assert len(retried) == 1 and retried[0].params == killed.params and retried[0].state == TrialState.COMPLETE
    assert sum(t.state == TrialState.COMPLETE for t in trials) == 3
