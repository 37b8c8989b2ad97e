"""lossreg-logcosh's own tests: the conformance kit plus stability at large residuals."""

import math

import numpy as np
import pytest

lossreg = pytest.importorskip("lossreg")
pytest.importorskip("lossreg_logcosh", reason="install lossreg-logcosh first (pip install .)")
from lossreg.testing import parametrize_checks  # noqa: E402


@pytest.mark.parametrize("check", parametrize_checks("log_cosh"))
def test_conformance(check):
    check()


def test_found_through_the_entry_point():
    assert lossreg.spec("logcosh").source.startswith("lossreg-logcosh ")


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_finite_and_linear_for_huge_residuals(dtype):
    big = 1e300 if dtype == np.float64 else 1e38
    loss = lossreg.get("log_cosh", reduction="none")
    t = np.zeros(3, dtype)
    p = np.array([big, -big, 800.0], dtype)
    values, grad = loss.value_and_grad(t, p)
    assert np.all(np.isfinite(values)) and values.dtype == dtype
    np.testing.assert_allclose(values, np.abs(p.astype(np.float64)) - math.log(2), rtol=1e-6)
    np.testing.assert_array_equal(grad, [1.0, -1.0, 1.0])


def test_quadratic_near_zero_and_delta_scaling():
    loss = lossreg.get("log_cosh", delta=2.0, reduction="none")
    r = np.array([1e-4, -3e-4])
    np.testing.assert_allclose(loss(np.zeros(2), r), 0.5 * r * r, rtol=1e-7)
    # delta**2 * logcosh(r/delta): linear slope delta far out
    far = loss.grad([0.0], [1e6])
    assert far[0] == pytest.approx(2.0)
