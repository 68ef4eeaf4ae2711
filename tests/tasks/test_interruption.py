"""SIGTERM and Ctrl-C stop a run at a step boundary: status interrupted, history line, exit 128+N."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers import FAST, compose_cfg, load_ckpt
from trueval.tasks.runner import run_task
from trueval.tasks.train import train

TINY = ["model.width=16", "model.depth=2", "+trainer.limit_train_batches=3", "logger=none",
        "callbacks.progress_bar=null", "trainer.max_epochs=4"]


def _interrupted_run(run_dir: Path, signum: str, times: int = 1) -> tuple[int, dict, list[dict]]:
    kill = [f"+callbacks.kill._target_=lifecycle_helpers.SendSignal", "+callbacks.kill.at_step=4",
            f"+callbacks.kill.signum={signum}", f"+callbacks.kill.times={times}"]
    cfg = compose_cfg("train", FAST + TINY + kill, run_dir)
    with pytest.raises(SystemExit) as info:
        run_task(train, cfg)
    history = Path(cfg.paths.log_dir) / "history.jsonl"
    lines = [json.loads(line) for line in history.read_text().splitlines()]
    return info.value.code, json.loads((run_dir / "metrics.json").read_text()), lines


@pytest.mark.parametrize("signum,code", [("SIGTERM", 143), ("SIGINT", 130)])
def test_a_signal_stops_at_a_step_boundary_and_is_recorded(run_dir: Path, signum: str, code: int) -> None:
    exit_code, record, history = _interrupted_run(run_dir, signum)
    assert exit_code == code
    assert record["status"] == "interrupted"
    assert record["signal"] == {"name": signum, "number": code - 128}
    assert signum in record["error"]
    assert [h["status"] for h in history] == ["interrupted"]
    # stopped during epoch 1 (steps 3..5): last.ckpt is the completed epoch 0, whole and resumable
    last = load_ckpt(run_dir / "checkpoints" / "last.ckpt")
    assert last["epoch"] == 0 and last["global_step"] == 3


def test_a_second_ctrl_c_stops_at_once(run_dir: Path) -> None:
    exit_code, record, history = _interrupted_run(run_dir, "SIGINT", times=2)
    assert exit_code == 130 and record["status"] == "interrupted" and len(history) == 1


def test_an_interrupted_audit_is_not_told_to_resume(tmp_path: Path, caplog) -> None:
    """Only training has `resume=`: an audit told to continue with it failed on an unknown key."""
    import signal

    from trueval.utils.signals import RunInterrupted

    def stopped(cfg, record) -> float:
        raise RunInterrupted(signal.SIGTERM)

    cfg = compose_cfg("audit", ["data=digits"], tmp_path / "run")
    assert "resume" not in cfg
    with pytest.raises(SystemExit) as info:
        run_task(stopped, cfg)
    assert info.value.code == 143
    assert "resume=" not in caplog.text and "run the same command again" in caplog.text
