"""Lean path for small, plain calls: the per-call overhead at N = 10 in microseconds.

The general dispatcher (``dispatch.evaluate``) converts, reshapes, checks weights,
allocates per-chunk buffers and picks a kernel: about 20 us of Python per call, which
dominates below a few thousand elements. ``FastPlan`` is built once per ``Loss`` and
handles the common small case directly:

* both inputs are ``numpy.ndarray`` of the same native float64 or float32 dtype, same
  shape, C-contiguous, with ``0 < size < spec.serial_below`` (and at most one
  reduction chunk);
* no ``sample_weight``; ``out=`` only as a matching C-contiguous buffer; the loss is
  element-wise with fused kernels.

It calls the same serial, unweighted fused kernel the general path would pick (domain
checks fused), on one chunk, so values and gradients are bit-identical to the general
path and no extra kernel is compiled. Anything else, and any
call that finds a domain violation or fails to compile, returns ``MISS`` and the caller
takes the general path, which then raises the usual typed error (DomainError with its
argument and index, ShapeError, PluginError). So the fast path changes speed only.
"""

from __future__ import annotations

import numpy as np

MISS = object()  # "not handled here": take the general path

_F64 = np.dtype(np.float64)
_F32 = np.dtype(np.float32)


class FastPlan:
    """Per-Loss constants of the fast path (kernels, bounds, scale rules)."""

    __slots__ = ("fused", "args", "limit", "reduction", "outer", "bounds", "_kernels")

    def __init__(self, spec, args: tuple, reduction: str):
        from .kernels.reduce import CHUNK

        self.fused = spec.fused
        self.args = args
        self.limit = min(int(spec.serial_below), CHUNK + 1)  # n < limit: one chunk, serial
        self.reduction = reduction
        self.outer = spec.outer
        dt, dp = spec.domain("y_true"), spec.domain("y_pred")
        self.bounds = (*dt.interval.closed_bounds(), bool(dt.allow_nan),
                       *dp.interval.closed_bounds(), bool(dp.allow_nan))
        self._kernels: dict = {}

    def _call(self, kind: str, check: bool, t, p, out, scale: float):
        """Run the serial unweighted fused kernel on one chunk: (sum, ok)."""
        key = (kind, check, p.dtype is _F32)
        kernel = self._kernels.get(key)
        if kernel is None:
            kernel = self._kernels[key] = self.fused.get(kind, True, False, check, p.dtype)
        partials = np.empty(1, np.float64)
        bad = np.empty((1, 2), np.int64)
        kernel(t, p, _EMPTY, out, scale, partials, bad, *self.bounds, check, *self.args)
        return float(partials[0]), not check or (bad[0, 0] < 0 and bad[0, 1] < 0)

    def run(self, y_true, y_pred, check: bool, want_value: bool, want_grad: bool, out=None):
        """``(value, grad)`` like ``dispatch.evaluate``, or MISS.

        ``out`` (gradient buffer) is used when it is a writeable C-contiguous ndarray of
        y_pred's shape and dtype; anything else goes to the general path, which checks it.
        """
        if type(y_pred) is not np.ndarray or type(y_true) is not np.ndarray:
            return MISS
        dtype = y_pred.dtype
        if (dtype is not _F64 and dtype is not _F32) or y_true.dtype is not dtype:
            return MISS
        n = y_pred.size
        if not 0 < n < self.limit or y_true.shape != y_pred.shape:
            return MISS
        if not (y_pred.flags.c_contiguous and y_true.flags.c_contiguous):
            return MISS
        shape = y_pred.shape
        if out is not None:
            if not (type(out) is np.ndarray and out.dtype is dtype and out.shape == shape
                    and out.flags.c_contiguous and out.flags.writeable):
                return MISS
        if len(shape) != 1:
            y_true = y_true.reshape(-1)
            y_pred = y_pred.reshape(-1)
        reduction = self.reduction
        scale = 1.0 / n if reduction == "mean" else 1.0
        value = grad = None
        try:
            if want_grad:
                grad = np.empty(n, dtype) if out is None else out.reshape(-1)
            if self.outer is not None:  # value = f(mean); grad = df(mean) * dl/dp / n
                s, ok = self._call("sum", check, y_true, y_pred, _EMPTY, 1.0)
                if not ok:
                    return MISS
                f, df = self.outer
                m = s / n
                if want_grad:
                    self._call("grad", False, y_true, y_pred, grad, df(m) / n)
                value = float(f(m))
            elif reduction == "none":
                if want_value:
                    value = np.empty(n, dtype)
                    _, ok = self._call("none", check, y_true, y_pred, value, 1.0)
                    if not ok:
                        return MISS
                    value = value.reshape(shape)
                    check = False
                if want_grad:
                    _, ok = self._call("grad", check, y_true, y_pred, grad, 1.0)
                    if not ok:
                        return MISS
            elif want_grad:
                kind = "value_grad" if want_value else "grad"
                s, ok = self._call(kind, check, y_true, y_pred, grad, scale)
                if not ok:
                    return MISS
                if want_value:
                    value = s * scale if reduction == "mean" else s
            else:
                s, ok = self._call("sum", check, y_true, y_pred, _EMPTY, 1.0)
                if not ok:
                    return MISS
                value = s * scale if reduction == "mean" else s
        except Exception:  # noqa: BLE001 - compile failures: the general path reports them
            return MISS
        if grad is not None:
            grad = grad.reshape(shape) if out is None else out
        return value, grad


_EMPTY = np.empty(0, dtype=np.float64)


def plan(spec, args: tuple, reduction: str) -> FastPlan | None:
    """A FastPlan when ``spec`` qualifies (element-wise, fused kernels), else None."""
    if spec.layout != "elementwise" or spec.check_args is not None:
        return None
    if not callable(getattr(spec.fused, "get", None)):
        return None
    if any(isinstance(a, np.ndarray) for a in args):
        return None
    return FastPlan(spec, args, reduction)
