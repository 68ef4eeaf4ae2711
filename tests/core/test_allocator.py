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


def test_numpy_stops_advising_huge_pages_inside_and_its_setting_comes_back(monkeypatch: pytest.MonkeyPatch) -> None:
    # a fresh transparent huge page cost the 2-core VM ten times the small pages it replaced
    from trueval.core.allocator import _numpy_huge_pages

    monkeypatch.delenv("NUMPY_MADVISE_HUGEPAGE", raising=False)

    original = _numpy_huge_pages(True)
    try:
        for before in (True, False):
            _numpy_huge_pages(before)
            with reuse_freed_memory():
                assert _numpy_huge_pages(False) is False
            assert _numpy_huge_pages(before) is before
    finally:
        _numpy_huge_pages(bool(original))


def test_a_numpy_without_the_switch_changes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    import numpy as np

    from trueval.core.allocator import _numpy_huge_pages

    monkeypatch.delattr(np._core.multiarray, "_set_madvise_hugepage")
    assert _numpy_huge_pages(False) is None
    with reuse_freed_memory():
        pass


_COMMAND = """
import os, sys
from pathlib import Path
sys.argv = ["audit.py", "data=no_such_data"]  # a command that stops at composing: exit 2
from trueval.cli import main
from trueval.core.allocator import _numpy_huge_pages
try:
    main("audit", Path(sys.argv_root))
except SystemExit as exit_:
    print(exit_.code, os.environ.get("NUMPY_MADVISE_HUGEPAGE"), _numpy_huge_pages(True))
"""


@pytest.mark.parametrize("chosen,expected", [(None, "2 0 False"), ("1", "2 1 True")])
def test_every_command_runs_without_numpy_huge_pages_unless_the_user_chose(chosen: str | None,
                                                                          expected: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "NUMPY_MADVISE_HUGEPAGE"}
    if chosen is not None:
        env["NUMPY_MADVISE_HUGEPAGE"] = chosen
    code = _COMMAND.replace("sys.argv_root", repr(str(SRC.parent)))
    path = os.pathsep.join(p for p in (str(SRC), env.get("PYTHONPATH", "")) if p)  # Hydra may be there
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**env, "PYTHONPATH": path})
    assert proc.stdout.split()[-3:] == expected.split(), proc.stdout[-2000:] + proc.stderr[-2000:]


def test_a_user_who_asked_for_huge_pages_keeps_them_inside(monkeypatch: pytest.MonkeyPatch) -> None:
    from trueval.core.allocator import _numpy_huge_pages

    monkeypatch.setenv("NUMPY_MADVISE_HUGEPAGE", "1")
    original = _numpy_huge_pages(True)
    try:
        with reuse_freed_memory():
            assert _numpy_huge_pages(True) is True
    finally:
        _numpy_huge_pages(bool(original))
