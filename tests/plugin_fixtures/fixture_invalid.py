"""A plugin registering one invalid spec (bad name, bad task) and one valid spec."""

import lossreg
from fixture_good import _forward, _gradient, _reference


def _spec(name, task="regression"):
    return lossreg.LossSpec(name=name, family="fixture", task=task, forward=_forward,
                            gradient=_gradient, reference=_reference,
                            hyperparameters={"scale": lossreg.Hyperparameter(float, 1.0)})


@lossreg.hookimpl
def register_losses(register):
    register(_spec("Not A Name", task="astrology"))
    register(_spec("fixture_valid_neighbour"))
