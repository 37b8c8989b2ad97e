"""Numba's threading layer: small calls never start it; fork and threads are safe on
every layer (``lossreg._numba_threads``).

The process-level cases run in subprocesses with a bounded timeout: a forked child that
GNU OpenMP kills, a ``multiprocessing`` pool that hangs, or a workqueue abort must fail
the test, not the session. They reuse the session's kernel cache (conftest.py).
"""

import os
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

import lossreg
from lossreg import _numba_threads as nt

TIMEOUT = 240


def run(code: str, **env: str) -> str:
    environ = {**os.environ, **env}
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, env=environ, timeout=TIMEOUT)
    assert proc.returncode == 0, (proc.returncode, proc.stderr[-3000:])
    return proc.stdout


# -- small inputs ------------------------------------------------------------------------

SMALL = """
    import numpy as np, lossreg
    from lossreg._numba_threads import started_layer

    rng = np.random.default_rng(0)
    P = rng.dirichlet(np.ones(3), 4); Q = rng.dirichlet(np.ones(3), 4)
    labels = np.array([0, 2, 1, 0])
    x, y, w = rng.standard_normal(6), rng.standard_normal(6), rng.random(6)
    for n_threads in (None, 1):
        lossreg.get("mse", n_threads=n_threads).grad_hess(x, y, sample_weight=w)
        lossreg.get("rmse", n_threads=n_threads).value_and_grad(x, y)
        lossreg.get("kl_div", n_threads=n_threads).value_and_grad(P, Q, sample_weight=w[:4])
        sce = lossreg.get("softmax_cross_entropy", n_threads=n_threads,
                          class_weight=[1.0, 2.0, 0.5], ignore_index=1)
        sce.value_and_grad(labels, Q)
        sce(labels, Q, sample_weight=w[:4])
    print("LAYER", started_layer())
"""


def test_small_calls_never_start_the_threading_layer():
    """Element-wise, outer (rmse), row and label losses, with weights and n_threads: no
    prange kernel is compiled or launched, so a later fork is always safe."""
    assert run(SMALL).split()[-1] == "None"


# -- fork --------------------------------------------------------------------------------

FORK = """
    import os, multiprocessing as mp
    import numpy as np, lossreg
    from lossreg._numba_threads import started_layer

    from lossreg.losses.rows import SERIAL_BELOW

    rng = np.random.default_rng(0)
    r = SERIAL_BELOW // 2 + 100           # rows of 2 classes: the parallel row kernel
    P = rng.dirichlet(np.ones(2), r); Q = rng.dirichlet(np.ones(2), r)
    n = (1 << 20) + 3
    t, p, w = rng.standard_normal(n), rng.standard_normal(n), rng.random(n)
    kl, mse = lossreg.get("kl_div"), lossreg.get("mse")

    def work(_=None):
        # the row kernel and the weight scans run on Numba's threads at these sizes
        return kl(P, Q), mse(t, p, sample_weight=w), kl.grad(P, Q).tobytes()

    expected = work()
    layer = started_layer()
    assert layer is not None, "the large calls did not start the threading layer"
    pid = os.fork()
    if pid == 0:
        os._exit(0 if work() == expected else 1)
    _, status = os.waitpid(pid, 0)
    assert status == 0, f"forked child died or disagreed: status {status}"
    with mp.get_context("fork").Pool(2) as pool:
        assert pool.map(work, range(4)) == [expected] * 4
    print("OK", layer)
"""


@pytest.mark.parametrize("layer", ["default", "workqueue"])
def test_fork_after_parallel_calls_works(layer):
    """A large call starts Numba's threading layer; a forked child (os.fork, a
    multiprocessing pool) then computes the same results instead of being killed by
    GNU OpenMP or hanging the pool."""
    out = run(FORK, NUMBA_THREADING_LAYER=layer)
    assert out.split()[0] == "OK"


# -- concurrent threads ------------------------------------------------------------------

THREADS = """
    import threading
    import numpy as np, lossreg, numba

    from lossreg.losses.rows import SERIAL_BELOW

    rng = np.random.default_rng(1)
    r = SERIAL_BELOW // 4 + 100           # rows of 4 classes: the parallel row kernels
    P = rng.dirichlet(np.ones(4), r); Q = rng.dirichlet(np.ones(4), r)
    labels = rng.integers(0, 4, r)
    kl = lossreg.get("kl_div")
    sce = lossreg.get("softmax_cross_entropy")

    def work():
        return (kl(P, Q), kl.grad(P, Q).tobytes(), sce(labels, np.log(Q)),
                sce.grad(labels, np.log(Q)).tobytes())

    expected = work()
    results, errors = [], []
    barrier = threading.Barrier(8)

    def thread():
        barrier.wait()
        try:
            for _ in range(20):
                results.append(work())
        except Exception as exc:
            errors.append(repr(exc))

    threads = [threading.Thread(target=thread) for _ in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors, errors
    assert results == [expected] * 160
    print("OK", numba.threading_layer())
"""


def test_eight_threads_under_workqueue_do_not_abort():
    """workqueue is not thread-safe: lossreg serialises its parallel launches, so eight
    threads calling row losses concurrently get the serial results, no SIGABRT."""
    out = run(THREADS, NUMBA_THREADING_LAYER="workqueue")
    assert out.split() == ["OK", "workqueue"]


# -- the launch guard, in process --------------------------------------------------------

def test_serial_launch_touches_nothing(monkeypatch):
    monkeypatch.setattr(nt, "started_layer", lambda: pytest.fail("layer looked up"))
    with nt.launch(1) as parallel:
        assert parallel is False


def test_workqueue_launches_hold_the_lock(monkeypatch):
    lock = threading.Lock()
    monkeypatch.setattr(nt.State, "lock", lock)
    for layer, held in (("workqueue", True), (None, True), ("omp", False), ("tbb", False)):
        monkeypatch.setattr(nt, "started_layer", lambda layer=layer: layer)
        with nt.launch(2) as parallel:
            assert parallel is True
            assert lock.locked() is held, layer
        assert not lock.locked()


def test_lock_is_released_when_the_kernel_raises(monkeypatch):
    lock = threading.Lock()
    monkeypatch.setattr(nt.State, "lock", lock)
    monkeypatch.setattr(nt, "started_layer", lambda: "workqueue")
    with pytest.raises(ZeroDivisionError):
        with nt.launch(2):
            1 / 0
    assert not lock.locked()


@pytest.mark.parametrize("layer, vendor, serial", [
    ("omp", "GNU", True), ("omp", "Intel", False), ("tbb", None, False),
    ("workqueue", None, False), (None, None, False)])
def test_a_forked_child_runs_serially_only_after_gnu_openmp(monkeypatch, layer, vendor, serial):
    monkeypatch.setattr(nt.State, "unusable", None)
    monkeypatch.setattr(nt.State, "lock", nt.State.lock)
    monkeypatch.setattr(nt, "started_layer", lambda: layer)
    omppool = type(sys)("fake_omppool")
    omppool.openmp_vendor = vendor
    monkeypatch.setitem(sys.modules, "numba.np.ufunc.omppool", omppool)
    nt.after_fork_in_child()
    assert (nt.State.unusable is not None) is serial
    with nt.launch(2) as parallel:
        assert parallel is not serial


def test_n_threads_still_gives_identical_results_on_rows():
    from lossreg.losses.rows import SERIAL_BELOW

    rng = np.random.default_rng(2)
    r = SERIAL_BELOW // 2 + 200           # parallel with the default threads
    P = rng.dirichlet(np.ones(2), r)
    Q = rng.dirichlet(np.ones(2), r)
    assert lossreg.get("kl_div")._plan.workers_for(P.size) > 1 or \
        lossreg.get("kl_div")._plan.workers == 1
    one = lossreg.get("kl_div", n_threads=1).value_and_grad(P, Q)
    every = lossreg.get("kl_div").value_and_grad(P, Q)
    assert one[0] == every[0]
    np.testing.assert_array_equal(one[1], every[1])
