"""Conformance kit: checks that a loss's kernels agree with its reference and its metadata.

``check_loss(name_or_spec)`` runs every check and raises ``ConformanceError`` listing
each defect by name; each ``check_*`` function can also be used on its own (the
project's own tests parametrize them over every registered loss). Inputs come from the
spec's domains (or its ``sampler``), so a new loss is tested by registering it.

Inside a plugin's own pytest suite::

    @pytest.mark.parametrize("check", lossreg.testing.parametrize_checks("pinball"))
    def test_conformance(check):
        check()

What is checked: kernels compile; values vs the NumPy reference (float64 and float32);
gradients vs 4th-order finite differences of the reference; float32 in gives float32 out
(and float64 stays float64); reductions ("none"/"sum"/"mean" agree with each other);
sample weights; ``value_and_grad`` with ``out=``; Hessian diagonals (``check_hessian``:
vs 4th-order finite differences of the kernel gradient away from kinks, vs
``spec.reference_hessian``, ``grad_hess`` and its ``out=`` pair, dtypes, weights; a loss
without Hessian must raise LossError); non-contiguous inputs and the serial and
parallel paths; domain enforcement (NaN and out-of-interval values raise DomainError at
the right index) and domain coverage (the reference is defined, and the kernels finite,
everywhere the declared domains allow, edges and huge values included); metadata
completeness; and the config round-trip ``from_config(loss.config())``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import numpy as np

from .errors import DomainError, HyperparameterError, LossError
from .loss import Loss
from .registry import Registry, default_registry
from .spec import REDUCTIONS, LossSpec

DTYPES = (np.float64, np.float32)
RTOL = {np.float64: 1e-10, np.float32: 2e-5}
FD_STEP = 1e-4
FD_RTOL = 1e-6
HESS_FD_STEP = 1e-3       # step (times max(1, |x|)) of the differences of the gradient


class ConformanceError(AssertionError):
    """A loss failed one or more conformance checks; the message names each defect."""


class SkipCheck(Exception):
    """A check that cannot run here (e.g. ``lossreg.from_config`` unavailable); not a failure."""


@dataclass
class Report:
    """Outcome of ``check_loss``: which checks ran and which failed (with reasons)."""

    name: str
    passed: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed

    def __str__(self) -> str:
        lines = [f"{self.name}: {len(self.passed)} passed, {len(self.failed)} failed"
                 + (f", {len(self.skipped)} skipped" if self.skipped else "")]
        lines += [f"  FAIL {check}: {why}" for check, why in self.failed]
        lines += [f"  SKIP {check}: {why}" for check, why in self.skipped]
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {"name": self.name, "ok": self.ok, "passed": list(self.passed),
                "failed": [list(f) for f in self.failed],
                "skipped": [list(f) for f in self.skipped]}


def resolve_spec(name_or_spec: str | LossSpec, registry: Registry | None = None) -> LossSpec:
    if isinstance(name_or_spec, LossSpec):
        return name_or_spec
    return (registry or default_registry()).spec(name_or_spec)


def hyper_cases(spec: LossSpec) -> list[dict[str, Any]]:
    """Defaults plus one non-default setting per scalar hyperparameter."""
    cases: list[dict[str, Any]] = [{}]
    for key, h in spec.hyperparameters.items():
        if h.type not in (float, "float_or_array"):
            continue
        interval = h.interval
        if h.default is None:
            lo = 0.0 if interval is None or not math.isfinite(interval.low) else interval.low
            hi = lo + 1.0 if interval is None or not math.isfinite(interval.high) else interval.high
            candidate = 0.5 * (lo + hi) if hi > lo else lo
        else:
            candidate = h.default * 0.5 if h.default else 0.5
        if interval is None or candidate in interval:
            try:        # a value the spec refuses as a whole (tweedie's 0 < power < 1)
                spec.args_for(spec.resolve({key: candidate}))
            except HyperparameterError:
                continue
            cases.append({key: candidate})
    return cases


def make_loss(spec: LossSpec, reduction: str = "mean", **hyper: Any) -> Loss:
    return Loss(spec, reduction=reduction, **hyper)


# -- reference evaluation ------------------------------------------------------------------

def reference_terms(spec: LossSpec, y_true, y_pred, hyper: dict) -> np.ndarray:
    """Per-term reference values in float64 (inputs upcast first)."""
    t = np.asarray(y_true)
    t = t.astype(np.float64) if t.dtype.kind == "f" else t
    return np.asarray(spec.reference(t, np.asarray(y_pred, np.float64), **hyper), np.float64)


def reference_value(spec: LossSpec, y_true, y_pred, hyper: dict, reduction: str = "mean",
                    sample_weight=None):
    """The loss value as the reference defines it, with weights and reduction applied."""
    terms = reference_terms(spec, y_true, y_pred, hyper)
    w = np.ones_like(terms) if sample_weight is None else np.asarray(sample_weight, np.float64)
    if spec.outer is not None:
        return spec.outer[0](float(np.sum(w * terms) / np.sum(w)))
    if reduction == "none":
        return w * terms
    total = float(np.sum(w * terms))
    return total / float(np.sum(w)) if reduction == "mean" else total


def fd_gradient(spec: LossSpec, y_true, y_pred, hyper: dict, reduction: str = "mean",
                sample_weight=None, step: float = FD_STEP) -> np.ndarray:
    """4th-order central differences of the reference value w.r.t. y_pred (float64)."""
    p = np.array(y_pred, dtype=np.float64)
    grad = np.empty_like(p)
    red = "sum" if reduction == "none" else reduction

    def f(x):
        return reference_value(spec, y_true, x, hyper, red, sample_weight)

    flat, gflat = p.reshape(-1), grad.reshape(-1)
    for i in range(flat.size):
        h = step * max(1.0, abs(flat[i]))
        x0 = flat[i]
        vals = []
        for k in (2, 1, -1, -2):
            flat[i] = x0 + k * h
            vals.append(f(p))
        flat[i] = x0
        gflat[i] = (-vals[0] + 8 * vals[1] - 8 * vals[2] + vals[3]) / (12 * h)
    return grad


def _close(actual, expected, rtol: float, atol_scale: float = 1.0) -> tuple[bool, str]:
    actual = np.asarray(actual, np.float64)
    expected = np.asarray(expected, np.float64)
    if actual.shape != expected.shape:
        return False, f"shape {actual.shape} != expected {expected.shape}"
    if not np.all(np.isfinite(actual) == np.isfinite(expected)):
        i = int(np.flatnonzero(np.isfinite(actual).ravel() != np.isfinite(expected).ravel())[0])
        return False, f"non-finite mismatch at index {i}: {actual.ravel()[i]} vs {expected.ravel()[i]}"
    fin = np.isfinite(expected)
    scale = max(float(np.max(np.abs(expected[fin]), initial=0.0)), 1e-300) * atol_scale
    err = np.abs(actual[fin] - expected[fin])
    tol = rtol * np.maximum(np.abs(expected[fin]), scale * 1e-3)
    same_nonfinite = (actual[~fin] == expected[~fin]) | (np.isnan(actual[~fin]) & np.isnan(expected[~fin]))
    if not np.all(same_nonfinite):
        i = int(np.flatnonzero(~fin.ravel())[np.flatnonzero(~same_nonfinite.ravel())[0]])
        return False, (f"non-finite mismatch at index {i}: {actual.ravel()[i]} vs "
                       f"{expected.ravel()[i]}")
    if np.all(err <= tol):
        return True, ""
    i = int(np.argmax(err - tol))
    return False, (f"max error {float(err.ravel()[i]):.3g} at index {i} (got "
                   f"{float(actual[fin].ravel()[i])!r}, expected {float(expected[fin].ravel()[i])!r}, "
                   f"rtol {rtol:g})")


def diagnose(actual, expected, n_terms: int | None = None, dtype=np.float64) -> str:
    """Name the likely defect behind a mismatch: a constant factor, a flipped sign, a mean
    taken inside the kernel, or float32 precision where float64 was expected ("" if none)."""
    a = np.asarray(actual, np.float64).ravel()
    e = np.asarray(expected, np.float64).ravel()
    if a.shape != e.shape:
        return ""
    mask = np.isfinite(a) & np.isfinite(e) & (np.abs(e) > 1e-12 * max(np.max(np.abs(e), initial=0), 1e-300))
    if np.count_nonzero(mask) >= 1:
        ratio = a[mask] / e[mask]
        med = float(np.median(ratio))
        constant = np.allclose(ratio, med, rtol=1e-5, atol=0) and (np.count_nonzero(mask) >= 2
                                                                   or a.size == 1)
        if constant and med != 0.0 and abs(med - 1.0) > 1e-5:
            if abs(med + 1.0) <= 1e-5:
                return " -> sign flipped (off by a factor of -1)"
            if n_terms and abs(med * n_terms - 1.0) <= 1e-5:
                return (f" -> off by a factor 1/{n_terms}: the kernel seems to average over "
                        f"the batch itself (reduction belongs to the dispatcher; kernels "
                        f"write per-term values)")
            if n_terms and abs(med / n_terms - 1.0) <= 1e-5:
                return f" -> off by a factor {n_terms}: sum where a mean was expected (reduction)"
            return f" -> off by a constant factor {med:.6g}"
        if constant and med == 0.0:
            return " -> kernel returns zeros"
    if np.dtype(dtype) == np.float64 and np.any(mask):
        rel = np.max(np.abs(a[mask] - e[mask]) / np.abs(e[mask]))
        if 1e-10 < rel < 1e-5:
            return (f" -> relative error {rel:.1e} looks like float32 arithmetic on float64 "
                    f"input (precision)")
    return ""


# -- individual checks: each returns None or raises ConformanceError ----------------------

def _fail(check: str, spec: LossSpec, why: str) -> ConformanceError:
    return ConformanceError(f"{spec.name}: {check}: {why}")


def check_forward(spec: LossSpec, dtype=np.float64, reduction: str = "mean", hyper=None,
                  n: int = 37, seed: int = 0) -> None:
    """Kernel value == reference value, and the result dtype follows y_pred."""
    hyper = hyper or {}
    if reduction not in spec.reductions:
        return
    t, p = spec.sample(np.random.default_rng(seed), n, dtype, **hyper)
    loss = make_loss(spec, reduction, **hyper)
    got = loss(t, p)
    full = loss.hyperparameters
    want = reference_value(spec, t, p, full, reduction)
    if reduction == "none":
        if not isinstance(got, np.ndarray) or got.dtype != np.dtype(dtype):
            raise _fail("dtype", spec, f"{np.dtype(dtype)} input returned as "
                        f"{getattr(got, 'dtype', type(got).__name__)}: reduction='none' values "
                        f"must follow y_pred's dtype")
    elif not isinstance(got, float):
        raise _fail("forward", spec, f"reduction={reduction!r} returned {type(got).__name__}, not float")
    ok, why = _close(got, want, RTOL[dtype])
    if not ok:
        why += diagnose(got, want, p.size if spec.layout == "elementwise" else p.shape[0], dtype)
        raise _fail(f"forward[{np.dtype(dtype)}, {reduction}]", spec, why)


def check_gradient(spec: LossSpec, dtype=np.float64, reduction: str = "mean", hyper=None,
                   n: int = 9, seed: int = 1) -> None:
    """Kernel gradient == finite differences of the reference; dtype follows y_pred."""
    hyper = hyper or {}
    if reduction not in spec.reductions:
        return
    t, p = spec.sample(np.random.default_rng(seed), n, dtype, **hyper)
    loss = make_loss(spec, reduction, **hyper)
    got = loss.grad(t, p)
    if not isinstance(got, np.ndarray) or got.shape != p.shape:
        raise _fail("gradient shape", spec, f"gradient is {type(got).__name__} "
                    f"{getattr(got, 'shape', '')}, expected an array of shape {p.shape}")
    if got.dtype != np.dtype(dtype):
        raise _fail("dtype", spec, f"{np.dtype(dtype)} input returned as {got.dtype}: the "
                    f"gradient must follow y_pred's dtype")
    want = fd_gradient(spec, t, p, loss.hyperparameters, reduction)
    rtol = FD_RTOL if dtype == np.float64 else RTOL[np.float32]
    ok, why = _close(got, want, rtol, atol_scale=1.0)
    if not ok:
        why += diagnose(got, want, None, dtype)
        raise _fail(f"gradient[{np.dtype(dtype)}, {reduction}]", spec, why)


def check_value_and_grad(spec: LossSpec, dtype=np.float64, reduction: str = "mean",
                         hyper=None, n: int = 53, seed: int = 2) -> None:
    """value_and_grad (with out=) matches separate calls, and fills ``out`` in place."""
    hyper = hyper or {}
    if reduction not in spec.reductions:
        return
    t, p = spec.sample(np.random.default_rng(seed), n, dtype, **hyper)
    loss = make_loss(spec, reduction, **hyper)
    out = np.full(p.shape, np.nan, dtype=p.dtype)
    value, grad = loss.value_and_grad(t, p, out=out)
    if grad is not out:
        raise _fail("out=", spec, "value_and_grad did not return the out= array")
    if grad.dtype != p.dtype:
        raise _fail("dtype", spec, f"{p.dtype} input returned as {grad.dtype} by value_and_grad")
    for label, a, b in (("value", value, loss(t, p)), ("grad", grad, loss.grad(t, p))):
        ok, why = _close(a, b, 1e-12 if dtype == np.float64 else 1e-6)
        if not ok:
            raise _fail(f"value_and_grad {label}", spec, why)


def check_sample_weight(spec: LossSpec, dtype=np.float64, reduction: str = "mean",
                        hyper=None, n: int = 31, seed: int = 3) -> None:
    """Weighted value and gradient follow sum(w*l)/sum(w), sum(w*l) and w*l."""
    hyper = hyper or {}
    if reduction not in spec.reductions:
        return
    rng = np.random.default_rng(seed)
    t, p = spec.sample(rng, n, dtype, **hyper)
    loss = make_loss(spec, reduction, **hyper)
    terms = reference_terms(spec, t, p, loss.hyperparameters)
    w = rng.random(terms.shape) * 2.0
    w.reshape(-1)[0] = 0.0
    got = loss(t, p, sample_weight=w)
    ok, why = _close(got, reference_value(spec, t, p, loss.hyperparameters, reduction, w), RTOL[dtype])
    if not ok:
        raise _fail(f"sample_weight value[{reduction}]", spec,
                    why + diagnose(got, reference_value(spec, t, p, loss.hyperparameters,
                                                        reduction, w)))
    want = fd_gradient(spec, t, p, loss.hyperparameters, reduction, w) if n <= 64 else None
    if want is not None:
        ok, why = _close(loss.grad(t, p, sample_weight=w), want,
                         FD_RTOL if dtype == np.float64 else RTOL[np.float32])
        if not ok:
            raise _fail(f"sample_weight gradient[{reduction}]", spec, why)


# -- second derivatives ----------------------------------------------------------------------

def _f64(a):
    """float64 copy of a float array; integer class labels stay as they are."""
    a = np.asarray(a)
    return a.astype(np.float64) if a.dtype.kind == "f" else a


def _term_weights(spec: LossSpec, terms: np.ndarray, sample_weight) -> tuple[np.ndarray, np.ndarray]:
    """(weight per term, the same broadcast to y_pred's shape: per row for rows)."""
    w = np.ones(terms.shape) if sample_weight is None else np.asarray(sample_weight, np.float64)
    return w, (w if spec.layout == "elementwise" else w[..., None])


def reference_hessian_value(spec: LossSpec, y_true, y_pred, hyper: dict,
                            reduction: str = "mean", sample_weight=None) -> np.ndarray:
    """The Hessian diagonal of the reduced value from ``spec.reference_hessian`` (float64).

    Per element (per row element for rows) l''_i: "none" and "sum" give w_i l''_i, "mean"
    w_i l''_i / W (W the weight sum). With ``outer = (f, df, c)`` (value f(m), m the
    weighted mean of the terms, c = f''/f') it is f''(m) u_i^2 + f'(m) v_i =
    f'(m) (v_i + c(m) u_i^2) with u_i = w_i l'_i / W
    and v_i = w_i l''_i / W; l'_i comes from the kernel gradient of the loss without
    ``outer`` (checked on its own against the reference by ``check_gradient``).
    """
    import dataclasses

    t, p = _f64(y_true), np.asarray(y_pred, np.float64)
    d2 = np.asarray(spec.reference_hessian(t, p, **hyper), np.float64)
    if d2.shape != p.shape:
        d2 = np.broadcast_to(d2, p.shape).astype(np.float64)
    terms = reference_terms(spec, t, p, hyper)
    w, wb = _term_weights(spec, terms, sample_weight)
    total_w = float(np.sum(w))
    if spec.outer is not None:
        m = float(np.sum(w * terms) / total_w)
        inner = dataclasses.replace(spec, outer=None, reductions=REDUCTIONS)
        u = Loss(inner, "none", **hyper).grad(t, p, sample_weight=sample_weight) / total_w
        return spec.outer[1](m) * (wb * d2 / total_w + (spec.outer[2](m) * u) * u)
    return wb * d2 / total_w if reduction == "mean" else wb * d2


def _fd_groups(spec: LossSpec, shape: tuple) -> list[np.ndarray]:
    """Flat indices of y_pred perturbed together: all elements of an element-wise loss
    (element i's gradient depends on y_pred[i] alone), one column of a loss on rows (a
    row's gradient depends on that row alone), one element at a time with ``outer``."""
    size = int(np.prod(shape))
    if spec.outer is not None:
        return [np.array([i]) for i in range(size)]
    if spec.layout == "rows":           # a 1-D y_pred is one row: one element per group
        cols = np.arange(size) % shape[-1]
        return [np.flatnonzero(cols == j) for j in range(shape[-1])]
    return [np.arange(size)]


def fd_hessian(loss: Loss, y_true, y_pred, sample_weight=None, step: float = HESS_FD_STEP,
               groups: list[np.ndarray] | None = None
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hessian diagonal by 4th-order central differences of the kernel gradient (float64).

    Returns ``(estimate, smooth, noise)``: the estimate with step h_i / 2, where h_i =
    ``step * max(1, |x_i|)`` shrunk so that the stencil x_i +- 2 h_i stays inside y_pred's
    domain interval; a mask of the elements where the estimate is trusted; and a bound
    on its round-off, ``4e3 eps max|g| / h_i`` (the gradient's rounding, amplified 1/h).

    An element is trusted when the differences at h, h/2 and h/4 agree (within FD_RTOL
    plus the round-off bound): a smooth gradient gives the same second derivative at every
    small step (truncation error O(h^4), round-off O(eps |g| / h)), whereas a stencil that
    straddles a kink (a jump of the gradient, as MAE at r = 0, or of the Hessian, as Huber
    at |r| = delta) weighs the jump differently at each step. Two step ratios are used
    because one pair of steps can coincide for a single kink position; a kink exactly at
    x_i, which every symmetric stencil averages alike, is caught by comparing the one-sided
    slopes (g(x+h/4) - g(x)) and (g(x) - g(x-h/4)) (equal up to O(h g''') when smooth:
    within 1e-2 relative, FD_RTOL * 1e4). Elements too
    close to a domain bound for a stencil of at least 1e-6 are not trusted either.
    Evaluations use ``validate=False``: perturbed rows no longer sum to 1.
    """
    t = _f64(y_true)
    p = np.array(y_pred, dtype=np.float64)
    flat = p.reshape(-1)
    interval = loss.spec.domain("y_pred").interval
    a, b = interval.closed_bounds()
    h = step * np.maximum(1.0, np.abs(flat))
    room = np.minimum(flat - a, b - flat) / 2.5
    h = np.minimum(h, room)
    usable = h >= 1e-6 * np.maximum(1.0, np.abs(flat))
    h = np.where(usable, h, step)
    groups = groups if groups is not None else _fd_groups(loss.spec, p.shape)
    estimates = []
    for scale in (1.0, 0.5, 0.25):
        hs = h * scale
        est = np.empty(flat.size)
        vals_right, vals_left = [], []
        for g in groups:
            vals = []
            for k in (2, 1, -1, -2):
                x = flat.copy()
                x[g] = x[g] + k * hs[g]
                grad = loss.grad(t, x.reshape(p.shape), sample_weight=sample_weight,
                                 validate=False)
                vals.append(np.asarray(grad, np.float64).reshape(-1)[g])
            est[g] = (-vals[0] + 8 * vals[1] - 8 * vals[2] + vals[3]) / (12 * hs[g])
            vals_right.append(vals[1])
            vals_left.append(vals[2])
        estimates.append(est)
        if scale == 0.25:
            g_right, g_left = np.empty(flat.size), np.empty(flat.size)
            g_right[np.concatenate(groups)] = np.concatenate(vals_right)
            g_left[np.concatenate(groups)] = np.concatenate(vals_left)
    d1, d2, d4 = estimates
    g0 = np.asarray(loss.grad(t, p, sample_weight=sample_weight, validate=False),
                    np.float64).reshape(-1)
    g_max = float(np.max(np.abs(g0[np.isfinite(g0)]), initial=0.0))
    noise = 4e3 * np.finfo(np.float64).eps * g_max / h
    fin = np.isfinite(d1) & np.isfinite(d2) & np.isfinite(d4) & np.isfinite(g0)
    tol = _fd_tolerance(d2, fin) + noise
    # one-sided slopes at h/4: a Hessian that jumps exactly at x (a kink the symmetric
    # stencils average into (H- + H+)/2 at every step) shows as right != left slope;
    # a smooth gradient differs by O(h |g'''|) only
    jump = np.abs((g_right - g0) - (g0 - g_left)) / (0.25 * h)
    with np.errstate(invalid="ignore"):
        smooth = (fin & usable & (np.abs(d1 - d2) <= tol) & (np.abs(d2 - d4) <= tol)
                  & (jump <= 1e4 * (tol - noise) + noise))
    return d2.reshape(p.shape), smooth.reshape(p.shape), noise.reshape(p.shape)


def _fd_tolerance(expected: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """FD_RTOL relative, floored at 1e-3 of the largest |expected| (as ``_close``)."""
    scale = max(float(np.max(np.abs(expected[mask]), initial=0.0)), 1e-300)
    return FD_RTOL * np.maximum(np.abs(expected), 1e-3 * scale)


def check_hessian(spec: LossSpec, dtype=np.float64, reduction: str = "mean", hyper=None,
                  n: int = 9, seed: int = 11) -> None:
    """Hessian diagonals: ``hessian`` and ``grad_hess`` (with and without sample weights)
    vs 4th-order finite differences of the kernel gradient (float64, elements whose
    stencil straddles a kink left out, see ``fd_hessian``), vs ``spec.reference_hessian``
    when given (float64 and float32, the kit's tolerances), and float32 vs float64;
    ``grad_hess`` equals ``grad`` and ``hessian`` (bit for bit for element-wise losses in
    float64), fills and returns its ``out=`` pair (non-contiguous buffers too), keeps
    y_pred's dtype; weights scale each element's curvature (w_i, over W for "mean").
    A loss with ``has_hessian`` False must raise LossError naming the loss instead."""
    hyper = hyper or {}
    if reduction not in spec.reductions:
        return
    dt = np.dtype(dtype)
    rng = np.random.default_rng(seed)
    t, p = spec.sample(rng, n, dtype, **hyper)
    loss = make_loss(spec, reduction, **hyper)
    label = f"hessian[{dt.name}, {reduction}]"
    if not spec.has_hessian:
        for what, call in (("hessian()", loss.hessian), ("grad_hess()", loss.grad_hess)):
            try:
                call(t, p)
            except LossError as exc:
                if spec.name not in str(exc):
                    raise _fail(label, spec, f"{what} of a loss without Hessian raised "
                                f"LossError not naming the loss: {exc}") from None
            else:
                raise _fail(label, spec, f"spec.has_hessian is False but {what} returned "
                            f"instead of raising LossError")
        return
    full = loss.hyperparameters
    terms = reference_terms(spec, t, p, full)
    w = rng.random(terms.shape) * 2.0
    w.reshape(-1)[0] = 0.0
    exact = 1e-12 if dt == np.float64 else 1e-6
    unweighted = None
    for sw in (None, w):
        tag = "" if sw is None else ", sample_weight"
        try:
            got = loss.hessian(t, p, sample_weight=sw)
            g2, h2 = loss.grad_hess(t, p, sample_weight=sw)
        except LossError as exc:
            raise _fail(label, spec, f"has_hessian is True but hessian()/grad_hess() raised "
                        f"{type(exc).__name__}: {exc}") from None
        for what, arr in (("hessian()", got), ("grad_hess() gradient", g2),
                          ("grad_hess() Hessian", h2)):
            if not isinstance(arr, np.ndarray) or arr.shape != p.shape:
                raise _fail("hessian shape", spec, f"{what} is {type(arr).__name__} "
                            f"{getattr(arr, 'shape', '')}, expected an array of shape {p.shape}")
            if arr.dtype != dt:
                raise _fail("dtype", spec, f"{dt} input returned as {arr.dtype} by {what}: "
                            f"Hessians follow y_pred's dtype")
        # grad_hess is grad and hessian in one pass
        g1 = loss.grad(t, p, sample_weight=sw)
        if spec.layout == "elementwise" and dt == np.float64:
            for what, a, b in (("gradient", g2, g1), ("Hessian", h2, got)):
                if not np.array_equal(a, b, equal_nan=True):
                    ok, why = _close(a, b, 0.0)
                    raise _fail(f"grad_hess[{dt.name}, {reduction}{tag}]", spec,
                                f"grad_hess() {what} is not bit-identical to "
                                f"{'grad' if what == 'gradient' else 'hessian'}(): {why}")
        else:
            for what, a, b in (("gradient", g2, g1), ("Hessian", h2, got)):
                ok, why = _close(a, b, exact)
                if not ok:
                    raise _fail(f"grad_hess[{dt.name}, {reduction}{tag}]", spec,
                                f"grad_hess() {what} differs from the separate call: {why}")
        # finite differences of the float64 kernel gradient
        if dt == np.float64:
            fd, smooth, noise = fd_hessian(loss, t, p, sw)
            if np.count_nonzero(smooth) * 2 < smooth.size:
                raise _fail(f"{label}{tag}", spec, (
                    f"finite differences of the gradient are unusable at "
                    f"{smooth.size - np.count_nonzero(smooth)} of {smooth.size} sampled "
                    f"points (the gradient is not smooth or not finite there); the Hessian "
                    f"cannot be checked"))
            a, e = np.asarray(got, np.float64)[smooth], fd[smooth]
            err = np.abs(a - e)
            tol = _fd_tolerance(e, np.ones(e.shape, bool)) + noise[smooth]
            if not np.all(err <= tol):     # NaN in ours fails too
                i = int(np.argmax(np.where(np.isnan(err), np.inf, err - tol)))
                flat_i = int(np.flatnonzero(smooth.ravel())[i])
                why = (f"max error {float(err[i]):.3g} at index {flat_i} (got {float(a[i])!r}, "
                       f"finite differences {float(e[i])!r}, rtol {FD_RTOL:g})")
                why += diagnose(a, e, None, dt)
                raise _fail(f"{label}{tag}", spec, f"hessian() vs finite differences of the "
                            f"kernel gradient: {why}")
        else:
            want = make_loss(spec, reduction, **hyper).hessian(_f64(t), _f64(p), sample_weight=sw)
            ok, why = _close(got, want, RTOL[np.float32])
            if not ok:
                raise _fail(f"{label}{tag}", spec, f"float32 hessian() vs float64 on the same "
                            f"inputs: {why}" + diagnose(got, want, None, dt))
        # the reference's second derivatives
        if spec.reference_hessian is not None:
            try:
                want = reference_hessian_value(spec, t, p, full, reduction, sw)
            except Exception as exc:  # noqa: BLE001 - a reference that raises is the defect
                raise _fail(f"{label}{tag}", spec, f"spec.reference_hessian raises "
                            f"{type(exc).__name__}: {exc}") from None
            ok, why = _close(got, want, RTOL[dt.type])
            if not ok:
                why += diagnose(got, want, None, dt)
                raise _fail(f"{label}{tag}", spec, f"hessian() vs spec.reference_hessian: "
                            f"{why}")
        # weights scale each element's curvature (outer: covered by the checks above)
        if sw is None:
            unweighted = np.asarray(got, np.float64)
        elif spec.outer is None:
            _, wb = _term_weights(spec, terms, sw)
            per_term = unweighted * (terms.size if reduction == "mean" else 1.0)
            want = wb * per_term / (float(np.sum(sw)) if reduction == "mean" else 1.0)
            ok, why = _close(got, want, RTOL[dt.type])
            if not ok:
                raise _fail(f"hessian sample_weight[{dt.name}, {reduction}]", spec,
                            f"the weighted Hessian is not w_i times the unweighted one"
                            f"{' over sum(w)' if reduction == 'mean' else ''}: {why}"
                            + diagnose(got, want, None, dt))
    _check_hessian_out(spec, loss, t, p, label)


def _check_hessian_out(spec: LossSpec, loss: Loss, t, p, label: str) -> None:
    """``out=`` of grad_hess (pairs, one side None, non-contiguous) and of hessian."""
    g_want, h_want = loss.grad_hess(t, p)
    strided_shape = p.shape[:-1] + (2 * p.shape[-1],)

    def fresh(contiguous=True):
        if contiguous:
            return np.full(p.shape, np.nan, dtype=p.dtype)
        return np.full(strided_shape, np.nan, dtype=p.dtype)[..., ::2]

    cases = [("(g, h)", fresh(), fresh()), ("(None, h)", None, fresh()),
             ("(g, None)", fresh(), None), ("non-contiguous (g, h)", fresh(False), fresh(False))]
    for what, gb, hb in cases:
        g, h = loss.grad_hess(t, p, out=(gb, hb))
        for side, buf, arr, want in (("gradient", gb, g, g_want), ("Hessian", hb, h, h_want)):
            if buf is not None and arr is not buf:
                raise _fail("hessian out=", spec, f"grad_hess(out={what}) did not return the "
                            f"{side} buffer it was given")
            if not np.array_equal(arr, want, equal_nan=True):
                ok, why = _close(arr, want, 0.0)
                raise _fail("hessian out=", spec, f"grad_hess(out={what}) {side} differs from "
                            f"grad_hess() without out: {why}")
    hb = fresh(False)
    h = loss.hessian(t, p, out=hb)
    if h is not hb or not np.array_equal(h, h_want, equal_nan=True):
        raise _fail("hessian out=", spec, "hessian(out=buf) did not fill and return buf")


def check_layouts(spec: LossSpec, dtype=np.float64, hyper=None, seed: int = 4) -> None:
    """Non-contiguous inputs, and small (serial) vs large (parallel) paths agree."""
    hyper = hyper or {}
    reduction = "mean" if "mean" in spec.reductions else spec.reductions[0]
    rng = np.random.default_rng(seed)
    n = max(spec.kernels.serial_below, 1) * 2 + 17
    t, p = spec.sample(rng, n, dtype, **hyper)
    loss = make_loss(spec, reduction, **hyper)
    full_value, full_grad = loss.value_and_grad(t, p)
    # strided views of a bigger array must give the same numbers as contiguous copies
    t2 = np.repeat(t, 2, axis=0)[::2]
    p2 = np.repeat(p, 2, axis=0)[::2]
    ok, why = _close(loss.value_and_grad(t2, p2)[1], full_grad, 1e-12)
    if not ok:
        raise _fail("non-contiguous input", spec, why)
    # the serial path (small inputs) must agree with the reference
    small_t, small_p = t[:5], p[:5]
    want = reference_value(spec, small_t, small_p, loss.hyperparameters, reduction)
    ok, why = _close(loss(small_t, small_p), want, RTOL[dtype])
    if not ok:
        raise _fail("serial path", spec, why)
    ok, why = _close(full_value, reference_value(spec, t, p, loss.hyperparameters, reduction),
                     RTOL[dtype])
    if not ok:
        raise _fail("parallel path", spec, why)


def check_domains(spec: LossSpec, hyper=None, seed: int = 5) -> None:
    """NaN (unless allowed) and out-of-interval values raise DomainError naming the index;
    so does an all-zero row where a domain asks for non-zero rows (``nonzero_rows``)."""
    hyper = hyper or {}
    reduction = "mean" if "mean" in spec.reductions else spec.reductions[0]
    loss = make_loss(spec, reduction, **hyper)
    _check_zero_rows(spec.configured(loss.hyperparameters), loss, hyper, seed)
    for argument in ("y_true", "y_pred"):
        domain = spec.domain(argument)
        bad_values = [] if domain.allow_nan else [math.nan]
        if domain.interval.high < math.inf or not domain.interval.closed_high:
            bad_values.append(domain.interval.high + 1.0 if math.isfinite(domain.interval.high)
                              else math.inf)
        for bad in bad_values:
            t, p = spec.sample(np.random.default_rng(seed), 8, np.float64, **hyper)
            arr = (t if argument == "y_true" else p).copy()
            if arr.dtype.kind != "f":
                arr = arr.astype(np.float64)
            index = arr.size - 2
            arr.reshape(-1)[index] = bad
            args = (arr, p) if argument == "y_true" else (t, arr)
            for call in (loss, loss.grad, loss.value_and_grad):
                try:
                    call(*args)
                except DomainError as exc:
                    if exc.argument != argument or exc.index != index:
                        raise _fail("domain", spec, f"{argument}={bad!r} at index {index} raised "
                                    f"DomainError naming {exc.argument!r} index {exc.index}") from None
                except LossError as exc:
                    raise _fail("domain", spec, f"{argument}={bad!r} raised {exc!r}, "
                                f"not DomainError") from None
                else:
                    raise _fail("domain", spec, f"{call.__name__ if hasattr(call, '__name__') else 'call'}"
                                f" accepted {argument}={bad!r} at index {index}")


def _check_zero_rows(spec: LossSpec, loss, hyper, seed: int) -> None:
    """Each ``Domain.nonzero_rows`` rule: a row zeroed so that it breaks the rule (this
    argument's row; for "either" both rows) raises DomainError naming the argument and
    the row's first flat index, with weight 1 and with weight 0 on that row. Skipped
    where another rule refuses zeros (an interval without 0, a row sum)."""
    for argument in ("y_true", "y_pred"):
        rule = spec.domain(argument).nonzero_rows
        if rule is None:
            continue
        zeroed = ("y_true", "y_pred") if rule == "either" else (argument,)
        if any(0.0 not in spec.domain(a).interval or spec.domain(a).row_sum is not None
               or spec.domain(a).label_sets is not None for a in zeroed):
            continue
        t, p = spec.sample(np.random.default_rng(seed), 8, np.float64, **hyper)
        if p.ndim != 2 or t.shape != p.shape:
            continue
        t, p = t.astype(np.float64), p.copy()
        row = p.shape[0] - 2
        for a in zeroed:
            (t if a == "y_true" else p)[row] = 0.0
        weights = np.ones(p.shape[0])
        weights[row] = 0.0
        for w in (None, weights):
            try:
                loss.grad(t, p, w)
            except DomainError as exc:
                if exc.argument != argument or exc.index != row * p.shape[1]:
                    raise _fail("domain", spec, f"a zero row {row} ({argument}: nonzero_rows="
                                f"{rule!r}) raised DomainError naming {exc.argument!r} index "
                                f"{exc.index}") from None
            else:
                raise _fail("domain", spec, f"accepted a zero row {row} of {argument} "
                            f"(nonzero_rows={rule!r}, sample_weight "
                            f"{'1' if w is None else '0'})")


def check_metadata(spec: LossSpec) -> None:
    """Summary, formula, properties and hyperparameter docs are present; to_dict is JSON."""
    import json

    missing = [a for a in ("summary", "formula") if not getattr(spec, a)]
    missing += [f"doc of hyperparameter {k!r}" for k, h in spec.hyperparameters.items() if not h.doc]
    if not spec.properties:
        missing.append("properties")
    if missing:
        raise _fail("metadata", spec, "missing " + ", ".join(missing))
    if "\n" in spec.summary.strip():
        raise _fail("metadata", spec, "summary must be one line")
    if spec.outer is not None and tuple(spec.reductions) != ("mean",):
        raise _fail("metadata", spec, f"reduction: a loss with `outer` (a function of the "
                    f"weighted mean) supports only reductions=('mean',), not {spec.reductions}")
    try:
        spec.validate()
    except LossError as exc:
        raise _fail("metadata", spec, f"invalid spec: {exc}") from None
    try:
        json.dumps(spec.to_dict())
    except (TypeError, ValueError) as exc:
        raise _fail("metadata", spec, f"to_dict() is not JSON-serialisable: {exc}") from None


def _tiny(spec: LossSpec, dtype, hyper, n: int = 3):
    return spec.sample(np.random.default_rng(7), n, dtype, **(hyper or {}))


def check_compile(spec: LossSpec, hyper=None) -> None:
    """Every kernel (plain, fused, serial and parallel) compiles for float64 and float32."""
    from .errors import PluginError

    hyper = hyper or {}
    reduction = "mean" if "mean" in spec.reductions else spec.reductions[0]
    for dtype in DTYPES:
        for n in (3, max(spec.kernels.serial_below, 1) + 1):   # serial twin, then the parallel kernel
            t, p = spec.sample(np.random.default_rng(7), n, dtype, **hyper)
            for red in dict.fromkeys((reduction, "none")):
                if red not in spec.reductions:
                    continue
                loss = make_loss(spec, red, **hyper)
                try:
                    loss(t, p)
                    loss.grad(t, p)
                    loss.value_and_grad(t, p)
                except PluginError as exc:
                    raise _fail("compile", spec, f"kernel fails to compile for {np.dtype(dtype)} "
                                f"input: {exc}") from None


def check_dtypes(spec: LossSpec, hyper=None) -> None:
    """float32 in gives float32 out (values for "none", gradients, out=); float64 stays
    float64; reduced values are Python floats."""
    hyper = hyper or {}
    for dtype in DTYPES:
        dt = np.dtype(dtype)
        t, p = _tiny(spec, dtype, hyper, 5)
        for reduction in spec.reductions:
            loss = make_loss(spec, reduction, **hyper)
            value, grad = loss.value_and_grad(t, p)
            found = [("value", value), ("grad", grad), ("grad()", loss.grad(t, p)),
                     ("value()", loss(t, p))]
            for what, x in found:
                if reduction != "none" and what.startswith("value"):
                    if not isinstance(x, float):
                        raise _fail("dtype", spec, f"reduction={reduction!r} {what} is "
                                    f"{type(x).__name__}, not a Python float")
                    continue
                got = getattr(x, "dtype", None)
                if got != dt:
                    raise _fail("dtype", spec, f"{dt} input returned as {got} ({what}, "
                                f"reduction={reduction!r}): outputs must follow y_pred's dtype")


def _probe_values(interval) -> list[float]:
    """Edge values inside an interval: its closed ends and large/small magnitudes."""
    a, b = interval.closed_bounds()
    candidates = [-1e30, -1e3, -1.0, -1e-3, 0.0, 1e-3, 1.0, 1e3, 1e30]
    values = [v for v in candidates if v in interval]
    values += [v for v, end in ((a, interval.low), (b, interval.high))
               if math.isfinite(end) and v not in values]
    return values


def check_domain_coverage(spec: LossSpec, hyper=None, seed: int = 6) -> None:
    """The reference is defined (no NaN) wherever the declared domains allow, and the
    kernels stay finite wherever the reference is finite (edges and huge values included).

    A NaN from the reference on allowed input means the spec's domains miss a constraint
    (e.g. probabilities declared as any real) or the reference is unstable there; a kernel
    that overflows where the reference does not is numerically unstable.
    """
    hyper = hyper or {}
    loss = make_loss(spec, "none" if "none" in spec.reductions else spec.reductions[0], **hyper)
    full = loss.hyperparameters
    rng = np.random.default_rng(seed)
    t, p = spec.sample(rng, 64, np.float64, **hyper)
    trials = [("sampled inputs", t, p)]
    if spec.layout == "elementwise" and t.shape == p.shape and t.ndim == 1:
        for col, argument in enumerate(("y_true", "y_pred")):
            domain = spec.domain(argument)
            if domain.integer or domain.row_sum is not None or domain.label_sets is not None:
                continue
            probes = _probe_values(domain.interval)
            tt, pp = t[:len(probes)].astype(np.float64), p[:len(probes)].astype(np.float64)
            (tt if col == 0 else pp)[:] = probes
            trials.append((f"edge values of {argument}", tt, pp))
    for label, tt, pp in trials:
        with np.errstate(all="ignore"):
            try:
                ref = reference_terms(spec, tt, pp, full)
            except Exception as exc:  # noqa: BLE001 - a reference that raises is the defect
                raise _fail("domain coverage", spec, f"the reference raises "
                            f"{type(exc).__name__}: {exc} on {label}") from None
        nan = np.flatnonzero(np.isnan(ref).ravel())
        if nan.size:
            i = int(nan[0])
            where = (f"y_true={float(tt.ravel()[i])!r}, y_pred={float(pp.ravel()[i])!r}"
                     if spec.layout == "elementwise" else f"row {i}")
            raise _fail("domain coverage", spec, (
                f"missing domain check: the reference returns NaN at {where} ({label}), which "
                f"the declared domains allow (y_true {spec.domain('y_true').describe()}; y_pred "
                f"{spec.domain('y_pred').describe()}); declare the constraint in `domains` "
                f"(or make the reference stable there)"))
        if loss.reduction != "none" or label == "sampled inputs":
            continue
        values, grad = loss.value_and_grad(tt, pp)
        fin = np.isfinite(ref).ravel()
        for what, arr in (("value", values), ("gradient", grad)):
            bad = np.flatnonzero(fin & ~np.isfinite(np.asarray(arr, np.float64)).ravel())
            if bad.size:
                i = int(bad[0])
                raise _fail("numerical stability", spec, (
                    f"kernel {what} is {float(np.asarray(arr).ravel()[i])!r} at y_true="
                    f"{float(tt.ravel()[i])!r}, y_pred={float(pp.ravel()[i])!r} ({label}) where "
                    f"the reference is finite ({float(ref.ravel()[i])!r}): overflow"))
        ok, why = _close(values, ref, 1e-6)
        if not ok:
            raise _fail("numerical stability", spec, f"kernel values on {label}: {why}")


def check_reductions(spec: LossSpec, dtype=np.float64, hyper=None, n: int = 41,
                     seed: int = 8) -> None:
    """reduction="sum" is the sum of the "none" values and "mean" is sum / n (weights too)."""
    hyper = hyper or {}
    if set(spec.reductions) != set(REDUCTIONS):
        return
    rng = np.random.default_rng(seed)
    t, p = spec.sample(rng, n, dtype, **hyper)
    none = np.asarray(make_loss(spec, "none", **hyper)(t, p), np.float64)
    total = make_loss(spec, "sum", **hyper)(t, p)
    mean = make_loss(spec, "mean", **hyper)(t, p)
    rtol = 1e-12 if np.dtype(dtype) == np.float64 else 1e-6
    expect_sum = float(np.sum(none))
    if not math.isclose(total, expect_sum, rel_tol=rtol, abs_tol=1e-300):
        raise _fail("reduction", spec, f"reduction='sum' gave {total!r} but the 'none' values "
                    f"sum to {expect_sum!r}" + diagnose(total, expect_sum, none.size))
    if not math.isclose(mean, total / none.size, rel_tol=rtol, abs_tol=1e-300):
        raise _fail("reduction", spec, f"reduction='mean' gave {mean!r} but sum / n = "
                    f"{total / none.size!r}" + diagnose(mean, total / none.size, none.size))
    gn = make_loss(spec, "none", **hyper).grad(t, p)
    gm = make_loss(spec, "mean", **hyper).grad(t, p)
    ok, why = _close(gm, np.asarray(gn, np.float64) / none.size, rtol)
    if not ok:
        raise _fail("reduction", spec, f"grad with reduction='mean' is not the 'none' gradient "
                    f"/ n: {why}" + diagnose(gm, np.asarray(gn, np.float64) / none.size, none.size))


def _config_registry(spec: LossSpec, registry: Registry | None):
    """A registry in which ``spec.name`` resolves to ``spec`` (or an equal copy)."""
    import dataclasses

    for reg in (registry, default_registry()):
        if reg is not None and spec.name in reg and reg.spec(spec.name) is spec:
            return reg
    reg = Registry(builtins=False, entry_points=False)
    reg.add(dataclasses.replace(spec), source=spec.source)
    return reg


def check_config(spec: LossSpec, hyper=None, registry: Registry | None = None,
                 seed: int = 9) -> None:
    """``from_config(loss.config())`` rebuilds a loss with the same config, value and grad;
    the config is plain JSON. Skipped (SkipCheck) when lossreg.from_config is unavailable."""
    import inspect
    import json

    from .registry import set_default_registry

    hyper = hyper or {}
    try:
        from .config import from_config
    except ImportError as exc:
        raise SkipCheck(f"config round-trip not checked: lossreg.from_config is unavailable "
                        f"({exc})") from None
    reduction = "sum" if "sum" in spec.reductions else spec.reductions[0]
    loss = make_loss(spec, reduction, **hyper)
    cfg = loss.config()
    try:
        text = json.dumps(cfg)
    except (TypeError, ValueError) as exc:
        raise _fail("config round-trip", spec, f"loss.config() is not plain JSON: {exc}") from None
    reg = _config_registry(spec, registry)
    try:
        if "registry" in inspect.signature(from_config).parameters:
            rebuilt = from_config(json.loads(text), registry=reg)
        elif reg is default_registry():
            rebuilt = from_config(json.loads(text))
        else:
            old = set_default_registry(reg)
            try:
                rebuilt = from_config(json.loads(text))
            finally:
                set_default_registry(old)
    except Exception as exc:  # noqa: BLE001
        raise _fail("config round-trip", spec, f"from_config({cfg!r}) raised "
                    f"{type(exc).__name__}: {exc}") from None
    if getattr(rebuilt, "name", None) != spec.name:
        raise _fail("config round-trip", spec, f"from_config({cfg!r}) built "
                    f"{getattr(rebuilt, 'name', rebuilt)!r}")
    again = json.loads(json.dumps(rebuilt.config()))
    if again != json.loads(text):
        raise _fail("config round-trip", spec, f"from_config(loss.config()).config() is "
                    f"{again!r}, expected {json.loads(text)!r}")
    t, p = spec.sample(np.random.default_rng(seed), 11, np.float64, **hyper)
    v1, g1 = loss.value_and_grad(t, p)
    v2, g2 = rebuilt.value_and_grad(t, p)
    if not (np.array_equal(np.asarray(v1), np.asarray(v2)) and np.array_equal(g1, g2)):
        raise _fail("config round-trip", spec, "the rebuilt loss gives different values or "
                    "gradients")


CHECKS: dict[str, Callable[..., None]] = {
    "metadata": check_metadata,
    "compile": check_compile,
    "dtypes": check_dtypes,
    "forward": check_forward,
    "gradient": check_gradient,
    "value_and_grad": check_value_and_grad,
    "sample_weight": check_sample_weight,
    "hessian": check_hessian,
    "reductions": check_reductions,
    "layouts": check_layouts,
    "domains": check_domains,
    "domain_coverage": check_domain_coverage,
    "config": check_config,
}


def label_variant(spec: LossSpec) -> LossSpec | None:
    """A copy of a loss taking integer labels (``spec.takes_labels``) whose sampler draws
    one class label per row of its sampled y_pred, so the value, gradient, weight,
    Hessian, reduction and layout checks also cover the label path (the reference must accept
    labels too). None for losses without label targets."""
    import dataclasses

    if not spec.takes_labels:
        return None

    def sampler(rng, n, **hyper):
        _, p = spec.sample(rng, n, np.float64, **hyper)
        return rng.integers(0, p.shape[-1], size=p.shape[:-1]), p

    return dataclasses.replace(spec, sampler=sampler)


def check_label_domain(spec: LossSpec, hyper=None, seed: int = 10) -> None:
    """Out-of-range class labels (C and -1) raise DomainError naming y_true and the index."""
    hyper = hyper or {}
    labelled = label_variant(spec)
    if labelled is None:
        return
    loss = make_loss(spec, "sum" if "sum" in spec.reductions else spec.reductions[0], **hyper)
    t, p = labelled.sample(np.random.default_rng(seed), 6, np.float64, **hyper)
    for bad in (p.shape[-1], -1):
        labels = t.copy()
        labels.reshape(-1)[labels.size - 2] = bad
        for call in (loss, loss.grad):
            try:
                call(labels, p)
            except DomainError as exc:
                if exc.argument != "y_true" or exc.index != labels.size - 2:
                    raise _fail("label domain", spec, f"label {bad} at index {labels.size - 2} "
                                f"raised DomainError naming {exc.argument!r} index {exc.index}"
                                ) from None
            else:
                raise _fail("label domain", spec, f"accepted the class label {bad} with "
                            f"{p.shape[-1]} classes")


def iter_checks(spec: LossSpec, registry: Registry | None = None
                ) -> Iterable[tuple[str, Callable[[], None]]]:
    """(label, thunk) for every check, dtype, reduction and hyperparameter case.

    The first two are "metadata" and "compile"; ``check_loss`` skips the rest when the
    kernels do not compile (every other check would fail the same way).
    """
    yield "metadata", lambda: check_metadata(spec)
    yield "compile", lambda: check_compile(spec)
    for hyper in hyper_cases(spec):
        tag = ",".join(f"{k}={v}" for k, v in hyper.items()) or "defaults"
        yield f"dtypes[{tag}]", (lambda h=hyper: check_dtypes(spec, h))
        for dtype in DTYPES:
            dn = np.dtype(dtype).name
            for reduction in REDUCTIONS:
                if reduction not in spec.reductions:
                    continue
                for check in (check_forward, check_gradient, check_value_and_grad,
                              check_sample_weight, check_hessian):
                    label = f"{check.__name__[6:]}[{dn},{reduction},{tag}]"
                    yield label, (lambda c=check, d=dtype, r=reduction, h=hyper: c(spec, d, r, h))
            yield f"reductions[{dn},{tag}]", (lambda d=dtype, h=hyper: check_reductions(spec, d, h))
            yield f"layouts[{dn},{tag}]", (lambda d=dtype, h=hyper: check_layouts(spec, d, h))
        yield f"domains[{tag}]", (lambda h=hyper: check_domains(spec, h))
        yield f"domain_coverage[{tag}]", (lambda h=hyper: check_domain_coverage(spec, h))
        yield f"config[{tag}]", (lambda h=hyper: check_config(spec, h, registry))
    labelled = label_variant(spec)
    if labelled is not None:   # integer class labels as y_true: the same checks again
        for hyper in hyper_cases(spec):
            tag = ",".join(f"{k}={v}" for k, v in hyper.items()) or "defaults"
            for dtype in DTYPES:
                dn = np.dtype(dtype).name
                for reduction in spec.reductions:
                    for check in (check_forward, check_gradient, check_value_and_grad,
                                  check_sample_weight, check_hessian):
                        label = f"labels:{check.__name__[6:]}[{dn},{reduction},{tag}]"
                        yield label, (lambda c=check, d=dtype, r=reduction, h=hyper:
                                      c(labelled, d, r, h))
                yield f"labels:reductions[{dn},{tag}]", (
                    lambda d=dtype, h=hyper: check_reductions(labelled, d, h))
                yield f"labels:layouts[{dn},{tag}]", (
                    lambda d=dtype, h=hyper: check_layouts(labelled, d, h))
            yield f"labels:domains[{tag}]", (lambda h=hyper: check_label_domain(spec, h))


def check_loss(name_or_spec: str | LossSpec, *, registry: Registry | None = None,
               raise_on_failure: bool = True) -> Report:
    """Run every conformance check; raise ConformanceError naming each failed check.

    ``name_or_spec`` is a registered name (looked up in ``registry``, default: the default
    registry) or a LossSpec, registered or not. Returns the Report when all pass (or when
    ``raise_on_failure=False``).
    """
    spec = resolve_spec(name_or_spec, registry)
    report = Report(spec.name)
    compiled = True
    for label, run in iter_checks(spec, registry):
        if not compiled:
            report.skipped.append((label, "kernels do not compile"))
            continue
        try:
            run()
        except SkipCheck as exc:
            report.skipped.append((label, str(exc)))
        except ConformanceError as exc:
            report.failed.append((label, str(exc)))
            compiled = label != "compile"
        except Exception as exc:  # noqa: BLE001 - a crash is a failed check, reported
            report.failed.append((label, f"{type(exc).__name__}: {exc}"))
            compiled = label != "compile"
        else:
            report.passed.append(label)
    if raise_on_failure and report.failed:
        raise ConformanceError(str(report))
    return report


def parametrize_checks(name_or_spec: str | LossSpec, registry: Registry | None = None) -> list:
    """``pytest.param`` objects, one per conformance check, for a plugin's own test suite.

    ::

        @pytest.mark.parametrize("check", lossreg.testing.parametrize_checks("pinball"))
        def test_conformance(check):
            check()

    Each param is a zero-argument callable (id = the check's label) that raises
    ConformanceError naming the defect, or calls ``pytest.skip`` for a check that cannot
    run here. A name that is not registered gives one failing param that says so, so the
    suite fails loudly rather than collecting nothing.
    """
    import pytest

    try:
        spec = resolve_spec(name_or_spec, registry)
    except LossError as exc:
        message = f"{exc} (is the plugin installed? `pip install .` registers its entry point)"

        def missing():
            raise ConformanceError(message)
        return [pytest.param(missing, id=f"{name_or_spec}-not-registered")]

    def wrap(label, run):
        def check():
            try:
                run()
            except SkipCheck as exc:
                pytest.skip(str(exc))
        check.__name__ = check.__qualname__ = f"check_{label}"
        return check

    return [pytest.param(wrap(label, run), id=f"{spec.name}-{label}")
            for label, run in iter_checks(spec, registry)]
