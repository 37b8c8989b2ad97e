"""Concurrent use: 8 threads on cold kernels, and two processes sharing the on-disk cache.

Each scenario runs in a fresh subprocess so the kernels are not compiled yet and the
first calls (compilation included) really race: the cold ones set LOSSREG_CACHE=0, so the
session-wide kernel cache of conftest.py does not warm them. The four-loss cold race is
marked slow (``pytest -m slow``); the one-loss race runs by default.
"""

import os
import subprocess
import sys
import textwrap

import pytest

WORKER = textwrap.dedent("""
    import sys, threading, hashlib, zlib
    import numpy as np
    import lossreg

    NAMES = sys.argv[1].split(",")
    N_THREADS = int(sys.argv[2])
    SIZES = (7, 40_000)

    def inputs(name, n):
        spec = lossreg.spec(name)
        return spec.sample(np.random.default_rng(zlib.crc32(name.encode()) + n), n)

    def work(name, n):
        loss = lossreg.get(name)
        t, p = inputs(name, n)
        value, grad = loss.value_and_grad(t, p)
        return (name, n, float(value), grad.tobytes(), float(loss(t, p)), loss.grad(t, p).tobytes())

    jobs = [(NAMES[i % len(NAMES)], SIZES[(i // len(NAMES)) % 2]) for i in range(N_THREADS * 3)]
    results, errors = {}, []
    barrier = threading.Barrier(N_THREADS)

    def thread(k):
        barrier.wait()
        for j in range(k, len(jobs), N_THREADS):
            try:
                results[j] = work(*jobs[j])
            except Exception as exc:
                errors.append(repr(exc))

    threads = [threading.Thread(target=thread, args=(k,)) for k in range(N_THREADS)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors, errors
    serial = {j: work(*jobs[j]) for j in range(len(jobs))}
    assert serial == results, "concurrent results differ from the serial run"
    digest = hashlib.sha256(repr(sorted(serial.items())).encode()).hexdigest()
    print("OK", len(jobs), digest)
""")


def _spawn(names, n_threads, env_extra):
    env = {**os.environ, **env_extra}
    return subprocess.Popen([sys.executable, "-c", WORKER, ",".join(names), str(n_threads)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _finish(proc):
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-3000:]
    status, count, digest = out.split()
    assert status == "OK" and int(count) > 0
    return digest


NAMES_SAME = ["huber"]
NAMES_MIXED = ["huber", "mse", "binary_cross_entropy_with_logits", "softmax_cross_entropy"]


@pytest.mark.slow   # a cold process compiling from scratch (~20 s in CI); -m slow runs it
def test_eight_threads_same_loss_cold():
    _finish(_spawn(NAMES_SAME, 8, {"LOSSREG_CACHE": "0"}))


# ~40 s of cold compiles of 4 losses; the default run keeps the one-loss cold race above
@pytest.mark.slow
def test_eight_threads_different_losses_cold():
    _finish(_spawn(NAMES_MIXED, 8, {"LOSSREG_CACHE": "0"}))


def test_two_processes_share_the_disk_cache(tmp_path):
    cache = str(tmp_path / "cache")
    env = {"LOSSREG_CACHE": cache, "NUMBA_CACHE_DIR": cache}
    names = ["huber", "binary_cross_entropy_with_logits"]
    first = [_spawn(names, 4, env) for _ in range(2)]   # both compile and write at once
    digests = {_finish(p) for p in first}
    assert os.listdir(cache), "the on-disk cache stayed empty"
    # a third process loads from the (now warm) cache and must agree bit for bit
    digests.add(_finish(_spawn(names, 4, env)))
    assert len(digests) == 1, "processes sharing the cache disagree"
