"""Memory for large arrays: glibc's allocator tuned while a stage allocates and frees many, and NumPy's
huge-page advice off.

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

NumPy's huge-page advice. NumPy asks the kernel to back every array of 4 MB or more with transparent
huge pages (``madvise``; most distributions' kernels honour only asked-for huge pages). On the 2-core
machine, a VM whose host backs memory lazily, a fresh huge page costs far more than the small pages it
replaces: 256 MB of new array took 3.4 s with the advice and 0.09 s without, and joining CIFAR-10's
search thumbnails 3.3-5.7 s against 0.26 s. The commands therefore run with it off
(``small_pages_for_numpy``, as ``NUMPY_MADVISE_HUGEPAGE=0`` would), and ``reuse_freed_memory`` turns
it off while it lasts for library callers too; a ``NUMPY_MADVISE_HUGEPAGE`` the user set is left as
it is. The arrays are streamed through, not read at random, so large pages buy them little. Measured
on the whole cold ``audit.py data=cifar10``, 3 runs each in turn: off inside the gate 43.5 s against
50.3 s (A/B 0.855), off for the whole process 43.2 s against 48.0 s for the gate alone (A/B 0.899).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import sys
from typing import Iterator

# mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD, _M_MMAP_MAX = -1, -2, -3, -4
_KEEP = {_M_MMAP_MAX: 0, _M_TRIM_THRESHOLD: 2**31 - 1, _M_TOP_PAD: 64 << 20}
# after: the values glibc's dynamic threshold reaches on a process that handled large arrays (setting
# any of them by hand turns the dynamic adjustment off for good, so they are set to where it ends)
_AFTER = {_M_MMAP_MAX: 65536, _M_MMAP_THRESHOLD: 32 << 20, _M_TRIM_THRESHOLD: 64 << 20, _M_TOP_PAD: 128 << 10}


_HUGE_PAGES_VARIABLE = "NUMPY_MADVISE_HUGEPAGE"


def small_pages_for_numpy() -> None:
    """NumPy's arrays on ordinary pages in this process and those it starts, unless the user chose
    (``NUMPY_MADVISE_HUGEPAGE`` set): called first by every command."""
    if _HUGE_PAGES_VARIABLE in os.environ:
        return
    os.environ[_HUGE_PAGES_VARIABLE] = "0"  # read when NumPy is imported: child processes
    if "numpy" in sys.modules:
        _numpy_huge_pages(False)


def _numpy_huge_pages(enabled: bool) -> bool | None:
    """Set NumPy's huge-page advice for new arrays; the previous setting (None: this NumPy has no switch)."""
    import numpy as np

    core = getattr(np, "_core", None) or getattr(np, "core", None)
    switch = getattr(getattr(core, "multiarray", None), "_set_madvise_hugepage", None)
    return None if switch is None else bool(switch(enabled))


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
    chosen = os.environ.get(_HUGE_PAGES_VARIABLE, "0") != "0"  # the user asked for huge pages
    advised = None if chosen else _numpy_huge_pages(False)
    try:
        yield applied
    finally:
        if advised is not None:
            _numpy_huge_pages(advised)
        if libc is not None:
            for k, v in _AFTER.items():
                libc.mallopt(k, v)
            libc.malloc_trim(0)
