"""One CPU thread for the small fits of the quality checks.

Their matrices are too small to split across threads, and on a shared CPU a second thread waiting
for a core costs far more than it gives: on the 2-core development machine under load the digits
label check took 165 s with torch's 2 threads and 9.4 s with one; a cross-validated logistic
regression on 240 images 5.4 s with OpenBLAS's 2 threads and 0.25 s with one.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch


@contextmanager
def one_thread() -> Iterator[None]:
    """torch, BLAS and OpenMP limited to one thread inside the block, restored after."""
    from threadpoolctl import threadpool_limits

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(1):
            yield
    finally:
        torch.set_num_threads(threads)
