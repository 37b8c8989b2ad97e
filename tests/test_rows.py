"""Row kernels (one impl per target form): the plan calls each once per call, any subset
of value, gradient and Hessian in one pass, and every subset gives the same bits in
float64."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import lossreg
from lossreg.kernels import RowKernels, row_kernels
from lossreg.losses import rows

# (loss, hyperparameters, targets): every row loss that has a value_grad kernel, in its
# plain and its hyperparameter-heavy forms; "labels" = integer class labels.
CASES = [
    ("kl_div", {}, "distribution"),
    ("kl_div", {"eps": 0.05}, "distribution"),
    ("js_div", {}, "distribution"),
    ("cross_entropy", {}, "distribution"),
    ("softmax_cross_entropy", {}, "distribution"),
    ("softmax_cross_entropy", {"label_smoothing": 0.1, "class_weight": "ramp"}, "distribution"),
    ("softmax_cross_entropy", {}, "labels"),
    ("softmax_cross_entropy", {"label_smoothing": 0.2, "class_weight": "ramp",
                               "ignore_index": 1}, "labels"),
    ("nll", {}, "distribution"),
    ("nll", {"class_weight": "ramp", "ignore_index": 1}, "labels"),
    ("cosine_similarity", {}, "distribution"),            # any non-zero rows
    ("dice", {}, "distribution"),                         # probabilities in [0, 1]
    ("tversky", {"alpha": 0.3, "beta": 0.7, "smooth": 1.0}, "distribution"),
    ("categorical_hinge", {}, "distribution"),
    ("multi_margin", {"p": 2, "margin": 0.5, "class_weight": "ramp"}, "labels"),
]


def _inputs(name, targets, n_rows, n_classes, dtype, rng):
    t = rng.dirichlet(np.full(n_classes, 0.5), size=n_rows)
    t[rng.random(t.shape) < 0.2] = 0.0                  # exact zeros: 0 log 0 terms
    t[np.arange(n_rows), rng.integers(0, n_classes, n_rows)] += 0.1
    t /= t.sum(axis=1, keepdims=True)
    if name == "softmax_cross_entropy":
        p = rng.normal(0.0, 3.0, size=(n_rows, n_classes))
        p[0, 0] = 700.0                                 # a huge logit: log-sum-exp
    else:
        p = rng.dirichlet(np.full(n_classes, 1.0), size=n_rows) * 0.9 + 0.1 / n_classes
        p = np.log(p) if name == "nll" else p           # nll: log-probabilities
    if targets == "labels":
        t = rng.integers(0, n_classes, n_rows)
    return t if targets == "labels" else t.astype(dtype), p.astype(dtype)


def _hyper(hyper, n_classes):
    hyper = dict(hyper)
    if hyper.get("class_weight") == "ramp":
        hyper["class_weight"] = list(np.linspace(0.5, 2.0, n_classes))
    return hyper


def test_every_built_in_row_loss_is_covered():
    fused = {n for n in lossreg.names() if isinstance(lossreg.spec(n).kernels, RowKernels)}
    assert fused <= {c[0] for c in CASES}


@pytest.mark.parametrize("name,hyper,targets", CASES)
@pytest.mark.parametrize("n_classes", [4, 40])             # class-major and row-major blocks
@pytest.mark.parametrize("n_rows", [5, 1501])              # serial; parallel, several blocks
def test_value_grad_equals_forward_and_gradient(name, hyper, targets, n_classes, n_rows):
    rng = np.random.default_rng(n_rows * n_classes)
    hyper = _hyper(hyper, n_classes)
    for dtype in (np.float64, np.float32):
        t, p = _inputs(name, targets, n_rows, n_classes, dtype, rng)
        w = rng.random(n_rows) + 0.1
        for reduction in ("mean", "sum"):
            loss = lossreg.get(name, reduction=reduction, **hyper)
            for weights in (None, w):
                value, grad = loss.value_and_grad(t, p, sample_weight=weights)
                value2 = loss(t, p, sample_weight=weights)
                grad2 = loss.grad(t, p, sample_weight=weights)
                assert grad.dtype == dtype and np.all(np.isfinite(grad))
                if dtype == np.float64:
                    assert value == value2
                    assert np.array_equal(grad, grad2)
                else:
                    assert value == pytest.approx(value2, rel=1e-6)
                    np.testing.assert_allclose(grad, grad2, rtol=1e-5,
                                               atol=1e-6 * float(np.max(np.abs(grad2))))


def _replaced(spec, impl):
    k = spec.kernels
    return dataclasses.replace(spec, kernels=row_kernels(
        impl, labels=k.labels, checks_pred=bool(k.checks), serial_below=k.serial_below))


def test_the_plan_calls_the_impl_once_per_call():
    spec = lossreg.spec("cross_entropy")
    calls = []

    def counting(*args):
        calls.append((args[3], args[4].size > 0, args[5].size > 0, args[6].size > 0))
        return rows.ce_impl(*args)

    loss = lossreg.Loss(_replaced(spec, counting), "mean")
    t, p = spec.sample(np.random.default_rng(0), 50)
    value, grad = loss.value_and_grad(t, p)
    assert calls == [(1.0 / 50, True, True, False)]     # one pass, scale of the mean
    assert value == lossreg.get("cross_entropy")(t, p)
    np.testing.assert_array_equal(grad, lossreg.get("cross_entropy").grad(t, p))
    g, h = loss.grad_hess(t, p)
    assert calls[-1] == (1.0 / 50, False, True, True)
    assert len(calls) == 2


def test_ignored_and_invalid_label_rows():
    z = np.random.default_rng(1).normal(size=(6, 3))
    labels = np.array([0, 2, -100, 1, 2, -100])
    loss = lossreg.get("softmax_cross_entropy", ignore_index=-100, reduction="sum")
    value, grad = loss.value_and_grad(labels, z)
    assert np.all(grad[[2, 5]] == 0.0)
    assert value == loss(labels, z)
    # validate=False with an out-of-range label: NaN row (documented), not a crash
    bad = np.array([0, 7, 1, 1, 2, 0])
    value, grad = lossreg.get("softmax_cross_entropy", reduction="sum").value_and_grad(
        bad, z, validate=False)
    assert np.isnan(value) and np.all(np.isnan(grad[1])) and np.all(np.isfinite(grad[[0, 2]]))


@pytest.mark.parametrize("labels", [True, False])
@pytest.mark.parametrize("n_rows", [5, 3001])              # serial; parallel, several blocks
def test_value_grad_checks_logits_itself(labels, n_rows):
    """softmax's value_grad counts non-finite logits (value_grad_checks): the dispatcher
    skips its own scan of y_pred there, yet every bad logit is reported at its index."""
    assert lossreg.spec("softmax_cross_entropy").kernels.checks == ("y_pred",)
    rng = np.random.default_rng(n_rows)
    z = rng.normal(size=(n_rows, 4))
    t = rng.integers(0, 4, n_rows) if labels else rng.dirichlet(np.ones(4), n_rows)
    loss = lossreg.get("softmax_cross_entropy")
    for index in (0, z.size // 2, z.size - 1):
        for bad in (np.nan, np.inf, -np.inf):
            zz = z.copy()
            zz.flat[index] = bad
            with pytest.raises(lossreg.DomainError) as info:
                loss.value_and_grad(t, zz)
            assert info.value.index == index and info.value.argument == "y_pred"


def test_a_row_kernel_that_miscounts_is_a_plugin_error():
    spec = lossreg.spec("softmax_cross_entropy")

    def lying(*args):
        rows.softmax_ce_impl(*args)
        return 3

    loss = lossreg.Loss(_replaced(spec, lying), "mean")
    t, p = spec.sample(np.random.default_rng(0), 20)
    with pytest.raises(lossreg.PluginError, match="reported 3"):
        loss.value_and_grad(t, p)
    assert np.isfinite(loss.value_and_grad(t, p, validate=False)[0])


def test_a_checking_row_kernel_without_a_count_is_a_plugin_error():
    spec = lossreg.spec("softmax_cross_entropy")

    def silent(*args):
        rows.softmax_ce_impl(*args)

    loss = lossreg.Loss(_replaced(spec, silent), "mean")
    t, p = spec.sample(np.random.default_rng(0), 20)
    with pytest.raises(lossreg.PluginError, match="no count"):
        loss.value_and_grad(t, p)
