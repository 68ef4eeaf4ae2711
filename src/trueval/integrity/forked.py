"""Work spread over forked worker processes of one thread each (``forked_map``).

torch's own threads share the gate's search badly: its steps are many small tensor operations with
Python between them, and measured on the 2-core machine the search of CIFAR-10 took 53 s on two
threads against 89 s on one, while two one-thread searches side by side took 89 s each. Processes
forked from this one share its arrays without copying them (the pages are only read) and need not
import torch again; each does a share of independent rows on one thread.
"""

from __future__ import annotations

import contextlib
import logging
import os
from typing import TYPE_CHECKING, Callable, Iterator, Sequence, TypeVar

import torch

if TYPE_CHECKING:
    from concurrent.futures import ProcessPoolExecutor

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

# the job the workers run: set before the pool forks them, so they inherit it instead of receiving
# its arrays through a pipe
_JOB: tuple[Callable, Sequence] | None = None


def cores() -> int:
    """Cores this process may run on, at most 16 (each worker adds its own memory: 340 MB in the
    search of CIFAR-10)."""
    n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return min(16, n)


def can_fork() -> bool:
    import multiprocessing
    import sys

    return sys.platform.startswith("linux") and "fork" in multiprocessing.get_all_start_methods()


def search_workers(device: torch.device) -> int:
    """How many processes the search may use: one per thread torch is allowed (``OMP_NUM_THREADS``,
    ``torch.set_num_threads``) and per core, on the CPU only (a GPU does one search at a time)."""
    if device.type != "cpu" or not can_fork():
        return 1
    return max(1, min(torch.get_num_threads(), cores()))


def fork_pool(workers: int) -> "ProcessPoolExecutor":
    """A ``ProcessPoolExecutor`` of ``workers`` processes forked from this one, one torch thread each;
    the heap's free pages handed back first (``return_free_memory``)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from trueval.core.allocator import return_free_memory  # looked up per call: tests replace it

    return_free_memory()
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"), initializer=_worker_start)
    try:
        with _signals_held():  # with the fork start method the pool forks all its workers at its first task
            pool.submit(int)
    except BaseException:  # a signal that came meanwhile is delivered (raised) as the hold ends
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    return pool


_WORKER_SIGNALS = ("SIGINT", "SIGTERM")


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """SIGINT and SIGTERM blocked in this thread while workers are forked: a forked worker inherits the
    task's handler (``SignalGuard``) until its ``_worker_start`` runs, and a signal in between raised
    ``RunInterrupted`` there and printed its traceback. Held, such a signal waits for the worker's
    own handlers; here it is delivered when the hold ends."""
    import signal

    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {getattr(signal, n) for n in _WORKER_SIGNALS})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _worker_start() -> None:
    """A worker's first step: one torch thread, and the signals left to the parent. A forked worker
    inherits the task's handler (``SignalGuard``), which raised ``RunInterrupted`` in each worker the
    parent stopped and printed its traceback; Ctrl-C reaches every process of the terminal's group,
    and the parent, which decides what happens, stops the workers itself. The signals were held
    while the worker was forked (``_signals_held``): one that came since is delivered now."""
    import signal

    torch.set_num_threads(1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {getattr(signal, n) for n in _WORKER_SIGNALS})


def _run(i: int):
    fn, parts = _JOB
    return fn(parts[i])


def forked_map(fn: Callable[[T], R], parts: Sequence[T], workers: int) -> list[R]:
    """``[fn(p) for p in parts]``, in order, the parts shared among ``workers`` forked processes of one
    thread each (``forked_imap``)."""
    return list(forked_imap(fn, parts, workers))


def forked_imap(fn: Callable[[T], R], parts: Sequence[T], workers: int) -> Iterator[R]:
    """``fn(p)`` for each of ``parts``, yielded in order as they come (a progress bar can follow), the
    parts shared among ``workers`` forked processes of one thread each (in this process when
    ``workers`` < 2, or when a worker dies or none can be started: the parts not yet yielded are
    then done here, as they would be without workers). ``fn`` and ``parts`` reach the workers by the
    fork, not by pickling; only the results come back through a pipe."""
    global _JOB
    if workers < 2 or len(parts) < 2 or not can_fork():
        yield from (fn(p) for p in parts)
        return
    from concurrent.futures.process import BrokenProcessPool

    _JOB = (fn, parts)
    pool = None
    done = 0  # results handed to the reader
    try:
        try:
            pool = fork_pool(min(workers, len(parts)))
            for result in pool.map(_run, range(len(parts))):
                done += 1
                yield result
        except (BrokenProcessPool, OSError) as exc:  # a worker killed, or none could be started
            log.warning("integrity gate: worker processes failed (%s); doing their work in this process",
                        str(exc) or type(exc).__name__)
            if pool is not None:
                _stop_workers(pool)
            yield from (fn(p) for p in parts[done:])
    except GeneratorExit:  # the reader stopped early: the parts still running are not wanted
        if pool is not None and done < len(parts):
            _stop_workers(pool)
        raise
    except BaseException:
        if pool is not None:
            _stop_workers(pool)  # SIGTERM, Ctrl-C, an error: not after the running parts (11 s each on CIFAR-10)
        raise
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        _JOB = None


def _stop_workers(pool) -> None:
    """End the pool's workers now, whatever they are doing (their results are no longer wanted).
    ``ProcessPoolExecutor`` stops a worker only between tasks before Python 3.14's ``terminate_workers``."""
    if hasattr(pool, "terminate_workers"):
        pool.terminate_workers()
        return
    for process in list((getattr(pool, "_processes", None) or {}).values()):
        process.terminate()
