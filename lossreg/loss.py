"""The Loss object users hold: a spec plus resolved hyperparameters and a reduction."""

from __future__ import annotations

from typing import Any

import numpy as np

from .errors import HyperparameterError
from .spec import REDUCTIONS, LossSpec
from ._suggest import did_you_mean
from .fastpath import MISS


class Loss:
    """A configured loss: ``loss(y_true, y_pred)``, ``loss.grad``, ``loss.value_and_grad``.

    Hyperparameters are checked here, once; data are checked on every call unless
    ``validate=False``. ``n_threads`` limits the Numba threads used by this loss.
    """

    _fast = None  # fastpath.FastPlan, set by __init__ (subclasses may not call it)

    def __init__(self, spec: LossSpec, reduction: str = "mean", *, n_threads: int | None = None,
                 validate: bool = True, **hyperparameters: Any):
        from .dispatch import check_n_threads

        if not isinstance(reduction, str) or reduction not in REDUCTIONS:
            raise HyperparameterError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}"
                                      f"{did_you_mean(str(reduction), REDUCTIONS)}")
        if reduction not in spec.reductions:
            raise HyperparameterError(f"loss {spec.name!r} supports reduction "
                                      f"{' or '.join(map(repr, spec.reductions))}, got {reduction!r}")
        self.spec = spec
        self.reduction = reduction
        self._hyper = spec.resolve(hyperparameters)
        self._args = spec.args_for(self._hyper)
        self.n_threads = check_n_threads(n_threads)
        self.validate = bool(validate)
        from .fastpath import plan

        self._fast = plan(spec, self._args, reduction)  # small plain inputs (fastpath.py)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def hyperparameters(self) -> dict[str, Any]:
        """Resolved hyperparameters (defaults filled in); a copy."""
        return {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in self._hyper.items()}

    def config(self) -> dict[str, Any]:
        """Plain dict that ``lossreg.from_config`` turns back into an equal Loss."""
        cfg: dict[str, Any] = {"name": self.name}
        for key, value in self._hyper.items():
            cfg[key] = value.tolist() if isinstance(value, np.ndarray) else value
        cfg["reduction"] = self.reduction
        return cfg

    def _run(self, y_true, y_pred, sample_weight, validate, want_value, want_grad, out=None):
        """(value, grad): the fast path for small plain inputs, else the dispatcher."""
        check = self.validate if validate is None else bool(validate)
        if self._fast is not None and sample_weight is None:
            result = self._fast.run(y_true, y_pred, check, want_value, want_grad, out)
            if result is not MISS:
                return result
        from .dispatch import evaluate

        return evaluate(self.spec, self._args, self.reduction, y_true, y_pred, sample_weight,
                        want_value=want_value, want_grad=want_grad, out=out,
                        validate=check, n_threads=self.n_threads)

    def __call__(self, y_true, y_pred, sample_weight=None, *, validate: bool | None = None):
        """The loss value: a float for "mean"/"sum", an array for "none"."""
        return self._run(y_true, y_pred, sample_weight, validate, True, False)[0]

    def grad(self, y_true, y_pred, sample_weight=None, *, out=None, validate: bool | None = None):
        """d(value)/d(y_pred), shaped like y_pred (per-element derivative for "none")."""
        return self._run(y_true, y_pred, sample_weight, validate, False, True, out)[1]

    def value_and_grad(self, y_true, y_pred, sample_weight=None, out=None, *,
                       validate: bool | None = None):
        """``(value, grad)`` in one fused pass where the loss has fused kernels."""
        return self._run(y_true, y_pred, sample_weight, validate, True, True, out)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Loss):
            return NotImplemented
        return other.spec is self.spec and _plain(other.config()) == _plain(self.config())

    __hash__ = None

    def __repr__(self) -> str:
        hp = ", ".join(f"{k}={v!r}" for k, v in self.config().items() if k != "name")
        return f"lossreg.get({self.name!r}, {hp})"


def _plain(cfg: dict) -> dict:
    return {k: (tuple(v) if isinstance(v, list) else v) for k, v in cfg.items()}
