"""Hypothesis property tests over every registered loss.

Inputs are drawn inside each spec's domains: element-wise losses without a sampler get
Hypothesis arrays whose elements respect ``Domain`` (interval ends, integers); row losses
and losses with ``spec.sampler`` get ``spec.sample`` driven by a drawn seed and size.
Hyperparameters come from ``lossreg.testing.hyper_cases``.

Properties: finite inputs give finite values and gradients; "nonnegative" losses are
>= 0; gradients match finite differences of the reference; reductions agree
(sum == mean * n, weights included; none.sum() == sum); integer weights equal repeating
rows; float32 agrees with float64 within float32 tolerance; ``out=`` aliasing y_pred,
y_true or part of y_pred changes nothing; a zero weight on a term whose loss is infinite
contributes exactly 0; JS is symmetric, KL(p, p) = 0.

Profiles: ``lossreg-ci`` (default: derandomized, few examples, so the run is fast and
reproducible) and ``lossreg-heavy`` (random, many examples) used by the ``*_heavy`` twins
of every test, which are marked slow. ``HYPOTHESIS_PROFILE=lossreg-dev`` makes the fast
tests random too.
"""

from __future__ import annotations

import math
import os

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, assume, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402

import lossreg  # noqa: E402
from lossreg import testing as T  # noqa: E402

from .conftest import ALL_NAMES  # noqa: E402

_QUIET = [HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large]
settings.register_profile("lossreg-ci", max_examples=12, deadline=None, derandomize=True,
                          suppress_health_check=_QUIET, print_blob=True, database=None)
settings.register_profile("lossreg-dev", max_examples=25, deadline=None,
                          suppress_health_check=_QUIET, print_blob=True)
settings.register_profile("lossreg-heavy", max_examples=300, deadline=None,
                          suppress_health_check=_QUIET, print_blob=True)
_PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "lossreg-ci")
FAST = settings(settings.get_profile(_PROFILE if _PROFILE.startswith("lossreg") else "lossreg-ci"))
HEAVY = settings(settings.get_profile("lossreg-heavy"))

COUNTS = {"examples": 0, "checks": 0}


@pytest.fixture(scope="module", autouse=True)
def _report_counts():
    yield
    path = os.environ.get("LOSSREG_COUNT_FILE")
    if path:
        with open(path, "a") as fh:
            fh.write(f"property_examples {COUNTS['examples']}\nproperty_checks {COUNTS['checks']}\n")


def check(condition: bool, message) -> None:
    COUNTS["checks"] += 1
    assert condition, message


# -- drawing valid inputs --------------------------------------------------------------

def elements(domain, bound: float):
    """Floats (or whole numbers) inside ``domain``, magnitudes at most ``bound``."""
    iv = domain.interval
    lo, hi = max(iv.low, -bound), min(iv.high, bound)
    if domain.integer:
        return st.integers(math.ceil(lo), math.floor(hi)).map(float)
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False,
                     exclude_min=lo == iv.low and not iv.closed_low,
                     exclude_max=hi == iv.high and not iv.closed_high)


def draw_case(data, name: str, *, bound: float = 100.0, n_max: int = 8, dtype=np.float64):
    """(spec, hyper, y_true, y_pred) valid for ``name``, drawn by Hypothesis."""
    COUNTS["examples"] += 1
    spec = lossreg.spec(name)
    hyper = data.draw(st.sampled_from(T.hyper_cases(spec)), label="hyper")
    if spec.sampler is not None or spec.layout == "rows":
        seed = data.draw(st.integers(0, 2 ** 32 - 1), label="seed")
        n = data.draw(st.integers(1, n_max), label="n")
        t, p = spec.sample(np.random.default_rng(seed), n, dtype, **hyper)
        return spec, hyper, np.array(t), np.array(p)
    shape = data.draw(st.sampled_from([(1,), (2,), (5,), (n_max,), (2, 3), (3, 1)]), label="shape")
    t = data.draw(hnp.arrays(np.float64, shape, elements=elements(spec.domain("y_true"), bound)),
                  label="y_true")
    p = data.draw(hnp.arrays(np.float64, shape, elements=elements(spec.domain("y_pred"), bound)),
                  label="y_pred")
    return spec, hyper, t.astype(dtype), p.astype(dtype)


def term_shape(spec, p):
    return p.shape if spec.layout == "elementwise" else p.shape[:-1]


def draw_weights(data, spec, p, positive_sum=True):
    w = data.draw(hnp.arrays(np.float64, term_shape(spec, p),
                             elements=st.floats(0.0, 1e3, allow_subnormal=False)), label="w")
    if positive_sum:
        assume(w.sum() > 0)
    return w


# -- the properties ---------------------------------------------------------------------

def prop_finite(name, data):
    """Finite valid inputs (magnitudes up to 1e100), with and without weights, give
    finite values and gradients under every reduction."""
    spec, hyper, t, p = draw_case(data, name, bound=1e100)
    w = draw_weights(data, spec, p) if data.draw(st.booleans(), label="weighted") else None
    for reduction in spec.reductions:
        value, grad = lossreg.get(name, reduction=reduction, **hyper).value_and_grad(
            t, p, sample_weight=w)
        check(np.all(np.isfinite(value)), (reduction, hyper, value))
        check(np.all(np.isfinite(grad)) and grad.shape == p.shape, (reduction, hyper, grad))


def prop_nonnegative(name, data):
    """Losses with property "nonnegative" are >= 0 per term and after every reduction."""
    spec, hyper, t, p = draw_case(data, name, bound=1e6)
    for reduction in spec.reductions:
        value = lossreg.get(name, reduction=reduction, **hyper)(t, p)
        check(np.all(np.asarray(value) >= 0), (reduction, hyper, value))


def _differences(f, p: np.ndarray, rel_step: float):
    """Per element of p: 4th-order central, and 2nd-order forward and backward differences."""
    x = np.array(p, dtype=np.float64)
    flat = x.reshape(-1)
    f0 = f(x)
    central, forward, backward = (np.empty(flat.size) for _ in range(3))
    for i in range(flat.size):
        x0, h = flat[i], rel_step * max(1.0, abs(flat[i]))
        vals = {}
        for k in (2, 1, -1, -2):
            flat[i] = x0 + k * h
            vals[k] = f(x)
        flat[i] = x0
        central[i] = (-vals[2] + 8 * vals[1] - 8 * vals[-1] + vals[-2]) / (12 * h)
        forward[i] = (-3 * f0 + 4 * vals[1] - vals[2]) / (2 * h)
        backward[i] = (3 * f0 - 4 * vals[-1] + vals[-2]) / (2 * h)
    return (a.reshape(x.shape) for a in (central, forward, backward))


def prop_gradient_matches_finite_differences(name, data):
    """Kernel gradient == central differences of the NumPy reference, at every element
    where differences can be trusted: forward and backward differences agree (so no kink
    such as MAE's r = 0 lies within the stencil) and two step sizes agree."""
    spec, hyper, t, p = draw_case(data, name, bound=100.0, n_max=6)
    reduction = data.draw(st.sampled_from(spec.reductions), label="reduction")
    w = draw_weights(data, spec, p) if data.draw(st.booleans(), label="weighted") else None
    loss = lossreg.get(name, reduction=reduction, **hyper)
    value, grad = loss.value_and_grad(t, p, sample_weight=w)
    full = loss.hyperparameters
    red = "sum" if reduction == "none" else reduction

    def f(x):
        return T.reference_value(spec, t, x, full, red, w)

    with np.errstate(all="ignore"):
        c1, fwd, bwd = _differences(f, p, 1e-4)
        c2, _, _ = _differences(f, p, 1e-5)
    total = float(np.sum(np.abs(value)))
    finite = np.isfinite(c1) & np.isfinite(c2) & np.isfinite(fwd) & np.isfinite(bwd)
    scale = float(np.max(np.abs(c2[finite]), initial=0.0))
    floor = 1e-9 * max(1.0, total)
    trusted = finite & (np.abs(fwd - bwd) <= 1e-6 * scale + floor) \
        & (np.abs(c1 - c2) <= 1e-7 * scale + floor)
    err = np.abs(grad - c2)
    tol = 1e-5 * scale + 1e-6 * np.abs(c2) + floor
    bad = trusted & ~(err <= tol)
    COUNTS["fd_points"] = COUNTS.get("fd_points", 0) + int(trusted.sum())
    check(not bad.any(), f"{name} {reduction} {hyper}: gradient {grad[bad]} vs finite "
                         f"differences {c2[bad]} at {np.flatnonzero(bad)}")


def prop_reductions_agree(name, data):
    """sum == mean * n (weighted: mean * sum(w)); none.sum() == sum; for reduction
    'none', per-term values times weights."""
    spec, hyper, t, p = draw_case(data, name, bound=1e3)
    if not {"mean", "sum", "none"} <= set(spec.reductions):
        assume(False)
    w = draw_weights(data, spec, p) if data.draw(st.booleans(), label="weighted") else None
    get = lambda r: lossreg.get(name, reduction=r, **hyper)  # noqa: E731
    mean, total, none = get("mean")(t, p, w), get("sum")(t, p, w), get("none")(t, p, w)
    n = float(np.sum(w)) if w is not None else float(np.prod(term_shape(spec, p)))
    mag = float(np.sum(np.abs(none)))
    check(abs(total - mean * n) <= 1e-12 * mag + 1e-300, (total, mean, n))
    check(abs(float(np.sum(none, dtype=np.float64)) - total) <= 1e-12 * mag + 1e-300, (none, total))
    unweighted = get("none")(t, p)
    if w is not None:
        np.testing.assert_allclose(none, unweighted * w, rtol=1e-15, atol=0)
        COUNTS["checks"] += 1


def prop_integer_weights_repeat_terms(name, data):
    """Weight k on a term equals that term repeated k times (mean and gradient)."""
    spec, hyper, t, p = draw_case(data, name, bound=1e3)
    if spec.layout == "rows" and (t.ndim != p.ndim) and t.ndim > 1:
        assume(False)
    terms = term_shape(spec, p)
    t2, p2 = (t.reshape(-1), p.reshape(-1)) if spec.layout == "elementwise" else (
        t.reshape((-1,) + t.shape[len(terms):]), p.reshape((-1,) + p.shape[len(terms):]))
    k = np.array(data.draw(st.lists(st.integers(0, 3), min_size=p2.shape[0],
                                    max_size=p2.shape[0]), label="k"))
    assume(k.sum() > 0)
    reduction = spec.reductions[0]
    loss = lossreg.get(name, reduction=reduction, **hyper)
    v_w, g_w = loss.value_and_grad(t2, p2, sample_weight=k.astype(float))
    idx = np.repeat(np.arange(p2.shape[0]), k)
    v_r, g_r = loss.value_and_grad(t2[idx], p2[idx])
    check(np.allclose(v_w, v_r, rtol=1e-12, atol=1e-300), (v_w, v_r))
    # gradient of the repeated batch, folded back onto the original terms
    folded = np.zeros_like(g_w)
    np.add.at(folded, idx, g_r)
    if reduction == "none":
        return
    check(np.allclose(g_w, folded, rtol=1e-10, atol=1e-12 * max(1.0, np.abs(folded).max())),
          (g_w, folded))


def prop_float32_agrees_with_float64(name, data):
    """The float32 path (float32 in, float32 gradient out, float64 accumulation) agrees
    with the float64 path on the same (float32-representable) inputs."""
    spec, hyper, t, p = draw_case(data, name, bound=1e4, dtype=np.float32)
    domain_ok = all(np.all([(v in spec.domain(a).interval) for v in np.asarray(x, np.float64).ravel()])
                    for a, x in (("y_true", t), ("y_pred", p)))
    assume(domain_ok)  # rounding to float32 may land on an open end
    t64 = t.astype(np.float64) if t.dtype.kind == "f" else t
    p64 = p.astype(np.float64)
    for reduction in spec.reductions:
        loss = lossreg.get(name, reduction=reduction, **hyper)
        try:
            v32, g32 = loss.value_and_grad(t, p)
        except lossreg.DomainError:
            assume(False)  # e.g. float32 rows whose sums drift past the tolerance
        v64, g64 = loss.value_and_grad(t64, p64)
        check(g32.dtype == np.float32 and g64.dtype == np.float64, (g32.dtype, g64.dtype))
        vs = max(float(np.max(np.abs(v64))), 1e-30)
        check(np.allclose(np.asarray(v32, np.float64), v64, rtol=2e-5, atol=2e-5 * vs),
              (reduction, v32, v64))
        gs = max(float(np.max(np.abs(g64))), 1e-30)
        check(np.allclose(g32.astype(np.float64), g64, rtol=2e-5, atol=2e-5 * gs),
              (reduction, g32, g64))


def _methods(spec):
    """(name, call) of every method that takes ``out=``: call(loss, t, p, out) ->
    (value or None, gradient, Hessian or None)."""
    yield "grad", lambda loss, t, p, out: (None, loss.grad(t, p, out=out), None)
    yield "value_and_grad", lambda loss, t, p, out: (*loss.value_and_grad(t, p, out=out), None)
    if spec.has_hessian:
        yield "hessian", lambda loss, t, p, out: (None, None, loss.hessian(t, p, out=out))
        yield "grad_hess", lambda loss, t, p, out: (
            None, *loss.grad_hess(t, p, out=(out, None)))


def prop_out_aliasing(name, data):
    """``out=`` gives the same results whether it is a separate buffer, y_pred itself,
    y_true itself (same shape and dtype) or a view partially overlapping y_pred
    (``lossreg.outputs``: a stand-in buffer, then a copy), for every method taking it."""
    spec, hyper, t, p = draw_case(data, name, bound=1e3, n_max=6)
    reduction = data.draw(st.sampled_from(spec.reductions), label="reduction")
    loss = lossreg.get(name, reduction=reduction, **hyper)
    modes = ["separate", "y_pred", "partial"] + (["y_true"] if t.shape == p.shape else [])
    for method, call in _methods(spec):
        for mode in modes:
            expected = call(loss, t, p, None)
            tt, pp = t.copy(), p.copy()
            if mode == "separate":
                out = np.empty_like(p)
            elif mode == "y_pred":
                out = pp
            elif mode == "y_true":
                tt = t.astype(p.dtype)
                expected = call(loss, tt.copy(), p, None)
                out = tt
            else:
                buf = np.empty(p.size + 1, dtype=p.dtype)
                buf[:p.size] = p.reshape(-1)
                pp, out = buf[:p.size].reshape(p.shape), buf[1:].reshape(p.shape)
            got = call(loss, tt, pp, out)
            filled = got[1] if got[1] is not None else got[2]
            check(filled is out, (method, mode, "out= not returned"))
            for a, b in zip(expected, got):
                if a is not None:
                    check(np.array_equal(np.asarray(a), np.asarray(b), equal_nan=True),
                          (method, mode, reduction, hyper, a, b))


def _ends(iv) -> tuple[float, float]:
    """The extreme values inside an interval (1e300 for an infinite end)."""
    lo = -1e300 if math.isinf(iv.low) else (
        iv.low if iv.closed_low else float(np.nextafter(iv.low, np.inf)))
    hi = 1e300 if math.isinf(iv.high) else (
        iv.high if iv.closed_high else float(np.nextafter(iv.high, -np.inf)))
    return lo, hi


def _extreme_row(spec, n_classes: int) -> np.ndarray:
    """A valid y_pred row at the ends of its domain: one-hot for distributions (q = 0
    where p > 0), alternating +-1e300 for logits."""
    domain = spec.domain("y_pred")
    lo, hi = _ends(domain.interval)
    if domain.row_sum is not None:
        lo, hi = 0.0, domain.row_sum
    row = np.full(n_classes, lo)
    row[::2] = hi
    if domain.row_sum is not None:
        row[:] = lo
        row[0] = hi
    return row


def _extreme_value(spec) -> float:
    return _ends(spec.domain("y_pred").interval)[1]


def prop_zero_weight_on_extreme(name, data):
    """A term of weight 0 contributes exactly 0, even where its loss or derivative is
    infinite (mse at y_pred = 1e300, kl_div with q = 0 where p > 0): every reduction
    gives the results of the same weights with a harmless y_pred there, and the
    gradient and Hessian of that term are exactly 0."""
    spec, hyper, t, p = draw_case(data, name, bound=1e3, n_max=6)
    if spec.layout == "elementwise":
        t, p = t.reshape(-1), p.reshape(-1)
    elif p.ndim == 1:
        assume(False)                              # one row: no other term to keep
    n = p.shape[0]
    i = data.draw(st.integers(0, n - 1), label="i")
    w = data.draw(hnp.arrays(np.float64, (n,), elements=st.floats(0.5, 2.0)), label="w")
    w[i] = 0.0
    assume(n > 1)
    bad = p.copy()
    bad[i] = _extreme_row(spec, p.shape[1]) if p.ndim == 2 else _extreme_value(spec)
    for reduction in spec.reductions:
        loss = lossreg.get(name, reduction=reduction, **hyper)
        want = (loss.grad_hess if spec.has_hessian else loss.value_and_grad)
        ref, got = want(t, p, w), want(t, bad, w)
        v_ref, v_got = loss(t, p, w), loss(t, bad, w)
        check(np.array_equal(np.asarray(v_ref), np.asarray(v_got)), (reduction, v_ref, v_got))
        for a, b in zip(ref, got):
            if np.ndim(b) == 0:
                continue
            check(not np.isnan(b).any() and np.all(b[i] == 0) and np.array_equal(a, b),
                  (reduction, hyper, a, b))


PROPERTIES = {
    "finite": (prop_finite, lambda s: True),
    "nonnegative": (prop_nonnegative, lambda s: "nonnegative" in s.properties),
    "gradient_fd": (prop_gradient_matches_finite_differences, lambda s: True),
    "reductions": (prop_reductions_agree, lambda s: len(s.reductions) == 3),
    "integer_weights": (prop_integer_weights_repeat_terms, lambda s: True),
    "float32": (prop_float32_agrees_with_float64, lambda s: True),
    "out_alias": (prop_out_aliasing, lambda s: True),
    "zero_weight_inf": (prop_zero_weight_on_extreme, lambda s: True),
}


def _cases():
    for prop, (func, applies) in PROPERTIES.items():
        for name in ALL_NAMES:
            if applies(lossreg.spec(name)):
                yield pytest.param(func, name, id=f"{prop}-{name}")


CASES = list(_cases())


@pytest.mark.parametrize("prop,name", CASES)
@FAST
@given(data=st.data())
def test_property(prop, name, data):
    prop(name, data)


@pytest.mark.slow
@pytest.mark.parametrize("prop,name", CASES)
@HEAVY
@given(data=st.data())
def test_property_heavy(prop, name, data):
    prop(name, data)


# -- properties of particular losses -----------------------------------------------------

def _distributions(data, name, n_max=6):
    spec = lossreg.spec(name)
    seed = data.draw(st.integers(0, 2 ** 32 - 1), label="seed")
    n = data.draw(st.integers(1, n_max), label="n")
    COUNTS["examples"] += 1
    return spec.sample(np.random.default_rng(seed), n, np.float64)


def prop_js_symmetric(data):
    """JS(p, q) == JS(q, p) row by row, and 0 <= JS <= log 2."""
    p, q = _distributions(data, "js_div")
    js = lossreg.get("js_div", reduction="none")
    a, b = js(p, q), js(q, p)
    check(np.allclose(a, b, rtol=1e-12, atol=1e-15), (a, b))
    check(np.all(a >= -1e-15) and np.all(a <= math.log(2) + 1e-12), a)


def prop_kl_zero_on_itself_and_nonnegative(data):
    p, q = _distributions(data, "kl_div")
    kl = lossreg.get("kl_div", reduction="none")
    check(np.allclose(kl(p, p), 0.0, atol=1e-12), kl(p, p))
    check(np.all(kl(p, q) >= -1e-12), kl(p, q))


DIVERGENCE_CASES = [pytest.param(prop, name, id=name, marks=[] if name in ALL_NAMES else
                                 [pytest.mark.skip(reason=f"{name} is not registered")])
                    for prop, name in [(prop_js_symmetric, "js_div"),
                                       (prop_kl_zero_on_itself_and_nonnegative, "kl_div")]]


@pytest.mark.parametrize("prop,name", DIVERGENCE_CASES)
@FAST
@given(data=st.data())
def test_divergence_property(prop, name, data):
    prop(data)
