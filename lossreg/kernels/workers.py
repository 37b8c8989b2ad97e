"""Parallel runs of lossreg's chunked kernels on a pool of Python threads.

lossreg's own kernels (fused element-wise kernels, chunked sums and domain scans) are
compiled once, serial and ``nogil``, over a range of chunks: ``kernel(c0, c1, *args)``
handles chunks ``c0 <= c < c1``. ``run_chunks`` splits the chunks into contiguous
ranges and runs them on threads. Compared with a ``parallel=True`` (prange) twin:

* one compile per kernel instead of two: Numba's parfor passes and the re-optimisation
  of the inlined loop body cost 1-3 s per parallel kernel (measured: focal's parallel
  driver 3.2 s on top of its 2.8 s serial compile);
* no Numba threading layer is started, so ``fork()`` after a large call is safe and
  concurrent callers need no lock whatever layer Numba would pick;
* results stay bit-identical for any number of threads: each chunk is summed in a fixed
  order into its own slot, and the slots are added exactly afterwards.

The pool is created on first use (never at import) with ``NUMBA_NUM_THREADS`` workers
(the cores Numba would use). ``set_pool`` replaces it (tests, applications that own
their threads); ``n_threads`` of a ``Loss`` caps the workers of its calls. A forked
child (multiprocessing's default on Linux, DataLoader workers) drops the inherited pool,
whose threads did not survive the fork, and starts its own.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Callable


def default_workers() -> int:
    """Numba's thread count setting (NUMBA_NUM_THREADS, else the CPU count), read
    without starting Numba's threading layer."""
    try:
        from numba.core.config import NUMBA_NUM_THREADS
        return max(1, int(NUMBA_NUM_THREADS))
    except Exception:  # noqa: BLE001 - numba not importable: the CPU count
        return max(1, os.cpu_count() or 1)


class Pool:
    """A lazily started ``ThreadPoolExecutor`` with ``workers`` threads."""

    def __init__(self, workers: int | None = None):
        self.workers = default_workers() if workers is None else max(1, int(workers))
        self._executor: ThreadPoolExecutor | None = None

    def executor(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=max(1, self.workers - 1),
                                                thread_name_prefix="lossreg")
        return self._executor

    def shutdown(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None


class _Default:
    pool: Pool | None = None


def _forget_after_fork() -> None:
    """A forked child inherits the pool object but not its threads: work submitted to it
    would never run. Drop it; the child starts its own pool on first use."""
    _Default.pool = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_after_fork)


def pool() -> Pool:
    """The process's pool (created on first use)."""
    if _Default.pool is None:
        _Default.pool = Pool()
    return _Default.pool


def set_pool(new: Pool | None) -> Pool | None:
    """Replace the pool (None: a fresh default one on next use); returns the old one."""
    old, _Default.pool = _Default.pool, new
    return old


def run_chunks(kernel: Callable, n_chunks: int, workers: int, *args) -> None:
    """``kernel(c0, c1, *args)`` over chunks [0, n_chunks), on up to ``workers`` threads
    (the calling thread takes the first range). ``workers <= 1``: one serial call."""
    if workers <= 1 or n_chunks <= 1:
        kernel(0, n_chunks, *args)
        return
    p = pool()
    k = min(workers, n_chunks, p.workers)
    if k <= 1:
        kernel(0, n_chunks, *args)
        return
    cuts = [n_chunks * i // k for i in range(k + 1)]
    executor = p.executor()
    futures = [executor.submit(kernel, cuts[i], cuts[i + 1], *args) for i in range(1, k)]
    try:
        kernel(cuts[0], cuts[1], *args)
    finally:
        for future in futures:
            future.result()
