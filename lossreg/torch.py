"""Any registered loss inside PyTorch autograd, computed by lossreg's kernels.

    >>> import lossreg.torch
    >>> criterion = lossreg.torch.Loss("huber", delta=0.5)     # an nn.Module
    >>> value = criterion(target, prediction)                    # (y_true, y_pred) order!
    >>> value.backward()

Argument order is lossreg's ``(y_true, y_pred)``, the reverse of ``torch.nn``'s
``loss(input, target)``; a ``y_true`` that requires grad is refused with a ``DTypeError``
(it is usually a swapped call), so a swap cannot silently train against the targets.

How it works: ``function`` and ``Loss`` call one ``torch.autograd.Function``. Its
forward converts the CPU tensors without copying (``tensor.detach().numpy()``; lossreg
copies non-contiguous ones itself), computes value and gradient in one fused pass
(``loss.value_and_grad``) and keeps the gradient; its backward scales that gradient by
``grad_output`` (per element or per row for ``reduction="none"``). The gradient's buffer
is handed to torch (no copy): a second backward through the same graph
(``retain_graph=True``) recomputes it.

Second order: the backward is itself differentiable. For element-wise losses whose
kernels give second derivatives (``spec.has_hessian``, no outer function) the Hessian is
diagonal, and its product with a vector is ``h * v`` with lossreg's exact diagonal
(``loss.hessian``, computed once, on the first double backward), so
``torch.autograd.functional.hessian``, ``gradgradcheck`` and gradient penalties work.
Losses on rows (softmax cross-entropy, KL, ...) and rmse have non-diagonal Hessians, and
losses without second derivatives have none: differentiating their gradient raises a
``LossError`` saying so (first-order training is unaffected). Third derivatives are not
available (the Hessian's backward is ``once_differentiable``).

Refused, with lossreg's typed errors (one line each): tensors on another device than the
CPU (the kernels run on the CPU; no silent round trip), dtypes other than float32/float64
for ``y_pred``, a floating ``y_true`` or ``sample_weight`` of another dtype than
``y_pred``, and a ``y_true`` or ``sample_weight`` that requires grad. Integer ``y_true``
(class labels, e.g. int64 for ``softmax_cross_entropy``) go to lossreg's own checks.

``torch.compile``: while Dynamo traces, the call goes through ``torch.compiler.disable``,
so a compiled model that calls a lossreg loss gets a graph break there and the loss runs
eagerly (its kernels are compiled by Numba, not by Inductor); ``fullgraph=True`` therefore
raises ``torch._dynamo.exc.Unsupported`` naming the disabled function. In eager mode the
wrapper is skipped (it costs ~5 us per call).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._bridge import describe, diagonal_hessian_problem, require, resolve
from .errors import DTypeError, LossError
from .loss import BaseLoss

torch = require("torch", "torch", "lossreg.torch")

__all__ = ["Loss", "LossFunction", "function"]

#: y_pred's dtypes, with the NumPy dtype of the value returned for each.
_FLOATS = {torch.float32: np.float32, torch.float64: np.float64}


# -- conversion -----------------------------------------------------------------------------
# Every check below is an attribute read on the tensor (~0.1 us each): the bridge's own
# cost per call is a few microseconds, next to the ~19 us torch charges for any custom
# autograd.Function's forward+backward round trip (benchmarks: ``lossreg bench``).

def _device_error(x: Any, argument: str) -> DTypeError:
    return DTypeError(f"{argument} is on device {x.device}; lossreg's kernels run on the CPU "
                      f"(move it with .cpu(): lossreg does not copy between devices silently)",
                      argument=argument, constraint="CPU tensor")


def _view(x: Any) -> np.ndarray:
    """A CPU tensor that needs no grad as a NumPy view (lazy negation/conjugation bits
    resolved first: NumPy cannot see them)."""
    if x.is_neg() or x.is_conj():
        x = x.resolve_neg().resolve_conj()
    return x.numpy()


def _as_numpy(x: Any, argument: str, dtype: Any) -> Any:
    """A tensor as a NumPy view of its memory (no copy); anything else unchanged.

    ``dtype``: y_pred's dtype, which a floating y_true or sample_weight must share.
    """
    if not isinstance(x, torch.Tensor):
        return x
    if not x.is_cpu:
        raise _device_error(x, argument)
    if x.requires_grad:
        hint = (" (lossreg's argument order is (y_true, y_pred), the reverse of torch.nn's "
                "(input, target); or pass y_true.detach())" if argument == "y_true" else
                " (pass it .detach()ed: lossreg gives no gradient for it)")
        raise DTypeError(f"{argument} requires grad, but lossreg differentiates with respect "
                         f"to y_pred only{hint}", argument=argument,
                         constraint="does not require grad")
    if x.dtype != dtype and x.is_floating_point():
        raise DTypeError(f"{argument} has dtype {x.dtype} but y_pred has {dtype}; mixed "
                         f"dtypes are refused (convert one with .to())", argument=argument,
                         constraint=f"dtype {dtype}")
    if x.is_complex():
        raise DTypeError(f"{argument} must be a real tensor, got dtype {x.dtype}",
                         argument=argument, constraint="real dtype")
    return _view(x)


def _prediction(y_pred: Any):
    if not isinstance(y_pred, torch.Tensor):
        raise DTypeError(f"y_pred must be a torch.Tensor, got {type(y_pred).__name__}",
                         argument="y_pred", constraint="torch.Tensor")
    if not y_pred.is_cpu:
        raise _device_error(y_pred, "y_pred")
    if y_pred.dtype not in _FLOATS:
        raise DTypeError(f"y_pred must be float32 or float64, got {y_pred.dtype}",
                         argument="y_pred", constraint="float32 or float64")
    return _view(y_pred.detach())


# -- the autograd functions ----------------------------------------------------------------

class _State:
    """One forward's inputs (NumPy views) and derivatives, kept for the backward passes."""

    __slots__ = ("loss", "t", "p", "w", "g", "h")

    def __init__(self, loss: BaseLoss, t, p, w, g):
        self.loss, self.t, self.p, self.w, self.g, self.h = loss, t, p, w, g, None

    def take_gradient(self) -> np.ndarray:
        """The forward's gradient, handed over (torch may keep it as ``.grad`` and add into
        it in place); recomputed if asked again (``retain_graph=True``)."""
        g, self.g = self.g, None
        return g if g is not None else self.loss.grad(self.t, self.p, self.w)

    def hessian(self) -> np.ndarray:
        if self.h is None:
            problem = diagonal_hessian_problem(self.loss)
            if problem is not None:
                raise LossError(f"cannot differentiate the gradient of {describe(self.loss)} "
                                f"through lossreg.torch: {problem}")
            self.h = self.loss.hessian(self.t, self.p, self.w)
        return self.h


class _Gradient(torch.autograd.Function):
    """``y_pred -> d value / d y_pred`` (from the forward pass); its backward multiplies by
    the Hessian diagonal, which is the exact Hessian-vector product of element-wise losses."""

    @staticmethod
    def forward(ctx, y_pred, state):
        ctx.state = state
        return torch.from_numpy(state.take_gradient())

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        return grad * torch.from_numpy(ctx.state.hessian()), None


class _Value(torch.autograd.Function):
    """``(y_pred, y_true, sample_weight) -> value``: forward is one fused lossreg pass."""

    @staticmethod
    def forward(ctx, y_pred, y_true, sample_weight, loss):
        p = _prediction(y_pred)
        t = _as_numpy(y_true, "y_true", y_pred.dtype)
        w = _as_numpy(sample_weight, "sample_weight", y_pred.dtype)
        if ctx.needs_input_grad[0]:
            value, g = loss.value_and_grad(t, p, w)
            ctx.state = _State(loss, t, p, w, g)
            # saved so that torch refuses a backward after any of them was modified in place
            ctx.save_for_backward(y_pred, *(x if isinstance(x, torch.Tensor) else None
                                            for x in (y_true, sample_weight)))
        else:
            value = loss(t, p, w)
        if isinstance(value, np.ndarray):
            return torch.from_numpy(value)
        return torch.from_numpy(np.asarray(value, _FLOATS[y_pred.dtype]))

    @staticmethod
    def backward(ctx, grad_output):
        y_pred = ctx.saved_tensors[0]
        if torch.is_grad_enabled():               # create_graph: keep the gradient differentiable
            g = _Gradient.apply(y_pred, ctx.state)
        else:
            g = torch.from_numpy(ctx.state.take_gradient())
        if grad_output.dim() == 0 and not grad_output.requires_grad and grad_output.item() == 1.0:
            return g, None, None, None           # .backward() of the reduced value: no copy
        if grad_output.dim() < g.dim():           # "none" on rows: one value per row
            grad_output = grad_output.reshape(grad_output.shape + (1,) * (g.dim() - grad_output.dim()))
        return grad_output * g, None, None, None


def _run_eagerly(loss: BaseLoss, y_true, y_pred, sample_weight):
    return _Value.apply(y_pred, y_true, sample_weight, loss)


_run_eagerly = torch.compiler.disable(
    _run_eagerly, reason="lossreg's kernels are compiled by Numba and run eagerly on the CPU")


def _apply(loss: BaseLoss, y_true, y_pred, sample_weight):
    # torch.compiler.disable's wrapper costs ~5 us per call in eager mode, so it is taken
    # only while Dynamo traces (where it makes the documented graph break)
    if torch.compiler.is_compiling():
        return _run_eagerly(loss, y_true, y_pred, sample_weight)
    return _Value.apply(y_pred, y_true, sample_weight, loss)


# -- public API ----------------------------------------------------------------------------

class LossFunction:
    """``f(y_true, y_pred, sample_weight=None) -> tensor``: a lossreg loss in autograd.

    ``f.loss`` is the underlying lossreg loss object.
    """

    def __init__(self, loss: BaseLoss):
        self.loss = loss

    def __call__(self, y_true, y_pred, sample_weight=None):
        return _apply(self.loss, y_true, y_pred, sample_weight)

    def __repr__(self) -> str:
        return f"lossreg.torch.function({describe(self.loss)})"


def function(name_or_loss: Any, reduction: str | None = None, **hyper: Any) -> LossFunction:
    """A callable ``(y_true, y_pred, sample_weight=None) -> tensor`` backed by a
    ``torch.autograd.Function``.

    ``name_or_loss`` is a loss name (with ``hyper``), a config dict (as for
    ``lossreg.from_config``) or a loss object; ``reduction`` defaults to "mean" (or the
    config's). ``y_pred`` is a float32/float64 CPU tensor; ``y_true`` and
    ``sample_weight`` tensors or arrays. The value is a 0-d tensor ("mean", "sum") or
    per element / per row ("none"), of ``y_pred``'s dtype.
    """
    return LossFunction(resolve(name_or_loss, reduction, hyper))


class Loss(torch.nn.Module):
    """A registered loss as an ``nn.Module``: ``Loss("huber", delta=0.5)`` stands in for
    ``nn.HuberLoss(delta=0.5)``, called as ``criterion(y_true, y_pred)`` (lossreg's order;
    torch.nn's is ``(input, target)``), with optional ``sample_weight=``.

    ``name_or_config``: a name, a config dict or a loss object; ``reduction`` "mean"
    (default), "sum" or "none". ``self.loss`` is the lossreg loss.
    """

    def __init__(self, name_or_config: Any, reduction: str | None = None, **hyper: Any):
        super().__init__()
        self.loss = resolve(name_or_config, reduction, hyper)

    @property
    def reduction(self) -> str:
        return self.loss.reduction

    def forward(self, y_true, y_pred, sample_weight=None):
        return _apply(self.loss, y_true, y_pred, sample_weight)

    def extra_repr(self) -> str:
        return describe(self.loss)
