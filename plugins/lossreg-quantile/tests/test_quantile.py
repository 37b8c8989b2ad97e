"""lossreg-quantile's own tests: the conformance kit plus what is special to pinball."""

import numpy as np
import pytest

lossreg = pytest.importorskip("lossreg")
pytest.importorskip("lossreg_quantile", reason="install lossreg-quantile first (pip install .)")
from lossreg.testing import parametrize_checks  # noqa: E402


@pytest.mark.parametrize("check", parametrize_checks("pinball"))
def test_conformance(check):
    check()


def test_found_through_the_entry_point():
    spec = lossreg.spec("quantile")
    assert spec.name == "pinball"
    assert spec.source.startswith("lossreg-quantile ")


def test_minimiser_is_the_quantile():
    rng = np.random.default_rng(0)
    y = rng.standard_normal(2001)
    grid = np.linspace(-3, 3, 601)
    for q in (0.1, 0.5, 0.9):
        loss = lossreg.get("pinball", q=q)
        values = [loss(y, np.full_like(y, c)) for c in grid]
        best = grid[int(np.argmin(values))]
        assert abs(best - np.quantile(y, q)) < 0.02


def test_asymmetric_costs_and_gradient():
    loss = lossreg.get("pinball", q=0.8, reduction="none")
    np.testing.assert_allclose(loss([1.0, 1.0, 1.0], [0.0, 2.0, 1.0]), [0.8, 0.2, 0.0])
    np.testing.assert_allclose(loss.grad([1.0, 1.0, 1.0], [0.0, 2.0, 1.0]), [-0.8, 0.2, 0.0])


@pytest.mark.parametrize("q", [0.0, 1.0, -0.1, 1.5])
def test_q_outside_open_unit_interval_is_rejected(q):
    with pytest.raises(lossreg.HyperparameterError, match=r"q must be in \(0, 1\)"):
        lossreg.get("pinball", q=q)
