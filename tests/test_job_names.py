"""Job directories (TensorBoard's run names) carry the keys that vary within the sweep, as written."""

from __future__ import annotations

from pathlib import Path

import yaml

from trueval.utils.resolvers import job_dirname, sweep_plan

BASIC = "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"


def _sweep(tmp_path: Path, task: list[str], params: dict | None = None, sweeper: str = BASIC) -> Path:
    sweep = tmp_path / "sweep"
    sweep.mkdir(parents=True)
    hydra = {"overrides": {"task": task}, "sweeper": {"_target_": sweeper, "params": params}}
    (sweep / "multirun.yaml").write_text(yaml.safe_dump({"hydra": hydra}, sort_keys=False))
    return sweep


def test_constants_are_left_out_and_the_users_order_is_kept(tmp_path: Path) -> None:
    sweep = _sweep(tmp_path, ["optimizer=adam,sgd", "data.batch_size=128", "optimizer.lr=1e-3,1e-2",
                              "data=cifar10", "model.depth=20"])
    assert sweep_plan(sweep)[0] == ["optimizer", "optimizer.lr"]
    job = ["optimizer=sgd", "data.batch_size=128", "optimizer.lr=0.01", "data=cifar10", "model.depth=20"]
    assert job_dirname("ignored", 3, str(sweep), job) == "optimizer=sgd,optimizer.lr=0.01"
    # written the other way round, named the other way round
    other = _sweep(tmp_path / "b", ["model.depth=20,56", "model.residual=true,false", "data.batch_size=128"])
    name = job_dirname("x", 0, str(other), ["model.depth=56", "model.residual=false", "data.batch_size=128"])
    assert name == "model.depth=56,model.residual=false"


def test_sweeper_params_come_first_like_the_sweeper_reads_them(tmp_path: Path) -> None:
    sweep = _sweep(tmp_path, ["seed=0,1", "trainer=cpu"], params={"optimizer.lr": "1e-3,1e-2", "data.batch_size": "64"})
    assert sweep_plan(sweep)[0] == ["optimizer.lr", "seed"]
    assert job_dirname("x", 1, str(sweep), ["optimizer.lr=0.001", "data.batch_size=64", "seed=1", "trainer=cpu"]) \
        == "optimizer.lr=0.001,seed=1"


def test_every_name_of_a_grid_is_unique(tmp_path: Path) -> None:
    sweep = _sweep(tmp_path, ["optimizer.lr=0.1,0.01", "seed=7,7"])  # the same seed twice: two jobs, one name
    jobs = sweep_plan(sweep)[1]
    names = [job_dirname("x", i, str(sweep), job) for i, job in enumerate(jobs)]
    assert len(set(names)) == len(names) == 4
    assert names[0] == "000_optimizer.lr=0.1"  # seed does not vary: it is not in the name


def test_non_grid_sweepers_number_their_trials(tmp_path: Path) -> None:
    sweep = _sweep(tmp_path, ["trainer=cpu"], params={"optimizer.lr": "tag(log, interval(1e-4, 1e-1))",
                                                      "optimizer": "choice(adam, sgd)"}, sweeper="x.OptunaSweeper")
    assert sweep_plan(sweep)[0] == ["optimizer.lr", "optimizer"]
    assert job_dirname("x", 12, str(sweep), ["optimizer.lr=0.0123", "optimizer=sgd", "trainer=cpu"]) \
        == "012_optimizer.lr=0.0123,optimizer=sgd"


def test_names_are_file_system_safe_and_bounded(tmp_path: Path) -> None:
    sweep = _sweep(tmp_path, ["data.root=a/b,c/d", f"tags=[{'x' * 300}],[y]"])
    name = job_dirname("x", 0, str(sweep), ["data.root=a/b", f"tags=[{'x' * 300}]"])
    assert "/" not in name and len(name) <= 180
    other = job_dirname("x", 1, str(sweep), ["data.root=a/b", f"tags=[{'x' * 299}z]"])
    assert other != name  # cut names keep a digest of the whole


def test_without_a_sweep_file_every_override_names_the_job(tmp_path: Path) -> None:
    assert job_dirname("a=1,b=2", 0, str(tmp_path), ["a=1", "b=2"]) == "a=1,b=2"
    assert job_dirname("", 4) == "job4"
    assert job_dirname("optimizer=sgd,optimizer.lr=0.01", 0) == "optimizer=sgd,optimizer.lr=0.01"
