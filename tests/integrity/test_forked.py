"""Verification shared among forked worker processes: the same pairs and scores, bit for bit, as one
process verifying them all; a worker that dies costs time, never a result."""

from __future__ import annotations

import logging
import os

import numpy as np
import pytest
import torch

from trueval.integrity import forked


def test_forked_map_keeps_the_order_and_runs_in_other_processes() -> None:
    here = os.getpid()
    done = forked.forked_map(lambda x: (x * x, os.getpid(), torch.get_num_threads()), list(range(7)), 2)
    assert [d[0] for d in done] == [x * x for x in range(7)]
    assert all(pid != here for _, pid, _ in done)
    assert {threads for _, _, threads in done} == {1}  # one thread each: the workers share the cores
    alone = forked.forked_map(lambda x: os.getpid(), [1, 2], 1)
    assert alone == [here, here]


def test_workers_are_forked_after_the_free_heap_pages_are_handed_back(monkeypatch) -> None:
    """``fork_pool`` (the verification's and the decoding's workers) hands the heap's free pages back
    before it forks: the workers' first writes then cost a quarter of the system time."""
    import trueval.core.allocator as allocator

    events: list[str] = []
    monkeypatch.setattr(allocator, "return_free_memory", lambda: events.append("returned"))
    here = os.getpid()
    done = forked.forked_map(lambda x: (events.append("ran"), os.getpid())[1], [1, 2, 3], 2)
    assert events == ["returned"]  # once, here, before the workers (their own appends stay theirs)
    assert all(pid != here for pid in done)


def test_a_worker_that_dies_costs_time_not_a_result(caplog) -> None:
    here = os.getpid()

    def dies_in_a_worker(x: int) -> int:
        if os.getpid() != here:
            os._exit(3)  # as the kernel's out-of-memory killer would end it
        return x + 1

    with caplog.at_level(logging.WARNING):
        assert forked.forked_map(dies_in_a_worker, [1, 2, 3], 2) == [2, 3, 4]
    assert "worker processes failed" in caplog.text


def test_workers_that_cannot_start_cost_time_not_a_result(monkeypatch, caplog) -> None:
    import concurrent.futures

    class NoFork(concurrent.futures.ProcessPoolExecutor):
        def map(self, *args, **kwargs):
            raise BlockingIOError(11, "Resource temporarily unavailable")  # as fork() under a process limit

    monkeypatch.setattr(concurrent.futures, "ProcessPoolExecutor", NoFork)
    with caplog.at_level(logging.WARNING):
        assert forked.forked_map(lambda x: 2 * x, [1, 2, 3], 2) == [2, 4, 6]
    assert "Resource temporarily unavailable" in caplog.text


def test_the_search_uses_one_process_on_a_gpu_and_one_per_allowed_thread() -> None:
    assert forked.search_workers(torch.device("meta")) == 1
    assert forked.search_workers(torch.device("cpu")) == max(1, min(torch.get_num_threads(), forked.cores()))


def test_verification_in_worker_processes_equals_one_process(monkeypatch) -> None:
    """Every hypothesis of a pair goes to one worker (the rescorings take each pair's best one): the
    pairs, their scores and the threshold are exactly what one process finds."""
    from synthetic import NEAR, photos

    import trueval.integrity.near_duplicates as nd
    from trueval.core.samples import SampleSet
    from trueval.integrity.fingerprints import compute_prints
    from trueval.integrity.settings import IntegritySettings

    imgs = photos(90, seed=5)
    copies = [np.asarray(NEAR[kind](imgs[i])) for i, kind in enumerate(("shift", "jpeg", "crop", "brighter",
                                                                        "shift", "jpeg"))]
    test = np.concatenate([imgs[60:], np.stack(copies)])
    images = np.concatenate([imgs[:60], test])
    prints = compute_prints(SampleSet("all", np.zeros(len(images), np.int64), images=images, sources=["gen"]))
    groups = np.r_[np.zeros(60, np.int64), np.ones(len(test), np.int64)]
    # the workers are a CPU search's (on a GPU it stays in one process); on a machine with a GPU, CUDA
    # is set up in this process first, as a training run would have, and the workers must not touch it
    settings = IntegritySettings.from_config({"cache": False, "device": "cpu"})
    if torch.cuda.is_available():
        torch.zeros(1, device="cuda")
    one = nd.near_pairs(prints, groups, settings)
    calls: list[int] = []
    real = forked.forked_map
    monkeypatch.setattr(nd, "_FORK_MIN_HYPOTHESES", 0)
    monkeypatch.setattr(nd, "search_workers", lambda device: 2)
    monkeypatch.setattr(nd, "forked_map", lambda fn, parts, workers: calls.append(len(parts)) or real(fn, parts, workers))
    shared = nd.near_pairs(prints, groups, settings)
    assert calls == [4]  # two parts per worker
    assert len(one.a) >= 4  # the copies were found
    for field in ("a", "b", "score"):
        assert np.array_equal(getattr(one, field), getattr(shared, field)), field
    assert one.threshold == shared.threshold


@pytest.mark.parametrize("workers", [1, 2])
def test_verified_parts_keep_each_pair_whole(monkeypatch, workers: int) -> None:
    import trueval.integrity.near_duplicates as nd

    seen: list[set] = []

    class Recorder:
        def score(self, a, b, flip, scale, aligned, near, refinable=None):
            seen.append(set(zip(a.tolist(), b.tolist())))
            return (a * 1000 + b).astype(np.float32)

    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 20, 500), rng.integers(20, 40, 500)
    hyp = (a, b, np.zeros(500, bool), np.ones(500), np.ones(500, bool))
    monkeypatch.setattr(nd, "_FORK_MIN_HYPOTHESES", 0)
    monkeypatch.setattr(nd, "forked_map", lambda fn, parts, w: [fn(p) for p in parts])  # parts, in this process
    out = nd._verified(Recorder(), hyp, 0.9, None, workers)
    assert np.array_equal(out, (a * 1000 + b).astype(np.float32))
    assert len(seen) == (1 if workers == 1 else 4)
    for i, s in enumerate(seen):
        assert all(not (s & t) for t in seen[i + 1:])  # no pair in two parts


def test_a_signal_stops_the_workers_at_once() -> None:
    """SIGTERM (or Ctrl-C) during a forked verification ends the workers' parts instead of waiting for
    them: on CIFAR-10 the audit took 13 s to exit on SIGTERM while its workers finished 11-s parts."""
    import signal
    import time

    here = os.getpid()
    seen: list[int] = []

    def slow(x: int) -> int:
        if os.getpid() != here:
            time.sleep(60)
        return x

    class Stop(Exception):
        pass

    def handler(signum, frame):
        seen.extend(p.pid for p in __import__("multiprocessing").active_children())
        raise Stop

    old = signal.signal(signal.SIGALRM, handler)
    start = time.perf_counter()
    try:
        signal.setitimer(signal.ITIMER_REAL, 1.0)
        with pytest.raises(Stop):
            forked.forked_map(slow, [1, 2, 3, 4], 2)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    assert time.perf_counter() - start < 15
    assert seen  # the workers were running when the signal came
    for pid in seen:  # and are gone now
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_workers_end_quietly_when_the_reader_stops_early(capfd, monkeypatch) -> None:
    """A reader that stops before the generator's end (``zip`` over the parts) closes it: the workers
    are stopped only if parts are still running, and they end without a word. They used to inherit
    the task's signal handler and print a ``RunInterrupted`` traceback each, in the middle of every
    cold CIFAR-10 audit."""
    import gc

    from trueval.utils.signals import SignalGuard

    stopped: list[int] = []
    real_stop = forked._stop_workers
    monkeypatch.setattr(forked, "_stop_workers", lambda pool: stopped.append(1) or real_stop(pool))
    parts = list(range(4))
    with SignalGuard():  # the runner's guard, as around every task
        got = [r for _, r in zip(parts, forked.forked_imap(lambda x: x + 1, parts, 2))]
        gc.collect()
        assert got == [1, 2, 3, 4] and stopped == []  # every result read: the workers end normally
        first = next(iter(forked.forked_imap(lambda x: x + 1, parts, 2)))
        gc.collect()
    assert first == 1 and stopped == [1]  # three parts not read: stopped
    err = capfd.readouterr().err
    assert "Traceback" not in err and "RunInterrupted" not in err, err


def test_workers_leave_ctrl_c_to_the_parent() -> None:
    """Ctrl-C reaches every process of the terminal's group: the workers ignore it (the parent stops
    them), and SIGTERM ends them at once, without Python's handlers."""
    import signal

    from trueval.utils.signals import SignalGuard

    with SignalGuard():
        handlers = forked.forked_map(lambda _: (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)),
                                     [0, 1], 2)
    assert handlers == [(signal.SIG_IGN, signal.SIG_DFL)] * 2


def test_a_signal_before_a_worker_has_started_ends_it_without_a_word(monkeypatch, capfd, tmp_path) -> None:
    """SIGTERM can reach a worker between its fork and its first step (``_worker_start``), while it
    still has the task's handler: the signals are held across the fork, so it waits for the worker's
    own handlers and ends the worker at once. Seen once in a full test run under load."""
    import signal
    import time

    from trueval.utils.signals import SignalGuard

    real = forked._worker_start

    def slow_start() -> None:
        try:
            time.sleep(0.5)  # the signal comes in here
            real()
        except BaseException as exc:  # the task's handler raised here
            (tmp_path / f"raised-{os.getpid()}").write_text(type(exc).__name__)
            raise

    monkeypatch.setattr(forked, "_worker_start", slow_start)
    with SignalGuard():
        pool = forked.fork_pool(2)
        pids = [w.pid for w in pool._processes.values()]
        for pid in pids:
            os.kill(pid, signal.SIGTERM)
        time.sleep(1.5)
        pool.shutdown(wait=True, cancel_futures=True)
    assert len(pids) == 2 and not list(tmp_path.iterdir()), [p.read_text() for p in tmp_path.iterdir()]
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    err = capfd.readouterr().err
    assert "Traceback" not in err and "RunInterrupted" not in err, err
