"""A Hydra launcher that runs each trial in its own process, several per GPU, round-robin.

Why our own: Hydra's basic launcher runs trials one after the other in-process; the joblib
launcher knows nothing about GPUs; submitit's local executor starts every job at once and hands
out whole GPUs. Small trials (an MLP on MNIST) leave an H100 mostly idle, so this launcher keeps
``jobs_per_gpu`` trials per GPU busy and gives each its GPU through ``CUDA_VISIBLE_DEVICES``.

By default each slot keeps one worker process (``reuse_workers``) that runs its trials one after
the other, so the ~10 s of imports and CUDA init per process is paid once per slot, not per trial.

A trial process that dies without reporting (killed for host memory, segfault) is recorded as a
failed trial (``metrics.json`` status ``failed``) and returns NaN, so the sweep goes on; the
slot's next trial gets a fresh worker.
"""


import json
import logging
import math
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

import cloudpickle
from hydra.core.hydra_config import HydraConfig
from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus, configure_log, filter_overrides, setup_globals
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from hydra_plugins.trueval_gpu_pool import config as _config  # noqa: F401  registers the config node
from hydra_plugins.trueval_gpu_pool.slots import make_slots, visible_gpus

log = logging.getLogger(__name__)

#: environment variables read by the worker process and by trueval's DDP launch fix
SYS_PATH_ENV = "TRUEVAL_GPU_POOL_SYS_PATH"
APP_COMMAND_ENV = "TRUEVAL_APP_COMMAND"
TRIAL_OUTPUT = "trial.out"
#: how often a launcher thread looks for a trial's result or its worker's death
POLL_SECONDS = 0.05
WORKER_MODULE = "hydra_plugins.trueval_gpu_pool._worker"
#: a worker that cannot serve again (broken CUDA context) writes RESULT + this before RESULT, then exits
RETIRE_SUFFIX = ".retire"


@dataclass
class _Job:
    idx: int
    overrides: list[str]
    config: DictConfig
    job_dir: Path
    payload: Path
    result: Path


def app_command() -> list[str]:
    """How this Hydra app was started (``python train.py`` or ``python -m pkg``), for re-launching ranks."""
    if os.environ.get(APP_COMMAND_ENV):
        return json.loads(os.environ[APP_COMMAND_ENV])
    import __main__

    spec = getattr(__main__, "__spec__", None)
    if spec is not None and spec.name:
        return [sys.executable, "-m", spec.name]
    return [sys.executable, os.path.abspath(sys.argv[0])]


class GpuPoolLauncher(Launcher):
    def __init__(
        self,
        jobs_per_gpu: int = 1,
        gpus: Any = None,
        max_concurrent: Optional[int] = None,
        threads_per_job: Optional[int] = None,
        stream_output: bool = False,
        reuse_workers: bool = True,
    ) -> None:
        self.jobs_per_gpu = int(jobs_per_gpu)
        self.gpus = OmegaConf.to_container(gpus) if OmegaConf.is_config(gpus) else gpus
        self.max_concurrent = max_concurrent
        self.threads_per_job = threads_per_job
        self.stream_output = stream_output
        self.reuse_workers = bool(reuse_workers)
        self.config: Optional[DictConfig] = None
        self.task_function: Optional[TaskFunction] = None
        self.hydra_context: Optional[HydraContext] = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config = config
        self.hydra_context = hydra_context
        self.task_function = task_function

    # ------------------------------------------------------------------------------------ launch
    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        setup_globals()
        assert self.config is not None and self.hydra_context is not None and self.task_function is not None
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        work_dir = sweep_dir / ".gpu_pool"
        work_dir.mkdir(parents=True, exist_ok=True)

        slots = make_slots(visible_gpus(self.gpus), self.jobs_per_gpu, self.max_concurrent)
        where = ", ".join(f"GPU {s}" for s in dict.fromkeys(slots)) if slots[0] else "CPU (no GPU)"
        log.info(f"Launching {len(job_overrides)} jobs, {len(slots)} at a time, on {where}")
        jobs = [self._prepare(initial_job_idx + i, list(o), sweep_dir, work_dir) for i, o in enumerate(job_overrides)]
        env = self._base_env(len(slots))

        free: "queue.Queue[int]" = queue.Queue()
        for index in range(len(slots)):
            free.put(index)
        workers: dict[int, subprocess.Popen] = {}  # slot index -> its process (worker or one-trial process)
        stop = threading.Event()
        pool = ThreadPoolExecutor(max_workers=len(slots), thread_name_prefix="gpu_pool")
        try:
            futures = [pool.submit(self._run, job, slots, free, env, workers, stop) for job in jobs]
            results = [future.result() for future in futures]
            _shut_down(workers)
            return results
        except BaseException:
            stop.set()
            _terminate(workers)
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            _terminate(workers, grace_seconds=2.0)  # no-op unless something above went wrong
            for job in jobs:
                job.payload.unlink(missing_ok=True)
            _remove_if_empty(work_dir)
            configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)

    def _prepare(self, idx: int, overrides: list[str], sweep_dir: Path, work_dir: Path) -> _Job:
        """Compose the job's config here, so every job resolves the same sweep dir and time stamp."""
        assert self.config is not None and self.hydra_context is not None
        config = self.hydra_context.config_loader.load_sweep_config(self.config, overrides)
        with open_dict(config):
            config.hydra.job.id = f"{config.hydra.job.name}_{idx}"
            config.hydra.job.num = idx
            config.hydra.sweep.dir = str(sweep_dir)
        previous = HydraConfig.instance().cfg
        HydraConfig.instance().set_config(config)
        try:
            job_dir = sweep_dir / str(OmegaConf.select(config, "hydra.sweep.subdir"))
        finally:
            HydraConfig.instance().cfg = previous
        payload = work_dir / f"job_{idx}.pkl"
        state = {
            "singletons": Singleton.get_state(),
            "hydra_context": self.hydra_context,
            "task_function": self.task_function,
            "config": config,
        }
        payload.write_bytes(cloudpickle.dumps(state))
        return _Job(idx, overrides, config, job_dir, payload, work_dir / f"job_{idx}.result.pkl")

    def _base_env(self, n_slots: int) -> dict[str, str]:
        env = dict(os.environ)
        env[SYS_PATH_ENV] = json.dumps([p for p in sys.path if p])
        # `python -m <worker>` must find this plugin before the worker can extend sys.path: put the
        # directory this process imported it from (a checkout's src/ when nothing was pip-installed) first
        package_root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys([package_root, *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]))
        env[APP_COMMAND_ENV] = json.dumps(app_command())
        threads = self.threads_per_job or max(1, (os.cpu_count() or 1) // n_slots)
        for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            env.setdefault(name, str(threads))
        return env

    def _run(self, job: _Job, slots: list[str], free: "queue.Queue[int]", env: dict[str, str],
             workers: dict[int, subprocess.Popen], stop: threading.Event) -> JobReturn:
        index = free.get()
        slot = slots[index]
        try:
            if stop.is_set():
                raise KeyboardInterrupt
            gpu = f"GPU {slot}" if slot else "CPU"
            log.info(f"\t#{job.idx} on {gpu}: {' '.join(filter_overrides(job.overrides))}")
            job_env = dict(env, CUDA_VISIBLE_DEVICES=slot)
            started = time.perf_counter()
            job.job_dir.mkdir(parents=True, exist_ok=True)
            if self.reuse_workers:
                code = self._run_on_worker(job, index, job_env, workers, stop)
            else:
                code = self._run_in_new_process(job, index, job_env, workers, stop)
        finally:
            free.put(index)
        seconds = time.perf_counter() - started
        result = self._read_result(job)
        job.payload.unlink(missing_ok=True)
        if result is None:
            reason = _describe_exit(code)
            error = f"trial process {reason} before reporting; its output is in {job.job_dir / TRIAL_OUTPUT}"
            log.error(f"\t#{job.idx} crashed after {seconds:.1f} s: {error}")
            record_crash(job.job_dir, job.overrides, error, seconds, OmegaConf.select(job.config, "seed", default=None))
            return _failed_return(job)
        outcome = "returned" if result.status == JobStatus.COMPLETED else "raised"
        log.info(f"\t#{job.idx} {outcome} after {seconds:.1f} s")
        return result

    def _run_in_new_process(self, job: _Job, index: int, job_env: dict[str, str],
                            running: dict[int, subprocess.Popen], stop: threading.Event) -> int:
        """``reuse_workers=false``: one fresh process for this trial; its exit code."""
        command = [sys.executable, "-m", WORKER_MODULE, str(job.payload), str(job.result)]
        output = None if self.stream_output else open(job.job_dir / TRIAL_OUTPUT, "ab")
        try:
            process = subprocess.Popen(command, env=job_env, stdout=output, stderr=subprocess.STDOUT if output else None)
            running[index] = process
            if stop.is_set():  # interrupted while this trial was starting
                process.terminate()
            return process.wait()
        finally:
            running.pop(index, None)
            if output is not None:
                output.close()

    def _run_on_worker(self, job: _Job, index: int, job_env: dict[str, str],
                       workers: dict[int, subprocess.Popen], stop: threading.Event) -> Optional[int]:
        """Hand the trial to the slot's worker and wait for its result or its death.

        Returns None when the result appeared, else the worker's exit code (it died mid-trial).
        """
        output = "" if self.stream_output else str(job.job_dir / TRIAL_OUTPUT)
        line = (json.dumps([str(job.payload), str(job.result), output]) + "\n").encode()
        for attempt in range(2):
            process = workers.get(index)
            if process is None or process.poll() is not None:
                process = self._start_worker(job_env)
                workers[index] = process
            try:
                assert process.stdin is not None
                process.stdin.write(line)
                process.stdin.flush()
                break
            except (BrokenPipeError, OSError):  # the worker died between trials: start a fresh one
                process.wait()
                if attempt == 1:
                    raise
        terminated = False
        retire = Path(f"{job.result}{RETIRE_SUFFIX}")
        while True:
            if job.result.is_file():
                if retire.is_file():  # it exits now; wait, so the slot's next trial starts a fresh one
                    retire.unlink(missing_ok=True)
                    try:
                        process.wait(timeout=30)
                    except subprocess.TimeoutExpired:
                        process.kill()
                        process.wait()
                return None
            code = process.poll()
            if code is not None:
                retire.unlink(missing_ok=True)
                return None if job.result.is_file() else code
            if stop.is_set() and not terminated:  # Ctrl-C while this trial was being handed over
                process.terminate()
                terminated = True
            time.sleep(POLL_SECONDS)

    def _start_worker(self, job_env: dict[str, str]) -> subprocess.Popen:
        """A worker for one slot; between trials its output goes to this terminal's stderr only."""
        command = [sys.executable, "-m", WORKER_MODULE, "--serve"]
        stdout = None if self.stream_output else subprocess.DEVNULL
        return subprocess.Popen(command, env=job_env, stdin=subprocess.PIPE, stdout=stdout)

    @staticmethod
    def _read_result(job: _Job) -> Optional[JobReturn]:
        """The JobReturn the trial process reported, or None when it died before reporting."""
        if not job.result.is_file():
            return None
        try:
            with job.result.open("rb") as handle:
                return cloudpickle.load(handle)
        except Exception as exc:  # noqa: BLE001 - an unreadable result is a crashed trial
            log.warning(f"\t#{job.idx}: unreadable result ({exc!r})")
            return None
        finally:
            job.result.unlink(missing_ok=True)


def _describe_exit(code: Optional[int]) -> str:
    if code is None:
        return "wrote an unreadable result"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        hint = " (out of host memory?)" if name == "SIGKILL" else ""
        return f"was killed by {name}{hint}"
    return f"exited with code {code}"


def record_crash(job_dir: Path, overrides: list[str], error: str, seconds: float, seed: Any) -> None:
    """Write a failed ``metrics.json`` unless the task already recorded a final status."""
    path = job_dir / "metrics.json"
    try:
        if json.loads(path.read_text()).get("status") in ("ok", "failed"):
            return
    except (OSError, ValueError, AttributeError):
        pass
    payload = {"status": "failed", "error": error, "overrides": overrides, "seed": seed, "metrics": {},
               "wall_seconds": round(seconds, 3), "versions": {}}
    path.write_text(json.dumps(payload, indent=2))


def _failed_return(job: _Job) -> JobReturn:
    """A crashed trial returns NaN (like a failed trial of the train task) so the sweep goes on."""
    result = JobReturn()
    task_cfg = job.config.copy()
    with read_write(task_cfg), open_dict(task_cfg):
        del task_cfg["hydra"]
    result.cfg = task_cfg
    hydra_cfg = OmegaConf.create({"hydra": OmegaConf.to_container(job.config.hydra, resolve=False)})
    hydra_cfg.hydra.runtime.output_dir = str(job.job_dir.resolve())  # where the sweeper finds metrics.json
    result.hydra_cfg = hydra_cfg
    result.overrides = job.overrides
    result.working_dir = str(job.job_dir)
    result.task_name = str(job.config.hydra.job.name)
    result.status = JobStatus.COMPLETED
    result.return_value = math.nan
    return result


def _remove_if_empty(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:
        pass


def _shut_down(workers: dict[int, subprocess.Popen], grace_seconds: float = 10.0) -> None:
    """End of the sweep: close every worker's job pipe (it exits on EOF), then terminate stragglers."""
    for process in list(workers.values()):
        if process.stdin is not None:
            try:
                process.stdin.close()
            except OSError:
                pass
    deadline = time.monotonic() + grace_seconds
    for process in list(workers.values()):
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
    _terminate(workers)


def _terminate(running: dict[int, subprocess.Popen], grace_seconds: float = 10.0) -> None:
    """Stop the trials still running (on Ctrl-C or an error in the launcher)."""
    processes = list(running.values())
    for process in processes:
        if process.poll() is None:
            process.terminate()
    deadline = time.monotonic() + grace_seconds
    for process in processes:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdin is not None and not process.stdin.closed:
            try:
                process.stdin.close()
            except OSError:
                pass
