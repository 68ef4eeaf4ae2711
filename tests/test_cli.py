"""The scripts as a user runs them: exit codes and one clear message for every kind of bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers import only_run_dir, run_cli

pytestmark = pytest.mark.slow


def _logs(tmp_path: Path) -> list[str]:
    return [f"paths.log_dir={tmp_path / 'logs'}", f"paths.cache_dir={tmp_path / 'cache'}"]


def test_default_train_under_a_minute_with_accuracy(tmp_path: Path) -> None:
    """`python train.py` as `make train` runs it: digits, MLP, >= 0.90 test accuracy."""
    proc = run_cli("train.py", _logs(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    record = json.loads((only_run_dir(tmp_path / "logs") / "metrics.json").read_text())
    assert record["status"] == "ok" and record["metrics"]["test/acc"] >= 0.90
    assert record["wall_seconds"] < 60
    assert "final metrics" in proc.stdout
    _assert_console_is_whole_and_quiet(proc.stdout + proc.stderr, record)


def _assert_console_is_whole_and_quiet(output: str, record: dict) -> None:
    """Piped output (CI, `| tee`): paths whole, one table of test metrics, no tree, no library noise."""
    run_dir = str(Path(record["best_checkpoint"]).parent.parent)
    assert len(run_dir) > 60  # long enough that an 80-column table would have cut it
    assert run_dir in output and record["best_checkpoint"] in output
    assert "…" not in output and "..." not in output
    for noise in ("Tip:", "litlogger", "is deprecated", "log_every_n_steps", "DataLoader 0"):
        assert noise not in output, noise
    assert sum(line.split("│")[1].strip() == "test/acc" for line in output.splitlines() if line.count("│") > 2) == 1
    # two lines of config (choices, overrides) instead of the 150-line tree, which config_tree.log keeps
    assert "_target_" not in output and "config data=digits model=mlp optimizer=adam" in output
    assert "config_tree.log" in output


@pytest.mark.parametrize("args,needle", [
    (["no_such_key=1"], "no_such_key"),
    (["model=no_such_model"], "no_such_model"),
    (["optimizer.lr=-1", "trainer.max_epochs=1"], "optimizer.lr"),
    (["data=mnist", "data.data_dir=/nonexistent/mnist"], "/nonexistent/mnist"),
    (["data.split=[0.5,0.2,0.2]"], "data.split"),
    (["data=imagefolder", "data.root=/nonexistent/images"], "/nonexistent/images"),
])
def test_bad_input_exits_nonzero_with_message(args: list[str], needle: str, tmp_path: Path) -> None:
    proc = run_cli("train.py", _logs(tmp_path) + args)
    assert proc.returncode == 2  # a usage or data error, whether Hydra or trueval finds it
    output = proc.stdout + proc.stderr
    assert needle in output
    assert "Traceback" not in output, output[-2000:]
    # nothing that looks like a success is left behind
    for metrics in (tmp_path / "logs").rglob("metrics.json"):
        record = json.loads(metrics.read_text())
        assert record["status"] == "failed" and needle.split("/")[-1] in (record["error"] or "") or \
            record["status"] == "failed"


@pytest.mark.parametrize("args,needle", [(["no_such_key=1"], "no_such_key"), (["data=no_such_data"], "no_such_data")])
def test_an_audit_command_line_that_does_not_compose_exits_2_not_the_leak_code(args: list[str], needle: str,
                                                                                 tmp_path: Path) -> None:
    """Hydra exits 1 on an override it cannot compose; for audit.py 1 means "leak found"."""
    proc = run_cli("audit.py", _logs(tmp_path) + args)
    assert proc.returncode == 2 and needle in proc.stdout + proc.stderr
    assert not (tmp_path / "logs").exists() or not list((tmp_path / "logs").rglob("leak_report.json"))


def test_eval_missing_checkpoint(tmp_path: Path) -> None:
    proc = run_cli("eval.py", _logs(tmp_path) + [f"ckpt_path={tmp_path}/missing.ckpt"])
    assert proc.returncode == 2
    assert "missing.ckpt" in proc.stderr and "Traceback" not in proc.stderr
    assert "bad input: " in proc.stderr and "UserError" not in proc.stderr  # a heading in words, not a class name
    assert "missing.ckpt" not in proc.stdout  # said once on the console, not also as a log line
    run_dir = only_run_dir(tmp_path / "logs")
    record = json.loads((run_dir / "metrics.json").read_text())
    assert record["status"] == "failed" and "missing.ckpt" in record["error"]
    assert any("missing.ckpt" in log.read_text() for log in run_dir.glob("*.log"))  # and kept in the run's log


def test_eval_requires_a_checkpoint(tmp_path: Path) -> None:
    proc = run_cli("eval.py", _logs(tmp_path))
    assert proc.returncode != 0 and "ckpt_path" in proc.stdout + proc.stderr


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="checks the refusal on a machine without a GPU")
def test_a_gpu_config_without_a_gpu_is_refused_before_the_data_set_up(tmp_path: Path) -> None:
    # the data folder does not exist either: the GPU is what the message must name, at once
    proc = run_cli("train.py", _logs(tmp_path) + ["trainer=gpu", "data=imagefolder", "data.root=/nonexistent/images"])
    output = proc.stdout + proc.stderr
    assert proc.returncode == 2 and "trainer.accelerator" in output and "trainer=cpu" in output, output[-2000:]
    assert "/nonexistent/images" not in output and "Traceback" not in output
