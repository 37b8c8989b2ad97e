"""Distance family: MSE, RMSE (L2), MAE (L1), Smooth L1 and Huber.

Each loss is one scalar float64 function ``elem(t, p, *hp) -> (l, dl/dp, d2l/dp2)`` of
the residual r = y_pred - y_true, written branch-free where it can be so LLVM vectorizes
it, plus plain NumPy references of the values and second derivatives.
``elementwise_kernels`` turns each into the loss's kernels. Where the second derivative
is 0 or undefined (MAE everywhere, Huber outside delta, the kinks) it is exactly 0: no
floors here (gradient-boosting adapters add their own). Registered through the ``register_losses`` hook like any
third-party plugin.
"""

from __future__ import annotations

import math

import numpy as np

from ..hookspecs import hookimpl
from ..kernels import elementwise_kernels, njit
from ..kernels.elementwise import CHEAP_SERIAL_BELOW
from ..spec import NONNEGATIVE, POSITIVE, Hyperparameter, LossSpec

FAMILY = "distance"
TASK = "regression"


# -- element functions (float64 math whatever the input dtype) ---------------------------

@njit
def mse_elem(t, p):
    r = np.float64(p) - np.float64(t)
    return r * r, 2.0 * r, 2.0


@njit(error_model="numpy")
def mae_elem(t, p):
    r = np.float64(p) - np.float64(t)
    return abs(r), np.float64(r > 0.0) - np.float64(r < 0.0), 0.0


@njit
def huber_elem(t, p, delta):
    r = np.float64(p) - np.float64(t)
    k = min(max(r, -delta), delta)
    return k * (r - 0.5 * k), k, np.float64(abs(r) <= delta)


@njit(error_model="numpy")
def smooth_l1_elem(t, p, beta):
    """Branch-free selects (the checked fused kernels stay vectorized; the numpy error
    model drops the ZeroDivisionError branch of / beta). Inside |r| < beta the value is
    0.5 r (r / beta): r / beta is at most 1, so nothing overflows for beta near the float
    maximum (r^2 / beta would) and nothing is lost for a subnormal beta (beta (r - beta/2)
    / beta would); outside it is |r| - beta / 2, with no division at all. beta = 0 (L1)
    is simply never inside. Second derivative 1/beta inside, 0 outside and at the kink."""
    r = np.float64(p) - np.float64(t)
    a = abs(r)
    inside = a < beta
    q = r / beta
    value = 0.5 * r * q if inside else a - 0.5 * beta
    slope = q if inside else np.float64(r > 0.0) - np.float64(r < 0.0)
    curvature = 1.0 / beta if inside else 0.0
    return value, slope, curvature


# -- NumPy references (per-element values, float64) ---------------------------------------

def mse_reference(y_true, y_pred):
    r = np.asarray(y_pred, np.float64) - np.asarray(y_true, np.float64)
    return r * r


def mae_reference(y_true, y_pred):
    return np.abs(np.asarray(y_pred, np.float64) - np.asarray(y_true, np.float64))


def huber_reference(y_true, y_pred, delta=1.0):
    a = mae_reference(y_true, y_pred)
    return np.where(a <= delta, 0.5 * a * a, delta * (a - 0.5 * delta))


def smooth_l1_reference(y_true, y_pred, beta=1.0):
    """0.5 a (a / beta) inside: exact over the whole float range of beta (a * a / beta
    overflows for beta above ~1e154, a - beta/2 ... / beta loses digits for subnormal beta)."""
    a = mae_reference(y_true, y_pred)
    if beta == 0:
        return a
    with np.errstate(over="ignore"):
        return np.where(a < beta, 0.5 * a * (a / beta), a - 0.5 * beta)


def mse_reference_hessian(y_true, y_pred):
    return np.full(np.shape(y_pred), 2.0)


def mae_reference_hessian(y_true, y_pred):
    return np.zeros(np.shape(y_pred))


def huber_reference_hessian(y_true, y_pred, delta=1.0):
    return np.where(mae_reference(y_true, y_pred) <= delta, 1.0, 0.0)


def smooth_l1_reference_hessian(y_true, y_pred, beta=1.0):
    if beta == 0:
        return mae_reference_hessian(y_true, y_pred)
    return np.where(mae_reference(y_true, y_pred) < beta, 1.0 / beta, 0.0)


def _sqrt_derivative(m: float) -> float:
    return 0.5 / math.sqrt(m) if m > 0.0 else 0.0


def _sqrt_curvature(m: float) -> float:
    """f''(m) / f'(m) = -1 / (2m) for f = sqrt: no m^(3/2) to overflow or underflow; 0 at
    a perfect fit (m = 0), where the gradient and Hessian are taken as 0."""
    return -0.5 / m if m > 0.0 else 0.0


# -- specs ----------------------------------------------------------------------------------

def specs() -> list[LossSpec]:
    """The distance-family specs (kernels are created here, compiled on first call)."""
    cheap = dict(serial_below=CHEAP_SERIAL_BELOW)   # bandwidth-bound: threads pay late
    mse_kernels = elementwise_kernels(mse_elem, style="auto", **cheap)
    return [
        LossSpec(
            name="mse", family=FAMILY, task=TASK, reference=mse_reference,
            reference_hessian=mse_reference_hessian, kernels=mse_kernels,
            summary="Mean squared error: the Gaussian maximum-likelihood loss for regression.",
            formula=r"\ell(y, \hat y) = (\hat y - y)^2",
            properties={"convex", "smooth", "nonnegative"},
            notes="Sensitive to outliers: a residual of 10 costs 100 times a residual of 1. "
                  "The gradient 2r shrinks near the optimum, which helps convergence.",
        ),
        LossSpec(
            name="rmse", aliases=("l2",), family=FAMILY, task=TASK, reference=mse_reference,
            reference_hessian=mse_reference_hessian, kernels=mse_kernels,
            outer=(math.sqrt, _sqrt_derivative, _sqrt_curvature), reductions=("mean",),
            homogeneity=1,
            summary="Root mean squared error (L2 loss in the source article): sqrt of the MSE.",
            formula=r"L(y, \hat y) = \sqrt{\frac{\sum_i w_i (\hat y_i - y_i)^2}{\sum_i w_i}}",
            properties={"convex", "nonnegative"},
            notes="Defined on the whole batch, so only reduction='mean' exists. In the units "
                  "of y. The gradient at a perfect fit (RMSE = 0) is taken as 0, and so is "
                  "the Hessian there. hessian() gives the diagonal of RMSE's exact Hessian "
                  "(f''(m) u_i^2 + f'(m) v_i with m the weighted mean of r^2).",
        ),
        LossSpec(
            name="mae", aliases=("l1",), family=FAMILY, task=TASK, reference=mae_reference,
            reference_hessian=mae_reference_hessian,
            kernels=elementwise_kernels(mae_elem, style="blocks", **cheap),
            summary="Mean absolute error: robust to outliers, estimates the median.",
            formula=r"\ell(y, \hat y) = |\hat y - y|",
            properties={"convex", "robust", "nonnegative"},
            notes="Not differentiable at r = 0, where the gradient is taken as 0. The "
                  "gradient has constant magnitude, so lower the learning rate near the optimum.",
        ),
        LossSpec(
            name="smooth_l1", family=FAMILY, task=TASK, reference=smooth_l1_reference,
            reference_hessian=smooth_l1_reference_hessian,
            kernels=elementwise_kernels(smooth_l1_elem, style="blocks", **cheap),
            hyperparameters={"beta": Hyperparameter(
                float, 1.0, NONNEGATIVE, "width of the quadratic zone; 0 gives L1")},
            summary="Smooth L1 (Fast R-CNN): quadratic below beta, linear above.",
            formula=r"\ell(y, \hat y) = \begin{cases} \frac{0.5\, r^2}{\beta} & |r| < \beta \\"
                    r" |r| - 0.5\,\beta & \text{otherwise} \end{cases},\quad r = \hat y - y",
            properties={"convex", "robust", "smooth", "nonnegative"},
            notes="Equals huber(delta=beta) / beta: the linear part always has slope 1, "
                  "whereas Huber's slope is delta. beta = 0 is exactly L1.",
        ),
        LossSpec(
            name="huber", family=FAMILY, task=TASK, reference=huber_reference,
            reference_hessian=huber_reference_hessian,
            kernels=elementwise_kernels(huber_elem, style="auto", **cheap),
            hyperparameters={"delta": Hyperparameter(
                float, 1.0, POSITIVE, "residual size where quadratic turns linear")},
            summary="Huber loss: quadratic for |r| <= delta, linear beyond; robust and smooth.",
            formula=r"\ell(y, \hat y) = \begin{cases} \frac12 r^2 & |r| \le \delta \\"
                    r" \delta\,(|r| - \frac12 \delta) & \text{otherwise} \end{cases},"
                    r"\quad r = \hat y - y",
            properties={"convex", "robust", "smooth", "nonnegative"},
            notes="Gradient is clip(r, -delta, delta): bounded, so outliers cannot dominate. "
                  "Choosing delta is the price: about the noise scale of the inliers.",
        ),
    ]


@hookimpl
def register_losses(register):
    for spec in specs():
        register(spec)
