"""Distance-family numbers worked by hand and from the source article."""

import math

import numpy as np
import pytest

import lossreg


def test_article_mse_example():
    # the article: x=[1,2] predicted, y=[0,1] true -> ((1-0)^2 + (2-1)^2) / 2 = 1
    assert lossreg.get("mse")([0, 1], [1, 2]) == 1.0
    assert lossreg.get("mse", reduction="sum")([0, 1], [1, 2]) == 2.0


def test_article_l2_is_sqrt_of_mse():
    y, x = [0.0, 1.0, 3.0], [1.0, 2.0, 1.0]
    assert lossreg.get("l2")(y, x) == pytest.approx(math.sqrt((1 + 1 + 4) / 3))
    assert lossreg.spec("L2").name == "rmse"


def test_article_smooth_l1_and_huber_sum():
    # the article's loops sum over elements: residuals 0.5 and 2
    y, x = [0.0, 0.0], [0.5, 2.0]
    assert lossreg.get("smooth_l1", reduction="sum")(y, x) == pytest.approx(0.125 + 1.5)
    assert lossreg.get("huber", reduction="sum", delta=1.0)(y, x) == pytest.approx(0.125 + 1.5)
    assert lossreg.get("huber", reduction="sum", delta=0.5)(y, x) == pytest.approx(0.125 + 0.875)


def test_readme_demo_value():
    loss = lossreg.get("huber", delta=0.5)
    assert loss([0.0, 1.0], [0.5, 3.0]) == 0.5
    np.testing.assert_array_equal(loss.grad([0.0, 1.0], [0.5, 3.0]), [0.25, 0.25])


def test_mae_gradient_zero_at_zero_residual():
    g = lossreg.get("mae", reduction="sum").grad([1.0, 2.0, 3.0], [1.0, 5.0, 0.0])
    np.testing.assert_array_equal(g, [0.0, 1.0, -1.0])


def test_smooth_l1_beta_zero_is_l1(rng):
    t, p = rng.normal(size=100), rng.normal(size=100)
    a = lossreg.get("smooth_l1", beta=0.0).value_and_grad(t, p)
    b = lossreg.get("mae").value_and_grad(t, p)
    assert a[0] == b[0]
    np.testing.assert_array_equal(a[1], b[1])


def test_smooth_l1_is_huber_over_beta(rng):
    t, p = rng.normal(size=1000), rng.normal(size=1000) * 3
    beta = 0.7
    assert lossreg.get("smooth_l1", beta=beta)(t, p) == pytest.approx(
        lossreg.get("huber", delta=beta)(t, p) / beta, rel=1e-12)


def test_huber_quadratic_zone_is_closed():
    # |r| == delta belongs to the quadratic zone: 0.5 * delta^2
    assert lossreg.get("huber", delta=2.0, reduction="sum")([0.0], [2.0]) == 2.0


def test_rmse_gradient_at_perfect_fit_is_zero():
    g = lossreg.get("rmse").grad([1.0, 2.0], [1.0, 2.0])
    np.testing.assert_array_equal(g, [0.0, 0.0])


def test_rmse_rejects_sum_and_none():
    for reduction in ("sum", "none"):
        with pytest.raises(lossreg.ReductionError, match="mean"):
            lossreg.get("rmse", reduction=reduction)


def test_float32_stays_float32(rng):
    t = rng.normal(size=50).astype(np.float32)
    p = rng.normal(size=50).astype(np.float32)
    loss = lossreg.get("huber", reduction="none")
    assert loss(t, p).dtype == np.float32
    assert loss.grad(t, p).dtype == np.float32
    assert isinstance(lossreg.get("mse")(t, p), float)


def test_integer_and_bool_inputs_become_float64():
    g = lossreg.get("mse").grad([0, 1, 1], np.array([True, False, True]))
    assert g.dtype == np.float64
    np.testing.assert_allclose(g, [2 / 3, -2 / 3, 0.0])


def test_extreme_values_stay_finite():
    big = np.array([1e150, -1e150, 1e-300, 0.0])
    for name in ("mae", "huber", "smooth_l1"):
        value, grad = lossreg.get(name).value_and_grad(np.zeros(4), big)
        assert np.isfinite(value) and np.all(np.isfinite(grad)), name


def test_multidimensional_inputs_keep_shape(rng):
    t, p = rng.normal(size=(4, 3, 2)), rng.normal(size=(4, 3, 2))
    loss = lossreg.get("huber", reduction="none")
    assert loss(t, p).shape == (4, 3, 2)
    assert loss.grad(t, p).shape == (4, 3, 2)


def test_zero_dimensional_inputs():
    assert lossreg.get("mse")(1.0, 3.0) == 4.0
    assert lossreg.get("mse", reduction="none")(1.0, 3.0).shape == ()
