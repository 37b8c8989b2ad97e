"""lossreg-quantile: the pinball (quantile) loss as a lossreg plugin.

For a quantile level q in (0, 1) and residual u = y_true - y_pred the pinball loss is
``max(q u, (q - 1) u)``: under-prediction costs q per unit, over-prediction 1 - q. Its
minimiser over a constant prediction is the q-quantile of y_true, which is why quantile
regression (and LightGBM/XGBoost ``objective="quantile"``) trains with it. q = 0.5 gives
half the absolute error.

Registered through the ``lossreg`` entry-point group (see pyproject.toml); lossreg finds
it as soon as the distribution is installed:

    >>> import lossreg
    >>> lossreg.get("pinball", q=0.75)([1.0, 2.0], [0.0, 3.0])   # (0.75 + 0.25) / 2
    0.5
"""

from __future__ import annotations

import numpy as np

import lossreg
from lossreg.kernels import elementwise_kernels, njit

__version__ = "0.1.0"


@njit
def pinball_elem(t, p, q):
    """(loss, d loss / d y_pred, d2 loss / d y_pred2) for one element, float64, branch-free.

    The derivative is -q below the target, 1 - q above it and 0 exactly at it (the
    subgradient lossreg uses for kinks, as for MAE). The second derivative is exactly 0
    (piecewise linear; undefined at the kink, taken as 0): gradient-boosting adapters
    put their own floor on it.
    """
    u = np.float64(t) - np.float64(p)
    over = np.float64(u < 0.0)
    under = np.float64(u > 0.0)
    return u * (q - over), over * (1.0 - q) - under * q, 0.0


def pinball_reference(y_true, y_pred, q=0.5):
    """Plain NumPy per-element pinball loss (float64), the kit's ground truth."""
    u = np.asarray(y_true, np.float64) - np.asarray(y_pred, np.float64)
    return np.maximum(q * u, (q - 1.0) * u)


def pinball_reference_hessian(y_true, y_pred, q=0.5):
    """Per-element second derivative: 0 everywhere (piecewise linear)."""
    return np.zeros(np.shape(y_pred))


def specs() -> list[lossreg.LossSpec]:
    """The specs this plugin registers (kernels compile lazily on first call)."""
    return [lossreg.LossSpec(
        name="pinball", aliases=("quantile", "quantile_loss"), family="quantile",
        task="regression", reference=pinball_reference,
        reference_hessian=pinball_reference_hessian, kernels=elementwise_kernels(pinball_elem),
        hyperparameters={"q": lossreg.Hyperparameter(
            float, 0.5, lossreg.Interval(0.0, 1.0, closed_low=False, closed_high=False),
            "quantile level: the fraction of targets the prediction should exceed")},
        summary="Pinball (quantile) loss: its minimiser is the q-quantile of the target.",
        formula=r"\ell_q(y, \hat y) = \max\bigl(q (y - \hat y),\ (q - 1)(y - \hat y)\bigr)",
        properties={"convex", "robust", "nonnegative", "asymmetric"},
        notes="Not differentiable at y_pred = y_true, where the gradient is taken as 0; "
              "the Hessian is 0 everywhere (exact, no floor). "
              "q = 0.5 is half the absolute error. Train one model per quantile (or one "
              "output per q) to get prediction intervals, e.g. q = 0.05 and 0.95.",
    )]


@lossreg.hookimpl
def register_losses(register):
    for spec in specs():
        register(spec)
