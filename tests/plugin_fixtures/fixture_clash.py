"""A plugin that tries to take the built-in name 'huber' (and the alias 'l1')."""

import lossreg
from fixture_good import _forward, _gradient, _reference


@lossreg.hookimpl
def register_losses(register):
    register(lossreg.LossSpec(name="huber", family="fixture", task="regression",
                              forward=_forward, gradient=_gradient, reference=_reference,
                              hyperparameters={"scale": lossreg.Hyperparameter(float, 1.0)}))
    register(lossreg.LossSpec(name="fixture_other", aliases=("L1",), family="fixture",
                              task="regression", forward=_forward, gradient=_gradient,
                              reference=_reference,
                              hyperparameters={"scale": lossreg.Hyperparameter(float, 1.0)}))
