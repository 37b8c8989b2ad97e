"""Issue 19, items 5-11: silent wrong results and NaN from valid input.

``out=`` aliasing an input (one rule, ``lossreg.outputs``), zero weights on infinite
terms, class-weight and RMSE overflow, smooth_l1 and log_cosh over the whole float range
of their hyperparameters, uint64 labels, masked arrays, big-endian float32. Each test
failed before the fix. The properties over every loss are in tests/test_properties.py.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import lossreg
from lossreg import DomainError, DTypeError

from .conftest import ALL_NAMES


def _sum():
    return lossreg.from_config({"terms": [{"name": "mse", "weight": 1.0},
                                          {"name": "mae", "weight": 0.5}]})


# -- 5, 6: out= overlapping an input ----------------------------------------------------

def test_weighted_sum_out_aliasing_y_pred_and_y_true():
    t, p = np.array([0.0, 1.0, 2.0]), np.array([1.0, 3.0, 0.5])
    loss = _sum()
    want_v, want_g = loss.value_and_grad(t, p)
    pp = p.copy()
    v, g = loss.value_and_grad(t, pp, out=pp)
    assert g is pp and v == want_v and np.array_equal(g, want_g)
    tt = t.copy()
    v, g = loss.value_and_grad(tt, p, out=tt)
    assert g is tt and v == want_v and np.array_equal(g, want_g)


@pytest.mark.parametrize("name", ["mse", "huber", "smooth_l1"])
def test_partially_overlapping_out(name):
    buf = np.array([1.0, 2.0, 3.0, 4.0])
    t = np.zeros(3)
    loss = lossreg.get(name)
    want_v, want_g = loss.value_and_grad(t, buf[:3].copy())
    v, g = loss.value_and_grad(t, buf[:3], out=buf[1:])
    assert v == want_v and np.array_equal(g, want_g) and np.shares_memory(g, buf)
    assert np.array_equal(buf[1:], want_g)


def test_out_overlapping_weights_and_hessian_out():
    t, p = np.zeros(4), np.array([1.0, -2.0, 0.5, 3.0])
    w = np.array([1.0, 2.0, 0.5, 1.0])
    loss = lossreg.get("huber", delta=1.5)
    want_g, want_h = loss.grad_hess(t, p, w)
    ww = w.copy()
    g, h = loss.grad_hess(t, p, ww, out=(None, ww))
    assert h is ww and np.array_equal(h, want_h) and np.array_equal(g, want_g)
    pp = p.copy()
    g, h = loss.grad_hess(t, pp, w, out=(pp, None))
    assert g is pp and np.array_equal(g, want_g) and np.array_equal(h, want_h)


def test_row_loss_out_is_y_pred():
    z = np.array([[1.0, 2.0, 3.0], [0.0, -1.0, 1.0]])
    y = np.array([2, 0])
    loss = lossreg.get("softmax_cross_entropy")
    want = loss.grad_hess(y, z)
    zz = z.copy()
    g, h = loss.grad_hess(y, zz, out=(zz, None))
    assert g is zz and np.array_equal(g, want[0]) and np.array_equal(h, want[1])


def test_gradient_and_hessian_buffers_that_overlap_are_refused():
    t, p = np.zeros(3), np.ones(3)
    buf = np.empty(3)
    with pytest.raises(DomainError, match="gradient and Hessian buffers overlap") as info:
        lossreg.get("mse").grad_hess(t, p, out=(buf, buf))
    assert info.value.argument == "out"
    # interleaved views share a range but no element: allowed, no copy needed
    pair = np.empty(6)
    g, h = lossreg.get("mse").grad_hess(t, p, out=(pair[0::2], pair[1::2]))
    assert np.array_equal(g, np.full(3, 2 / 3)) and np.array_equal(h, np.full(3, 2 / 3))


def test_separate_out_is_filled_in_place_without_a_copy(monkeypatch):
    from lossreg import outputs

    def no_copy(*args):
        raise AssertionError("copy on the no-alias path")

    monkeypatch.setattr(outputs.np, "copyto", no_copy)
    out = np.empty(3)
    assert lossreg.get("mse").grad(np.zeros(3), np.ones(3), out=out) is out


# -- 7: NaN from valid input -------------------------------------------------------------

def test_huge_class_weights_do_not_overflow_the_mean():
    z = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 1.0], [2.0, 1.0, 0.0]])
    y = np.array([0, 2, 1])
    plain = lossreg.get("softmax_cross_entropy")
    for cw in ([1e308] * 3, [1e-310] * 3, [1e308, 5e307, 1e308]):
        loss = lossreg.get("softmax_cross_entropy", class_weight=cw)
        v, g = loss.value_and_grad(y, z)
        assert np.isfinite(v) and np.all(np.isfinite(g))
        if cw[0] == cw[1]:
            assert v == pytest.approx(plain(y, z), rel=1e-15)
            np.testing.assert_allclose(g, plain.grad(y, z), rtol=1e-15)
    # "sum" keeps the weights' scale (it divides by nothing)
    s = lossreg.get("softmax_cross_entropy", class_weight=[2.0] * 3, reduction="sum")
    assert s(y, z) == pytest.approx(2 * lossreg.get("softmax_cross_entropy",
                                                    reduction="sum")(y, z))


def test_zero_weight_on_an_infinite_term_contributes_zero():
    t, p = np.zeros(3), np.array([1.0, 2.0, 1e200])
    w = np.array([1.0, 1.0, 0.0])
    mse = lossreg.get("mse")
    assert mse(t, p, w) == 2.5
    g, h = mse.grad_hess(t, p, w)
    assert np.array_equal(g, [1.0, 2.0, 0.0]) and np.array_equal(h, [1.0, 1.0, 0.0])
    assert np.array_equal(lossreg.get("mse", reduction="none")(t, p, w), [1.0, 4.0, 0.0])
    kl = lossreg.get("kl_div")
    P = np.array([[0.5, 0.5], [0.5, 0.5]])
    Q = np.array([[0.5, 0.5], [1.0, 0.0]])
    v, g = kl.value_and_grad(P, Q, np.array([1.0, 0.0]))
    assert v == 0.0 and np.array_equal(g[1], [0.0, 0.0]) and np.all(np.isfinite(g))


def test_zero_weight_still_checks_the_domain():
    mse = lossreg.get("mse")
    with pytest.raises(DomainError) as info:
        mse(np.zeros(3), np.array([1.0, np.nan, 2.0]), np.array([1.0, 0.0, 1.0]))
    assert info.value.argument == "y_pred" and info.value.index == 1
    with pytest.raises(DomainError, match="sample_weight") as info:
        mse(np.zeros(3), np.ones(3), np.array([0.0, 1.0, -1.0]))
    assert info.value.index == 2


@pytest.mark.parametrize("scale", [1e200, 1e-200, 1e300])
def test_rmse_rescales_when_squares_overflow_or_underflow(scale):
    rmse = lossreg.get("rmse")
    t, p = np.zeros(3), np.array([1.0, 2.0, 2.0])
    v1, g1 = rmse.value_and_grad(t, p)
    h1 = rmse.hessian(t, p)
    v, g = rmse.value_and_grad(t, p * scale)
    h = rmse.hessian(t, p * scale)
    assert v == pytest.approx(v1 * scale, rel=1e-15)
    np.testing.assert_allclose(g, g1, rtol=1e-15)
    np.testing.assert_allclose(h * scale, h1, rtol=1e-15)
    assert rmse(np.zeros(2), np.zeros(2)) == 0.0          # a perfect fit stays 0
    assert np.array_equal(rmse.grad(np.zeros(2), np.zeros(2)), [0.0, 0.0])


# -- 8: hyperparameters at the ends of the float range -----------------------------------

def test_smooth_l1_exact_for_huge_and_subnormal_beta():
    big = lossreg.get("smooth_l1", beta=1e200, reduction="none")
    values = big(np.zeros(3), np.array([1e200, 0.9e200, -1e300]))
    np.testing.assert_allclose(values, [5e199, 4.05e199, 1e300], rtol=1e-15)
    tiny = lossreg.get("smooth_l1", beta=1e-320, reduction="none")
    assert tiny([0.0], [1.2345678901])[0] == 1.2345678901
    g, h = tiny.grad_hess([0.0], [1.2345678901])
    assert g[0] == 1.0 and h[0] == 0.0
    spec = lossreg.spec("smooth_l1")
    for beta in (1e200, 1e-320):
        r = np.array([beta * 0.5, beta * 2])
        np.testing.assert_allclose(
            lossreg.get("smooth_l1", beta=beta, reduction="none")(np.zeros(2), r),
            spec.reference(np.zeros(2), r, beta=beta), rtol=1e-15)


needs_logcosh = pytest.mark.skipif("log_cosh" not in ALL_NAMES,
                                   reason="lossreg-logcosh is not installed")


@needs_logcosh
@pytest.mark.parametrize("delta,r,exact", [
    (1e-300, 1e10, 1e-290 - 1e-600 * math.log(2)),   # r / delta overflows
    (1e200, 1.0, 0.5),                                # r^2 / 2 regime
    (1.0, 1e-9, 5e-19),
    (1.0, 30.0, 30.0 - math.log(2) + math.log1p(math.exp(-60))),
    (1.0, 0.5, 0.12011450695827752),
])
def test_log_cosh_exact_for_any_delta(delta, r, exact):
    loss = lossreg.get("log_cosh", delta=delta, reduction="none")
    v, g = loss.value_and_grad([0.0], [r])
    assert v[0] == pytest.approx(exact, rel=1e-14) and np.isfinite(g[0])
    ref = lossreg.spec("log_cosh").reference([0.0], [r], delta=delta)
    assert ref[0] == pytest.approx(exact, rel=1e-12)


# -- 9, 10, 11: labels, masks, byte order -----------------------------------------------

def test_uint64_labels_above_2_63_do_not_wrap():
    loss = lossreg.get("softmax_cross_entropy", ignore_index=-1)
    z = np.zeros((2, 3))
    with pytest.raises(DomainError) as info:
        loss(np.array([0, 2 ** 64 - 1], dtype=np.uint64), z)
    assert info.value.index == 1 and "18446744073709551615" in str(info.value)
    assert loss(np.array([0, 2], dtype=np.uint64), z) == pytest.approx(math.log(3))


def test_masked_arrays_are_refused():
    m = np.ma.array([1.0, 2.0, 3.0], mask=[False, True, False])
    mse = lossreg.get("mse")
    for call in (lambda: mse(np.zeros(3), m), lambda: mse(m, np.zeros(3)),
                 lambda: mse(np.zeros(3), np.ones(3), sample_weight=m)):
        with pytest.raises(DTypeError, match="masked") as info:
            call()
        assert info.value.index == 1
    assert mse(np.zeros(3), np.ma.array([1.0, 2.0, 3.0])) == pytest.approx(14 / 3)


@pytest.mark.parametrize("dtype", [">f4", ">f2", ">f8"])
def test_big_endian_keeps_the_float_size(dtype):
    p = np.array([1.0, 2.0, 3.0], dtype=dtype)
    want = np.float64 if dtype == ">f8" else np.float32
    mse = lossreg.get("mse", reduction="none")
    v, g = mse.value_and_grad(np.zeros(3, dtype), p)
    assert v.dtype == want and g.dtype == want
    assert lossreg.get("huber").grad(np.zeros(3), p).dtype == want
