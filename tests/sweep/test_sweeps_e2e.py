"""End-to-end sweeps through train.py on digits: grid, failure isolation, Optuna resume, README commands."""

from __future__ import annotations

import csv
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# small and quick: every sweep of these tests trains for one epoch on the bundled digits, on the CPU
QUICK = ["data=digits", "trainer=cpu", "trainer.max_epochs=1", "data.num_workers=0"]


def train(tmp_path: Path, *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    command = [sys.executable, str(ROOT / "train.py"), *args]
    env = dict(os.environ, PROJECT_ROOT=str(ROOT))
    env.pop("TRUEVAL_UID", None)
    return subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=timeout)


def summary_rows(sweep: Path) -> list[dict[str, str]]:
    with (sweep / "summary.csv").open() as handle:
        return list(csv.DictReader(handle))


@pytest.mark.slow
def test_grid_of_four_trials_gives_a_four_row_summary(tmp_path: Path) -> None:
    sweep = tmp_path / "grid"
    result = train(tmp_path, "-m", "optimizer=adam,sgd", "optimizer.lr=1e-3,1e-2", *QUICK,
                   f"paths.log_dir={tmp_path / 'logs'}", f"hydra.sweep.dir={sweep}")
    assert result.returncode == 0, result.stderr[-3000:]
    rows = summary_rows(sweep)
    assert len(rows) == 4
    assert {(r["optimizer"], float(r["optimizer.lr"])) for r in rows} == {
        ("adam", 1e-3), ("adam", 1e-2), ("sgd", 1e-3), ("sgd", 1e-2)}
    assert all(r["status"] == "ok" for r in rows)
    values = [float(r["val/acc_best"]) for r in rows]
    assert values == sorted(values, reverse=True)
    assert (sweep / "summary.md").exists() and (sweep / "summary.png").stat().st_size > 1000
    # readable job directories (TensorBoard's run names), one per trial
    names = sorted(p.name for p in sweep.iterdir() if p.is_dir() and not p.name.startswith("."))
    assert len(names) == 4 and all("optimizer=" in n and "optimizer.lr=" in n for n in names)
    assert "Sweep leaderboard" in result.stdout


@pytest.mark.slow
def test_non_finite_trial_is_marked_failed_and_the_others_finish(tmp_path: Path) -> None:
    sweep = tmp_path / "grid"
    result = train(tmp_path, "-m", "optimizer=sgd", "optimizer.lr=1e-2,1e6", *QUICK, "logger=none",
                   f"paths.log_dir={tmp_path / 'logs'}", f"hydra.sweep.dir={sweep}")
    assert result.returncode == 0, result.stderr[-3000:]
    rows = {float(r["optimizer.lr"]): r for r in summary_rows(sweep)}
    assert rows[1e-2]["status"] == "ok" and float(rows[1e-2]["val/acc_best"]) > 0.5
    assert rows[1e6]["status"] == "failed"
    assert "NonFiniteLossError" in rows[1e6]["error"] and "global step" in rows[1e6]["error"]
    failed_dir = next(p for p in sweep.iterdir() if "1000000" in p.name or "1e6" in p.name or "1e+06" in p.name)
    metrics = json.loads((failed_dir / "metrics.json").read_text())
    assert metrics["status"] == "failed" and "global step" in metrics["error"]
    assert "Traceback" in (failed_dir / "train.log").read_text()


@pytest.mark.slow
def test_optuna_search_runs_and_a_second_invocation_resumes(tmp_path: Path) -> None:
    """README's Optuna command (shortened as test_readme_sweep_commands_run_as_written does), then again."""
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    command = next(c for c in readme_sweep_commands() if "hparams_search=" in c)
    args = [*shortened(command, tmp_path, 0), "hydra.sweeper.n_trials=3"]
    sweep = tmp_path / "sweep0"
    first = train(tmp_path, *args)
    assert first.returncode == 0, (command, first.stderr[-3000:])
    assert all(r["status"] == "ok" for r in summary_rows(sweep)), summary_rows(sweep)

    def trials() -> list:
        storage = JournalStorage(JournalFileBackend(str(sweep / "optuna.journal")))
        return optuna.load_study(study_name="train", storage=storage).trials

    assert len(trials()) == 3
    assert len(summary_rows(sweep)) == 3
    assert {"optimizer", "optimizer.lr", "data.batch_size", "optimizer.weight_decay"} <= set(summary_rows(sweep)[0])
    before = {p.name for p in sweep.iterdir() if p.is_dir()}

    again = train(tmp_path, *args)  # same command, same directory: nothing left to do
    assert again.returncode == 0, again.stderr[-3000:]
    assert len(trials()) == 3 and {p.name for p in sweep.iterdir() if p.is_dir()} == before

    more = train(tmp_path, *args, "hydra.sweeper.n_trials=4")  # a larger budget: one more trial
    assert more.returncode == 0, more.stderr[-3000:]
    assert [t.number for t in trials()] == [0, 1, 2, 3]
    assert len(summary_rows(sweep)) == 4


def readme_sweep_commands() -> list[str]:
    """The ``python train.py -m ...`` commands of README.md (backslash continuations joined)."""
    text = (ROOT / "README.md").read_text().replace("\\\n", " ")
    commands = []
    for line in text.splitlines():
        found = re.search(r"python train\.py -m .*", line)
        if found:
            commands.append(found.group(0).split("#")[0].strip().rstrip("`"))
    return commands


def _is_list_sweep(arg: str) -> bool:
    value = arg.partition("=")[2]
    return "," in value and not value.startswith(("[", "choice", "range", "interval", "tag", "'", '"'))


def shortened(command: str, tmp_path: Path, index: int) -> list[str]:
    """The README command with overrides appended that make it quick (later overrides win)."""
    args = shlex.split(command)[2:]  # drop "python train.py"
    extra = [*QUICK, "logger=none", f"paths.log_dir={tmp_path / 'logs'}", f"hydra.sweep.dir={tmp_path / f'sweep{index}'}"]
    for arg in args:
        if _is_list_sweep(arg):
            key, _, value = arg.partition("=")
            extra.append(f"{key}={value.split(',')[0]}")  # one value of each list: still a sweep
    if "hparams_search=" in command:
        extra += ["hydra.sweeper.n_trials=2", "hydra.sweeper.n_jobs=1"]
    if "hydra/launcher=gpu_pool" in command:
        extra += ["hydra.launcher.gpus=[]", "hydra.launcher.jobs_per_gpu=2"]
    return [a for a in args if not a.startswith("hydra.sweep.dir=")] + extra


@pytest.mark.slow
def test_readme_sweep_commands_run_as_written(tmp_path: Path) -> None:
    commands = readme_sweep_commands()
    assert len(commands) >= 3, "README.md should show grid, Optuna and gpu_pool sweep commands"
    for index, command in enumerate(commands):
        if "data.fold=" in command:  # the k-fold command: tests/stats/test_kfold_e2e.py runs it and checks the folds
            continue
        if "hparams_search=" in command:  # test_optuna_search_runs_and_a_second_invocation_resumes runs it
            continue
        args = shortened(command, tmp_path, index)
        if "hydra/launcher=slurm" in command:  # no SLURM here: the config must compose
            single = [a for a in args if a != "-m" and not _is_list_sweep(a)]
            result = train(tmp_path, *single, "--cfg", "hydra")
            assert result.returncode == 0 and "SlurmLauncher" in result.stdout, (command, result.stderr[-2000:])
            continue
        result = train(tmp_path, *args)
        assert result.returncode == 0, (command, result.stderr[-3000:])
        rows = summary_rows(tmp_path / f"sweep{index}")
        assert rows and all(r["status"] == "ok" for r in rows), (command, rows)
