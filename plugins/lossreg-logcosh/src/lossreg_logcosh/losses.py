"""Log-cosh loss, scaled: ``delta**2 * log(cosh(r / delta))`` with r = y_pred - y_true.

Like Huber it is quadratic near zero (``r**2 / 2``) and linear far out
(``delta * |r| - delta**2 * log 2``), but it is smooth everywhere (infinitely
differentiable), which second-order methods and GBDT libraries like. ``delta = 1`` is the
plain ``log(cosh(r))`` of Keras/TensorFlow.

Computing ``log(cosh(x))`` directly overflows for |x| > ~710 (cosh is inf) and loses all
precision long before, and ``delta**2 * log(cosh(r / delta))`` misbehaves at the ends of
the float range of delta (r / delta overflows for tiny delta; for huge delta the
logarithm cancels to nothing). The kernels use three exact forms of the same value, by
a = |r| / delta:

* a < 1e-8: ``r**2 / 2`` (the next term, a**4 / 12, is below the rounding), gradient r;
* a < 20: ``delta * (delta * log1p(sinh(a)**2) / 2)`` (cosh**2 = 1 + sinh**2: no
  cancellation near 0);
* a >= 20: ``delta * (|r| + delta * (log1p(exp(-2a)) - log 2))``, from
  log(cosh(x)) = |x| + log1p(exp(-2|x|)) - log 2, with |x| * delta written as |r|, so
  a = inf (tiny delta) is harmless.

So the value is finite whenever the exact value is (delta = 1e-300 and r = 1e10 give
1e-290; delta = 1e200 and r = 1 give 0.5) and keeps full relative precision. The gradient
``delta * tanh(r / delta)`` is bounded by delta, so outliers cannot dominate.
"""

from __future__ import annotations

import math

import numpy as np

import lossreg
from lossreg.kernels import elementwise_kernels, njit

LOG2 = math.log(2.0)
TINY, FAR = 1e-8, 20.0          # the regimes of a = |r| / delta (module docstring)


@njit
def log_cosh_elem(t, p, delta):
    """(loss, d/dy_pred, d2/dy_pred2) for one element, in float64, overflow-free.

    The second derivative sech^2(x) = 4 e / (1 + e)^2 with e = exp(-2|x|): no
    cancellation of 1 - tanh^2 for large |x|, and exactly 0 only once e underflows.
    """
    r = np.float64(p) - np.float64(t)
    x = r / delta
    a = abs(x)
    e = math.exp(-2.0 * a)
    s = math.sinh(min(a, FAR))
    if a < TINY:
        value, slope = 0.5 * r * r, r
    elif a < FAR:
        value, slope = delta * (delta * (0.5 * math.log1p(s * s))), delta * math.tanh(x)
    else:
        value = delta * (abs(r) + delta * (math.log1p(e) - LOG2))
        slope = delta * math.tanh(x)
    return value, slope, 4.0 * e / ((1.0 + e) * (1.0 + e))


def log_cosh_reference(y_true, y_pred, delta=1.0):
    """Plain NumPy per-element values: delta^2 log cosh(r / delta) with
    ``logaddexp(x, -x) - log 2`` for log cosh x in the middle, and the limits where that
    form cancels or overflows: the Taylor series r^2 (1/2 - x^2/12 + x^4/45) below
    |x| = 0.01 (next term below 1e-14 relative) and delta |r| - delta^2 log 2 beyond
    |x| = 40, where the neglected exp(-2|x|) is below the rounding)."""
    r = np.asarray(y_pred, np.float64) - np.asarray(y_true, np.float64)
    with np.errstate(over="ignore"):
        x = r / delta
        a = np.abs(x)
        middle = delta * (delta * (np.logaddexp(x, -x) - LOG2))
        far = delta * (np.abs(r) - delta * LOG2)
        x2 = np.minimum(a, 1.0) ** 2
        return np.where(a < 1e-2, r * r * (0.5 - x2 / 12.0 + x2 * x2 / 45.0),
                        np.where(a > 40.0, far, middle))


def log_cosh_reference_hessian(y_true, y_pred, delta=1.0):
    """sech^2(r / delta), as 1 / cosh^2 in NumPy (overflow to inf gives 0)."""
    x = (np.asarray(y_pred, np.float64) - np.asarray(y_true, np.float64)) / delta
    with np.errstate(over="ignore"):
        return 1.0 / np.cosh(x) ** 2


def specs() -> list[lossreg.LossSpec]:
    return [lossreg.LossSpec(
        name="log_cosh", family="robust", task="regression",
        reference=log_cosh_reference, reference_hessian=log_cosh_reference_hessian,
        kernels=elementwise_kernels(log_cosh_elem),
        hyperparameters={"delta": lossreg.Hyperparameter(
            float, 1.0, lossreg.Interval(0.0, math.inf, closed_low=False),
            "scale where the loss turns from quadratic to linear")},
        summary="Log-cosh loss: a smooth Huber; quadratic near 0, linear for large residuals.",
        formula=r"\ell(y, \hat y) = \delta^2 \log\cosh\frac{\hat y - y}{\delta}",
        properties={"convex", "smooth", "robust", "nonnegative", "symmetric"},
        notes="Stable for any finite residual and any delta > 0 (|r| = 1e300 gives a "
              "finite value; so does delta = 1e-300 with r = 1e10, and delta = 1e200 "
              "gives r^2/2). The "
              "gradient delta*tanh(r/delta) is bounded by delta; the Hessian "
              "sech^2(r/delta) never vanishes exactly, unlike Huber's.",
    )]


@lossreg.hookimpl
def register_losses(register):
    for spec in specs():
        register(spec)
