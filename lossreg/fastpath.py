"""Lean path for small, plain calls: the per-call overhead at N = 10 in microseconds.

The general dispatcher (``dispatch.evaluate``) converts, reshapes, checks weights,
allocates per-chunk buffers and picks a kernel: about 20 us of Python per call, which
dominates below a few thousand elements. ``FastPlan`` is built once per ``Loss`` and
handles the common small case directly:

* both inputs are ``numpy.ndarray`` of the same native float64 or float32 dtype, same
  shape, C-contiguous, with ``0 < size < spec.serial_below`` (and at most one
  reduction chunk);
* no ``sample_weight``, no ``out=``; the loss is element-wise with fused kernels.

It calls the single-chunk serial kernel of ``FusedKernels.small`` (domain checks fused,
returns ``(sum, bad_t, bad_p)``), which runs the same loop as the chunked kernels, so
values and gradients are bit-identical to the general path. Anything else, and any
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
        self.fused = spec.fused
        self.args = args
        from .kernels.reduce import CHUNK

        self.limit = min(int(spec.serial_below), CHUNK + 1)  # n < limit
        self.reduction = reduction
        self.outer = spec.outer
        dt, dp = spec.domain("y_true"), spec.domain("y_pred")
        self.bounds = (*dt.interval.closed_bounds(), bool(dt.allow_nan),
                       *dp.interval.closed_bounds(), bool(dp.allow_nan))
        self._kernels: dict = {}

    def _kernel(self, kind: str, check: bool):
        key = (kind, check)
        kernel = self._kernels.get(key)
        if kernel is None:
            kernel = self._kernels[key] = self.fused.small(kind, check)
        return kernel

    def run(self, y_true, y_pred, check: bool, want_value: bool, want_grad: bool):
        """``(value, grad)`` like ``dispatch.evaluate``, or MISS."""
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
        if len(shape) != 1:
            y_true = y_true.reshape(-1)
            y_pred = y_pred.reshape(-1)
        reduction = self.reduction
        scale = 1.0 / n if reduction == "mean" else 1.0
        args = self.args
        try:
            if self.outer is not None:  # value = f(mean), grad = df(mean) * dl/dp / n
                s, bt, bp = self._kernel("sum", check)(y_true, y_pred, _NO_OUT, 1.0,
                                                       *self.bounds, *args)
                if bt >= 0 or bp >= 0:
                    return MISS
                f, df = self.outer
                m = s / n
                grad = None
                if want_grad:
                    grad = np.empty(n, dtype)
                    self._kernel("grad", False)(y_true, y_pred, grad, df(m) / n,
                                                *self.bounds, *args)
                    grad = grad.reshape(shape)
                return float(f(m)), grad
            if reduction == "none":
                value = grad = None
                if want_value:
                    value = np.empty(n, dtype)
                    _, bt, bp = self._kernel("none", check)(y_true, y_pred, value, 1.0,
                                                            *self.bounds, *args)
                    if bt >= 0 or bp >= 0:
                        return MISS
                    value = value.reshape(shape)
                    check = False
                if want_grad:
                    grad = np.empty(n, dtype)
                    _, bt, bp = self._kernel("grad", check)(y_true, y_pred, grad, 1.0,
                                                            *self.bounds, *args)
                    if bt >= 0 or bp >= 0:
                        return MISS
                    grad = grad.reshape(shape)
                return value, grad
            if want_grad:
                grad = np.empty(n, dtype)
                kind = "value_grad" if want_value else "grad"
                s, bt, bp = self._kernel(kind, check)(y_true, y_pred, grad, scale,
                                                      *self.bounds, *args)
                grad = grad.reshape(shape)
            else:
                grad = None
                s, bt, bp = self._kernel("sum", check)(y_true, y_pred, _NO_OUT, 1.0,
                                                       *self.bounds, *args)
            if bt >= 0 or bp >= 0:
                return MISS
        except Exception:  # noqa: BLE001 - compile failures: the general path reports them
            return MISS
        if not want_value:
            return None, grad
        return (s * scale if reduction == "mean" else s), grad


_NO_OUT = np.empty(0, dtype=np.float64)


def plan(spec, args: tuple, reduction: str) -> FastPlan | None:
    """A FastPlan when ``spec`` qualifies (element-wise, fused kernels), else None."""
    if spec.layout != "elementwise" or spec.check_args is not None:
        return None
    if not callable(getattr(spec.fused, "small", None)):
        return None
    if any(isinstance(a, np.ndarray) for a in args):
        return None
    return FastPlan(spec, args, reduction)
