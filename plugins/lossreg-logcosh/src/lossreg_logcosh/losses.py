"""Log-cosh loss, scaled: ``delta**2 * log(cosh(r / delta))`` with r = y_pred - y_true.

Like Huber it is quadratic near zero (``r**2 / 2``) and linear far out
(``delta * |r| - delta**2 * log 2``), but it is smooth everywhere (infinitely
differentiable), which second-order methods and GBDT libraries like. ``delta = 1`` is the
plain ``log(cosh(r))`` of Keras/TensorFlow.

Computing ``log(cosh(x))`` directly overflows for |x| > ~710 (cosh is inf) and loses all
precision long before; the kernels use the identity

    log(cosh(x)) = |x| + log1p(exp(-2|x|)) - log(2)

which is exact, never overflows and keeps full relative precision for large |x|. The
gradient ``delta * tanh(r / delta)`` is bounded by delta, so outliers cannot dominate.
"""

from __future__ import annotations

import math

import numpy as np

import lossreg
from lossreg.kernels import elementwise_kernels, njit

LOG2 = math.log(2.0)


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
    value = delta * (delta * (a + math.log1p(e) - LOG2))  # no inf*0 for huge delta
    return value, delta * math.tanh(x), 4.0 * e / ((1.0 + e) * (1.0 + e))


def log_cosh_reference(y_true, y_pred, delta=1.0):
    """Plain NumPy per-element values; ``logaddexp(x, -x) - log 2`` is log(cosh(x)) stably."""
    x = (np.asarray(y_pred, np.float64) - np.asarray(y_true, np.float64)) / delta
    return delta * (delta * (np.logaddexp(x, -x) - LOG2))


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
        notes="Stable for any finite residual (|r| = 1e300 gives a finite value). The "
              "gradient delta*tanh(r/delta) is bounded by delta; the Hessian "
              "sech^2(r/delta) never vanishes exactly, unlike Huber's.",
    )]


@lossreg.hookimpl
def register_losses(register):
    for spec in specs():
        register(spec)
