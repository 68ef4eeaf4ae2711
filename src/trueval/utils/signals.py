"""SIGTERM and Ctrl-C stop a run at a step boundary, so that a preempted job looks preempted.

This module needs no Lightning (the runner of every task imports it, the audit too); the
Lightning callback ``StopOnSignal`` is in ``trueval.callbacks.interruption``.

Without this, pytorch-lightning 2.6 turns SIGTERM into ``SIGTERMException``, a ``SystemExit``
with no code (exit 0, nothing recorded), and Ctrl-C into ``sys.exit(1)`` from wherever the
KeyboardInterrupt landed, possibly inside an optimizer step.

``SignalGuard`` (around the whole task, installed by the runner) replaces the SIGINT and SIGTERM
handlers. While a Lightning loop runs with ``StopOnSignal`` the first signal is only noted and the
callback raises ``RunInterrupted`` at the next batch boundary; outside a loop (data setup, the
integrity gate) or at the second signal it is raised at once. Lightning registers its own SIGTERM
handler during ``fit``/``test`` and chains ours, so its (DDP-aware) ``SIGTERMException`` may come
first; the runner treats both the same. Nothing is saved at the interruption: ``last.ckpt`` already
holds the last completed epoch (see ``trueval.callbacks.checkpoint``), which is what makes a
resume exact; the interrupted epoch is trained again.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from types import FrameType, TracebackType
from typing import Any

log = logging.getLogger("trueval")

HANDLED = (signal.SIGINT, signal.SIGTERM)


class RunInterrupted(BaseException):
    """A run stopped by a signal. BaseException, like KeyboardInterrupt: no ``except Exception`` swallows it."""

    def __init__(self, signum: int) -> None:
        self.signum = int(signum)
        super().__init__(f"interrupted by {signal.Signals(self.signum).name} (signal {self.signum})")

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


def interruption_signal(exc: BaseException, guard: "SignalGuard | None") -> int | None:
    """The signal number behind ``exc`` when it is an interruption (ours or Lightning's SIGTERM)."""
    if isinstance(exc, RunInterrupted):
        return exc.signum
    # Lightning is imported only by tasks that run its loops (not by the audit): when it was never
    # imported, it cannot have raised its SIGTERMException
    lightning = sys.modules.get("pytorch_lightning.utilities.exceptions")
    if lightning is not None and isinstance(exc, lightning.SIGTERMException):
        return guard.received[0] if guard is not None and guard.received else int(signal.SIGTERM)
    return None


class SignalGuard:
    """Context manager: SIGINT/SIGTERM handlers for the life of one task (main thread only).

    ``SignalGuard.active`` is the guard of the task now running (None outside one), for the task's
    ``StopOnSignal`` callback.
    """

    active: "SignalGuard | None" = None

    def __init__(self) -> None:
        self.received: list[int] = []
        self.deferring = False
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> "SignalGuard":
        if threading.current_thread() is threading.main_thread():
            for signum in HANDLED:
                self._previous[signum] = signal.getsignal(signum)
                signal.signal(signum, self._handle)
        SignalGuard.active = self
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
        self._previous = {}
        if SignalGuard.active is self:
            SignalGuard.active = None

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.received.append(int(signum))
        name = signal.Signals(signum).name
        if self.deferring and len(self.received) == 1:
            log.warning("%s received: stopping at the next step boundary (Ctrl-C again stops at once)", name)
            return
        raise RunInterrupted(self.received[0])

    def pending(self) -> int | None:
        return self.received[0] if self.received else None


