"""Shared fixtures: a fresh Registry per test that registers plugins (pluggy's habit)."""

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
