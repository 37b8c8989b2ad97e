"""Issue 20, second part: cosine_similarity, dice and tversky (family "overlap") and
binary_cross_entropy_with_logits with a per-class pos_weight, against their origins.

The all-loss parametrizations (conformance kit, bad input, Hessians against torch,
properties, plots) pick the new losses up by themselves. This file checks what those do
not: Keras's formulas re-implemented here from its docs and source, torch's
F.cosine_similarity and BCEWithLogitsLoss(pos_weight=...) with autograd (values,
gradients, double-backward Hessians), extremes, and the errors. Inputs are small
(serial kernels) so each test compiles few kernels.
"""

from __future__ import annotations

import numpy as np
import pytest

import lossreg
from lossreg.errors import DomainError, HyperparameterError, ShapeError

RNG = np.random.default_rng(2020)
TOL = {np.float64: 1e-10, np.float32: 1e-5}
DTYPES = pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
KERAS_EPSILON = 1e-7


def _close(got, want, tol):
    want = np.asarray(want, np.float64)
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol * max(np.abs(want).max(), 1e-300))


def _torch_row_oracle(fn, p):
    """(value, gradient, Hessian diagonal) of the scalar fn at the rows p: autograd and
    double backward, one column at a time (the diagonal of each row's Hessian)."""
    torch = pytest.importorskip("torch")
    x = torch.tensor(np.asarray(p, np.float64), requires_grad=True)
    value = fn(x)
    (g,) = torch.autograd.grad(value, x, create_graph=True)
    h = np.empty(x.shape)
    for j in range(x.shape[-1]):
        (hj,) = torch.autograd.grad(g[..., j].sum(), x, retain_graph=True)
        h[..., j] = hj.numpy()[..., j]
    return value.item(), g.detach().numpy(), h


# -- cosine_similarity: keras.losses.cosine_similarity, torch's F.cosine_similarity -----------

def _keras_cosine(t, p):
    """keras.losses.cosine_similarity(y_true, y_pred, axis=-1) from its docs:
    -sum(l2_normalize(y_true) * l2_normalize(y_pred)), l2_normalize(x) = x / sqrt(max(
    sum(x^2), 1e-12))."""
    def l2n(x):
        return x / np.sqrt(np.maximum(np.sum(x * x, axis=-1, keepdims=True), 1e-12))
    return -np.sum(l2n(t) * l2n(p), axis=-1)


@DTYPES
def test_cosine_agrees_with_keras_and_torch(dtype):
    torch = pytest.importorskip("torch")
    t = RNG.normal(size=(40, 6)).astype(dtype)
    p = RNG.normal(size=(40, 6)).astype(dtype)
    p[0] = 3 * t[0]                                         # same direction: -1
    p[1] = -0.5 * t[1]                                      # opposite: +1
    tol = TOL[dtype]
    t64, p64 = t.astype(np.float64), p.astype(np.float64)
    for name in ("cosine_similarity", "cosine"):
        per_row = lossreg.get(name, reduction="none")(t, p)
        _close(per_row, _keras_cosine(t64, p64), tol)
    assert per_row[0] == pytest.approx(-1.0, abs=tol) and per_row[1] == pytest.approx(1.0, abs=tol)
    assert np.all(np.abs(per_row) <= 1.0)
    tt = torch.tensor(t64)
    value, grad, hess = _torch_row_oracle(
        lambda x: -torch.nn.functional.cosine_similarity(x, tt, dim=-1).mean(), p64)
    loss = lossreg.get("cosine_similarity")
    got_value, got_grad = loss.value_and_grad(t, p)
    assert got_value == pytest.approx(value, rel=tol)
    _close(got_grad, grad, tol)
    _close(loss.hessian(t, p), hess, tol)


def test_cosine_is_exact_and_finite_at_tiny_and_huge_norms():
    t = RNG.normal(size=(4, 5))
    p = RNG.normal(size=(4, 5))
    loss = lossreg.get("cosine_similarity", reduction="sum")
    value, grad = loss.value_and_grad(t, p)
    hess = loss.hessian(t, p)
    for s in (1e-300, 1e-160, 1e150, 1e300):
        for u in (1e-300, 1.0, 1e300):                     # y_true scaled too
            v, g = loss.value_and_grad(u * t, s * p)
            assert v == pytest.approx(value, rel=1e-13)
            assert np.all(np.isfinite(g))
            _close(g * s, grad, 1e-13)                     # grad(s p) = grad(p) / s
            if 1e-150 <= s <= 1e150:                       # the Hessian ~ 1/s^2
                _close(loss.hessian(u * t, s * p) * s * s, hess, 1e-13)
    v, g = lossreg.get("cosine").value_and_grad(t.astype(np.float32), (1e-30 * p).astype(np.float32))
    assert np.isfinite(v) and np.all(np.isfinite(g))


def test_cosine_zero_rows_raise_domain_errors():
    t, p = RNG.normal(size=(5, 3)), RNG.normal(size=(5, 3))
    loss = lossreg.get("cosine")
    for arg, row in (("y_pred", 3), ("y_true", 1)):
        tt, pp = t.copy(), p.copy()
        (tt if arg == "y_true" else pp)[row] = 0.0
        for method in (loss, loss.grad, loss.hessian):
            with pytest.raises(DomainError, match="non-zero norm") as info:
                method(tt, pp)
            assert (info.value.argument, info.value.index) == (arg, row * 3)
            assert info.value.constraint == "a non-zero norm"
    pp = p.copy()
    pp[2] = 0.0
    assert np.isnan(lossreg.get("cosine", reduction="none", validate=False)(t, pp)[2])


# -- dice, tversky: keras.losses.dice / keras.losses.tversky ------------------------------------

def _keras_dice(t, p, axis=-1):
    """keras.losses.dice(y_true, y_pred, axis) from its source: 1 - 2 sum(t p) /
    (sum(t) + sum(p) + epsilon)."""
    return 1 - 2 * np.sum(t * p, axis=axis) / (
        np.sum(t, axis=axis) + np.sum(p, axis=axis) + KERAS_EPSILON)


def _keras_tversky(t, p, alpha, beta):
    """keras.losses.tversky on one flattened tensor, from its source: "fp" = sum((1 -
    y_pred) * y_true), "fn" = sum(y_pred * (1 - y_true)), 1 - I / (I + alpha fp + beta fn
    + epsilon)."""
    inter = np.sum(t * p)
    fp, fn = np.sum((1 - p) * t), np.sum(p * (1 - t))
    return 1 - inter / (inter + fp * alpha + fn * beta + KERAS_EPSILON)


def _masks(dtype, n=30, c=8):
    t = (RNG.random((n, c)) < 0.4).astype(np.float64)
    t[0] = RNG.random(c)                                   # soft targets too
    p = RNG.uniform(0.01, 0.99, (n, c))
    return t.astype(dtype), p.astype(dtype)


@DTYPES
def test_dice_and_tversky_agree_with_keras_formulas(dtype):
    t, p = _masks(dtype)
    tol = TOL[dtype]
    t64, p64 = t.astype(np.float64), p.astype(np.float64)
    _close(lossreg.get("dice", reduction="none")(t, p), _keras_dice(t64, p64), tol)
    # Keras's default axis=None reduces the whole tensor: one row of everything
    assert lossreg.get("dice")(t.reshape(1, -1), p.reshape(1, -1)) == pytest.approx(
        _keras_dice(t64, p64, axis=None), rel=tol)
    for alpha, beta in ((0.5, 0.5), (0.3, 0.7), (1.0, 0.0)):
        got = lossreg.get("tversky", alpha=alpha, beta=beta, reduction="none")(t, p)
        want = [_keras_tversky(a, b, alpha, beta) for a, b in zip(t64, p64)]
        _close(got, want, tol)
    # alpha = beta = 1/2 is Dice with eps doubled; alpha = beta = 1 the soft Jaccard
    _close(lossreg.get("tversky", eps=KERAS_EPSILON / 2, reduction="none")(t, p),
           _keras_dice(t64, p64), tol)
    inter = np.sum(t64 * p64, axis=1)
    jaccard = 1 - inter / (t64.sum(1) + p64.sum(1) - inter)
    _close(lossreg.get("tversky", alpha=1, beta=1, eps=0, reduction="none")(t, p), jaccard, tol)


@pytest.mark.parametrize("name,hyper", [("dice", {}), ("dice", {"smooth": 1.0, "eps": 0.0}),
                                        ("tversky", {"alpha": 0.3, "beta": 0.7,
                                                     "smooth": 0.5})])
def test_dice_and_tversky_gradients_and_hessians_agree_with_torch(name, hyper):
    torch = pytest.importorskip("torch")
    from lossreg.peers import PEERS

    t, p = _masks(np.float64)
    t[1] = 0.0                                              # an empty target row
    tt = torch.tensor(t)
    value, grad, hess = _torch_row_oracle(
        lambda x: PEERS[name].torch(tt, x, "mean", **hyper), p)
    loss = lossreg.get(name, **hyper)
    got_value, got_grad = loss.value_and_grad(t, p)
    assert got_value == pytest.approx(value, rel=1e-10)
    _close(got_grad, grad, 1e-10)
    _close(loss.hessian(t, p), hess, 1e-10)
    smooth = hyper.get("smooth", 0.0)
    keras_form = 1 - (2 * np.sum(t * p, 1) + smooth) / (t.sum(1) + p.sum(1) + smooth
                                                         + hyper.get("eps", KERAS_EPSILON))
    if name == "dice":
        _close(lossreg.get(name, reduction="none", **hyper)(t, p), keras_form, 1e-12)


def test_dice_and_tversky_zero_denominators():
    t, p = _masks(np.float64, n=6, c=3)
    t[4] = p[4] = 0.0                                       # empty target, empty prediction
    assert lossreg.get("dice", reduction="none")(t, p)[4] == 1.0       # Keras: 1 - 0 / eps
    assert lossreg.get("dice", smooth=1.0, eps=0.0, reduction="none")(t, p)[4] == 0.0
    for name in ("dice", "tversky"):
        with pytest.raises(DomainError, match="non-zero element in the y_true or y_pred "
                                              "row") as info:
            lossreg.get(name, eps=0.0).grad(t, p)
        assert (info.value.argument, info.value.index) == ("y_pred", 4 * 3)
    with pytest.raises(DomainError, match=r"y_pred must be in \[0, 1\]"):
        lossreg.get("dice")(t, p + 1.0)
    with pytest.raises(HyperparameterError, match="alpha"):
        lossreg.get("tversky", alpha=-0.1)
    with pytest.raises(HyperparameterError, match="smooth"):
        lossreg.get("dice", smooth=-1.0)


def test_tversky_declares_the_row_rule_its_weights_call_for():
    """D = I + alpha A + beta B with smooth = eps = 0 vanishes on different rows for
    different alpha, beta (Domain.nonzero_rows from domains_for): each such row is
    refused, under weight 0 too, and every row where D > 0 is accepted."""
    t, p = np.full((5, 3), 0.5), np.full((5, 3), 0.25)
    t[1], p[2] = 0.0, 0.0                                   # an empty target, an empty prediction
    t[3], p[3] = [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]           # no overlap
    w = np.array([1.0, 0.0, 0.0, 0.0, 1.0])
    for (alpha, beta), want in {(0.0, 1.0): ("y_pred", 2), (1.0, 0.0): ("y_true", 1),
                                (0.0, 0.0): ("y_pred", 1), (1.0, 1.0): None}.items():
        loss = lossreg.get("tversky", alpha=alpha, beta=beta, eps=0.0)
        for weights in (None, w):
            if want is None:
                assert np.isfinite(loss(t, p, weights))
                continue
            with pytest.raises(DomainError) as info:
                loss.grad(t, p, weights)
            assert (info.value.argument, info.value.index) == (want[0], want[1] * 3)
    assert lossreg.get("tversky", alpha=0.0, beta=0.0, eps=0.0)(t[4:], p[4:]) == 0.0


def test_overlap_family_is_listed(capsys):
    from lossreg.cli import main

    assert lossreg.names(family="overlap") == ["cosine_similarity", "dice", "tversky"]
    assert main(["list", "--family", "overlap"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in ("cosine_similarity", "dice", "tversky"))


# -- binary_cross_entropy_with_logits: torch's per-class pos_weight ---------------------------

@DTYPES
def test_pos_weight_vector_agrees_with_torch_bce_with_logits_loss(dtype):
    torch = pytest.importorskip("torch")
    y = (RNG.random((3, 7, 5)) < 0.3).astype(np.float64)
    y[0, 0] = RNG.random(5)                                 # soft targets too
    z = RNG.normal(0.0, 3.0, (3, 7, 5))
    z[0, 1] = [-800.0, -40.0, 0.0, 40.0, 800.0]             # extremes stay finite
    pw = RNG.uniform(0.2, 5.0, 5)
    tol = TOL[dtype]
    for alpha in (None, 0.3):
        for reduction in ("mean", "sum", "none"):
            loss = lossreg.get("bce_with_logits", pos_weight=pw, alpha=alpha,
                               reduction=reduction)
            value, grad = loss.value_and_grad(y.astype(dtype), z.astype(dtype))
            hess = loss.hessian(y.astype(dtype), z.astype(dtype))
            x = torch.tensor(z.astype(dtype).astype(np.float64), requires_grad=True)
            yt = torch.tensor(y.astype(dtype).astype(np.float64))
            if alpha is None:
                ref = torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor(pw),
                                                 reduction=reduction)(x, yt)
            else:
                from lossreg.peers import PEERS
                ref = PEERS["binary_cross_entropy_with_logits"].torch(
                    yt, x, reduction, alpha=alpha, pos_weight=pw)
            (g,) = torch.autograd.grad(ref.sum(), x, create_graph=True)
            (h,) = torch.autograd.grad(g.sum(), x)
            _close(value, ref.detach().numpy(), tol)
            _close(grad, g.detach().numpy(), tol)
            _close(hess, h.numpy(), tol)
            assert np.all(np.isfinite(grad)) and np.all(np.isfinite(hess))


def test_pos_weight_vector_shapes_weights_and_errors():
    y = (RNG.random((40000, 3)) < 0.5).astype(np.float64)  # > one chunk: parallel blocks
    z = RNG.normal(size=(40000, 3))
    pw = np.array([0.5, 2.0, 4.0])
    spec = lossreg.spec("bce_with_logits")
    loss = lossreg.get("bce_with_logits", pos_weight=pw, reduction="none")
    _close(loss(y, z), spec.reference(y, z, pos_weight=pw), 1e-13)
    w = RNG.random(40000 * 3).reshape(40000, 3)
    w[::3] = 0.0                                            # zero weights keep positions
    mean = lossreg.get("bce_with_logits", pos_weight=pw)
    want = np.sum(w * spec.reference(y, z, pos_weight=pw)) / w.sum()
    assert mean(y, z, w) == pytest.approx(want, rel=1e-12)
    assert lossreg.get("bce_with_logits", pos_weight=[2.0])(y, z) == \
        lossreg.get("bce_with_logits", pos_weight=2.0)(y, z)            # torch broadcasts
    with pytest.raises(ShapeError, match="pos_weight has 3 entries"):
        mean(y[:, :2], z[:, :2])
    for bad in ([1.0, -2.0], [[1.0]], 0.0, []):
        with pytest.raises(HyperparameterError, match="pos_weight"):
            lossreg.get("bce_with_logits", pos_weight=bad)
    da = pytest.importorskip("dask.array")
    import lossreg.dask as ld

    with pytest.raises(HyperparameterError, match="per-class pos_weight"):
        ld.evaluate(mean, da.from_array(y, chunks=1000), da.from_array(z, chunks=1000))


def test_row_rules_name_the_row_in_the_whole_batch_whatever_the_weights():
    t, p = RNG.normal(size=(6, 3)), RNG.normal(size=(6, 3))
    w = np.array([0.0, 1.0, 0.0, 1.0, 2.0, 1.0])
    loss = lossreg.get("cosine")
    want = np.sum(w * lossreg.spec("cosine").reference(t, p)) / w.sum()
    assert loss(t, p, w) == pytest.approx(want, rel=1e-13)
    g = loss.grad(t, p, w)
    assert np.all(g[w == 0] == 0)
    p[4] = 0.0
    with pytest.raises(DomainError) as info:
        loss.grad(t, p, w)
    assert info.value.index == 4 * 3 and "index 12" in str(info.value)


def test_a_broken_row_under_weight_zero_is_refused_on_dask_as_in_memory():
    da = pytest.importorskip("dask.array")
    import lossreg.dask as ld

    t, p = RNG.normal(size=(6, 3)), RNG.normal(size=(6, 3))
    w = np.array([1.0, 1.0, 0.0, 1.0, 2.0, 1.0])

    def on_dask():
        return ld.evaluate("cosine", da.from_array(t, chunks=(2, 3)),
                           da.from_array(p, chunks=(2, 3)),
                           sample_weight=da.from_array(w, chunks=2), compute=True)

    assert on_dask() == lossreg.get("cosine")(t, p, w)          # bit for bit
    p[2] = 0.0                                                  # the zero-weight row
    for run in (lambda: lossreg.get("cosine")(t, p, w), on_dask):
        with pytest.raises(DomainError) as info:
            run()
        assert info.value.index == 2 * 3 and info.value.argument == "y_pred"
    # a rule on the pair of rows (Dice, smooth = eps = 0): y_true and y_pred of the block
    t, p = _masks(np.float64, n=6, c=3)
    t[3] = p[3] = 0.0
    dice = lossreg.get("dice", eps=0.0)
    w[3] = 0.0
    for run in (lambda: dice(t, p, w),
                lambda: ld.evaluate(dice, da.from_array(t, chunks=(2, 3)),
                                    da.from_array(p, chunks=(2, 3)),
                                    sample_weight=da.from_array(w, chunks=2), compute=True)):
        with pytest.raises(DomainError) as info:
            run()
        assert (info.value.argument, info.value.index) == ("y_pred", 3 * 3)
