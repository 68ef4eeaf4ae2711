"""A run killed at an epoch and resumed ends exactly where the unbroken run ends; resume=auto finds it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import FAST, ROOT, load_ckpt, run_inprocess
from trueval.tasks.train import train
from trueval.utils.run_dirs import find_latest_run, run_dir as resolve_run_dir

# dropout and an epoch-wise LR schedule: both must continue exactly; Sleep makes epochs long enough
# for the test to kill the process between two of them
COMMON = ["model.width=16", "model.depth=2", "model.dropout=0.1", "trainer.max_epochs=3", "scheduler=step",
          "scheduler.step_size=1", "scheduler.gamma=0.7", "callbacks.progress_bar=null",
          "+callbacks.sleep._target_=lifecycle_helpers.Sleep", "+callbacks.sleep.seconds=0.4"]


def _wait_for_epoch(last: Path, epoch: int, proc: subprocess.Popen, timeout: float = 240) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        if last.exists():
            try:
                if load_ckpt(last)["epoch"] >= epoch:
                    return
            except Exception:  # noqa: BLE001 - written atomically, but it may vanish between exists and load
                pass
        time.sleep(0.05)
    raise AssertionError(f"no checkpoint of epoch {epoch} in {timeout} s")


def _metrics(record: dict) -> dict[str, float]:
    return {k: v for k, v in record["metrics"].items() if k.split("/")[0] in ("train", "val", "test")}


def _scalar_steps(tb_dir: Path) -> dict[str, list[int]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(tb_dir))
    acc.Reload()
    return {tag: [e.step for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


@pytest.fixture(scope="module")
def unbroken(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("unbroken") / "run"
    return out, run_inprocess(train, "train", COMMON, out)[1]


def _assert_same_run(run: Path, resumed: dict, unbroken: tuple[Path, dict]) -> None:
    reference, record = unbroken
    assert resumed["status"] == "ok" and resumed["resumed_from"].endswith("last.ckpt")
    assert load_ckpt(run / "checkpoints" / "last.ckpt")["global_step"] == \
        load_ckpt(reference / "checkpoints" / "last.ckpt")["global_step"]
    assert Path(resumed["best_checkpoint"]).name == Path(record["best_checkpoint"]).name
    assert _metrics(resumed) == pytest.approx(_metrics(record), abs=1e-6)
    assert "test/acc" in _metrics(resumed) and "val/acc_best" in _metrics(resumed)
    # one TensorBoard run with the unbroken run's steps (the stopped attempt's later events are purged)
    assert _scalar_steps(run / "tensorboard") == _scalar_steps(reference / "tensorboard")
    assert not list((run / "checkpoints").glob("*-v1.ckpt"))


@pytest.mark.slow
def test_a_run_killed_after_an_epoch_resumes_to_the_same_result(tmp_path: Path, unbroken: tuple[Path, dict]) -> None:
    run = tmp_path / "killed"
    # the overrides run_inprocess adds, so that the in-process resume below has the same ones
    same = FAST + [f"paths.log_dir={tmp_path / 'logs'}", f"paths.cache_dir={tmp_path / 'cache'}"] + COMMON
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT / "tests" / "tasks")])}
    proc = subprocess.Popen([sys.executable, str(ROOT / "train.py"), *same, f"hydra.run.dir={run}"], cwd=tmp_path,
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for_epoch(run / "checkpoints" / "last.ckpt", 0, proc)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert json.loads((run / "metrics.json").read_text())["status"] == "running"  # what SIGKILL leaves
    killed_at = load_ckpt(run / "checkpoints" / "last.ckpt")["epoch"]
    assert killed_at < 2

    _, resumed = run_inprocess(train, "train", COMMON + [f"resume={run}"], run)
    _assert_same_run(run, resumed, unbroken)


@pytest.mark.slow
def test_a_run_stopped_by_ctrl_c_mid_epoch_resumes_to_the_same_result(run_dir: Path, unbroken) -> None:
    stop = ["+callbacks.stop._target_=lifecycle_helpers.SendSignal", "+callbacks.stop.at_step=30",
            "+callbacks.stop.signum=SIGINT"]  # step 30: in the middle of epoch 1 (20 steps an epoch)
    with pytest.raises(SystemExit) as info:
        run_inprocess(train, "train", COMMON + stop, run_dir)
    assert info.value.code == 130
    assert load_ckpt(run_dir / "checkpoints" / "last.ckpt")["epoch"] == 0
    _, resumed = run_inprocess(train, "train", COMMON + stop + [f"resume={run_dir}"], run_dir)
    _assert_same_run(run_dir, resumed, unbroken)


def _fake_run(runs: Path, name: str, status: str, overrides: list[str]) -> Path:
    d = runs / name
    d.mkdir(parents=True)
    (d / "metrics.json").write_text(json.dumps({"status": status, "overrides": overrides, "pid": 1, "host": "x"}))
    return d


def test_resume_auto_picks_the_newest_run_with_the_same_overrides(tmp_path: Path) -> None:
    runs = tmp_path / "train" / "runs"
    _fake_run(runs, "2026-01-01_10-00-00_a", "interrupted", ["optimizer.lr=0.1"])
    wanted = _fake_run(runs, "2026-01-02_10-00-00_b", "running", ["optimizer.lr=0.1", "resume=auto"])
    _fake_run(runs, "2026-01-03_10-00-00_c", "interrupted", ["optimizer.lr=0.2"])
    assert find_latest_run(runs, ["resume=auto", "optimizer.lr=0.1"]) == wanted
    assert resolve_run_dir("auto", ["optimizer.lr=0.1", "resume=auto"], str(runs), "fresh") == str(wanted)
    assert resolve_run_dir("auto", ["optimizer.lr=0.3", "resume=auto"], str(runs), "fresh") == "fresh"
    assert resolve_run_dir(None, ["optimizer.lr=0.1"], str(runs), "fresh") == "fresh"
    assert resolve_run_dir(str(wanted), [], str(runs), "fresh") == str(wanted)


def test_resume_refuses_a_run_started_with_other_overrides(run_dir: Path, capsys) -> None:
    run_dir.mkdir(parents=True)
    earlier = json.dumps({"status": "interrupted", "overrides": ["optimizer.lr=0.5"]})
    (run_dir / "metrics.json").write_text(earlier)
    with pytest.raises(SystemExit) as info:
        run_inprocess(train, "train", [f"resume={run_dir}"], run_dir)
    assert info.value.code == 2
    assert "optimizer.lr=0.5" in capsys.readouterr().err
    assert (run_dir / "metrics.json").read_text() == earlier  # the earlier run's record is left alone


def test_a_resumed_writer_sorts_after_the_earlier_attempts_events(tmp_path: Path) -> None:
    """TensorBoard reads a run's event files in name order (second, host, pid): a resume whose writer
    starts in the earlier file's second could sort first, and the earlier attempt's later events then
    survive its purge (the suite once read steps 39, 59, 19)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from torch.utils.tensorboard import SummaryWriter

    from trueval.tasks import resume

    def run(wait: bool) -> list[tuple[int, float]]:
        folder = tmp_path / ("waited" if wait else "not_waited")
        with SummaryWriter(str(folder)) as writer:
            for step in (0, 1, 2):
                writer.add_scalar("x", float(step), step)
        (earlier,) = folder.glob("events.out.tfevents.*")
        parts = earlier.name.split(".")
        # the earlier writer's second: the next one, so that a writer started now always sorts first
        parts[3], parts[5] = str(int(time.time()) + 1), "99999999"
        earlier.rename(folder / ".".join(parts))
        if wait:
            resume.after_earlier_events([folder])
        with SummaryWriter(str(folder), purge_step=1) as writer:
            for step in (1, 2):
                writer.add_scalar("x", float(step) + 10, step)
        acc = EventAccumulator(str(folder))
        acc.Reload()
        return [(e.step, e.value) for e in acc.Scalars("x")]

    assert run(wait=True) == [(0, 0.0), (1, 11.0), (2, 12.0)]  # the resumed attempt's values from step 1
    assert run(wait=False) != [(0, 0.0), (1, 11.0), (2, 12.0)]  # the failure the wait prevents
