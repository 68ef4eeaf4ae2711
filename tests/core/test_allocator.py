"""reuse_freed_memory: inside it, a freed large array's memory serves the next one (no new page
faults); outside it, each large temporary is fresh memory again (glibc's own behaviour)."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from trueval.core.allocator import reuse_freed_memory

SRC = Path(__file__).resolve().parents[2] / "src"

glibc = pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
                           reason="the settings are glibc's")


# run in a fresh interpreter: what this process allocated before (other tests, xdist) and transparent
# huge pages change how many faults a fresh array costs; there, with huge pages off for the process,
# the counts are the same every run (98,310 / 16,370 / 98,310 on the 2-core machine)
_MEASURE = """
import ctypes, resource, sys
import numpy as np
ctypes.CDLL(None).prctl(41, 1, 0, 0, 0)  # PR_SET_THP_DISABLE: 4 KiB pages, one fault each
from trueval.core.allocator import reuse_freed_memory

def page_faults(arrays=6, megabytes=64):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(arrays):
        a = np.ones((megabytes << 20) // 8)  # written: every page is touched
        del a
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

outside = page_faults()
with reuse_freed_memory() as applied:
    inside = page_faults()
print(applied, outside, inside, page_faults())
"""


@glibc
def test_large_temporaries_reuse_freed_memory_inside_and_glibc_behaviour_comes_back() -> None:
    proc = subprocess.run([sys.executable, "-c", _MEASURE], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(SRC)})
    assert proc.returncode == 0, proc.stderr[-2000:]
    applied, outside, inside, after = proc.stdout.split()
    outside, inside, after = int(outside), int(inside), int(after)
    assert applied == "True"
    assert inside * 3 < outside, (inside, outside)
    assert after * 2 > outside, (after, outside)  # on leaving, large arrays are fresh mappings again


def test_it_is_a_context_even_where_nothing_applies(monkeypatch: pytest.MonkeyPatch) -> None:
    import trueval.core.allocator as allocator

    monkeypatch.setattr(allocator, "_glibc", lambda: None)
    with reuse_freed_memory() as applied:
        assert applied is False


_HAND_BACK = """
import ctypes
import numpy as np
ctypes.CDLL(None).prctl(41, 1, 0, 0, 0)  # PR_SET_THP_DISABLE
from trueval.core.allocator import return_free_memory, reuse_freed_memory

def resident_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 >> 20

with reuse_freed_memory():
    start = resident_mb()
    a = np.ones((256 << 20) // 8)
    del a
    kept = resident_mb()  # freed, and kept for the next array
    return_free_memory()
    print(start, kept, resident_mb())
"""


@glibc
def test_free_memory_kept_for_reuse_is_handed_back_on_request() -> None:
    """Before forking workers the gate hands the heap's free pages back (``forked.fork_pool``): a
    worker's temporaries then land in zero-filled pages instead of copies of this process's."""
    proc = subprocess.run([sys.executable, "-c", _HAND_BACK], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(SRC)})
    assert proc.returncode == 0, proc.stderr[-2000:]
    start, kept, after = (int(x) for x in proc.stdout.split())
    assert kept - start > 200, (start, kept)  # the 256 MB stayed resident
    assert after - start < 50, (start, kept, after)  # and went back
