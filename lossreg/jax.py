"""Any registered loss as a differentiable JAX function, computed by lossreg's kernels.

    >>> import lossreg.jax
    >>> huber = lossreg.jax.function("huber", delta=0.5)
    >>> value, grad = jax.value_and_grad(lambda p: huber(y_true, p))(y_pred)
    >>> jax.hessian(lambda p: huber(y_true, p))(y_pred)         # exact: element-wise loss

``function`` returns a ``jax.custom_jvp`` function whose passes are ``jax.pure_callback``
calls into lossreg on the host. Its primal computes the value alone; its JVP rule computes
value and gradient in one fused pass (``value_and_grad``) and returns the tangent
``grad . dy_pred``, which is linear in the tangent, so JAX transposes it for reverse mode:
``jax.grad`` and ``jax.value_and_grad`` make one fused lossreg pass, as a ``custom_vjp``
would, and forward mode (``jax.jvp``, ``jax.jacfwd``) works as well. It works under
``jax.jit`` and ``jax.vmap``: a reduced loss is evaluated once per batch member
(``vmap_method="sequential"``, since a mean over a batched array would mix the members),
an element-wise loss with ``reduction="none"`` in one call on the batched arrays
(``vmap_method="broadcast_all"``). Argument order is ``(y_true, y_pred)``; derivatives
are taken with respect to ``y_pred`` only (``y_true`` and ``sample_weight`` are treated
as constants).

Second derivatives: the gradient is itself a ``custom_jvp`` function whose JVP is
``hessian * dy_pred`` with lossreg's exact Hessian diagonal, exact for element-wise losses
(their Hessian is diagonal), so ``jax.hessian`` and Hessian-vector products work for them.
Losses on rows and rmse have non-diagonal Hessians, losses without second derivatives
none: differentiating their gradient raises a ``LossError`` when traced. The callback
runs on the host CPU: arrays on an accelerator are copied to the host and back by JAX.

Errors: dtypes and element-wise shapes are checked when the function is traced, with
lossreg's typed errors (``y_pred`` float32 or float64; a floating ``y_true`` or
``sample_weight`` of ``y_pred``'s dtype). Domain violations are found by lossreg inside
the callback: called outside ``jax.jit`` (``jax.grad`` included), the typed error
(``DomainError``, ...) is raised as it is; inside a jitted function JAX reports it as a
``jax.errors.JaxRuntimeError`` whose message contains the lossreg error's type and
message. Either way bad input raises, it never turns into NaN.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from ._bridge import describe, diagonal_hessian_problem, require, resolve, terms
from .errors import DTypeError, LossError, ShapeError
from .loss import BaseLoss

jax = require("jax", "jax", "lossreg.jax")
import jax.numpy as jnp  # noqa: E402

__all__ = ["LossFunction", "function"]

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
_last_error: list = [None]     # not thread-local: XLA may run callbacks on its own threads


class _QuietLossErrors(logging.Filter):
    """JAX logs every failing callback with its traceback; a lossreg error is raised to the
    caller anyway (typed, or inside JaxRuntimeError under jit), so its log record is dropped."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, LossError)


logging.getLogger("jax._src.callback").addFilter(_QuietLossErrors())


def _writable(a):
    """A callback's argument as a writable NumPy array. JAX hands a callback arrays that
    NumPy sees read-only, and Numba compiles a kernel for read-only input apart from
    writable input: without a copy (cheap next to the host transfer) every kernel the
    bridge runs would compile, and fill the disk cache, a second time."""
    if a is None:
        return a
    a = np.asarray(a)
    return a if a.flags.writeable else a.copy()


def _guarded(fn):
    """Run a host callback on writable arrays; remember a LossError so that an eager call
    can re-raise it."""
    def run(*args):
        try:
            return fn(*(_writable(a) for a in args))
        except LossError as exc:
            _last_error[0] = exc
            raise
    return run


def _build(loss: BaseLoss):
    rows = all(leaf.spec.layout == "rows" for leaf in terms(loss))
    reduced = loss.reduction != "none"
    vmap_method = "sequential" if reduced or rows else "broadcast_all"
    problem = diagonal_hessian_problem(loss)

    def value_struct(p):
        shape = () if reduced else (p.shape[:-1] if rows else p.shape)
        return jax.ShapeDtypeStruct(shape, p.dtype)

    def grad_struct(p):
        return jax.ShapeDtypeStruct(p.shape, p.dtype)

    @_guarded
    def host_value(t, p, w):
        return np.asarray(loss(t, p, w), dtype=p.dtype)

    @_guarded
    def host_value_grad(t, p, w):
        value, grad = loss.value_and_grad(t, p, w)
        return np.asarray(value, dtype=p.dtype), grad

    @_guarded
    def host_value_grad_hess(t, p, w):
        value, grad = loss.value_and_grad(t, p, w)
        return np.asarray(value, dtype=p.dtype), grad, loss.hessian(t, p, w)

    def contract(grad, dp):
        """d value = grad . dp: summed ("mean"/"sum"), per element or per row ("none")."""
        if reduced:
            return jnp.sum(grad * dp)
        return jnp.sum(grad * dp, axis=-1) if rows else grad * dp

    @jax.custom_jvp
    def value_and_grad(t, p, w):
        return jax.pure_callback(host_value_grad, (value_struct(p), grad_struct(p)), t, p, w,
                                 vmap_method=vmap_method)

    @value_and_grad.defjvp
    def value_and_grad_jvp(primals, tangents):      # only reached by second derivatives
        t, p, w = primals
        dp = tangents[1]
        if problem is not None:
            raise LossError(f"cannot differentiate the gradient of {describe(loss)} through "
                            f"lossreg.jax: {problem}")
        value, grad, hess = jax.pure_callback(
            host_value_grad_hess, (value_struct(p), grad_struct(p), grad_struct(p)), t, p, w,
            vmap_method=vmap_method)
        return (value, grad), (contract(grad, dp), hess * dp)

    @jax.custom_jvp
    def f(t, p, w):
        return jax.pure_callback(host_value, value_struct(p), t, p, w, vmap_method=vmap_method)

    @f.defjvp
    def f_jvp(primals, tangents):
        value, grad = value_and_grad(*primals)      # one fused pass; the tangent is linear
        return value, contract(grad, tangents[1])   # in dp, so reverse mode transposes it

    return f, rows


def _check(y_true, y_pred, sample_weight, rows: bool):
    y_pred = jnp.asarray(y_pred)
    if y_pred.dtype not in _FLOATS:
        raise DTypeError(f"y_pred must be float32 or float64, got {y_pred.dtype}",
                         argument="y_pred", constraint="float32 or float64")
    y_true = jnp.asarray(y_true)
    if sample_weight is not None:
        sample_weight = jnp.asarray(sample_weight)
    for argument, x in (("y_true", y_true), ("sample_weight", sample_weight)):
        if x is not None and jnp.issubdtype(x.dtype, jnp.floating) and x.dtype != y_pred.dtype:
            raise DTypeError(f"{argument} has dtype {x.dtype} but y_pred has {y_pred.dtype}; "
                             f"mixed dtypes are refused (convert one with .astype())",
                             argument=argument, constraint=f"dtype {y_pred.dtype}")
    if not rows and y_true.shape != y_pred.shape:
        raise ShapeError(f"y_true has shape {y_true.shape} but y_pred has shape "
                         f"{y_pred.shape}; they must be equal (no broadcasting)")
    return y_true, y_pred, sample_weight


class LossFunction:
    """``f(y_true, y_pred, sample_weight=None) -> jax.Array``: a lossreg loss for JAX
    transformations. ``f.loss`` is the underlying lossreg loss object."""

    def __init__(self, loss: BaseLoss):
        self.loss = loss
        self._fn, self._rows = _build(loss)

    def __call__(self, y_true, y_pred, sample_weight=None):
        y_true, y_pred, sample_weight = _check(y_true, y_pred, sample_weight, self._rows)
        _last_error[0] = None
        try:
            return self._fn(y_true, y_pred, sample_weight)
        except LossError:
            raise
        except Exception as exc:               # eager: the callback's typed error, unwrapped
            err, _last_error[0] = _last_error[0], None
            if err is not None and type(err).__name__ in str(exc):
                raise err from None
            raise

    def __repr__(self) -> str:
        return f"lossreg.jax.function({describe(self.loss)})"


def function(name_or_loss: Any, reduction: str | None = None, **hyper: Any) -> LossFunction:
    """A JAX-differentiable ``(y_true, y_pred, sample_weight=None) -> array``.

    ``name_or_loss`` is a loss name (with ``hyper``), a config dict (as for
    ``lossreg.from_config``) or a loss object; ``reduction`` defaults to "mean" (or the
    config's). The value has ``y_pred``'s dtype: a scalar ("mean", "sum") or per element
    / per row ("none").
    """
    return LossFunction(resolve(name_or_loss, reduction, hyper))
