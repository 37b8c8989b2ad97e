"""The margin family (issue 20) against its origins: Keras's hinge, squared_hinge and
categorical_hinge (formulas re-implemented here from the Keras docs), PyTorch's
MultiMarginLoss (torch.nn.functional.multi_margin_loss and autograd).

The all-loss parametrizations (conformance kit, bad input, properties, bridges, the
torch Hessian oracle for multi_margin) pick these losses up by themselves; this file
checks what they do not: the origin's numbers, the label rules and the extremes. Inputs
are small (serial kernels) and each test compiles few kernels.
"""

from __future__ import annotations

import numpy as np
import pytest

import lossreg
from lossreg import cli
from lossreg.errors import DomainError, HyperparameterError, ShapeError

RNG = np.random.default_rng(21)
TOL = {np.float64: 1e-10, np.float32: 1e-5}


def rel(a, b) -> float:
    """max |a - b| / max |b| (the agreement tests' inf-norm relative error)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    assert a.shape == b.shape, (a.shape, b.shape)
    return float(np.max(np.abs(a - b)) / max(float(np.max(np.abs(b))), 1e-300))


# -- Keras: hinge, squared_hinge ---------------------------------------------------------------

def keras_hinge(y_true, y_pred, squared=False):
    """keras.losses.hinge / squared_hinge per sample (from the docs): 0/1 labels become
    -1/1 when the whole tensor is binary, then mean(maximum(1 - y * p, 0)[^2], axis=-1).
    Returns the per-sample values and the gradient of their mean over the batch."""
    y = np.asarray(y_true, np.float64)
    if np.all((y == 0) | (y == 1)):
        y = 2.0 * y - 1.0
    m = np.maximum(1.0 - y * y_pred, 0.0)
    per_sample = np.mean(m ** 2 if squared else m, axis=-1)
    d = (-2.0 * y * m) if squared else np.where(m > 0, -y, 0.0)
    return per_sample, d / y_pred.size


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_hinge_and_squared_hinge_agree_with_keras(dtype):
    s = np.where(RNG.random((16, 5)) < 0.5, 1.0, -1.0)
    p = (RNG.normal(0, 1.5, (16, 5))).astype(dtype)
    for labels in (s, (s + 1) / 2, np.ones((16, 5))):           # -1/1, 0/1, all 1
        for name, squared in (("hinge", False), ("squared_hinge", True)):
            per_sample, grad = keras_hinge(labels, p.astype(np.float64), squared)
            value, g = lossreg.get(name).value_and_grad(labels.astype(dtype), p)
            assert abs(value - per_sample.mean()) <= TOL[dtype] * per_sample.mean()
            assert g.dtype == dtype and rel(g, grad) <= TOL[dtype]
            none = lossreg.get(name, reduction="none")(labels.astype(dtype), p)
            assert rel(none.mean(axis=-1), per_sample) <= TOL[dtype]   # Keras's per sample
    h = lossreg.get("squared_hinge").hessian(s, p.astype(np.float64))
    np.testing.assert_array_equal(h, np.where(1 - s * p > 0, 2.0, 0.0) / p.size)
    assert not np.any(lossreg.get("hinge").hessian(s, p.astype(np.float64)))


def test_hinge_kink_convention():
    """At 1 - s y_pred = 0 the term is inactive: gradient 0 (hinge) and curvature 0."""
    p = np.array([1.0, -1.0, 2.0, 0.5])
    for t in (np.array([1.0, -1.0, 1.0, 1.0]), np.array([1.0, 0.0, 1.0, 1.0])):
        g, h = lossreg.get("hinge", reduction="sum").grad_hess(t, p)
        np.testing.assert_array_equal(g, [0.0, 0.0, 0.0, -1.0])
        g, h = lossreg.get("squared_hinge", reduction="sum").grad_hess(t, p)
        np.testing.assert_array_equal(g, [0.0, 0.0, 0.0, -1.0])
        np.testing.assert_array_equal(h, [0.0, 0.0, 0.0, 2.0])


@pytest.mark.parametrize("labels, index, value", [
    ([1, -1, 0.5, 1], 2, 0.5),           # not a label
    ([1, 1, 2, -1], 2, 2.0),             # outside [-1, 1]
    ([1, -1, 1, 0, 0], 3, 0.0),          # -1 then 0: mixed sets
    ([0, 1, 1, -1], 3, -1.0),            # 0 then -1
    ([1, np.nan, 1, 1], 1, None),
], ids=["half", "two", "minus-one-then-zero", "zero-then-minus-one", "nan"])
def test_hinge_bad_labels_are_domain_errors(labels, index, value):
    p = RNG.normal(size=len(labels))
    for name in ("hinge", "squared_hinge"):
        loss = lossreg.get(name)
        for call in (loss, loss.grad, loss.hessian):
            with pytest.raises(DomainError) as info:
                call(np.array(labels, np.float64), p)
            err = info.value
            assert err.argument == "y_true" and err.index == index, err
            if value is not None and value != 2.0:
                assert err.constraint == "labels in {-1, 1} or {0, 1}", err
                assert "first violation at index" in str(err)
    # validate=False: the caller's word; the kernel maps any label t to 1 if t > 0 else -1
    assert np.isfinite(lossreg.get("hinge")(np.array(labels, np.float64), p, validate=False))


def test_hinge_label_sets_checked_by_the_kernels_across_chunks():
    """The kernels check the label sets (the dispatcher does not scan them first): each
    chunk may hold one set while the array mixes them; parallel chunks, weights,
    reduction="none", float32 and the zero-weight path all give the scan's error (kernels
    the other tests of hinge compile anyway)."""
    from dataclasses import replace

    from lossreg.kernels.reduce import CHUNK
    from lossreg.plan import Plan

    loss = lossreg.get("hinge")
    assert not loss._plan.needs_scan                  # label sets fused into the kernels
    n = 1 << 18                                      # parallel (CHEAP_SERIAL_BELOW)
    t = np.ones(n)
    t[: 3 * CHUNK] = -1.0                            # chunks 0-2: {-1, 1}
    t[5 * CHUNK + 7] = 0.0                           # chunk 5: {0, 1} only
    p = RNG.normal(size=n)
    w = np.ones(n)
    cases = [(loss, {}, np.float32), (loss.grad, {}, np.float64),
             (lossreg.get("squared_hinge").value_and_grad, {}, np.float64),
             (loss, {"sample_weight": w}, np.float64),
             (lossreg.get("hinge", reduction="none"), {}, np.float64)]
    for call, kw, dtype in cases:
        with pytest.raises(DomainError) as info:
            call(t.astype(dtype), p.astype(dtype), **kw)
        assert info.value.index == 5 * CHUNK + 7, (call, kw, dtype)
        assert info.value.constraint == "labels in {-1, 1} or {0, 1}"
    w[3] = 0.0                                       # zero weights: check_domains scans all
    with pytest.raises(DomainError) as info:
        loss(t, p, sample_weight=w)
    assert info.value.index == 5 * CHUNK + 7
    t[5 * CHUNK + 7] = 1.0                           # one set throughout: fine
    assert np.isfinite(loss(t, p)) and np.isfinite(loss(t, p, sample_weight=w))
    # a domain whose sets differ from the kernels' is scanned by the dispatcher
    spec = loss._plan.spec
    other = lossreg.Domain(lossreg.Interval(-1.0, 1.0), label_sets=((-1.0, 1.0),))
    odd = Plan(replace(spec, domains={**spec.domains, "y_true": other}), (), "mean")
    assert odd.needs_scan


def test_label_sets_in_the_blocks_style():
    """The "blocks" generator counts label sets as the "quads" one does (hinge uses
    quads; its tiny element function compiles fast in either style)."""
    from lossreg.kernels import ElementwiseKernels, Job
    from lossreg.kernels.reduce import CHUNK
    from lossreg.losses.margin import HINGE_LABELS, hinge_elem

    kernels = ElementwiseKernels(hinge_elem, "blocks", label_sets=HINGE_LABELS.label_sets)
    n = 3 * CHUNK + 5
    t = np.ones(n)
    t[:CHUNK] = -1.0
    p = RNG.normal(size=n)
    bounds = (-1.0, 1.0, False, -np.inf, np.inf, False)
    quads = lossreg.get("hinge", reduction="sum")
    assert kernels.run(Job(t, p, np.empty(0), (), bounds, True)).total == quads(t, p)
    t[n - 1] = 0.0                                   # -1 in chunk 0, 0 in the tail
    assert kernels.run(Job(t, p, np.empty(0), (), bounds, True)).sets_t
    assert not kernels.run(Job(t, p, np.empty(0), (), bounds, True, check=False)).sets_t


# -- Keras: categorical_hinge ------------------------------------------------------------------

def keras_categorical_hinge(t, p):
    """keras.losses.categorical_hinge (docs): pos = sum(t p), neg = max((1 - t) p),
    maximum(neg - pos + 1, 0) per row; and the gradient of the batch mean (no ties)."""
    pos = np.sum(t * p, axis=-1)
    a = (1.0 - t) * p
    neg = np.max(a, axis=-1)
    v = neg - pos + 1.0
    top = (a == neg[:, None]).astype(np.float64)
    grad = np.where(v[:, None] > 0, -t + (1.0 - t) * top, 0.0) / p.shape[0]
    return np.maximum(v, 0.0), grad


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_categorical_hinge_agrees_with_keras(dtype):
    t = np.eye(6)[RNG.integers(0, 6, 24)]
    t[3] = 0.0                                               # no class, as Keras's example
    p = RNG.normal(0, 1.5, (24, 6)).astype(dtype)
    want, grad = keras_categorical_hinge(t, p.astype(np.float64))
    value, g = lossreg.get("categorical_hinge").value_and_grad(t.astype(dtype), p)
    assert abs(value - want.mean()) <= TOL[dtype] * want.mean()
    assert g.dtype == dtype and rel(g, grad) <= TOL[dtype]
    none = lossreg.get("categorical_hinge", reduction="none")(t.astype(dtype), p)
    assert rel(none, want) <= TOL[dtype]
    # Keras's docstring example: 1.4; with sample_weight=[1, 0] Keras gives 0.6 because
    # its "sum_over_batch_size" divides by the batch size; lossreg's mean divides by the
    # weight sum (API.md): 1.2
    kt, kp = np.array([[0.0, 1.0], [0.0, 0.0]]), np.array([[0.6, 0.4], [0.4, 0.6]])
    assert lossreg.get("categorical_hinge")(kt, kp) == pytest.approx(1.4, rel=1e-15)
    assert lossreg.get("categorical_hinge")(kt, kp, sample_weight=[1.0, 0.0]) == \
        pytest.approx(0.6 * 2, rel=1e-15)


def test_categorical_hinge_ties_kink_and_targets():
    loss = lossreg.get("categorical_hinge", reduction="sum")
    t = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    p = np.array([[0.5, 1.0, 1.0], [0.0, 2.0, 1.0]])            # a tie; exactly at the kink
    g, h = loss.grad_hess(t, p)
    np.testing.assert_array_equal(g, [[-1.0, 0.5, 0.5], [0.0, 0.0, 0.0]])
    assert not np.any(h)
    with pytest.raises(DomainError) as info:                    # -1/+1 "one-hot": refused
        loss(np.array([[1.0, -1.0, -1.0], [-1.0, 1.0, -1.0]]), p)
    assert info.value.argument == "y_true" and info.value.index == 1


# -- PyTorch: multi_margin ---------------------------------------------------------------------

MM_HYPERS = [{}, {"p": 2}, {"margin": 0.3, "class_weight": "random"},
             {"p": 2, "margin": 2.0, "class_weight": "random"}]


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_multi_margin_agrees_with_torch(dtype):
    torch = pytest.importorskip("torch")
    from lossreg.peers import PEERS

    F = torch.nn.functional
    x = RNG.normal(0, 1.5, (40, 5)).astype(dtype)
    x[0] = [1e4, -1e4, 0.0, 3.0, -2.0]                           # extremes
    y = RNG.integers(0, 5, 40)
    tol = TOL[dtype]
    for hyper in MM_HYPERS:
        hyper = dict(hyper)
        kw = {"p": hyper.get("p", 1), "margin": hyper.get("margin", 1.0)}
        if hyper.get("class_weight") == "random":
            hyper["class_weight"] = RNG.uniform(0.1, 3.0, 5).tolist()
            kw["weight"] = torch.tensor(hyper["class_weight"], dtype=torch.float64)
        for reduction in ("mean", "sum", "none"):
            loss = lossreg.get("multi_margin_loss", reduction=reduction, **hyper)
            value, grad = loss.value_and_grad(y, x)
            xt = torch.tensor(x, dtype=torch.float64, requires_grad=True)
            ref = F.multi_margin_loss(xt, torch.tensor(y), reduction=reduction, **kw)
            (ref.sum() if reduction == "none" else ref).backward()
            assert rel(value, ref.detach().numpy()) <= tol, (hyper, reduction)
            assert grad.dtype == dtype and rel(grad, xt.grad.numpy()) <= tol, (hyper, reduction)
        if dtype == np.float64:                # Hessian vs double backward (of primitives:
            xt = torch.tensor(x, requires_grad=True)   # the native kernel has none)
            fn = PEERS["multi_margin"].torch(torch.tensor(y), xt, "mean", **hyper)
            (g,) = torch.autograd.grad(fn, xt, create_graph=True)
            want = np.zeros(x.shape)
            if g.requires_grad:
                for j in range(x.shape[1]):
                    want[:, j] = torch.autograd.grad(g[:, j].sum(), xt, retain_graph=True)[0][:, j]
            got = lossreg.get("multi_margin", **hyper).hessian(y, x)
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)
            assert np.any(got) == (hyper.get("p") == 2)


def test_multi_margin_probability_rows_and_bad_input():
    x = RNG.normal(size=(6, 4))
    y = RNG.integers(0, 4, 6)
    loss = lossreg.get("multi_margin", p=2, class_weight=[1.0, 2.0, 0.5, 1.0], reduction="none")
    np.testing.assert_allclose(loss(np.eye(4)[y], x), loss(y, x), rtol=1e-15)   # one-hot
    soft = RNG.dirichlet(np.ones(4), size=6)
    expected = sum(soft[:, c] * loss(np.full(6, c), x) for c in range(4))
    np.testing.assert_allclose(loss(soft, x), expected, rtol=1e-13)
    with pytest.raises(DomainError) as info:
        loss(np.array([0, 1, 4, 1, 0, 0]), x)
    assert info.value.argument == "y_true" and info.value.index == 2
    with pytest.raises(ShapeError, match="class_weight"):
        lossreg.get("multi_margin", class_weight=[1.0, 2.0])(y, x)
    for bad in ({"p": 3}, {"p": 0}, {"margin": -1.0}):
        with pytest.raises(HyperparameterError):
            lossreg.get("multi_margin", **bad)


# -- extremes, family listing ------------------------------------------------------------------

def test_extremes_are_finite_or_overflow_like_the_formula():
    """Huge scores: no NaN anywhere; values finite wherever the formula's are."""
    big = np.array([1e300, -1e300, 1e-300, 0.0, 3e8, -3e8])
    cases = {
        "hinge": (np.array([1.0, -1.0, 1.0, -1.0, 1.0, 1.0]), big),
        "squared_hinge": (np.array([1.0, -1.0, 1.0, -1.0, 1.0, 1.0]), big),
        "categorical_hinge": (np.eye(3)[[0, 1, 2, 0]], np.array(
            [[1e300, -1e300, 0.0], [1e300, 1e300, 1e300], [-1e300, 2.0, 1e-300], [0, 0, 0.0]])),
        "multi_margin": (np.array([0, 1, 2, 0]), np.array(
            [[1e300, -1e300, 0.0], [1e300, 1e300, 1e300], [-1e300, 2.0, 1e-300], [0, 0, 0.0]])),
    }
    for name, (t, p) in cases.items():
        spec = lossreg.spec(name)
        for hyper in ({}, {"p": 2}) if name == "multi_margin" else ({},):
            loss = lossreg.get(name, reduction="none", **hyper)
            value, grad = loss.value_and_grad(t, p)
            h = loss.hessian(t, p)
            ref = spec.reference(t, p, **hyper)
            for arr in (value, grad, h):
                assert not np.any(np.isnan(arr)), (name, hyper, arr)
            np.testing.assert_array_equal(np.isfinite(value), np.isfinite(ref))
            fin = np.isfinite(ref)
            np.testing.assert_allclose(value[fin], ref[fin], rtol=1e-15)


def test_margin_family_is_listed(capsys):
    assert lossreg.names(family="margin") == ["categorical_hinge", "hinge", "multi_margin",
                                              "squared_hinge"]
    assert lossreg.get("multi_margin_loss").name == "multi_margin"
    assert cli.main(["list", "--family", "margin"]) == 0
    out = capsys.readouterr().out
    assert all(n in out for n in lossreg.names(family="margin"))
    domain = lossreg.spec("hinge").domain("y_true").to_dict()
    assert domain["label_sets"] == [[-1.0, 1.0], [0.0, 1.0]]
