"""The gpu_pool launcher: trials as separate processes, CUDA_VISIBLE_DEVICES round-robin, crashes isolated."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hydra_plugins.trueval_gpu_pool.slots import make_slots, visible_gpus
from trueval.core.errors import UserError

APP = Path(__file__).parent / "pool_app" / "app.py"


def run_app(tmp_path: Path, *overrides: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, POOL_APP_OUT=str(tmp_path))
    return subprocess.run([sys.executable, str(APP), "-m", *overrides], env=env, capture_output=True, text=True, timeout=300)


def records(sweep: Path) -> list[dict]:
    return sorted((json.loads(p.read_text()) for p in sweep.glob("*/record.json")), key=lambda r: r["num"])


def max_overlap(intervals: list[tuple[float, float]]) -> int:
    events = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    running = best = 0
    for _, step in events:
        running += step
        best = max(best, running)
    return best


def test_slots_interleave_gpus() -> None:
    assert make_slots(["0", "1"], 2) == ["0", "1", "0", "1"]
    assert make_slots(["0", "1"], 3, max_concurrent=4) == ["0", "1", "0", "1"]
    assert make_slots([], 3) == ["", "", ""]
    with pytest.raises(UserError, match="jobs_per_gpu"):
        make_slots(["0"], 0)


def test_visible_gpus_from_config_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert visible_gpus(2) == ["0", "1"]
    assert visible_gpus([3, "GPU-ab12"]) == ["3", "GPU-ab12"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,5")
    assert visible_gpus(None) == ["2", "5"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert visible_gpus(None) == []


def test_launcher_is_discovered_by_hydra() -> None:
    from hydra.core.plugins import Plugins
    from hydra.plugins.launcher import Launcher

    names = {f"{cls.__module__}.{cls.__name__}" for cls in Plugins.instance().discover(Launcher)}
    assert "hydra_plugins.trueval_gpu_pool.gpu_pool_launcher.GpuPoolLauncher" in names


@pytest.mark.slow
def test_trials_run_concurrently_in_separate_processes_round_robin(tmp_path: Path) -> None:
    result = run_app(tmp_path, "value=1,2,3,4,5", "sleep=1.5", "hydra.launcher.gpus=[0,1]", "hydra.launcher.jobs_per_gpu=2",
                     "hydra.launcher.reuse_workers=false")
    assert result.returncode == 0, result.stderr
    recs = records(tmp_path / "sweep")
    assert [r["value"] for r in recs] == [1, 2, 3, 4, 5]
    assert [r["cuda_visible_devices"] for r in recs[:4]] == ["0", "1", "0", "1"]
    assert recs[4]["cuda_visible_devices"] in {"0", "1"}
    assert len({r["pid"] for r in recs}) == 5 and os.getpid() not in {r["pid"] for r in recs}
    overlap = max_overlap([(r["start"], r["end"]) for r in recs])
    assert 2 <= overlap <= 4
    assert (tmp_path / "sweep" / "0" / "trial.out").read_text().strip().endswith("job 0 done")
    assert not (tmp_path / "sweep" / ".gpu_pool").exists()


@pytest.mark.slow
def test_crashed_trial_is_recorded_failed_and_the_sweep_goes_on(tmp_path: Path) -> None:
    result = run_app(tmp_path, "crash=false,true", "value=3", "hydra.launcher.jobs_per_gpu=2")
    assert result.returncode == 0, result.stderr
    assert [r["num"] for r in records(tmp_path / "sweep")] == [0]
    metrics = json.loads((tmp_path / "sweep" / "1" / "metrics.json").read_text())
    assert metrics["status"] == "failed" and "exited with code 7" in metrics["error"]
    assert metrics["overrides"] == ["crash=true", "value=3"] or metrics["overrides"] == ["crash=True", "value=3"]


@pytest.mark.slow
def test_cpu_only_host_hides_cuda(tmp_path: Path) -> None:
    env_gpus = "hydra.launcher.gpus=[]"
    result = run_app(tmp_path, "value=1,2", env_gpus, "hydra.launcher.jobs_per_gpu=2")
    assert result.returncode == 0, result.stderr
    assert [r["cuda_visible_devices"] for r in records(tmp_path / "sweep")] == ["", ""]


@pytest.mark.slow
def test_ctrl_c_stops_running_trials_and_starts_no_more(tmp_path: Path) -> None:
    import signal
    import time

    env = dict(os.environ, POOL_APP_OUT=str(tmp_path))
    process = subprocess.Popen([sys.executable, str(APP), "-m", "value=1,2,3,4", "sleep=60", "hydra.launcher.jobs_per_gpu=2"],
                               env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 120
    while not (tmp_path / "sweep" / "1" / "trial.out").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(1.0)
    os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
    started = time.monotonic()
    process.wait(timeout=60)
    assert time.monotonic() - started < 30
    left = subprocess.run(["ps", "-o", "pid=", "-g", str(process.pid)], capture_output=True, text=True).stdout.split()
    assert left == []
    assert sorted(p.name for p in (tmp_path / "sweep").iterdir() if p.is_dir()) == ["0", "1"]


@pytest.mark.slow
@pytest.mark.parametrize(("reuse", "expected_pids"), [("true", 2), ("false", 4)])
def test_workers_are_reused_per_slot(tmp_path: Path, reuse: str, expected_pids: int) -> None:
    result = run_app(tmp_path, "value=1,2,3,4", "sleep=0.3", "hydra.launcher.gpus=[]", "hydra.launcher.jobs_per_gpu=2",
                     f"hydra.launcher.reuse_workers={reuse}")
    assert result.returncode == 0, result.stderr
    recs = records(tmp_path / "sweep")
    assert [r["value"] for r in recs] == [1, 2, 3, 4]
    pids = {r["pid"] for r in recs}
    assert len(pids) == expected_pids and os.getpid() not in pids
    for num in range(4):  # each trial's output lands in its own trial.out, flushed before the next trial
        assert (tmp_path / "sweep" / str(num) / "trial.out").read_text().strip().splitlines()[-1] == f"job {num} done"
    assert not (tmp_path / "sweep" / ".gpu_pool").exists()


@pytest.mark.slow
def test_worker_killed_mid_trial_fails_that_trial_and_the_slot_gets_a_fresh_worker(tmp_path: Path) -> None:
    result = run_app(tmp_path, "value=1,2,3,4", "kill_value=2", "hydra.launcher.gpus=[]", "hydra.launcher.jobs_per_gpu=1")
    assert result.returncode == 0, result.stderr
    recs = records(tmp_path / "sweep")
    assert [r["value"] for r in recs] == [1, 3, 4]
    assert recs[0]["pid"] != recs[1]["pid"] == recs[2]["pid"]  # a new worker after the crash, then reused
    metrics = json.loads((tmp_path / "sweep" / "1" / "metrics.json").read_text())
    assert metrics["status"] == "failed" and "killed by SIGKILL" in metrics["error"]
    assert "value=2" in metrics["overrides"]


@pytest.mark.slow
def test_trials_find_the_plugin_from_a_checkout_that_is_not_installed(tmp_path: Path) -> None:
    """`python train.py -m hydra/launcher=gpu_pool` from a checkout that pip never installed.

    A fresh virtual environment sees this one's packages through a .pth line (.pth files inside that
    directory, such as the editable install of trueval, are not read), so only the checkout's own
    ``src`` (which train.py puts on sys.path) holds trueval: the trial workers must find the plugin
    where the parent process found it."""
    import sysconfig
    import venv

    root = Path(__file__).resolve().parents[2]
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    Path(purelib, "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # the probe too: PYTHONPATH=src would find it
    probe = subprocess.run([str(python), "-c", "import torch, hydra; import trueval"], capture_output=True, text=True,
                           env=env)
    assert "No module named 'trueval'" in probe.stderr, probe.stderr
    result = subprocess.run(
        [str(python), str(root / "train.py"), "-m", "hydra/launcher=gpu_pool", "hydra.launcher.jobs_per_gpu=2",
         "hydra.launcher.gpus=[]", "seed=1,2", "trainer.max_epochs=1", "trainer.accelerator=cpu",
         "extras.print_config=false", f"paths.log_dir={tmp_path / 'logs'}", f"hydra.sweep.dir={tmp_path / 'sweep'}"],
        env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    outs = [p.read_text()[-1500:] for p in (tmp_path / "sweep").glob("*/trial.out")]
    statuses = [json.loads(p.read_text())["status"] for p in sorted((tmp_path / "sweep").glob("*/metrics.json"))]
    assert statuses == ["ok", "ok"], outs
