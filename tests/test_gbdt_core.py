"""The library-independent boosting core (lossreg._gbdt): per-sample gradients and
Hessians on the margin against hand-derived formulas, the sigmoid link, the Hessian
floor, weights, multiclass layout, and the typed errors raised before any training."""

import numpy as np
import pytest

import lossreg
from lossreg import (DomainError, HyperparameterError, LossError, ShapeError,
                     UnknownLossError)
from lossreg._gbdt import (DEFAULT_HESSIAN_FLOOR, Metric, Objective, class_major_from_rows,
                           rows_from_class_major)


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def focal_on_margin(y, z, alpha, gamma):
    """Focal loss of p = sigmoid(z), differentiated by hand with respect to z.

    With s = sigmoid(z), u = 1 - s, a = alpha, b = 1 - alpha (both 1 for alpha None):
      d/dz  = a y u^g (g s log s - u) + b (1-y) s^g (s - g u log u)
      d2/dz2 = a y u^g s (g log s (u - g s) + u (2g + 1))
             + b (1-y) s^g u (g log u (s - g u) + s (2g + 1))
    """
    a, b = (1.0, 1.0) if alpha is None else (alpha, 1.0 - alpha)
    g = gamma
    s = _sigmoid(z)
    u = 1.0 - s
    grad = a * y * u ** g * (g * s * np.log(s) - u) + b * (1 - y) * s ** g * (s - g * u * np.log(u))
    hess = (a * y * u ** g * s * (g * np.log(s) * (u - g * s) + u * (2 * g + 1))
            + b * (1 - y) * s ** g * u * (g * np.log(u) * (s - g * u) + s * (2 * g + 1)))
    return grad, hess


@pytest.fixture
def margins(rng):
    z = rng.uniform(-5.0, 5.0, 400)
    y = (rng.random(400) < 0.3).astype(np.float64)
    w = rng.uniform(0.1, 3.0, 400)
    return y, z, w


@pytest.mark.parametrize("alpha, gamma", [(0.25, 2.0), (None, 1.5), (0.6, 0.0)])
def test_focal_through_the_sigmoid_link_matches_the_hand_derived_formula(margins, alpha, gamma):
    y, z, w = margins
    obj = Objective("focal", alpha=alpha, gamma=gamma, hessian_floor=1e-6)
    assert obj.link == "sigmoid"
    want_g, want_h = focal_on_margin(y, z, alpha, gamma)
    g, h = obj.grad_hess(y, z)
    np.testing.assert_allclose(g, want_g, rtol=1e-9, atol=1e-12)
    # h_p s'^2 + g_p s'' subtracts terms of order 0.1 where the curvature changes sign
    np.testing.assert_allclose(h, np.maximum(want_h, 1e-6), rtol=1e-8, atol=1e-10)
    if gamma == 2.0:   # focal is not convex: the floor is what makes some Hessians positive
        assert (want_h < 0).any() and (h[want_h < 0] == 1e-6).all()
    gw, hw = obj.grad_hess(y, z, w)          # weights applied once, floor scaled by them
    np.testing.assert_allclose(gw, w * want_g, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(hw, w * np.maximum(want_h, 1e-6), rtol=1e-8, atol=3e-10)


def test_pinball_gradient_and_floored_hessian_by_hand(margins):
    if "pinball" not in lossreg.names():
        pytest.skip("the lossreg-quantile plugin (pinball) is not installed")
    _, z, w = margins
    y = z + np.where(np.arange(z.size) % 3 == 0, 0.5, -0.5)
    y[:5] = z[:5]                                  # at the kink: gradient 0
    q = 0.8
    want_g = np.where(y > z, -q, np.where(y < z, 1.0 - q, 0.0))
    for floor in (1e-6, 1.0, 0.0):
        obj = Objective("pinball", q=q, hessian_floor=floor)
        g, h = obj.grad_hess(y, z)
        np.testing.assert_array_equal(g, want_g)
        np.testing.assert_array_equal(h, np.full(z.shape, floor))
        g, h = obj.grad_hess(y, z, w)
        np.testing.assert_allclose(g, w * want_g, rtol=1e-15)
        np.testing.assert_allclose(h, w * floor, rtol=1e-15)


def test_sigmoid_link_on_bce_equals_the_logit_loss(margins):
    y, z, w = margins
    g1, h1 = Objective("binary_cross_entropy").grad_hess(y, z, w)
    g2, h2 = Objective("binary_cross_entropy_with_logits").grad_hess(y, z, w)
    p = _sigmoid(z)
    np.testing.assert_allclose(g2, w * (p - y), rtol=1e-12)
    np.testing.assert_allclose(h2, w * p * (1 - p), rtol=1e-12)
    np.testing.assert_allclose(g1, g2, rtol=1e-9, atol=1e-14)
    # bce's Hessian in p has PyTorch's regularised denominator (p + 1e-12)^2 (1 - p + 1e-12)^2;
    # h_p s'^2 + g_p s'' cancels up to 1/min(p, 1 - p) of it: relative 1e-8 at |z| = 5
    np.testing.assert_allclose(h1, h2, rtol=1e-6, atol=1e-14)


def test_links_are_read_from_the_spec():
    assert Objective("mse").link == "identity"
    assert Objective("sigmoid_focal").link == "identity"
    assert Objective("bce").link == "sigmoid"
    assert Objective("softmax_cross_entropy").link == "softmax"


def test_softmax_rows_labels_weights_smoothing_and_ignore_index(rng):
    n, c = 50, 4
    z = rng.normal(0.0, 2.0, (n, c))
    y = rng.integers(0, c, n)
    w = rng.uniform(0.5, 2.0, n)
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    onehot = np.eye(c)[y]
    g, h = Objective("softmax_cross_entropy", multiclass_hessian_scale=2.0).grad_hess(
        y.astype(np.float32), z, w)
    np.testing.assert_allclose(g, w[:, None] * (p - onehot), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(h, np.maximum(2.0 * w[:, None] * p * (1 - p),
                                             DEFAULT_HESSIAN_FLOOR * w[:, None]), rtol=1e-12)
    cw = np.array([1.0, 2.0, 0.5, 3.0])
    g, h = Objective("softmax", class_weight=cw, label_smoothing=0.1, ignore_index=2,
                     hessian_floor=0.0).grad_hess(y, z)
    t = 0.9 * onehot + 0.1 / c
    s = (cw * t).sum(1, keepdims=True)
    keep = (y != 2)[:, None]
    np.testing.assert_allclose(g, keep * (s * p - cw * t), rtol=1e-11, atol=1e-14)
    np.testing.assert_allclose(h, keep * s * p * (1 - p), rtol=1e-11, atol=1e-14)


def test_class_major_layout_helpers_round_trip(rng):
    rows = rng.normal(size=(7, 3))
    flat = class_major_from_rows(rows)
    np.testing.assert_array_equal(flat[:7], rows[:, 0])
    np.testing.assert_array_equal(rows_from_class_major(flat, 7), rows)
    with pytest.raises(ShapeError):
        rows_from_class_major(flat, 5)


def test_metric_is_the_weighted_mean_through_the_link(margins):
    y, z, w = margins
    m = Metric("focal", gamma=2.0)
    want = lossreg.get("focal", gamma=2.0)(y, _sigmoid(z), w)
    assert m.value(y, z, w) == pytest.approx(want, rel=1e-12)
    assert "sigmoid" in m.describe()


def test_describe_reports_floor_link_and_scale():
    text = Objective("pinball" if "pinball" in lossreg.names() else "mae",
                     hessian_floor=0.5).describe()
    assert "hessian_floor: 0.5" in text and "identity" in text
    text = Objective("softmax", multiclass_hessian_scale=2.0,
                     multiclass_hessian_note="2 p (1 - p)").describe()
    assert "2 p (1 - p)" in text
    assert f"hessian_floor: {DEFAULT_HESSIAN_FLOOR:g}" in Objective("focal").describe()


def test_a_loss_object_keeps_its_hyperparameters():
    obj = Objective(lossreg.get("huber", delta=0.25))
    assert obj.loss.hyperparameters["delta"] == 0.25 and obj.loss.reduction == "none"
    with pytest.raises(HyperparameterError, match="not both"):
        Objective(lossreg.get("huber"), delta=0.5)


# -- bad input: typed lossreg errors naming the loss, before any training ----------------

def test_construction_errors_name_the_loss():
    with pytest.raises(UnknownLossError, match="focall"):
        Objective("focall")
    with pytest.raises(LossError, match="'rmse'.*not a sum"):
        Objective("rmse")
    with pytest.raises(LossError, match="'kl_div'"):
        Objective("kl_div")
    with pytest.raises(HyperparameterError, match="gamma"):
        Objective("focal", gamma=-1.0)
    with pytest.raises(HyperparameterError, match="hessian_floor"):
        Objective("mse", hessian_floor=-1.0)
    with pytest.raises(HyperparameterError, match="hessian_floor"):
        Objective("mse", hessian_floor=float("nan"))
    with pytest.raises(LossError):
        Objective(3.0)


def test_a_loss_without_hessian_is_refused(registry):
    from lossreg.kernels import njit

    @njit
    def fwd(t, p, out):
        for i in range(p.shape[0]):
            out[i] = (p[i] - t[i]) ** 4

    @njit
    def grad(t, p, out):
        for i in range(p.shape[0]):
            out[i] = 4.0 * (p[i] - t[i]) ** 3

    spec = lossreg.LossSpec(name="quartic_nohess", family="test", task="regression",
                            forward=fwd, gradient=grad, reference=lambda t, p: (p - t) ** 4,
                            source="test plugin")
    registry.add(spec, source="test plugin")
    loss = lossreg.get("quartic_nohess", registry=registry)
    with pytest.raises(LossError, match="'quartic_nohess'.*no Hessian"):
        Objective(loss)
    Metric(loss)                               # a metric needs no Hessian


def test_call_errors_name_the_loss_and_the_problem(rng):
    z = rng.normal(size=(20, 3))
    y = rng.integers(0, 3, 20)
    soft = Objective("softmax_cross_entropy")
    with pytest.raises(ShapeError, match="'softmax_cross_entropy' is multiclass"):
        soft.grad_hess(y, z[:, 0])
    with pytest.raises(DomainError, match="'softmax_cross_entropy'.*\\[0, 3\\)"):
        soft.grad_hess(np.where(y == 0, 5, y), z)
    with pytest.raises(ShapeError, match="class_weight has 4 entries.*3 margins"):
        Objective("softmax", class_weight=[1, 1, 1, 1]).grad_hess(y, z)
    with pytest.raises(ShapeError, match="'focal' is an element-wise"):
        Objective("focal").grad_hess(y, z)
    with pytest.raises(DomainError, match="'focal'.*y_true"):
        Objective("focal").grad_hess(np.full(20, 2.0), z[:, 0])
    with pytest.raises(ShapeError, match="'mse'.*labels"):
        Objective("mse").grad_hess(np.zeros(19), z[:, 0])


def _checked(obj, *args):
    """The objective's derivatives through the loss's own checked path (no fused pass)."""
    fused, rows = obj._fused, obj._fused_rows
    obj._fused, obj._fused_rows = None, False
    try:
        return obj.grad_hess(*args)
    finally:
        obj._fused, obj._fused_rows = fused, rows


def test_the_fused_pass_equals_the_checked_path(margins, rng):
    y, z, w = margins
    w = w.copy()
    w[::9] = 0.0                                   # zero weights: +0.0 derivatives
    for obj, tol in ((Objective("binary_cross_entropy_with_logits"), 0.0),
                     (Objective("focal", gamma=2.0), 1e-12)):     # the sigmoid link
        assert obj._fused is not None
        for args in ((y, z), (y, z, w)):
            got, want = obj.grad_hess(*args), _checked(obj, *args)
            for a, b in zip(got, want):
                np.testing.assert_allclose(a, b, rtol=tol, atol=0.0)
        assert not np.signbit(obj.grad_hess(y, z, w)[0][::9]).any()
    zc = rng.normal(0.0, 3.0, (60, 4))
    yc = rng.integers(0, 4, 60).astype(np.float64)
    wc = rng.uniform(0.0, 2.0, 60)
    wc[::7] = 0.0
    soft = Objective("softmax", class_weight=[1.0, 2.0, 0.5, 3.0], label_smoothing=0.1,
                     ignore_index=2, multiclass_hessian_scale=2.0)
    assert soft._fused_rows
    for args in ((yc, zc), (yc, zc, wc)):
        for a, b in zip(soft.grad_hess(*args), _checked(soft, *args)):
            np.testing.assert_array_equal(a, b)


def test_the_fused_pass_leaves_bad_input_to_the_checked_errors(margins):
    y, z, w = margins
    obj = Objective("binary_cross_entropy_with_logits")
    bad_w = w.copy()
    bad_w[7] = -1.0
    with pytest.raises(DomainError, match="sample_weight.*index 7"):
        obj.grad_hess(y, z, bad_w)
    bad_z = z.copy()
    bad_z[3] = np.nan
    with pytest.raises(DomainError, match="y_pred"):
        obj.grad_hess(y, bad_z)
    with pytest.raises(DomainError, match="y_true"):
        obj.grad_hess(np.where(np.arange(y.size) == 5, 1.5, y), z)
    soft = Objective("softmax")
    zc = np.zeros((4, 3))
    with pytest.raises(DomainError, match="whole numbers"):
        soft.grad_hess(np.array([0.0, 1.5, 2.0, 1.0]), zc)
    zc[2, 1] = np.inf
    with pytest.raises(DomainError, match="y_pred"):
        soft.grad_hess(np.array([0.0, 1.0, 2.0, 1.0]), zc)


def test_the_float32_logistic_pass_is_within_a_few_ulp_of_float64(margins):
    y, z, w = margins
    y32, z32 = y.astype(np.float32), (4.0 * z).astype(np.float32)
    obj = Objective("binary_cross_entropy_with_logits")
    assert obj._logistic32
    w = w.copy()
    w[::9] = 0.0
    for args in ((y32, z32), (y32, z32, w)):
        got = obj.grad_hess(*args)
        want = _checked(obj, *args)                  # float64 arithmetic, rounded once
        for a, b in zip(got, want):
            assert a.dtype == np.float32
            np.testing.assert_allclose(a, b, rtol=8 * 2.0 ** -24, atol=0.0)
    huge = w.copy()
    huge[4] = 1e39                                   # finite, beyond float32: checked path
    g, h = obj.grad_hess(y32, z32, huge)
    assert np.isinf(g[4]) or abs(g[4]) > 1e30
    with pytest.raises(DomainError, match="y_true"):
        obj.grad_hess(np.where(np.arange(y.size) == 5, 1.5, y).astype(np.float32), z32)
