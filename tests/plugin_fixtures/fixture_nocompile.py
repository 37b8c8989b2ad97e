"""A plugin whose kernel cannot compile (it calls a Python object numba cannot type)."""

import lossreg
from lossreg.kernels import njit


class _Opaque:
    pass


_OPAQUE = _Opaque()


@njit
def _forward(y_true, y_pred, out):
    for i in range(y_pred.shape[0]):
        out[i] = _OPAQUE.value(y_pred[i])


@njit
def _gradient(y_true, y_pred, out):
    for i in range(y_pred.shape[0]):
        out[i] = _OPAQUE.value(y_pred[i])


def _reference(y_true, y_pred):
    return y_pred - y_true


@lossreg.hookimpl
def register_losses(register):
    register(lossreg.LossSpec(name="fixture_nocompile", family="fixture", task="regression",
                              forward=_forward, gradient=_gradient, reference=_reference,
                              summary="Does not compile (test fixture).", formula="r",
                              properties={"broken"}))
