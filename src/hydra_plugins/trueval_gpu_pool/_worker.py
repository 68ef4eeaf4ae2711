"""Trial process of the gpu_pool launcher, in one of two modes.

* ``python -m hydra_plugins.trueval_gpu_pool._worker PAYLOAD RESULT``: runs one Hydra job and exits.
* ``python -m hydra_plugins.trueval_gpu_pool._worker --serve``: a long-lived worker for one slot. It
  reads one job a line from stdin (a JSON list ``[payload, result, output]``; ``output`` is the
  trial's ``trial.out``, or ``""`` to leave the worker's own stdout/stderr) and runs them one after
  the other, so the Python/torch/Lightning imports and CUDA init are paid once per slot, not per trial.

Either way the job's ``JobReturn`` is pickled to RESULT (atomically); the launcher treats a missing
RESULT after the process died as a crashed trial. A job that fails outside the task function (where
trueval records its own failures) ends the serving worker, so the launcher records it as crashed and
starts a fresh worker for the next trial.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import pickle
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path

from hydra_plugins.trueval_gpu_pool.gpu_pool_launcher import RETIRE_SUFFIX, SYS_PATH_ENV


def _extend_sys_path() -> None:
    sys.path[:0] = [p for p in json.loads(os.environ.get(SYS_PATH_ENV, "[]")) if p not in sys.path]


def _run_job(payload_path: str) -> bytes:
    """Run the job of one payload; the pickled ``JobReturn``."""
    import cloudpickle
    from hydra.core.hydra_config import HydraConfig
    from hydra.core.singleton import Singleton
    from hydra.core.utils import JobStatus, run_job, setup_globals

    state = pickle.loads(Path(payload_path).read_bytes())
    setup_globals()
    Singleton.set_state(state["singletons"])
    HydraConfig.instance().set_config(state["config"])
    result = run_job(
        hydra_context=state["hydra_context"],
        task_function=state["task_function"],
        config=state["config"],
        job_dir_key="hydra.sweep.dir",
        job_subdir_key="hydra.sweep.subdir",
    )
    try:
        return cloudpickle.dumps(result)
    except Exception:  # noqa: BLE001 - an exception or return value that cannot be pickled
        value = result._return_value
        result.return_value = RuntimeError(f"{type(value).__name__}: {value}") if result.status == JobStatus.FAILED else repr(value)
        return cloudpickle.dumps(result)


def _write_result(blob: bytes, result_path: str) -> None:
    tmp = Path(f"{result_path}.tmp")
    tmp.write_bytes(blob)
    os.replace(tmp, result_path)


def main(payload_path: str, result_path: str) -> int:
    _extend_sys_path()
    _write_result(_run_job(payload_path), result_path)
    return 0


@contextlib.contextmanager
def _output_to(path: str) -> Iterator[None]:
    """Point fds 1 and 2 (so also prints of C code and child processes) at ``path`` for one job."""
    if not path:
        try:
            yield
        finally:
            _flush()
        return
    _flush()
    saved = [os.dup(1), os.dup(2)]
    target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.dup2(target, 1)
        os.dup2(target, 2)
        yield
    finally:
        _flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, target):
            os.close(fd)


@contextlib.contextmanager
def _process_state_restored() -> Iterator[None]:
    """Undo what a trial changes in the process that the next trial would otherwise inherit."""
    environ, cwd, argv = dict(os.environ), os.getcwd(), list(sys.argv)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(environ)
        os.chdir(cwd)
        sys.argv[:] = argv


def _free_memory() -> bool:
    """Free what the last trial left; False when its CUDA context is broken (a device-side assert
    poisons every later CUDA call of the process), so the worker must make way for a fresh one."""
    gc.collect()
    torch = sys.modules.get("torch")
    if torch is None or not torch.cuda.is_initialized():
        return True
    try:
        torch.cuda.synchronize()
        torch.cuda.empty_cache()
    except Exception:  # noqa: BLE001 - any CUDA error here means the context is unusable
        traceback.print_exc()
        return False
    return True


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError, AttributeError):
            pass


def serve() -> int:
    """Run jobs read from stdin until it closes; trials get /dev/null as stdin, not the job pipe."""
    _extend_sys_path()
    commands = os.fdopen(os.dup(0), "r", encoding="utf-8")
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    try:
        for line in commands:
            if not line.strip():
                continue
            payload_path, result_path, output = json.loads(line)
            with _output_to(output), _process_state_restored():
                try:
                    blob = _run_job(payload_path)
                except Exception:  # noqa: BLE001 - dying makes the launcher record a crashed trial
                    traceback.print_exc()
                    _flush()
                    os._exit(1)
                except SystemExit as exc:  # as a one-trial process would have exited
                    _flush()
                    os._exit(exc.code if isinstance(exc.code, int) and exc.code else 1)
            healthy = _free_memory()
            if not healthy:  # tell the launcher before it can hand this worker another trial
                Path(f"{result_path}{RETIRE_SUFFIX}").touch()
            _write_result(blob, result_path)
            del blob
            if not healthy:
                _flush()
                os._exit(3)
    except KeyboardInterrupt:  # Ctrl-C reaches the whole process group; the launcher reports it
        _flush()
        os._exit(130)
    _flush()
    # os._exit: threads a trial left behind (loggers, data loaders) must not keep the worker alive
    os._exit(0)


if __name__ == "__main__":
    if sys.argv[1:] == ["--serve"]:
        sys.exit(serve())
    sys.exit(main(sys.argv[1], sys.argv[2]))
