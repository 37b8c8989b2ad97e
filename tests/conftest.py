"""Shared fixtures: a fresh Registry per test that registers plugins (pluggy's habit).

One kernel cache for the whole pytest session: LOSSREG_CACHE is set here, before anything
imports lossreg's kernels (``lossreg.kernels._jit`` reads it on first import), and put in
``os.environ`` so that every subprocess a test starts inherits it and loads the kernels
compiled earlier in the session instead of compiling them again. An LOSSREG_CACHE given
from outside wins (``0`` turns caching off); with only NUMBA_CACHE_DIR set (CI), the cache
goes there (``LOSSREG_CACHE=1``; lossreg never overrides NUMBA_CACHE_DIR). Otherwise a
fresh directory, removed at exit. Tests about cold compiles or the cache itself set their
own LOSSREG_CACHE / NUMBA_CACHE_DIR.
"""

import atexit
import os
import shutil
import subprocess
import sys
import tempfile

if "LOSSREG_CACHE" not in os.environ:
    if os.environ.get("NUMBA_CACHE_DIR"):
        os.environ["LOSSREG_CACHE"] = "1"
    else:
        _session_cache = tempfile.mkdtemp(prefix="lossreg-test-kernels-")
        atexit.register(shutil.rmtree, _session_cache, True)
        os.environ["LOSSREG_CACHE"] = _session_cache

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import lossreg  # noqa: E402

ALL_NAMES = lossreg.names()


@pytest.fixture
def registry():
    """An isolated registry with the built-ins and no entry points."""
    return lossreg.Registry(entry_points=False)


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


def run_python(code: str, timeout: float = 120) -> str:
    """stdout of ``python -c code`` in a new process (which inherits the session's kernel
    cache); fails the test when the process does."""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=timeout)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def close_to_scale(a, b, rtol=1e-6):
    """max |a - b| <= rtol max |b|: relative to the predictions' scale (the boosting tests:
    the libraries predict in float32; one ulp of a leaf value is ~1e-7 of the margins'
    scale, so a margin near 0 may differ from the built-in's by more than 1e-6 of itself)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    assert a.shape == b.shape
    err = np.max(np.abs(a - b)) / np.max(np.abs(b))
    assert err <= rtol, err
