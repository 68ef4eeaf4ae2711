"""Where large arrays' memory comes from: glibc's allocator, tuned while a stage allocates and frees
many large arrays, and arrays in shared 4 KiB pages (``shared_array``).

glibc serves an allocation above its mmap threshold (128 KiB, raised as it goes up to 32 MiB) with a
fresh ``mmap`` and unmaps it on ``free``: every new temporary then costs page faults that zero its
memory again. The integrity gate's search makes such temporaries by the thousand (tens of MB each,
NumPy and torch on the CPU). Inside ``reuse_freed_memory`` every allocation comes from the heap and
freed memory stays there for the next one; on leaving, the allocator gets settings close to its own
steady state back and the kept memory is returned to the system (``malloc_trim``). Measured on the
2-core machine, 3 runs each in turn: the whole cold ``audit.py data=cifar10`` took 63.3 s wall median
(23.3 s of system time) before, 52.7 s (13.9 s) with these settings, the same pairs found, 0.7 GB
more peak memory.

Not glibc (musl, macOS, Windows): nothing changes. Environment variables (``MALLOC_MMAP_MAX_``)
would do the same for the whole process, but only if set before it starts, and for every stage.

Tried and dropped (twenty-second session): turning NumPy's transparent-huge-page advice off
(``NUMPY_MADVISE_HUGEPAGE=0``). On the 2-core VM it made the cold CIFAR-10 audit 0.80-0.90 of the
time for one hour and 1.07-1.15 the next, and a run after an idle spell slower; which page size the
host serves cheaply changes with its memory's state (``docs/integrity-gate.md``).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
from typing import Iterator

import numpy as np

# mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD, _M_MMAP_MAX = -1, -2, -3, -4
_KEEP = {_M_MMAP_MAX: 0, _M_TRIM_THRESHOLD: 2**31 - 1, _M_TOP_PAD: 64 << 20}
# after: the values glibc's dynamic threshold reaches on a process that handled large arrays (setting
# any of them by hand turns the dynamic adjustment off for good, so they are set to where it ends)
_AFTER = {_M_MMAP_MAX: 65536, _M_MMAP_THRESHOLD: 32 << 20, _M_TRIM_THRESHOLD: 64 << 20, _M_TOP_PAD: 128 << 10}


def _glibc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt.argtypes, libc.mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
        libc.malloc_trim.argtypes, libc.malloc_trim.restype = [ctypes.c_size_t], ctypes.c_int
        return libc
    except (OSError, AttributeError):
        return None


@contextlib.contextmanager
def reuse_freed_memory() -> Iterator[bool]:
    """Within: large allocations reuse freed heap memory instead of fresh pages. Yields whether it applies."""
    libc = _glibc()
    applied = libc is not None and all(libc.mallopt(k, v) == 1 for k, v in _KEEP.items())
    try:
        yield applied
    finally:
        if libc is not None:
            for k, v in _AFTER.items():
                libc.mallopt(k, v)
            libc.malloc_trim(0)


def return_free_memory() -> None:
    """Hand the heap's free pages back to the system now (``malloc_trim``; the settings stay).

    Before forking workers: a worker's first write to a heap page it shares with this process makes
    the kernel copy the page into a new one, and the free memory ``reuse_freed_memory`` keeps is
    where a worker's temporaries land. Handed back, those pages are zero-filled for the worker
    instead of copied, and they come from the kernel's most recently freed pages, which the 2-core
    machine's host still backs. Measured there on CIFAR-10's search, two runs each in turn: the
    verification's workers 9.1-9.7 s of system time and 158,000-164,000 page faults before, 2.1-3.1 s
    and 99,000-112,000 with it; the verification 20.0-20.2 s against 16.1-16.5 s. It takes 0.01 s.
    Where the host charges little for fresh memory it costs a little instead (an hour later: workers
    2.6-4.8 s of system time against 0.6 s, the verification 22.0-23.6 s against 21.3 s)."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)


def shared_array(shape: tuple[int, ...], dtype: np.dtype | type) -> np.ndarray:
    """An array in anonymous memory shared with the processes this one forks next (what a forked
    worker writes there, this process reads). Its pages are 4 KiB ones, touched first by whoever
    writes them: NumPy asks for huge pages, whose first touch after an idle spell cost 4.8-5.5 s per
    360 MB on the 2-core machine against 0.15-0.23 s (``benchmarks/fresh_memory.py``; in other states
    of the host's memory the two cost about the same)."""
    import mmap

    room = mmap.mmap(-1, max(1, int(np.prod(shape)) * np.dtype(dtype).itemsize))
    return np.ndarray(shape, dtype, buffer=room)
