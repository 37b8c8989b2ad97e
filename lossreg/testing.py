"""Conformance kit: checks that a loss's kernels agree with its reference and its metadata.

``check_loss(name_or_spec)`` runs every check and raises ``ConformanceError`` listing
each defect by name; each ``check_*`` function can also be used on its own (the
project's own tests parametrize them over every registered loss). Inputs come from the
spec's domains (or its ``sampler``), so a new loss is tested by registering it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import numpy as np

from .errors import DomainError, LossError
from .loss import Loss
from .registry import Registry, default_registry
from .spec import REDUCTIONS, LossSpec

DTYPES = (np.float64, np.float32)
RTOL = {np.float64: 1e-10, np.float32: 2e-5}
FD_STEP = 1e-4
FD_RTOL = 1e-6


class ConformanceError(AssertionError):
    """A loss failed one or more conformance checks; the message names each defect."""


@dataclass
class Report:
    """Outcome of ``check_loss``: which checks ran and which failed (with reasons)."""

    name: str
    passed: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed

    def __str__(self) -> str:
        lines = [f"{self.name}: {len(self.passed)} passed, {len(self.failed)} failed"]
        lines += [f"  FAIL {check}: {why}" for check, why in self.failed]
        return "\n".join(lines)


def resolve_spec(name_or_spec: str | LossSpec, registry: Registry | None = None) -> LossSpec:
    if isinstance(name_or_spec, LossSpec):
        return name_or_spec
    return (registry or default_registry()).spec(name_or_spec)


def hyper_cases(spec: LossSpec) -> list[dict[str, Any]]:
    """Defaults plus one non-default setting per scalar hyperparameter."""
    cases: list[dict[str, Any]] = [{}]
    for key, h in spec.hyperparameters.items():
        if h.type is not float:
            continue
        interval = h.interval
        if h.default is None:
            lo = 0.0 if interval is None or not math.isfinite(interval.low) else interval.low
            hi = lo + 1.0 if interval is None or not math.isfinite(interval.high) else interval.high
            candidate = 0.5 * (lo + hi) if hi > lo else lo
        else:
            candidate = h.default * 0.5 if h.default else 0.5
        if interval is None or candidate in interval:
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
    if np.all(err <= tol) and np.all(actual[~fin] == expected[~fin]):
        return True, ""
    i = int(np.argmax(err - tol))
    return False, (f"max error {float(err.ravel()[i]):.3g} at index {i} (got "
                   f"{float(actual[fin].ravel()[i])!r}, expected {float(expected[fin].ravel()[i])!r}, "
                   f"rtol {rtol:g})")


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
            raise _fail("dtype", spec, f"reduction='none' returned {type(got).__name__} of dtype "
                        f"{getattr(got, 'dtype', None)} for {np.dtype(dtype)} input")
    elif not isinstance(got, float):
        raise _fail("forward", spec, f"reduction={reduction!r} returned {type(got).__name__}, not float")
    ok, why = _close(got, want, RTOL[dtype])
    if not ok:
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
    if not isinstance(got, np.ndarray) or got.dtype != np.dtype(dtype) or got.shape != p.shape:
        raise _fail("dtype", spec, f"gradient is {getattr(got, 'dtype', type(got))} "
                    f"{getattr(got, 'shape', '')}, expected {np.dtype(dtype)} {p.shape}")
    want = fd_gradient(spec, t, p, loss.hyperparameters, reduction)
    rtol = FD_RTOL if dtype == np.float64 else RTOL[np.float32]
    ok, why = _close(got, want, rtol, atol_scale=1.0)
    if not ok:
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
        raise _fail(f"sample_weight value[{reduction}]", spec, why)
    want = fd_gradient(spec, t, p, loss.hyperparameters, reduction, w) if n <= 64 else None
    if want is not None:
        ok, why = _close(loss.grad(t, p, sample_weight=w), want,
                         FD_RTOL if dtype == np.float64 else RTOL[np.float32])
        if not ok:
            raise _fail(f"sample_weight gradient[{reduction}]", spec, why)


def check_layouts(spec: LossSpec, dtype=np.float64, hyper=None, seed: int = 4) -> None:
    """Non-contiguous inputs, and small (serial) vs large (parallel) paths agree."""
    hyper = hyper or {}
    reduction = "mean" if "mean" in spec.reductions else spec.reductions[0]
    rng = np.random.default_rng(seed)
    n = max(spec.serial_below, 1) * 2 + 17
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
    """NaN (unless allowed) and out-of-interval values raise DomainError naming the index."""
    hyper = hyper or {}
    reduction = "mean" if "mean" in spec.reductions else spec.reductions[0]
    loss = make_loss(spec, reduction, **hyper)
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


def check_metadata(spec: LossSpec) -> None:
    """Summary, formula, properties and hyperparameter docs are present; to_dict is JSON."""
    import json

    missing = [a for a in ("summary", "formula") if not getattr(spec, a)]
    missing += [f"doc of hyperparameter {k!r}" for k, h in spec.hyperparameters.items() if not h.doc]
    if not spec.properties:
        missing.append("properties")
    if missing:
        raise _fail("metadata", spec, "missing " + ", ".join(missing))
    spec.validate()
    json.dumps(spec.to_dict())


CHECKS: dict[str, Callable[..., None]] = {
    "metadata": check_metadata,
    "forward": check_forward,
    "gradient": check_gradient,
    "value_and_grad": check_value_and_grad,
    "sample_weight": check_sample_weight,
    "layouts": check_layouts,
    "domains": check_domains,
}


def iter_checks(spec: LossSpec) -> Iterable[tuple[str, Callable[[], None]]]:
    """(label, thunk) for every check, dtype, reduction and hyperparameter case."""
    yield "metadata", lambda: check_metadata(spec)
    for hyper in hyper_cases(spec):
        tag = ",".join(f"{k}={v}" for k, v in hyper.items()) or "defaults"
        for dtype in DTYPES:
            dn = np.dtype(dtype).name
            for reduction in REDUCTIONS:
                if reduction not in spec.reductions:
                    continue
                for check in (check_forward, check_gradient, check_value_and_grad,
                              check_sample_weight):
                    label = f"{check.__name__[6:]}[{dn},{reduction},{tag}]"
                    yield label, (lambda c=check, d=dtype, r=reduction, h=hyper: c(spec, d, r, h))
            yield f"layouts[{dn},{tag}]", (lambda d=dtype, h=hyper: check_layouts(spec, d, h))
        yield f"domains[{tag}]", (lambda h=hyper: check_domains(spec, h))


def check_loss(name_or_spec: str | LossSpec, *, registry: Registry | None = None,
               raise_on_failure: bool = True) -> Report:
    """Run every conformance check; raise ConformanceError naming each failed check."""
    spec = resolve_spec(name_or_spec, registry)
    report = Report(spec.name)
    for label, run in iter_checks(spec):
        try:
            run()
        except ConformanceError as exc:
            report.failed.append((label, str(exc)))
        except Exception as exc:  # noqa: BLE001 - a crash is a failed check, reported
            report.failed.append((label, f"{type(exc).__name__}: {exc}"))
        else:
            report.passed.append(label)
    if raise_on_failure and report.failed:
        raise ConformanceError(str(report))
    return report
