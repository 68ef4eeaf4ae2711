"""The sweep summary on fake sweep directories: rows, order, failures, partial sweeps, seeds."""

from __future__ import annotations

import csv
import math
import subprocess
import sys
from pathlib import Path

import pytest

from trueval.sweep.summary import build_summary, infer_direction, summarize_sweep, write_summary
from trueval.sweep.trials import split_override
from trueval.core.errors import UserError


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open() as handle:
        return list(csv.DictReader(handle))


def grid(sweep: Path, write_job) -> None:
    accs = {("adam", "0.001"): 0.91, ("adam", "0.01"): 0.95, ("sgd", "0.001"): 0.62, ("sgd", "0.01"): 0.80}
    for num, ((opt, lr), acc) in enumerate(accs.items()):
        write_job(sweep, f"optimizer={opt},optimizer.lr={lr}", [f"optimizer={opt}", f"optimizer.lr={lr}", "trainer.max_epochs=1"],
                  num=num, metrics={"val/acc_best": acc, "test/acc": acc - 0.01}, seconds=10 + num,
                  choices={"optimizer": opt}, config={"data": {"batch_size": 64}})


def test_grid_rows_are_sorted_by_metric_with_override_columns(make_sweep, write_job) -> None:
    sweep = make_sweep()
    grid(sweep, write_job)
    summary = summarize_sweep(sweep, print_table=False)
    rows = read_csv(sweep / "summary.csv")
    assert len(rows) == 4
    assert {"optimizer", "optimizer.lr", "trainer.max_epochs", "status", "seconds", "val/acc_best", "test/acc"} <= set(rows[0])
    assert [r["val/acc_best"] for r in rows] == ["0.95", "0.91", "0.8", "0.62"]
    assert (rows[0]["optimizer"], rows[0]["optimizer.lr"]) == ("adam", "0.01")
    assert {r["status"] for r in rows} == {"ok"}
    assert summary.varying_keys == ["optimizer", "optimizer.lr"]
    assert (sweep / "summary.png").stat().st_size > 1000
    md = (sweep / "summary.md").read_text()
    assert "val/acc_best" in md and "Same in every trial: `trainer.max_epochs=1`" in md


def test_minimize_direction_from_multirun_yaml(make_sweep, write_job) -> None:
    sweep = make_sweep(metric="val/loss", direction="minimize")
    for num, loss in enumerate([0.5, 0.1, 0.9]):
        write_job(sweep, f"optimizer.lr={num}", [f"optimizer.lr={num}"], num=num, metrics={"val/loss": loss})
    summary = build_summary(sweep)
    assert summary.metric == "val/loss" and summary.direction == "minimize"
    assert [t.metric("val/loss") for t in summary.trials] == [0.1, 0.5, 0.9]


def test_failed_and_incomplete_trials_are_listed_after_ok_ones(make_sweep, write_job) -> None:
    sweep = make_sweep()
    write_job(sweep, "optimizer.lr=10", ["optimizer.lr=10"], num=0, status="failed",
              error="NonFiniteLossError: non-finite training loss (nan) at global step 3", metrics={"val/acc_best": None})
    write_job(sweep, "optimizer.lr=0.1", ["optimizer.lr=0.1"], num=1, metrics={"val/acc_best": 0.7})
    write_job(sweep, "optimizer.lr=0.01", ["optimizer.lr=0.01"], num=2, status=None)  # still running
    (sweep / "optimizer.lr=0.001").mkdir()
    (sweep / "optimizer.lr=0.001" / "metrics.json").write_text('{"status": "ok", "metr')  # killed mid-write
    write_summary(build_summary(sweep))
    rows = read_csv(sweep / "summary.csv")
    assert [r["status"] for r in rows] == ["ok", "incomplete", "incomplete", "failed"]
    assert rows[-1]["error"].startswith("NonFiniteLossError")
    assert "unreadable metrics.json" in rows[2]["error"] or "unreadable metrics.json" in rows[1]["error"]
    md = (sweep / "summary.md").read_text()
    assert "## Failed trials" in md and "global step 3" in md


def test_sweep_of_only_failed_trials_still_summarises(make_sweep, write_job) -> None:
    sweep = make_sweep()
    for num in range(2):
        write_job(sweep, f"optimizer.lr={num}e9", [f"optimizer.lr={num}e9"], num=num, status="failed", error="boom")
    summarize_sweep(sweep, print_table=False)
    assert [r["status"] for r in read_csv(sweep / "summary.csv")] == ["failed", "failed"]
    assert (sweep / "summary.png").exists()


def test_seeds_are_grouped_with_mean_and_std(make_sweep, write_job) -> None:
    sweep = make_sweep()
    values = {"0.01": [0.8, 0.9, 1.0], "0.1": [0.5, 0.5, 0.5]}
    num = 0
    for lr, accs in values.items():
        for seed, acc in enumerate(accs):
            write_job(sweep, f"optimizer.lr={lr},seed={seed}", [f"optimizer.lr={lr}", f"seed={seed}"], num=num,
                      metrics={"val/acc_best": acc})
            num += 1
    summary = summarize_sweep(sweep, print_table=False)
    best = summary.groups[0]
    assert best.overrides == {"optimizer.lr": "0.01"} and best.n_ok == 3
    assert best.mean["val/acc_best"] == pytest.approx(0.9)
    assert best.std["val/acc_best"] == pytest.approx(0.1)
    rows = read_csv(sweep / "summary_by_seed.csv")
    assert [r["optimizer.lr"] for r in rows] == ["0.01", "0.1"]
    assert "± " in (sweep / "summary.md").read_text()


def test_overrides_are_split_into_keys() -> None:
    assert split_override("+optimizer.lr=1e-3") == ("optimizer.lr", "1e-3")
    assert split_override("++data.root=/a=b") == ("data.root", "/a=b")
    assert split_override("~callbacks.early_stopping") == ("callbacks.early_stopping", "~")


def test_direction_is_inferred_from_the_metric_name() -> None:
    assert infer_direction("val/acc_best") == "maximize"
    assert infer_direction("val/loss") == "minimize"
    assert infer_direction("test/f1_macro") == "maximize"


def test_missing_dir_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="does not exist"):
        build_summary(tmp_path / "nope")
    with pytest.raises(UserError, match="no job directories"):
        build_summary(tmp_path)


def test_cli_rebuilds_a_partial_sweep(make_sweep, write_job) -> None:
    sweep = make_sweep()
    grid(sweep, write_job)
    write_job(sweep, "optimizer=rmsprop,optimizer.lr=0.01", ["optimizer=rmsprop", "optimizer.lr=0.01"], num=9, status=None)
    result = subprocess.run([sys.executable, "-m", "trueval.summary", str(sweep), "--no-plot"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "Sweep leaderboard" in result.stdout
    rows = read_csv(sweep / "summary.csv")
    assert len(rows) == 5 and rows[-1]["status"] == "incomplete"
    bad = subprocess.run([sys.executable, "-m", "trueval.summary", str(sweep / "missing")],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "does not exist" in bad.stderr and "Traceback" not in bad.stderr
    assert math.isclose(float(rows[0]["val/acc_best"]), 0.95)
