"""Every launch of Numba's threading layer (a ``prange`` kernel) goes through ``launch``.

lossreg's element-wise kernels run on its own Python thread pool (``kernels.workers``);
the domain scans and sums (``kernels.reduce.Chunked``), the row kernels, the label checks
and a plugin's ``parallel=True`` kernels run on Numba's threading layer, which Numba picks
once per process (``NUMBA_THREADING_LAYER``: ``tbb``, else ``omp``, else ``workqueue``).
The layers differ in what they survive:

* ``tbb``: thread-safe and fork-safe;
* ``omp`` with GNU OpenMP (Linux): thread-safe, but a process forked after the layer
  started is killed (SIGTERM, "fork() called from a process already using GNU OpenMP")
  at its first parallel launch;
* ``workqueue``: fork-safe, but two threads launching at once abort the process
  (SIGABRT, "Concurrent access has been detected").

``with launch(workers) as parallel:`` makes every layer safe for lossreg's own launches:

* ``workers <= 1`` (small inputs): ``parallel`` is False and Numba's layer is not
  touched, so a process that only made small calls never starts it;
* under ``workqueue`` (and before the layer is known) the block holds one process-wide
  lock, so launches from concurrent threads take turns instead of aborting;
* in a child forked after the parent started GNU OpenMP, ``parallel`` is False: the
  child's lossreg calls run serially (same results) instead of being killed;
* ``workers`` below Numba's thread count is applied with ``numba.set_num_threads``
  (thread-local) for the block only.

This module does not import numba; it registers its fork hook at ``import lossreg`` so
that a layer started before fork by any code is seen. ``State`` holds the lock and the
fork verdict; tests may replace them.
"""

from __future__ import annotations

import os
import sys
import threading


class State:
    """The process's launch lock and, after a fork, why the layer cannot be used."""

    lock = threading.RLock()
    unusable: str | None = None


def started_layer() -> str | None:
    """The name of Numba's threading layer if this process (or its parent, before a fork)
    started it, else None. Read without importing numba or starting the layer."""
    parallel = sys.modules.get("numba.np.ufunc.parallel")
    if parallel is None or not getattr(parallel, "_is_initialized", False):
        return None
    return getattr(parallel, "_threading_layer", None) or "unknown"


def _fork_unsafe(layer: str | None) -> bool:
    """True for a layer that kills a forked child at its first parallel launch: Numba's
    ``omp`` layer on GNU OpenMP (what Numba itself calls not fork-safe)."""
    if layer != "omp":
        return False
    omppool = sys.modules.get("numba.np.ufunc.omppool")
    return getattr(omppool, "openmp_vendor", "GNU") == "GNU"


def after_fork_in_child() -> None:
    """A fresh lock (another thread may have held the parent's at the fork); and, when the
    parent had started GNU OpenMP, every later launch in this child runs serially."""
    State.lock = threading.RLock()
    layer = started_layer()
    if _fork_unsafe(layer):
        State.unusable = (f"forked after Numba's {layer!r} threading layer started "
                          f"(GNU OpenMP is not fork-safe)")


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=after_fork_in_child)


class _Serial:
    """The context of a serial run: nothing to acquire or restore."""

    __slots__ = ()

    def __enter__(self) -> bool:
        return False

    def __exit__(self, *exc) -> None:
        return None


_SERIAL = _Serial()


class _Launch:
    """The context of a parallel launch (see the module docstring)."""

    __slots__ = ("workers", "lock", "previous")

    def __init__(self, workers: int):
        self.workers = workers
        self.lock = None
        self.previous = None

    def __enter__(self) -> bool:
        if started_layer() in (None, "workqueue"):
            # workqueue is not thread-safe; before the first launch the layer Numba will
            # pick is unknown, so that launch is serialised too.
            self.lock = State.lock
            self.lock.acquire()
        try:
            import numba

            if self.workers < numba.config.NUMBA_NUM_THREADS:
                self.previous = numba.get_num_threads()
                numba.set_num_threads(self.workers)
        except BaseException:
            self._release()
            raise
        return True

    def __exit__(self, *exc) -> None:
        try:
            if self.previous is not None:
                import numba

                numba.set_num_threads(self.previous)
        finally:
            self._release()

    def _release(self) -> None:
        if self.lock is not None:
            self.lock.release()
            self.lock = None


def launch(workers: int):
    """``with launch(workers) as parallel:`` run the prange kernel when ``parallel`` is
    True, its serial form otherwise; see the module docstring."""
    if workers <= 1 or State.unusable is not None:
        return _SERIAL
    return _Launch(int(workers))
