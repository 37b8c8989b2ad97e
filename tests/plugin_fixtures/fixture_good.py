"""A well-behaved plugin: one loss, serial kernels (cheap to compile)."""

import numpy as np

import lossreg
from lossreg.kernels import njit


@njit
def _forward(y_true, y_pred, out, scale):
    for i in range(y_pred.shape[0]):
        r = np.float64(y_pred[i]) - np.float64(y_true[i])
        out[i] = scale * r * r * r * r


@njit
def _gradient(y_true, y_pred, out, scale):
    for i in range(y_pred.shape[0]):
        r = np.float64(y_pred[i]) - np.float64(y_true[i])
        out[i] = 4.0 * scale * r * r * r


def _reference(y_true, y_pred, scale=1.0):
    return scale * (y_pred - y_true) ** 4


@lossreg.hookimpl
def register_losses(register):
    register(lossreg.LossSpec(
        name="fixture_quartic", family="fixture", task="regression", forward=_forward,
        gradient=_gradient, reference=_reference,
        hyperparameters={"scale": lossreg.Hyperparameter(float, 1.0, lossreg.Interval(0, 10),
                                                         "multiplier")},
        summary="Quartic error (test fixture).", formula=r"s\,r^4", properties={"convex"}))
