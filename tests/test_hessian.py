"""Hessian diagonals (``hessian``, ``grad_hess``) against PyTorch double backward, and
their plumbing: composites, ``out=`` buffers, validation, plugin specs.

Oracle: ``lossreg.peers.PEERS[name].torch`` (the same functions the value/gradient
agreement tests and ``lossreg bench`` use), differentiated twice by autograd, float64:

* element-wise losses: the Hessian of the reduced value is diagonal, so its diagonal is
  ``grad(sum(grad(value)), p)``;
* losses on rows: each row's Hessian is a full C x C block, so the sum trick would add
  the off-diagonal terms; row i's gradient depends on row i only, so column j of the
  diagonal is ``grad(sum_i g[i, j], p)[:, j]`` (one backward pass per column, checked
  against ``torch.func.hessian`` by ``test_row_oracle_is_the_hessian_diagonal``);
* ``outer`` losses (RMSE): the Hessian is dense; its diagonal comes from
  ``torch.func.hessian`` of torch's rmse.

Sample weights: torch has none, so the weighted value is built from torch's per-term
values, ``sum(w l)`` or ``sum(w l) / sum(w)`` (RMSE: ``sqrt`` of the weighted mean of
torch's squared errors). Agreement: 1e-10 relative, max|ours - torch| / max|torch| per
input array (as tests/test_torch_agreement.py), on random valid inputs and extremes;
elements whose own relative error exceeds 1e-6 are recorded: tiny curvatures next to
large ones, where torch rounds (its 1 - sigmoid(40) is 0, so BCE-with-logits' Hessian
at z = 40 is 0 in torch and e^-40 here; sigmoid_focal likewise).
Non-finite torch entries are not compared; ours must then still not be NaN, and the
place is recorded (printed by the last test, run with ``-s``). At kinks (the torch
Hessian differs on the two sides, e.g. Huber at |r| = delta) the second derivative is
undefined; ours must equal one of torch's one-sided values and differences from torch's
own choice are recorded.

What torch gives where lossreg differs (float64, as of this file):

* huber at |r| = delta exactly: lossreg 1 (the quadratic side, as its gradient),
  torch 0; smooth_l1 at |r| = beta: both 0; mae at r = 0: both 0.
* rmse at a perfect fit (every residual 0, or m = mean r^2 underflowing to 0): torch NaN
  (0/0 in d sqrt), lossreg 0 (its documented convention).
* rmse at extreme residuals (1e-150, 1e150, 1e200): the diagonal f''(m) u^2 + f'(m) v is
  computed as f'(m) (v + c(m) u u) with c = f''/f' = -1/(2m) (``spec.outer``), so no
  m^1.5 overflows or underflows; with m itself overflowing to inf the value is inf and
  the diagonal 0, as torch's.
* kl_div/js_div at y_pred = 0: torch NaN (0 * inf) where y_true = 0, lossreg 0; where
  y_true > 0 the true curvature is infinite: kl_div inf in both, js_div torch NaN,
  lossreg inf.
* Tiny curvatures next to large ones, where torch rounds and lossreg does not (within
  1e-10 of the largest entry, so not failures): binary_cross_entropy_with_logits at
  z = 40 (torch 0, lossreg e^-40 / n), sigmoid_focal at z = +-40 (torch even has the
  wrong sign), binary_cross_entropy at p = 1 - 1e-8 and 1 - 1e-16 with y = 1 (torch's
  numerator p^2 - 2py + y cancels; lossreg evaluates the same formula exactly).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import lossreg
from lossreg import testing as T
from lossreg.errors import DomainError, DTypeError, LossError, ShapeError
from lossreg.kernels import njit
from lossreg.peers import PEERS

from .conftest import ALL_NAMES

REDUCTIONS = ("none", "sum", "mean")
TOL = 1e-10
WORST: dict[str, float] = {}
NOTES: list[str] = []
_NOTED: set = set()
RNG_SEED = 20240611


def _torch():
    return pytest.importorskip("torch")


def with_hessian(name: str):
    spec = lossreg.spec(name)
    if not spec.has_hessian:
        pytest.skip(f"{name} has no Hessian (spec.has_hessian is False)")
    return spec


def oracle_names() -> list[str]:
    """Every registered loss with a torch counterpart (built-ins); those without a
    Hessian skip at run time, so they join once their kernels give one."""
    return [n for n in ALL_NAMES if n in PEERS]


# -- the torch oracle ------------------------------------------------------------------------

def torch_value_fn(spec, t, reduction, hyper, sample_weight=None):
    """x -> the reduced value (a 0-d tensor) as torch computes it."""
    torch = _torch()
    peer = PEERS[spec.name].torch
    t = np.asarray(t)
    tt = torch.from_numpy(t.astype(np.int64) if t.dtype.kind in "iu" else t.astype(np.float64))
    wt = None if sample_weight is None else torch.from_numpy(np.asarray(sample_weight, np.float64))
    if spec.outer is not None:          # rmse: sqrt of the (weighted) mean squared error
        if wt is None:
            return lambda x: peer(tt, x, "mean", **hyper)
        mse = PEERS["mse"].torch
        return lambda x: torch.sqrt((wt * mse(tt, x, "none")).sum() / wt.sum())
    if wt is None:
        if reduction == "none":
            return lambda x: peer(tt, x, "none", **hyper).sum()
        return lambda x: peer(tt, x, reduction, **hyper)

    def weighted(x):
        total = (wt * peer(tt, x, "none", **hyper)).sum()
        return total / wt.sum() if reduction == "mean" else total
    return weighted


def torch_hessian_diag(spec, fn, p) -> np.ndarray:
    """Diagonal of d2 fn / dp2 at p (float64), see the module docstring."""
    torch = _torch()
    x = torch.tensor(np.asarray(p, np.float64), requires_grad=True)
    if spec.outer is not None:
        return torch.diagonal(torch.func.hessian(fn)(x.detach()).reshape(x.numel(), -1)
                              ).reshape(x.shape).numpy().copy()
    (g,) = torch.autograd.grad(fn(x), x, create_graph=True)
    if not g.requires_grad:                     # the gradient does not depend on p
        return np.zeros(x.shape)
    if spec.layout == "elementwise" or x.ndim == 1 and spec.layout != "rows":
        (h,) = torch.autograd.grad(g.sum(), x, allow_unused=True, materialize_grads=True)
        return h.numpy(force=True).copy()
    out = np.empty(x.shape)
    for j in range(x.shape[-1]):
        (h,) = torch.autograd.grad(g[..., j].sum(), x, retain_graph=True, allow_unused=True,
                                   materialize_grads=True)
        out[..., j] = h.numpy(force=True)[..., j]
    return out


def rel_errors(ours, ref) -> np.ndarray:
    """|ours - torch| / max|torch| per element, over the finite entries of torch's (the
    inf-norm relative error of test_torch_agreement, kept per element)."""
    a, b = np.asarray(ours, np.float64), np.asarray(ref, np.float64)
    fin = np.isfinite(b)
    scale = max(float(np.max(np.abs(b[fin]), initial=0.0)), 1e-300)
    with np.errstate(invalid="ignore", over="ignore"):
        err = np.abs(a - b) / scale
    return np.where(fin, err, 0.0)


def _note(where: str, index: int, kind: str, text: str) -> None:
    """Record one observation per (loss, input case, element, kind); ``where`` starts
    with the loss name and ends with the case label in brackets."""
    key = (where.split(" ")[0], where.rsplit("[", 1)[-1], int(index), kind)
    if key not in _NOTED:
        _NOTED.add(key)
        NOTES.append(f"{where.split(' ')[0]} [{key[1]} element {index}: {text}")


def _note_elementwise(where, t, p, ours, ref):
    """Record elements whose own relative error exceeds 1e-6 (tiny entries next to large
    ones, where one side rounds, e.g. torch's 1 - sigmoid(40) = 0)."""
    fin = np.isfinite(ref) & (ref != 0)
    with np.errstate(all="ignore"):
        rel = np.where(fin, np.abs(ours - ref) / np.abs(np.where(fin, ref, 1.0)), 0.0)
        rel = np.where(np.isfinite(ref) & (ref == 0) & (ours != 0), np.inf, rel)
    for i in np.flatnonzero(rel.ravel() > 1e-6):
        if (where.split(" ")[0], where.rsplit("[", 1)[-1], int(i), "kink") in _NOTED:
            continue                       # a kink, noted as such
        _note(where, i, "rel", f"y_pred={np.asarray(p).ravel()[i]!r}: lossreg "
              f"{ours.ravel()[i]!r} vs torch {ref.ravel()[i]!r} (elementwise relative error "
              f"{rel.ravel()[i]:.2g}; within 1e-10 of the largest entry)")


def compare_with_torch(spec, t, p, reduction, hyper, sample_weight, label, kinks=False,
                       exponent=0):
    """Our hessian vs torch's for one input; records the worst error and torch NaN/inf.
    ``exponent`` e (a loss homogeneous of degree 1, RMSE): torch runs on the inputs
    times 2^-e, where its squares do not overflow, and its Hessian is scaled by 2^-e."""
    loss = lossreg.get(spec.name, reduction=reduction, **hyper)
    ours = np.asarray(loss.hessian(t, p, sample_weight=sample_weight), np.float64)
    if exponent:
        t, p = np.ldexp(t, -exponent), np.ldexp(p, -exponent)
    fn = torch_value_fn(spec, t, reduction, hyper, sample_weight)
    with np.errstate(all="ignore"):
        ref = torch_hessian_diag(spec, fn, p)
    if exponent:
        ref = np.ldexp(ref, -exponent)
    where = f"{spec.name} {hyper} {reduction} w={'yes' if sample_weight is not None else 'no'} [{label}]"
    assert ours.shape == ref.shape
    assert not np.any(np.isnan(ours)), f"{where}: NaN in our Hessian at {np.flatnonzero(np.isnan(ours))}"
    bad = ~np.isfinite(ref)
    t_flat = np.asarray(t).ravel()
    for i in np.flatnonzero(bad.ravel()):
        y = t_flat[i] if t_flat.size == ref.size else t_flat[i // ref.shape[-1]]
        _note(where, i, "nonfinite", f"y_true={y!r}, y_pred={np.asarray(p).ravel()[i]!r}: "
              f"torch {ref.ravel()[i]!r}, lossreg {ours.ravel()[i]!r}")
    fin = ~bad
    assert np.all(np.isfinite(ours[fin])), f"{where}: ours not finite where torch is"
    err = rel_errors(ours, ref)
    if kinks:
        err = _kink_aware(spec, t, p, reduction, hyper, sample_weight, ours, ref, err, where)
    worst = float(np.max(err, initial=0.0))
    i = int(np.argmax(err))
    assert worst <= TOL, (f"{where}: relative error {worst:.3g} at index {i}: lossreg "
                          f"{ours.ravel()[i]!r}, torch {ref.ravel()[i]!r}")
    _note_elementwise(where, t, p, ours, ref)
    WORST[spec.name] = max(WORST.get(spec.name, 0.0), worst)


def _kink_aware(spec, t, p, reduction, hyper, sample_weight, ours, ref, err, where):
    """Element-wise losses: where torch's Hessian differs on the two sides of x (a kink),
    ours must be one of the one-sided values (then not counted as an error)."""
    fn = torch_value_fn(spec, t, reduction, hyper, sample_weight)
    p = np.asarray(p, np.float64)
    a, b = spec.domain("y_pred").interval.closed_bounds()
    delta = 1e-9 * np.maximum(1.0, np.abs(p))
    with np.errstate(all="ignore"):     # at a domain bound, the one side inside, twice
        left = torch_hessian_diag(spec, fn, np.where(p - delta >= a, p - delta, p + delta))
        right = torch_hessian_diag(spec, fn, np.where(p + delta <= b, p + delta, p - delta))
    scale = max(float(np.max(np.abs(ref[np.isfinite(ref)]), initial=0.0)), 1e-300)
    kink = np.abs(left - right) > 1e-6 * scale
    err = err.copy()
    for i in np.flatnonzero(kink.ravel()):
        sides = (left.ravel()[i], right.ravel()[i], ref.ravel()[i])
        ok = any(abs(ours.ravel()[i] - s) <= TOL * max(abs(s), 1e-12 * scale) for s in sides)
        assert ok, (f"{where}: at the kink y_pred={p.ravel()[i]!r} ours "
                    f"{ours.ravel()[i]!r} is neither one-sided torch value {sides[:2]}")
        if ours.ravel()[i] != ref.ravel()[i]:
            _note(where, i, "kink", f"kink at y_true={np.asarray(t).ravel()[i]!r}, "
                  f"y_pred={p.ravel()[i]!r} ({where.split('[')[0].strip()}): lossreg "
                  f"{ours.ravel()[i]!r}, torch {ref.ravel()[i]!r} (one-sided "
                  f"{sides[0]!r} / {sides[1]!r})")
        err.ravel()[i] = 0.0
    return err


# -- inputs --------------------------------------------------------------------------------------

def random_cases(spec, rng):
    n = 12 if spec.layout == "elementwise" else 5
    yield "random", *spec.sample(rng, n)
    labelled = T.label_variant(spec)
    if labelled is not None:
        yield "random labels", *labelled.sample(rng, n)


def _rows(*rows):
    return np.array(rows, dtype=np.float64)


def extreme_cases(spec):
    """(label, y_true, y_pred, known disagreement or None) from the spec's domains."""
    dt, dp = spec.domain("y_true").interval, spec.domain("y_pred").interval
    unit = lossreg.Interval(0.0, 1.0)
    if spec.outer is not None:          # rmse-style: a function of the mean of r^2
        z = np.zeros(3)
        yield "perfect fit", z, z.copy(), None
        yield "m underflows to 0", z, np.array([1e-200, 0.0, -1e-180]), None
        yield "mixed scales", z, np.array([1e100, 1e-100, 1.0]), None
        yield "tiny residuals", z, np.array([1e-100, -2e-100, 3e-100]), None
        yield "residuals 1e-150", z, np.array([1e-150, -2e-150, 3e-150]), None
        yield "residuals 1e150", z, np.array([1e150, 1.0, -1e150]), None
        yield "residuals 1e200", z, np.array([1e200, 0.0, 1.0]), None
        return
    if spec.layout == "elementwise":
        if dp == lossreg.Interval() and dt == lossreg.Interval():      # residual losses
            yield "huge residuals", np.array([0.0, 0.0, 1e150, -1e150, 0.0, 3.0]), \
                np.array([1e200, -1e200, -1e150, 1e150, 1e8, -1e4]), None
            yield "tiny residuals", np.array([0.0, 0.0, 1.0, 1e8, -7.0]), \
                np.array([1e-300, -5e-324, 1.0 + 2.2e-16, 1e8 + 1.49e-8, -7.0 + 1e-12]), None
            yield "kinks", np.zeros(7), np.array([0.0, 1.0, -1.0, 0.5, -0.5, 2.0, -2.0]), None
        elif dt == unit and dp == lossreg.Interval():                  # logits
            z = np.array([-1e4, -800.0, -40.0, -1e-3, 0.0, 1e-3, 40.0, 800.0, 1e4])
            yield "logits +-1e4", np.repeat([0.0, 1.0, 0.3], z.size), np.tile(z, 3), None
        elif dt == unit and dp == unit:                                # probabilities
            q = np.array([0.0, 1.0, 1e-300, 1e-40, 1e-13, 1e-8, 0.5, 1 - 1e-8, 1 - 1e-16])
            yield "p in {0, 1} and near", np.repeat([0.0, 1.0, 0.3], q.size), np.tile(q, 3), None
        return
    if spec.domain("y_pred").row_sum is not None:                     # distributions
        t = _rows([1, 0, 0], [0.5, 0.5, 0], [0.2, 0.3, 0.5], [0, 0, 1])
        yield "one-hot and zero probabilities", t, _rows(
            [1, 0, 0], [0, 1, 0], [1e-300, 0.5, 0.5], [0.2, 0.3, 0.5]), None
        yield "tiny probabilities", t, _rows(
            [1 - 2e-13, 1e-13, 1e-13], [0.5, 0.5 - 1e-300, 1e-300], [0.2, 0.3, 0.5],
            [1e-40, 1e-40, 1.0]), None
    elif dp == lossreg.Interval():                                     # logits on rows
        rng = np.random.default_rng(RNG_SEED)
        z = rng.choice([-1e4, 0.0, 1e4], size=(6, 4)) + rng.normal(0, 1, (6, 4))
        t = np.zeros((6, 4))
        t[np.arange(6), rng.integers(0, 4, 6)] = 1.0
        yield "logits +-1e4, one-hot", t, z, None
        if spec.takes_labels:
            yield "logits +-1e4, labels", t.argmax(axis=1), z, None


def extreme_params():
    for name in oracle_names():
        spec = lossreg.spec(name)
        for label, _, _, known in extreme_cases(spec):
            marks = [pytest.mark.xfail(strict=True, reason=known)] if known else []
            yield pytest.param(name, label, id=f"{name}-{label}", marks=marks)


# -- agreement with torch ---------------------------------------------------------------------

@pytest.mark.parametrize("name", oracle_names())
def test_random_inputs_agree_with_torch(name):
    spec = with_hessian(name)
    _torch()
    rng = np.random.default_rng(RNG_SEED)
    for hyper in T.hyper_cases(spec):
        for label, t, p in random_cases(spec, rng):
            n_terms = p.shape[0] if spec.layout == "rows" else p.size
            w = rng.random(p.shape if spec.layout == "elementwise" else n_terms) * 2.0
            for reduction in spec.reductions:
                for sw in (None, w):
                    compare_with_torch(spec, t, p, reduction, hyper, sw, label)


@pytest.mark.parametrize("name,case", list(extreme_params()))
def test_extremes_agree_with_torch(name, case):
    spec = with_hessian(name)
    _torch()
    (t, p), = [(t, p) for label, t, p, _ in extreme_cases(spec) if label == case]
    rng = np.random.default_rng(RNG_SEED)
    kinks = spec.layout == "elementwise" and spec.outer is None
    for hyper in T.hyper_cases(spec):
        n_terms = p.shape[0] if spec.layout == "rows" else p.size
        w = rng.random(n_terms) + 0.5
        if spec.layout == "elementwise":
            w = w.reshape(p.shape)
        # RMSE of residuals 1e200: torch's mean of r^2 overflows (its Hessian is 0 where
        # the exact one is 1/(3 rmse)); lossreg rescales, so compare on scaled inputs
        exponent = 664 if case == "residuals 1e200" else 0
        for reduction in spec.reductions:
            for sw in (None, w):
                with np.errstate(over="ignore"):
                    compare_with_torch(spec, t, p, reduction, hyper, sw, case, kinks=kinks,
                                       exponent=exponent)


def test_row_oracle_is_the_hessian_diagonal():
    """The per-column trick used for rows equals the diagonal of torch.func.hessian (and
    differs from the element-wise sum trick, which adds the off-diagonal terms)."""
    torch = _torch()
    rng = np.random.default_rng(1)
    labels = torch.from_numpy(rng.integers(0, 4, 5))
    z = rng.normal(0, 2, (5, 4))
    spec = lossreg.spec("softmax_cross_entropy")

    def fn(x):
        return PEERS["softmax_cross_entropy"].torch(labels, x, "sum")

    full = torch.func.hessian(fn)(torch.from_numpy(z)).reshape(20, 20)
    want = torch.diagonal(full).reshape(5, 4).numpy()
    got = torch_hessian_diag(dataclasses.replace(spec, layout="rows"), fn, z)
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-15)
    x = torch.tensor(z, requires_grad=True)
    (g,) = torch.autograd.grad(fn(x), x, create_graph=True)
    (summed,) = torch.autograd.grad(g.sum(), x)
    assert not np.allclose(summed.numpy(), want)


# -- composites ---------------------------------------------------------------------------------

TERMS = [{"name": "mse", "weight": 1.0}, {"name": "huber", "weight": 0.3, "delta": 0.5},
         {"name": "smooth_l1", "weight": 2.0, "beta": 0.7}, {"name": "mae", "weight": 0.5}]


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_weighted_sum_hessian_is_the_weighted_sum_of_terms(reduction):
    rng = np.random.default_rng(3)
    t, p = rng.normal(0, 1, 40), rng.normal(0, 1.5, 40)
    w = rng.random(40)
    total = lossreg.from_config({"terms": TERMS, "reduction": reduction})
    nested = lossreg.from_config({"terms": [{"terms": TERMS[:2], "weight": 2.0},
                                            {"terms": TERMS[2:], "weight": 0.5}],
                                  "reduction": reduction})
    for sw in (None, w):
        want_h = sum(term["weight"] * lossreg.get(**{k: v for k, v in term.items()
                                                      if k != "weight"},
                                                   reduction=reduction).hessian(t, p, sw)
                     for term in TERMS)
        want_g = sum(term["weight"] * lossreg.get(**{k: v for k, v in term.items()
                                                      if k != "weight"},
                                                   reduction=reduction).grad(t, p, sw)
                     for term in TERMS)
        np.testing.assert_allclose(total.hessian(t, p, sw), want_h, rtol=1e-14, atol=0)
        g, h = total.grad_hess(t, p, sw)
        np.testing.assert_allclose(g, want_g, rtol=1e-14, atol=1e-300)
        np.testing.assert_array_equal(h, total.hessian(t, p, sw))
        gb, hb = np.empty_like(p), np.empty(80)[::2]
        g2, h2 = total.grad_hess(t, p, sw, out=(gb, hb))
        assert g2 is gb and h2 is hb
        np.testing.assert_array_equal(h2, h)
        np.testing.assert_array_equal(g2, g)
        want_nested = 2.0 * (TERMS[0]["weight"] * lossreg.get("mse", reduction=reduction)
                             .hessian(t, p, sw) + 0.3 * lossreg.get(
                                 "huber", reduction=reduction, delta=0.5).hessian(t, p, sw)) \
            + 0.5 * (2.0 * lossreg.get("smooth_l1", reduction=reduction, beta=0.7)
                     .hessian(t, p, sw) + 0.5 * lossreg.get("mae", reduction=reduction)
                     .hessian(t, p, sw))
        np.testing.assert_allclose(nested.hessian(t, p, sw), want_nested, rtol=1e-14)


def test_weighted_sum_with_a_term_without_hessian_raises():
    reg = lossreg.Registry(entry_points=False)
    reg.add(_plain_spec("plain_no_hessian"), source="test plugin")
    total = lossreg.from_config({"terms": [{"name": "mse", "weight": 1.0},
                                           {"name": "plain_no_hessian", "weight": 1.0}]},
                                registry=reg)
    assert not total.has_hessian
    t, p = np.zeros(4), np.ones(4)
    with pytest.raises(LossError, match="plain_no_hessian"):
        total.hessian(t, p)
    with pytest.raises(LossError, match="plain_no_hessian"):
        total.grad_hess(t, p)
    total.grad(t, p)              # the gradient still works


# -- out= buffers and dtypes ---------------------------------------------------------------------

@pytest.mark.parametrize("name", ["huber", "rmse"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_grad_hess_out_buffers(name, dtype):
    rng = np.random.default_rng(4)
    t = rng.normal(0, 1, (6, 5)).astype(dtype)
    p = rng.normal(0, 2, (6, 5)).astype(dtype)
    for reduction in lossreg.spec(name).reductions:
        loss = lossreg.get(name, reduction=reduction)
        g0, h0 = loss.grad_hess(t, p)
        assert g0.dtype == h0.dtype == dtype and g0.shape == h0.shape == p.shape
        np.testing.assert_array_equal(g0, loss.grad(t, p))
        np.testing.assert_array_equal(h0, loss.hessian(t, p))
        bufs = {"contiguous": lambda: np.full(p.shape, np.nan, dtype),
                "strided": lambda: np.full((6, 10), np.nan, dtype)[:, ::2],
                "transposed": lambda: np.full((5, 6), np.nan, dtype).T,
                "fortran": lambda: np.asfortranarray(np.full(p.shape, np.nan, dtype))}
        for kind, make in bufs.items():
            for pair in ((make(), make()), (None, make()), (make(), None), [make(), make()]):
                g, h = loss.grad_hess(t, p, out=pair)
                for buf, arr, want in ((pair[0], g, g0), (pair[1], h, h0)):
                    if buf is not None:
                        assert arr is buf, kind
                    np.testing.assert_array_equal(arr, want, err_msg=f"{kind} {reduction}")
            hb = make()
            assert loss.hessian(t, p, out=hb) is hb
            np.testing.assert_array_equal(hb, h0)
        # the strided view's gaps are untouched
        big = np.full((6, 10), -7.0, dtype)
        loss.grad_hess(t, p, out=(None, big[:, ::2]))
        assert np.all(big[:, 1::2] == -7.0)


# -- validation ----------------------------------------------------------------------------------

def _raised(call):
    try:
        call()
    except LossError as exc:
        return exc
    raise AssertionError("no LossError raised")


def _same_error(a, b):
    assert type(a) is type(b), (a, b)
    for attr in ("argument", "index", "constraint"):
        assert getattr(a, attr, None) == getattr(b, attr, None), (attr, a, b)


@pytest.mark.parametrize("name", ["huber", "rmse", "mae"])
def test_hessian_validates_like_grad(name):
    loss = lossreg.get(name)
    t, p = np.zeros(8), np.linspace(-2, 2, 8)
    bad_p, bad_t = p.copy(), t.copy()
    bad_p[5] = np.nan
    bad_t[3] = np.inf
    cases = {"NaN y_pred": (t, bad_p), "inf y_true": (bad_t, p),
             "shapes": (np.zeros(7), p), "2-D vs 1-D": (np.zeros((2, 4)), p),
             "empty mean": (np.zeros(0), np.zeros(0)), "strings": (t, np.array(["a"] * 8))}
    for label, (tt, pp) in cases.items():
        want = _raised(lambda: loss.grad(tt, pp))
        _same_error(want, _raised(lambda: loss.hessian(tt, pp)))
        _same_error(want, _raised(lambda: loss.grad_hess(tt, pp)))
        if isinstance(want, DomainError) and label != "strings":
            assert want.index is not None, label
    w_bad = np.ones(8)
    w_bad[2] = -1.0
    want = _raised(lambda: loss.grad(t, p, sample_weight=w_bad))
    _same_error(want, _raised(lambda: loss.hessian(t, p, sample_weight=w_bad)))
    _same_error(want, _raised(lambda: loss.grad_hess(t, p, sample_weight=w_bad)))
    # out buffers: wrong dtype, shape, read-only, not an array
    ro = np.zeros(8)
    ro.flags.writeable = False
    for label, buf in {"int dtype": np.zeros(8, np.int64), "float32": np.zeros(8, np.float32),
                       "shape": np.zeros(9), "read-only": ro, "list": [0.0] * 8}.items():
        want = _raised(lambda: loss.grad(t, p, out=buf))
        got_h = _raised(lambda: loss.hessian(t, p, out=buf))
        assert type(got_h) is type(want), (label, got_h, want)
        for pair in ((buf, None), (None, buf)):
            got = _raised(lambda: loss.grad_hess(t, p, out=pair))
            assert type(got) is type(want), (label, pair, got, want)
    for not_a_pair in (np.zeros(8), (np.zeros(8),), (np.zeros(8),) * 3):
        assert isinstance(_raised(lambda: loss.grad_hess(t, p, out=not_a_pair)), DTypeError)
    # validate=False skips the data checks but not the shapes
    assert isinstance(_raised(lambda: loss.hessian(np.zeros(7), p, validate=False)), ShapeError)
    assert np.isnan(loss.hessian(t, bad_p, validate=False)[5]) or name != "mse"


# -- plugin specs ---------------------------------------------------------------------------------

@njit
def _quartic_forward(y_true, y_pred, out):
    for i in range(y_pred.shape[0]):
        r = np.float64(y_pred[i]) - np.float64(y_true[i])
        out[i] = r * r * r * r


@njit
def _quartic_gradient(y_true, y_pred, out):
    for i in range(y_pred.shape[0]):
        r = np.float64(y_pred[i]) - np.float64(y_true[i])
        out[i] = 4.0 * r * r * r


@njit
def _quartic_hessian(y_true, y_pred, out):
    for i in range(y_pred.shape[0]):
        r = np.float64(y_pred[i]) - np.float64(y_true[i])
        out[i] = 12.0 * r * r


def _quartic_reference(y_true, y_pred):
    return (np.asarray(y_pred, np.float64) - np.asarray(y_true, np.float64)) ** 4


def _quartic_reference_hessian(y_true, y_pred):
    return 12.0 * (np.asarray(y_pred, np.float64) - np.asarray(y_true, np.float64)) ** 2


def _plain_spec(name, **fields):
    base = dict(name=name, family="test", task="regression", forward=_quartic_forward,
                gradient=_quartic_gradient, reference=_quartic_reference,
                summary="Quartic error (Hessian tests).", formula="r^4",
                properties={"convex"}, source="test plugin")
    base.update(fields)
    return lossreg.LossSpec(**base)


def test_plugin_without_hessian():
    spec = _plain_spec("quartic_plain")
    assert not spec.has_hessian and spec.to_dict()["has_hessian"] is False
    loss = lossreg.Loss(spec, reduction="sum")
    t, p = np.zeros(5), np.arange(5.0)
    np.testing.assert_allclose(loss.grad(t, p), 4 * p ** 3)
    for call in (loss.hessian, loss.grad_hess):
        with pytest.raises(LossError, match=r"'quartic_plain'.*test plugin.*no Hessian"):
            call(t, p)
    # a reference_hessian alone does not make a Hessian
    assert not _plain_spec("q2", reference_hessian=_quartic_reference_hessian).has_hessian
    # outer with (f, df) only: no Hessian either
    two = dataclasses.replace(lossreg.spec("rmse"), outer=lossreg.spec("rmse").outer[:2])
    assert not two.has_hessian
    with pytest.raises(LossError, match="rmse"):
        lossreg.Loss(two).hessian(t, p)


def test_plugin_with_a_plain_hessian_kernel():
    spec = _plain_spec("quartic", hessian=_quartic_hessian,
                       reference_hessian=_quartic_reference_hessian)
    assert spec.has_hessian
    reg = lossreg.Registry(builtins=False, entry_points=False)
    reg.add(spec, source="test plugin")
    rng = np.random.default_rng(5)
    t, p = rng.normal(0, 1, (3, 4)), rng.normal(0, 1, (3, 4))
    w = rng.random((3, 4))
    r = p - t
    for reduction, scale in (("none", 1.0), ("sum", 1.0), ("mean", None)):
        loss = reg.get("quartic", reduction=reduction)
        for sw in (None, w):
            ww = np.ones_like(p) if sw is None else sw
            want = ww * 12 * r * r / (ww.sum() if scale is None else 1.0)
            h = loss.hessian(t, p, sw)
            assert h.shape == p.shape
            np.testing.assert_allclose(h, want, rtol=1e-14)
            g, h2 = loss.grad_hess(t, p, sw)
            np.testing.assert_array_equal(h2, h)
            np.testing.assert_array_equal(g, loss.grad(t, p, sw))
        h32 = loss.hessian(t.astype(np.float32), p.astype(np.float32))
        assert h32.dtype == np.float32
    for dtype in (np.float64, np.float32):
        for reduction in REDUCTIONS:
            T.check_hessian(spec, dtype, reduction)


# -- a plugin on rows with a plain Hessian kernel: the diagonal of a full row Hessian ------------

@njit
def _sq_norm_sq_forward(y_true, y_pred, out):        # l_i = 0.25 * (sum_j r_ij^2)^2
    for i in range(y_pred.shape[0]):
        s = 0.0
        for j in range(y_pred.shape[1]):
            r = np.float64(y_pred[i, j]) - np.float64(y_true[i, j])
            s += r * r
        out[i] = 0.25 * s * s


@njit
def _sq_norm_sq_gradient(y_true, y_pred, out):       # S r_ij
    for i in range(y_pred.shape[0]):
        s = 0.0
        for j in range(y_pred.shape[1]):
            r = np.float64(y_pred[i, j]) - np.float64(y_true[i, j])
            s += r * r
        for j in range(y_pred.shape[1]):
            out[i, j] = s * (np.float64(y_pred[i, j]) - np.float64(y_true[i, j]))


@njit
def _sq_norm_sq_hessian(y_true, y_pred, out):        # S + 2 r_ij^2 (diagonal only)
    for i in range(y_pred.shape[0]):
        s = 0.0
        for j in range(y_pred.shape[1]):
            r = np.float64(y_pred[i, j]) - np.float64(y_true[i, j])
            s += r * r
        for j in range(y_pred.shape[1]):
            r = np.float64(y_pred[i, j]) - np.float64(y_true[i, j])
            out[i, j] = s + 2.0 * r * r


def _sq_norm_sq_reference(y_true, y_pred):
    r = np.asarray(y_pred, np.float64) - np.asarray(y_true, np.float64)
    return 0.25 * np.sum(r * r, axis=-1) ** 2


def _sq_norm_sq_reference_hessian(y_true, y_pred):
    r = np.asarray(y_pred, np.float64) - np.asarray(y_true, np.float64)
    return np.sum(r * r, axis=-1, keepdims=True) + 2 * r * r


def test_plugin_on_rows_gives_the_diagonal_of_each_row_hessian():
    spec = _plain_spec("sq_norm_sq", layout="rows", forward=_sq_norm_sq_forward,
                       gradient=_sq_norm_sq_gradient, hessian=_sq_norm_sq_hessian,
                       reference=_sq_norm_sq_reference,
                       reference_hessian=_sq_norm_sq_reference_hessian)
    assert spec.has_hessian and spec.layout == "rows"
    for reduction in REDUCTIONS:
        T.check_hessian(spec, np.float64, reduction)
    torch = _torch()
    rng = np.random.default_rng(6)
    t, p = rng.normal(0, 1, (4, 3)), rng.normal(0, 1, (4, 3))
    w = rng.random(4)
    tt, wt = torch.from_numpy(t), torch.from_numpy(w)

    def fn(x):            # the same loss written in torch, weighted mean
        return (wt * 0.25 * ((x - tt) ** 2).sum(-1) ** 2).sum() / wt.sum()

    want = torch.diagonal(torch.func.hessian(fn)(torch.from_numpy(p)).reshape(12, 12))
    got = lossreg.Loss(spec).hessian(t, p, sample_weight=w)
    err = float(np.max(rel_errors(got, want.numpy().reshape(4, 3))))
    assert err <= TOL


# -- report ----------------------------------------------------------------------------------------

def test_zzz_report_worst_relative_errors(capsys):
    """Print the worst relative Hessian error per loss vs torch and where torch is
    non-finite or chooses the other side of a kink (run with ``-s``)."""
    if not WORST:
        pytest.skip("run with the agreement tests to collect errors")
    lines = [f"{name:34s} {err:10.2e}" for name, err in sorted(WORST.items())]
    notes = sorted(NOTES)
    with capsys.disabled():
        print("\nworst relative Hessian error vs torch (float64)\n" + "\n".join(lines))
        if notes:
            print(f"\n{len(notes)} places where torch is non-finite or differs at a kink:")
            print("\n".join(notes))
    assert max(WORST.values()) <= TOL


def test_a_plugin_hessian_kernel_that_fails_to_compile_is_a_plugin_error():
    """The Hessian kernel is compiled on first use: its failure names the plugin's source,
    and the loss's value and gradient (and other losses) keep working."""
    from numba import njit as _njit

    @_njit
    def forward(y_true, y_pred, out):
        for i in range(y_pred.shape[0]):
            out[i] = (y_pred[i] - y_true[i]) ** 2

    @_njit
    def gradient(y_true, y_pred, out):
        for i in range(y_pred.shape[0]):
            out[i] = 2.0 * (y_pred[i] - y_true[i])

    @_njit
    def broken_hessian(y_true, y_pred, out):
        for i in range(y_pred.shape[0]):
            out[i] = "two"          # a typing error, found when first compiled

    spec = lossreg.LossSpec(name="broken_hess", family="test", task="regression",
                            forward=forward, gradient=gradient, hessian=broken_hessian,
                            reference=lambda t, p: (np.asarray(p) - np.asarray(t)) ** 2,
                            source="plugin broken-hess 1.0")
    registry = lossreg.Registry(entry_points=False)
    registry.add(spec, source="plugin broken-hess 1.0")
    loss = registry.get("broken_hess")
    t, p = np.zeros(4), np.arange(4.0)
    assert loss.spec.has_hessian
    with pytest.raises(lossreg.PluginError) as info:
        loss.hessian(t, p)
    assert "broken_hess" in str(info.value) and info.value.source == "plugin broken-hess 1.0"
    assert loss(t, p) == pytest.approx(3.5)
    np.testing.assert_allclose(loss.grad(t, p), 2 * p / 4)
    assert registry.get("mse").hessian(t, p).tolist() == [0.5] * 4
