"""What a first touch of fresh memory costs on this machine, by kind of memory and by who touches it.

On the 2-core development VM the host backs the guest's free memory again only when it is touched,
and how much that costs depends on the kind of page and on how long the memory lay free: the
integrity gate's cold timings follow it (``docs/integrity-gate.md``, "Fresh memory"). Each case runs
in a fresh process after ``--idle`` seconds with nothing running (memory a process freed a moment
ago is still backed; after a few seconds it is not), and prints seconds per case:

- ``numpy``: a NumPy array (NumPy advises transparent huge pages for arrays of 4 MB and more);
- ``4k``: anonymous memory of 4 KiB pages (a private ``mmap``, no advice);
- ``shared``: anonymous shared memory (``mmap``), as the gate's fingerprints use;
- ``threads``: two threads of one process, each touching half of a NumPy array;
- ``processes``: two processes, each touching its own half-sized NumPy array.

Usage: ``python benchmarks/fresh_memory.py [--mb 360] [--idle 8]``.
"""

from __future__ import annotations

import argparse
import mmap
import subprocess
import sys
import threading
import time

import numpy as np

PAGE = 4096


def _touch(a: np.ndarray) -> None:
    a.reshape(-1)[::PAGE] = 1  # one byte per page: the kernel zero-fills the rest


def _case(kind: str, mb: int) -> float:
    n = mb << 20
    start = time.perf_counter()
    if kind == "numpy":
        _touch(np.empty(n, np.uint8))
    elif kind in ("4k", "shared"):
        flags = mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS if kind == "4k" else mmap.MAP_SHARED | mmap.MAP_ANONYMOUS
        _touch(np.frombuffer(mmap.mmap(-1, n, flags=flags), np.uint8))
    elif kind == "threads":
        a = np.empty(n, np.uint8)
        halves = [threading.Thread(target=_touch, args=(part,)) for part in (a[:n // 2], a[n // 2:])]
        [t.start() for t in halves]
        [t.join() for t in halves]
    else:
        raise ValueError(kind)
    return time.perf_counter() - start


def _in_fresh_process(kind: str, mb: int) -> float:
    out = subprocess.run([sys.executable, __file__, "--one", kind, "--mb", str(mb)], check=True,
                         capture_output=True, text=True).stdout
    return float(out.split()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=360)
    parser.add_argument("--idle", type=float, default=8.0)
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(f"{_case(args.one, args.mb):.3f}")
        return
    for kind in ("numpy", "4k", "shared", "threads", "processes"):
        time.sleep(args.idle)
        if kind == "processes":  # side by side: the slower of the two touches
            both = [subprocess.Popen([sys.executable, __file__, "--one", "numpy", "--mb", str(args.mb // 2)],
                                     stdout=subprocess.PIPE, text=True) for _ in range(2)]
            seconds = max(float(p.communicate()[0].split()[-1]) for p in both)
        else:
            seconds = _in_fresh_process(kind, args.mb)
        print(f"{kind:10s} {args.mb} MB first touched in {seconds:.2f} s")


if __name__ == "__main__":
    main()
