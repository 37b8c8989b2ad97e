"""The objects users hold: ``Loss`` (one registered loss) and, through the shared
``BaseLoss``, its sibling ``config.WeightedSum``.

``BaseLoss`` gives both the public methods (call, ``grad``, ``value_and_grad``,
``hessian``, ``grad_hess``) on top of one ``_evaluate`` each implements.
"""

from __future__ import annotations

from abc import ABCMeta
from typing import Any

import numpy as np

from .errors import DTypeError, LossError, ReductionError
from .spec import REDUCTIONS, LossSpec
from ._pandas import is_pandas, unwrap, wrap
from .outputs import deliver, stand_ins
from ._suggest import did_you_mean
from ._operations import GRAD as _GRAD, GRAD_HESS as _GRAD_HESS, HESS as _HESS, \
    VALUE as _VALUE, VALUE_GRAD as _VALUE_GRAD


def check_reduction(reduction: Any, supported: tuple[str, ...] = REDUCTIONS,
                    name: str | None = None) -> str:
    """``reduction`` when it is one of ``supported``, else ReductionError listing them."""
    if not isinstance(reduction, str) or reduction not in REDUCTIONS:
        raise ReductionError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}"
                             f"{did_you_mean(str(reduction), REDUCTIONS)}")
    if reduction not in supported:
        only = "only " if len(supported) == 1 else ""
        raise ReductionError(f"loss {name!r} supports {only}reduction "
                             f"{' or '.join(map(repr, supported))}, got {reduction!r}")
    return reduction


class BaseLoss(metaclass=ABCMeta):
    """The public methods of every loss object, over one ``_evaluate``.

    ``_evaluate(y_true, y_pred, sample_weight, validate, value, grad, hess, out,
    hess_out)`` returns ``(value, gradient, Hessian diagonal)``, each None unless asked.
    """

    reduction: str
    validate: bool

    def _evaluate(self, y_true, y_pred, sample_weight, validate: bool, value: bool,
                  grad: bool, hess: bool, out=None, hess_out=None):  # pragma: no cover
        raise NotImplementedError

    def _run(self, y_true, y_pred, sample_weight, validate, value, grad, hess, out=None,
             hess_out=None):
        """``_evaluate`` with the default ``validate``; pandas inputs unwrapped and the
        results re-wrapped on y_pred's index (``_pandas.py``); ``out=`` buffers that
        overlap an input go through ``outputs`` (a stand-in, then a copy)."""
        validate = self.validate if validate is None else bool(validate)
        evaluate = self._evaluate if out is None and hess_out is None else self._into
        if type(y_pred) is np.ndarray and type(y_true) is np.ndarray and (
                sample_weight is None or type(sample_weight) is np.ndarray):
            return evaluate(y_true, y_pred, sample_weight, validate, value, grad, hess,
                            out, hess_out)
        if not any(map(is_pandas, (y_true, y_pred, sample_weight))):
            return evaluate(y_true, y_pred, sample_weight, validate, value, grad, hess,
                            out, hess_out)
        y_true, y_pred, sample_weight, like = unwrap(y_true, y_pred, sample_weight)
        result = evaluate(y_true, y_pred, sample_weight, validate, value, grad, hess,
                          out, hess_out)
        return tuple(wrap(r, like) for r in result)

    def _into(self, y_true, y_pred, sample_weight, validate, value, grad, hess, out,
              hess_out):
        """``_evaluate`` with caller buffers, under the one ``out=`` rule
        (``lossreg.outputs``): a buffer overlapping an input or the other buffer is
        replaced by a fresh one whose result is copied back."""
        g_buf, h_buf = stand_ins(out, hess_out, (y_true, y_pred, sample_weight))
        result = self._evaluate(y_true, y_pred, sample_weight, validate, value, grad, hess,
                                g_buf, h_buf)
        if g_buf is out and h_buf is hess_out:
            return result
        v, g, h = result
        return v, deliver(g, out, g_buf), deliver(h, hess_out, h_buf)

    def __call__(self, y_true, y_pred, sample_weight=None, *, validate: bool | None = None):
        """The loss value: a float for "mean"/"sum", an array for "none"."""
        return self._run(y_true, y_pred, sample_weight, validate, True, False, False)[0]

    def grad(self, y_true, y_pred, sample_weight=None, *, out=None,
             validate: bool | None = None):
        """d(value)/d(y_pred), shaped like y_pred (per-element derivative for "none")."""
        return self._run(y_true, y_pred, sample_weight, validate, False, True, False, out)[1]

    def value_and_grad(self, y_true, y_pred, sample_weight=None, out=None, *,
                       validate: bool | None = None):
        """``(value, grad)`` in one fused pass."""
        return self._run(y_true, y_pred, sample_weight, validate, True, True, False, out)[:2]

    def hessian(self, y_true, y_pred, sample_weight=None, *, out=None,
                validate: bool | None = None):
        """Diagonal of d2(value)/d(y_pred)2, shaped like y_pred: for "none" the
        per-element second derivative (what gradient boosting wants), for "mean" that of
        the (weighted) mean. Exact: 0 where the loss is piecewise linear (mae, huber
        outside delta). LossError when the loss has no Hessian."""
        return self._run(y_true, y_pred, sample_weight, validate, False, False, True, None,
                         out)[2]

    def grad_hess(self, y_true, y_pred, sample_weight=None, out=None, *,
                  validate: bool | None = None):
        """``(gradient, Hessian diagonal)`` in one fused pass; ``out`` may be a pair of
        preallocated arrays ``(g_buf, h_buf)`` (either may be None)."""
        g_out, h_out = _pair(out)
        return self._run(y_true, y_pred, sample_weight, validate, False, True, True, g_out,
                         h_out)[1:]

    __hash__ = None


def _pair(out: Any) -> tuple[Any, Any]:
    if out is None:
        return None, None
    if isinstance(out, (tuple, list)) and len(out) == 2:
        return out[0], out[1]
    raise DTypeError(f"out must be a pair (gradient buffer, Hessian buffer), got "
                     f"{type(out).__name__}", argument="out", constraint="a pair of arrays")


class Loss(BaseLoss):
    """A configured loss: ``loss(y_true, y_pred)``, ``grad``, ``value_and_grad``,
    ``hessian``, ``grad_hess``.

    Hyperparameters are checked here, once, and the plan (kernels, kernel arguments,
    reduction, serial/parallel rule) is built here, once; data are checked on every call
    unless ``validate=False``. ``n_threads`` caps the threads (lossreg's pool and Numba's)
    used by this loss; any value gives bit-identical results.
    """

    def __init__(self, spec: LossSpec, reduction: str = "mean", *, n_threads: int | None = None,
                 validate: bool = True, **hyperparameters: Any):
        from .dispatch import check_n_threads
        from .plan import Plan

        self.spec = spec
        self.reduction = check_reduction(reduction, spec.reductions, spec.name)
        self._hyper = spec.resolve(hyperparameters)
        self._args = spec.args_for(self._hyper)
        self.n_threads = check_n_threads(n_threads)
        self.validate = bool(validate)
        self._plan = Plan(spec.configured(self._hyper), self._args, self.reduction,
                          self.n_threads)
        fast = self._plan.fast
        self._fast = fast.call if fast is not None else None

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

    # The public methods, first through the plan's element-wise fast path for the common
    # call (``lossreg._elementcall``: plain arrays and out= buffers; None: it declines, and
    # ``BaseLoss`` takes the general path, which also raises every error).
    def __call__(self, y_true, y_pred, sample_weight=None, *, validate: bool | None = None):
        fast = self._fast
        if fast is not None:
            result = fast(y_true, y_pred, sample_weight, _VALUE,
                          self.validate if validate is None else bool(validate))
            if result is not None:
                return result
        return BaseLoss.__call__(self, y_true, y_pred, sample_weight, validate=validate)

    def grad(self, y_true, y_pred, sample_weight=None, *, out=None,
             validate: bool | None = None):
        fast = self._fast
        if fast is not None:
            result = fast(y_true, y_pred, sample_weight, _GRAD,
                          self.validate if validate is None else bool(validate), out)
            if result is not None:
                return result
        return BaseLoss.grad(self, y_true, y_pred, sample_weight, out=out, validate=validate)

    def value_and_grad(self, y_true, y_pred, sample_weight=None, out=None, *,
                       validate: bool | None = None):
        fast = self._fast
        if fast is not None:
            result = fast(y_true, y_pred, sample_weight, _VALUE_GRAD,
                          self.validate if validate is None else bool(validate), out)
            if result is not None:
                return result
        return BaseLoss.value_and_grad(self, y_true, y_pred, sample_weight, out,
                                       validate=validate)

    def hessian(self, y_true, y_pred, sample_weight=None, *, out=None,
                validate: bool | None = None):
        fast = self._fast
        if fast is not None:
            result = fast(y_true, y_pred, sample_weight, _HESS,
                          self.validate if validate is None else bool(validate), out)
            if result is not None:
                return result
        return BaseLoss.hessian(self, y_true, y_pred, sample_weight, out=out,
                                validate=validate)

    def grad_hess(self, y_true, y_pred, sample_weight=None, out=None, *,
                  validate: bool | None = None):
        fast = self._fast
        if fast is not None and out is None:
            result = fast(y_true, y_pred, sample_weight, _GRAD_HESS,
                          self.validate if validate is None else bool(validate))
            if result is not None:
                return result
        return BaseLoss.grad_hess(self, y_true, y_pred, sample_weight, out,
                                  validate=validate)

    for _name in ("__call__", "grad", "value_and_grad", "hessian", "grad_hess"):
        locals()[_name].__doc__ = getattr(BaseLoss, _name).__doc__
    del _name

    def _evaluate(self, y_true, y_pred, sample_weight, validate, value, grad, hess,
                  out=None, hess_out=None):
        if hess and not self.spec.has_hessian:
            raise LossError(f"loss {self.name!r} (from {self.spec.source}) has no Hessian: "
                            f"its kernels give no second derivatives "
                            f"(spec.has_hessian is False)")
        return self._plan.run(y_true, y_pred, sample_weight, value, grad, hess, out, hess_out,
                              validate)

    def __eq__(self, other: object) -> bool:
        """Equal losses: the same loss (name and source: the same plugin), the same
        hyperparameters and the same reduction; so a loss equals its pickled or
        deep-copied self and ``from_config(loss.config())``."""
        if not isinstance(other, Loss):
            return NotImplemented if not isinstance(other, BaseLoss) else False
        return ((other.spec.name, other.spec.source) == (self.spec.name, self.spec.source)
                and _plain(other.config()) == _plain(self.config()))

    __hash__ = None

    def __reduce_ex__(self, protocol: int):
        """Pickle (and ``copy.deepcopy``) by reference: the loss's name and source, its
        config and options. Unpickling looks the name up in the default registry (the
        receiving process's plugins) and checks the source, so kernels are never
        pickled. A loss whose spec is not in the default registry (built by hand, or
        from an isolated ``Registry``) is copied by value, as any object."""
        from .registry import default_registry

        registered = default_registry()._specs.get(self.spec.name)
        if registered is None or registered.source != self.spec.source:
            return super().__reduce_ex__(protocol)
        return (_unpickle, (self.spec.name, self.spec.source, self.config(), self.n_threads,
                            self.validate))

    def __repr__(self) -> str:
        hp = ", ".join(f"{k}={v!r}" for k, v in self.config().items() if k != "name")
        return f"lossreg.get({self.name!r}, {hp})"


def _unpickle(name: str, source: str, config: dict, n_threads: int | None,
              validate: bool) -> Loss:
    """The Loss that ``Loss.__reduce_ex__`` describes, from the default registry."""
    from .errors import PluginError
    from .registry import default_registry

    spec = default_registry().spec(name)
    if spec.source != source:
        raise PluginError(f"cannot unpickle loss {name!r} from {source}: this process has "
                          f"{name!r} from {spec.source}", source=source)
    hyper = {k: v for k, v in config.items() if k not in ("name", "reduction")}
    return Loss(spec, config["reduction"], n_threads=n_threads, validate=validate, **hyper)


def _plain(cfg: dict) -> dict:
    return {k: (tuple(v) if isinstance(v, list) else v) for k, v in cfg.items()}
