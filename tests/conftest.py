"""Shared fixtures: a fresh Registry per test that registers plugins (pluggy's habit).

The session's kernel cache (``LOSSREG_CACHE``, shared with subprocesses, never the
user's real cache) is set up by the repository's root ``conftest.py``.
"""

import subprocess
import sys

import numpy as np
import pytest

import lossreg

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
