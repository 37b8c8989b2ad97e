"""The probabilistic family: the source article's examples, documented numerics at the
edges (0 log 0, KL = inf, clamped logs, huge logits), integer-label targets of
softmax_cross_entropy (PyTorch's weighted mean, ignore_index, label range errors) and the
conformance kit on the label path. Agreement with PyTorch is in test_torch_agreement.py.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

import lossreg
import lossreg.kernels
from lossreg import testing as T
from lossreg.errors import DomainError, HyperparameterError, ShapeError
from lossreg.losses import probabilistic as P

PROB = ["kl_div", "js_div", "cross_entropy", "binary_cross_entropy",
        "binary_cross_entropy_with_logits", "softmax_cross_entropy", "focal", "sigmoid_focal",
        "nll"]


def test_names_aliases_and_family():
    assert sorted(PROB) == lossreg.names(family="probabilistic")
    for alias, name in {"kl": "kl_div", "js": "js_div", "ce": "cross_entropy",
                        "bce": "binary_cross_entropy", "log_loss": "binary_cross_entropy",
                        "bce_with_logits": "binary_cross_entropy_with_logits",
                        "softmax": "softmax_cross_entropy", "Log-Loss": "binary_cross_entropy",
                        "KL": "kl_div", "nll_loss": "nll"}.items():
        assert lossreg.get(alias).name == name


# -- the source article -------------------------------------------------------------------------

PX, PY = [0.1, 0.2, 0.8], [0.3, 0.3, 0.4]     # the article's example (PX sums to 1.1)


def test_article_cross_entropy_example():
    """CrossEntropy_loss(px, py) = sum -y log fx: 1.0942... with reduction="sum"."""
    want = sum(-y * math.log(fx) for y, fx in zip(PX, PY))
    got = lossreg.get("cross_entropy", reduction="sum")(PX, PY)
    assert got == pytest.approx(want, rel=1e-14)
    assert got == pytest.approx(1.0942244267971049, rel=1e-14)


def test_article_kl_example_is_not_a_distribution():
    """kl_loss(px, py) = 0.3636 by the article's loop; px sums to 1.1, so the domain check
    refuses it (naming y_true, row 0), and validate=False reproduces the loop."""
    want = sum(y * math.log(y / fx) for y, fx in zip(PX, PY))
    loss = lossreg.get("kl", reduction="sum")
    with pytest.raises(DomainError) as info:
        loss(PX, PY)
    assert info.value.argument == "y_true" and info.value.index == 0
    assert "sum to 1" in str(info.value)
    assert loss(PX, PY, validate=False) == pytest.approx(want, rel=1e-14)
    assert want == pytest.approx(0.36356349395951, rel=1e-12)
    px = np.array(PX) / 1.1                             # normalised, it is accepted
    assert loss(px, PY) == pytest.approx(sum(y * math.log(y / fx) for y, fx in zip(px, PY)),
                                         rel=1e-14)


def test_article_alpha_weighted_cross_entropy():
    """CE = -alpha log p (y = 1), -(1 - alpha) log(1 - p) (y = 0)."""
    alpha, p = 0.25, np.array([0.9, 0.2, 0.6, 0.01])
    y = np.array([1.0, 1.0, 0.0, 0.0])
    want = np.where(y == 1, -alpha * np.log(p), -(1 - alpha) * np.log(1 - p))
    got = lossreg.get("bce", alpha=alpha, reduction="none")(y, p)
    np.testing.assert_allclose(got, want, rtol=1e-14)


def test_article_softmax_loss():
    """L = -1/n sum_i log(e^{f_{Y_i}} / sum_j e^{f_j}), with the article's softmax()."""
    rng = np.random.default_rng(1)
    f = rng.normal(size=(6, 4))
    y = rng.integers(0, 4, 6)

    def softmax(x):                                  # the article's code
        x_exp = np.exp(x)
        return x_exp / np.sum(x_exp, axis=1, keepdims=True)

    want = -np.mean(np.log(softmax(f)[np.arange(6), y]))
    assert lossreg.get("softmax")(y, f) == pytest.approx(want, rel=1e-13)
    assert lossreg.get("softmax", reduction="sum")(y, f) == pytest.approx(6 * want, rel=1e-13)


def test_article_focal_loss():
    """FE = -alpha (1-p)^gamma log p (y = 1), -(1-alpha) p^gamma log(1-p) (y = 0)."""
    alpha, gamma = 0.25, 2.0
    p = np.array([0.9, 0.3, 0.7, 0.05])
    y = np.array([1.0, 1.0, 0.0, 0.0])
    want = np.where(y == 1, -alpha * (1 - p) ** gamma * np.log(p),
                    -(1 - alpha) * p ** gamma * np.log(1 - p))
    got = lossreg.get("focal", alpha=alpha, gamma=gamma, reduction="none")(y, p)
    np.testing.assert_allclose(got, want, rtol=1e-14)
    z = np.log(p / (1 - p))
    got = lossreg.get("sigmoid_focal", alpha=alpha, gamma=gamma, reduction="none")(y, z)
    np.testing.assert_allclose(got, want, rtol=1e-12)


# -- KL, JS, CE on rows --------------------------------------------------------------------------

def test_kl_infinite_where_q_is_zero_and_eps_clamps():
    """p > 0 = q: value +inf and gradient -inf (eps = 0); eps > 0 makes both finite."""
    p = np.array([[0.5, 0.5, 0.0], [0.2, 0.3, 0.5]])
    q = np.array([[1.0, 0.0, 0.0], [0.2, 0.3, 0.5]])
    for reduction in ("none", "sum", "mean"):
        value, grad = lossreg.get("kl", reduction=reduction).value_and_grad(p, q)
        assert np.all(np.asarray(value).reshape(-1)[:1] == np.inf)
        assert grad[0, 1] == -np.inf
        assert grad[0, 2] == 0.0 and grad[0, 0] == pytest.approx(-0.5 / (2 if reduction == "mean" else 1))
    none = lossreg.get("kl", reduction="none")(p, q)
    assert none[1] == 0.0
    value, grad = lossreg.get("kl", eps=1e-8, reduction="none").value_and_grad(p, q)
    assert np.all(np.isfinite(value)) and np.all(np.isfinite(grad))
    assert value[0] == pytest.approx(0.5 * math.log(0.5) + 0.5 * math.log(0.5 / 1e-8), rel=1e-13)
    assert grad[0, 1] == 0.0 and grad[0, 2] == 0.0     # clamped region: flat


def test_kl_zero_log_zero_and_nonnegative(rng):
    t, q = P.distribution_sampler(rng, 200)
    values = lossreg.get("kl", reduction="none")(t, q)
    assert np.all(values >= -1e-15) and np.all(np.isfinite(values))
    assert np.count_nonzero(t == 0) > 0
    np.testing.assert_allclose(lossreg.get("kl", reduction="none")(q, q), 0.0, atol=1e-15)
    one_hot = np.eye(3)
    v, g = lossreg.get("kl", reduction="none").value_and_grad(one_hot, one_hot)
    assert np.all(v == 0.0) and np.all(g[one_hot == 0] == 0.0)
    # batchmean: mean over rows, not over rows * classes
    assert lossreg.get("kl")(t, q) == pytest.approx(np.sum(values) / 200, rel=1e-13)


def test_kl_does_not_overflow_for_denormal_q():
    p, q = np.array([1.0 - 1e-300, 1e-300]), np.array([1.0 - 5e-324, 5e-324])
    assert np.isfinite(lossreg.get("kl", reduction="sum")(p[::-1], q))


def test_js_symmetric_bounded_and_gradient_edges(rng):
    t, q = P.distribution_sampler(rng, 100)
    js = lossreg.get("js", reduction="none")
    np.testing.assert_allclose(js(t, q), js(q, t), rtol=1e-13)
    assert np.all(js(t, q) <= math.log(2)) and np.all(js(t, q) >= 0)
    disjoint = js(np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]]))
    assert disjoint[0] == pytest.approx(math.log(2), rel=1e-15)
    # gradient 1/2 log(q/m): -inf where q = 0 < p; 1/2 log 2 (right limit) where both are 0
    g = js.grad(np.array([[0.5, 0.5, 0.0]]), np.array([[1.0, 0.0, 0.0]]))
    assert g[0, 1] == -np.inf and g[0, 2] == pytest.approx(0.5 * math.log(2))
    assert g[0, 0] == pytest.approx(0.5 * math.log(1.0 / 0.75))


def test_cross_entropy_is_kl_plus_entropy_and_inf_at_zero(rng):
    t, q = P.distribution_sampler(rng, 50)
    ce = lossreg.get("ce", reduction="none")(t, q)
    kl = lossreg.get("kl", reduction="none")(t, q)
    with np.errstate(divide="ignore", invalid="ignore"):
        h = -np.sum(np.where(t > 0, t * np.log(t), 0.0), axis=1)
    np.testing.assert_allclose(ce, kl + h, rtol=1e-12)
    v, g = lossreg.get("ce", reduction="sum").value_and_grad([0.5, 0.5], [1.0, 0.0])
    assert v == np.inf and g[1] == -np.inf and g[0] == -0.5


def test_row_sum_tolerance_and_domain_errors():
    kl = lossreg.get("kl")
    ok = np.array([[0.5, 0.5 + 5e-5]])                 # within the stated 1e-4
    assert np.isfinite(kl(ok, [[0.5, 0.5]]))
    with pytest.raises(DomainError) as info:
        kl([[0.5, 0.5], [0.5, 0.6]], [[0.5, 0.5], [0.5, 0.5]])
    assert info.value.argument == "y_true" and info.value.index == 2
    with pytest.raises(DomainError) as info:
        lossreg.get("js")([[0.5, 0.5]], [[1.2, -0.2]])
    assert info.value.argument == "y_pred" and info.value.index == 0
    with pytest.raises(ShapeError):
        kl(np.ones((2, 3)) / 3, np.ones((2, 4)) / 4)
    assert lossreg.spec("kl").domain("y_true").row_sum_tol == P.ROW_SUM_TOL


# -- element-wise losses --------------------------------------------------------------------------

def test_bce_edges_finite_and_clamped():
    y = np.array([1.0, 0.0, 1.0, 0.0, 0.3, 0.3])
    p = np.array([0.0, 1.0, 1.0, 0.0, 0.0, 1.0])
    value, grad = lossreg.get("bce", reduction="none").value_and_grad(y, p)
    np.testing.assert_array_equal(value, [100.0, 100.0, 0.0, 0.0, 30.0, 70.0])
    assert np.all(np.isfinite(grad))
    assert grad[0] < 0 < grad[1] and grad[2] == 0.0 and grad[3] == 0.0
    # PyTorch's bound: (p - y) / max(p (1 - p), 1e-12f)
    assert grad[0] == pytest.approx(-1 / P.GRAD_EPS, rel=1e-15)
    a = lossreg.get("bce", alpha=0.25, reduction="none").value_and_grad(y, p)
    np.testing.assert_allclose(a[0][:2], [25.0, 75.0])


def test_bce_with_logits_stable_for_any_finite_logit():
    big = np.finfo(np.float64).max
    z = np.array([-big, -1e300, -1e4, -745.0, -40.0, 0.0, 40.0, 745.0, 1e4, 1e300, big])
    for y in (0.0, 1.0, 0.3):
        t = np.full_like(z, y)
        for hyper in ({}, {"alpha": 0.3, "pos_weight": 2.0}):
            value, grad = lossreg.get("bce_with_logits", reduction="none", **hyper).value_and_grad(t, z)
            assert np.all(np.isfinite(value)) and np.all(np.isfinite(grad)), (y, hyper)
    v = lossreg.get("bce_with_logits", reduction="none")(np.array([0.0, 1.0]), np.array([1e4, -1e4]))
    np.testing.assert_array_equal(v, [1e4, 1e4])
    v = lossreg.get("bce_with_logits", reduction="none")(np.array([1.0, 0.0]), np.array([1e4, -1e4]))
    np.testing.assert_array_equal(v, [0.0, 0.0])
    # float32: logits up to float32 max
    z32 = np.array([-3.4e38, -1e4, 0, 1e4, 3.4e38], np.float32)
    v, g = lossreg.get("bce_with_logits", reduction="none").value_and_grad(np.ones(5, np.float32), z32)
    assert v.dtype == g.dtype == np.float32 and np.all(np.isfinite(v)) and np.all(np.isfinite(g))


def test_bce_with_logits_matches_bce_on_sigmoid(rng):
    y, z = rng.random(100), rng.normal(0, 3, 100)
    p = 1 / (1 + np.exp(-z))
    for alpha in (None, 0.3):
        a = lossreg.get("bce_with_logits", alpha=alpha, reduction="none")(y, z)
        b = lossreg.get("bce", alpha=alpha, reduction="none")(y, p)
        np.testing.assert_allclose(a, b, rtol=1e-9)
    pw = lossreg.get("bce_with_logits", pos_weight=3.0, reduction="none")(y, z)
    np.testing.assert_allclose(pw, -(3 * y * np.log(p) + (1 - y) * np.log(1 - p)), rtol=1e-9)


def test_focal_gamma_zero_is_bce_and_edges_finite(rng):
    y = np.concatenate([rng.random(50), [0, 1, 0, 1, 0.5, 0.5]])
    p = np.concatenate([rng.random(50), [0, 0, 1, 1, 0, 1]])
    # gamma = 0: BCE (alpha-weighted per term in the split form; times alpha_t otherwise)
    for alpha, split in ((None, False), (None, True), (0.25, True)):
        f = lossreg.get("focal", alpha=alpha, gamma=0.0, split_terms=split,
                        reduction="none").value_and_grad(y, p)
        b = lossreg.get("bce", alpha=alpha, reduction="none").value_and_grad(y, p)
        np.testing.assert_allclose(f[0], b[0], rtol=1e-14)
        np.testing.assert_allclose(f[1], b[1], rtol=1e-12)
    alpha_t = 0.25 * y + 0.75 * (1 - y)
    bce = lossreg.get("bce", reduction="none")(y, p)
    f = lossreg.get("focal", gamma=0.0, reduction="none")(y, p)
    np.testing.assert_allclose(f, alpha_t * bce, rtol=1e-14)
    for gamma in (0.5, 1.0, 2.0, 5.0):
        v, g = lossreg.get("focal", gamma=gamma, reduction="none").value_and_grad(y, p)
        assert np.all(np.isfinite(v)) and np.all(np.isfinite(g))
        assert np.all(v <= alpha_t * bce + 1e-15)
        v, g = lossreg.get("focal", gamma=gamma, split_terms=True,
                           reduction="none").value_and_grad(y, p)
        assert np.all(np.isfinite(v)) and np.all(np.isfinite(g))
        assert np.all(v <= lossreg.get("bce", alpha=0.25, reduction="none")(y, p) + 1e-15)


def test_sigmoid_focal_matches_focal_on_sigmoid_and_extreme_logits(rng):
    y, z = rng.integers(0, 2, 100).astype(float), rng.normal(0, 3, 100)
    p = 1 / (1 + np.exp(-z))
    for alpha, gamma in ((0.25, 2.0), (None, 1.0), (0.6, 0.0)):
        a = lossreg.get("sigmoid_focal", alpha=alpha, gamma=gamma, reduction="none")(y, z)
        b = lossreg.get("focal", alpha=alpha, gamma=gamma, reduction="none")(y, p)
        np.testing.assert_allclose(a, b, rtol=1e-9)
    big = np.finfo(np.float64).max
    z = np.array([-big, -1e4, -50.0, 0.0, 50.0, 1e4, big])
    for t in (0.0, 1.0, 0.4):
        for gamma in (0.0, 0.5, 2.0):
            v, g = lossreg.get("sigmoid_focal", gamma=gamma, reduction="none").value_and_grad(
                np.full_like(z, t), z)
            assert np.all(np.isfinite(v)) and np.all(np.isfinite(g)), (t, gamma)


def test_elementwise_losses_finite_on_valid_extremes(rng):
    """No NaN or inf for any valid finite input (probabilities in [0, 1], any logits)."""
    probs = np.concatenate([[0.0, 1.0, 5e-324, 1e-300, 1 - 1e-16], rng.random(45)])
    logits = np.concatenate([[-1e308, 1e308, -1e4, 1e4, 0.0], rng.normal(0, 30, 45)])
    for name, pred in (("bce", probs), ("focal", probs), ("bce_with_logits", logits),
                       ("sigmoid_focal", logits)):
        for y in (rng.random(50), np.round(rng.random(50))):
            yy, pp = np.meshgrid(y, pred)
            v, g = lossreg.get(name, reduction="none").value_and_grad(yy, pp)
            assert np.all(np.isfinite(v)) and np.all(np.isfinite(g)), name


def test_hyperparameter_intervals():
    for name, bad in (("bce", {"alpha": 1.5}), ("focal", {"gamma": -1.0}),
                      ("bce_with_logits", {"pos_weight": 0.0}), ("kl", {"eps": -1e-3}),
                      ("softmax", {"label_smoothing": 1.0}),
                      ("softmax", {"class_weight": [1.0, -1.0]})):
        with pytest.raises(HyperparameterError):
            lossreg.get(name, **bad)
    assert lossreg.get("focal", alpha=None).hyperparameters["alpha"] is None


# -- softmax cross-entropy: labels ----------------------------------------------------------------

def _one_hot(labels, n_classes):
    out = np.zeros((len(labels), n_classes))
    out[np.arange(len(labels)), labels] = 1.0
    return out


def test_labels_equal_one_hot_rows(rng):
    y, z = P.label_sampler(rng, 30)
    for hyper in ({}, {"label_smoothing": 0.2}):
        for reduction in ("none", "sum", "mean"):
            loss = lossreg.get("softmax", reduction=reduction, **hyper)
            a, b = loss.value_and_grad(y, z), loss.value_and_grad(_one_hot(y, 4), z)
            np.testing.assert_allclose(a[0], b[0], rtol=1e-13)
            np.testing.assert_allclose(a[1], b[1], rtol=1e-13, atol=1e-16)


def test_labels_pytorch_weighted_mean_and_ignore_index(rng):
    y, z = P.label_sampler(rng, 40)
    y[:5] = 2
    w = np.array([0.5, 2.0, 1.0, 3.0])
    logp = z - z.max(1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(1, keepdims=True))
    keep = y != 2
    nll = -logp[np.arange(40), y] * w[y]
    loss = lossreg.get("softmax", class_weight=w, ignore_index=2)
    assert loss(y, z) == pytest.approx(nll[keep].sum() / w[y[keep]].sum(), rel=1e-13)
    none = lossreg.get("softmax", class_weight=w, ignore_index=2, reduction="none")
    values, grad = none.value_and_grad(y, z)
    assert np.all(values[~keep] == 0) and np.all(grad[~keep] == 0)
    np.testing.assert_allclose(values[keep], nll[keep], rtol=1e-13)
    # sample weights multiply both numerator and the class-weight denominator
    s = rng.random(40)
    got = loss(y, z, sample_weight=s)
    assert got == pytest.approx((s * nll)[keep].sum() / (s * w[y])[keep].sum(), rel=1e-13)
    # soft targets: mean over rows (PyTorch), not over weights
    soft = lossreg.get("softmax", class_weight=w)
    t = _one_hot(y, 4)
    assert soft(t, z) == pytest.approx(np.sum(-logp * t * w) / 40, rel=1e-13)


def test_labels_gradient_matches_finite_differences(rng):
    y, z = P.label_sampler(rng, 7)
    w = [0.5, 2.0, 1.0, 3.0]
    for hyper in ({"class_weight": w, "ignore_index": 1, "label_smoothing": 0.1}, {}):
        loss = lossreg.get("softmax", **hyper)
        y[0] = 1
        got = loss.grad(y, z)
        want = np.empty_like(z)
        h = 1e-5
        for idx in np.ndindex(z.shape):
            zp, zm = z.copy(), z.copy()
            zp[idx] += h
            zm[idx] -= h
            want[idx] = (loss(y, zp) - loss(y, zm)) / (2 * h)
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-9)


def test_label_errors():
    z = np.zeros((4, 3))
    loss = lossreg.get("softmax")
    for labels, index in (([0, 1, 3, 0], 2), ([0, -1, 2, 0], 1), ([0, 1, 2, 7], 3)):
        with pytest.raises(DomainError) as info:
            loss(np.array(labels), z)
        assert (info.value.argument, info.value.index) == ("y_true", index)
        assert "[0, 3)" in info.value.constraint
    assert np.isfinite(lossreg.get("softmax", ignore_index=-100)(np.array([0, -100, 2, 1]), z))
    with pytest.raises(DomainError) as info:
        loss(np.array([0.0, 1.5, 2.0, 1.0]), z)
    assert info.value.index == 1 and info.value.constraint == "integer class label"
    assert loss(np.array([0.0, 1.0, 2.0, 1.0]), z) == pytest.approx(math.log(3))
    with pytest.raises(ShapeError, match="class_weight"):
        lossreg.get("softmax", class_weight=[1.0, 2.0])(np.array([0, 1, 1, 0]), z)
    with pytest.raises(ShapeError):
        loss(np.array([0, 1, 1]), z)
    ignore_all = lossreg.get("softmax", ignore_index=0)
    with pytest.raises(DomainError, match="sum to 0"):
        ignore_all(np.zeros(4, dtype=int), z)
    assert lossreg.get("softmax", ignore_index=0, reduction="sum")(np.zeros(4, dtype=int), z) == 0.0
    # validate=False: an out-of-range label gives NaN for its row, never a crash
    values = lossreg.get("softmax", reduction="none")(np.array([0, 99, 1, -5]), z, validate=False)
    assert np.isnan(values[1]) and np.isnan(values[3]) and np.isfinite(values[0])


def test_labels_shapes_dtypes_and_c1():
    z = np.array([2.0, -1.0, 0.5])
    assert lossreg.get("softmax")(np.int64(0), z) == pytest.approx(
        -(2.0 - np.log(np.exp(z).sum())), rel=1e-14)
    z32 = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
    v, g = lossreg.get("softmax", reduction="none").value_and_grad(np.array([0, 1, 2, 0, 1]), z32)
    assert v.dtype == g.dtype == np.float32
    v, g = lossreg.get("softmax").value_and_grad(np.zeros(3, dtype=int), np.full((3, 1), 7.0))
    assert v == 0.0 and np.all(g == 0.0)
    big = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, -1e4]])
    v, g = lossreg.get("softmax", reduction="none").value_and_grad(np.array([1, 1]), big)
    np.testing.assert_array_equal(v, [2e4, 0.0])
    assert np.all(np.isfinite(g))


# -- the conformance kit on the label path -----------------------------------------------------------

def test_label_path_conformance():
    """Every ``labels:`` check of the kit (values, finite-difference gradients, weights,
    reductions, layouts, label range) for each hyperparameter case and dtype."""
    labels = [(label, run) for label, run in T.iter_checks(lossreg.spec("softmax"))
              if label.startswith("labels:")]
    assert len(labels) >= 2 * (2 * (3 * 4 + 2) + 1)
    failed = []
    for label, run in labels:
        try:
            run()
        except T.ConformanceError as exc:
            failed.append(f"{label}: {exc}")
    assert not failed, "\n".join(failed)
    assert T.label_variant(lossreg.spec("kl")) is None


def test_kit_catches_a_label_kernel_that_ignores_label_smoothing():
    spec = lossreg.spec("softmax")
    k = spec.kernels
    broken = dataclasses.replace(spec, kernels=lossreg.kernels.row_kernels(
        k.impl, checks_pred=True, serial_below=k.serial_below,
        labels=dataclasses.replace(k.labels, impl=_impl_without_smoothing)))
    with pytest.raises(T.ConformanceError, match="gradient"):
        T.check_gradient(T.label_variant(broken), np.float64, "mean", {"label_smoothing": 0.3})


def _impl_without_smoothing(labels, z, w, scale, values, grad, hess, workers, ls, cw, ignore,
                            has_ignore):
    return P.softmax_ce_label_impl(labels, z, w, scale, values, grad, hess, workers, 0.0, cw,
                                   ignore, has_ignore)
