"""The worker threads of the element-wise kernels (lossreg/kernels/workers.py)."""

import os
import subprocess
import sys

import numpy as np
import pytest

import lossreg
from lossreg.kernels import workers

FORK_AFTER_A_LARGE_CALL = r"""
import os, sys, numpy as np, lossreg
n = 1 << 19                                    # above mse's serial threshold: the pool runs
rng = np.random.default_rng(0)
t, p = rng.standard_normal(n), rng.standard_normal(n)
loss = lossreg.get("mse")
parent = loss.value_and_grad(t, p)[0]
pid = os.fork()
if pid == 0:                                   # the child: the same large call
    child = loss.value_and_grad(t, p)[0]
    os._exit(0 if child == parent else 3)
_, status = os.waitpid(pid, 0)
print(os.waitstatus_to_exitcode(status))
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_computes_large_losses_after_the_parent_used_the_pool():
    out = subprocess.run([sys.executable, "-c", FORK_AFTER_A_LARGE_CALL], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "0"


def test_results_do_not_depend_on_the_pool():
    """One worker, the default pool and a pool of three threads give the same bits."""
    rng = np.random.default_rng(1)
    n = (1 << 18) + 12345
    t, p, w = rng.standard_normal(n), rng.standard_normal(n), rng.random(n)
    got = []
    old = workers.set_pool(workers.Pool(3))
    try:
        for n_threads in (1, None):
            loss = lossreg.get("huber", n_threads=n_threads)
            got.append(loss.value_and_grad(t, p, sample_weight=w))
    finally:
        workers.set_pool(old)
    got.append(lossreg.get("huber").value_and_grad(t, p, sample_weight=w))
    for value, grad in got[1:]:
        assert value == got[0][0]
        np.testing.assert_array_equal(grad, got[0][1])


def test_run_chunks_covers_every_chunk_once():
    seen = np.zeros(37, dtype=np.int64)

    def kernel(c0, c1, out):
        out[c0:c1] += 1

    workers.run_chunks(kernel, 37, 4, seen)
    assert seen.tolist() == [1] * 37
