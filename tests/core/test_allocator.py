"""reuse_freed_memory: inside it, a freed large array's memory serves the next one (no new page
faults); outside it, each large temporary is fresh memory again (glibc's own behaviour)."""

from __future__ import annotations

import platform
import resource

import numpy as np
import pytest

from trueval.core.allocator import reuse_freed_memory

glibc = pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
                           reason="the settings are glibc's")


def _page_faults(arrays: int = 6, megabytes: int = 64) -> int:
    """Minor page faults while making and dropping ``arrays`` large temporaries, one at a time."""
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(arrays):
        a = np.ones((megabytes << 20) // 8)  # written: every page is touched
        del a
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


@glibc
def test_large_temporaries_reuse_freed_memory_inside_and_glibc_behaviour_comes_back() -> None:
    outside = _page_faults()
    with reuse_freed_memory() as applied:
        assert applied
        inside = _page_faults()
    after = _page_faults()
    # relative, not absolute: transparent huge pages change how many faults a fresh array costs
    assert inside * 3 < outside, (inside, outside)
    assert after * 2 > outside, (after, outside)  # on leaving, large arrays are fresh mappings again


def test_it_is_a_context_even_where_nothing_applies(monkeypatch: pytest.MonkeyPatch) -> None:
    import trueval.core.allocator as allocator

    monkeypatch.setattr(allocator, "_glibc", lambda: None)
    with reuse_freed_memory() as applied:
        assert applied is False
