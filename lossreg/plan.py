"""A Loss's plan: kernels, hyperparameter arguments, reduction and bounds, resolved once.

``Loss`` builds one ``Plan`` at construction. Every call (value, gradient, Hessian
diagonal, any subset) goes through ``Plan.run``: the inputs become a ``Batch`` (a cheap
check for plain contiguous float arrays without weights; the full conversion in
``dispatch.prepare`` otherwise), then ``execute`` validates what the kernels do not
check themselves, describes the work as one ``kernels.protocol.Job`` and hands it to the
loss's ``Kernels.run``. A row loss's small plain batch takes ``_small_rows``, the same
steps for that case alone, without a Batch. Reductions, weights, ``outer`` (RMSE's
square root), the scale of the "mean" and the ``out=`` buffers are handled here and only
here; serial or parallel is decided by ``Plan.workers_for`` / ``scan_workers_for`` and
nowhere else.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ._elementcall import ElementCall
from .dispatch import (Batch, check_domains, check_out, domain_error, fuses_label_sets,
                       label_mean, label_range_error, label_set_error, label_weights,
                       prepare)
from numba.core.errors import NumbaError

from .errors import LossError, PluginError
from .kernels import reduce as R
from .kernels.protocol import Job
from .kernels.workers import default_workers
from ._zero_weights import cleared, neutralized
from .registry import BUILTIN_SOURCE
from .spec import LossSpec

_F64 = np.dtype(np.float64)
_F32 = np.dtype(np.float32)
_I64 = np.dtype(np.int64)
_EMPTY_F64 = np.empty(0, dtype=np.float64)
_OUTER_SAFE_LOW, _OUTER_SAFE_HIGH = 2.0 ** -500, 2.0 ** 500   # the weighted mean m of an
#   ``outer`` loss: outside, its squares and reciprocals may overflow or underflow and a
#   homogeneous loss (RMSE) is recomputed on rescaled inputs (Plan._rescaled)
SCAN_SERIAL_BELOW = 1 << 20   # measured at 1e5 float64: a scan 22 us serial, 16 us on
#   prange; but each prange scan costs 0.7-1 s to compile on first use, so mid sizes scan
#   serially (a row loss's cold first call at 1e5: 1.7 s less)


class Plan:
    """What one configured loss computes; see the module docstring."""

    __slots__ = ("spec", "kernels", "args", "reduction", "n_threads", "bounds",
                 "serial_below", "plain_inputs", "needs_scan", "workers", "label_args",
                 "row_rules", "fast", "rows_below", "kernel_labels", "args_shape")

    def __init__(self, spec: LossSpec, args: tuple, reduction: str,
                 n_threads: int | None = None):
        self.spec, self.kernels, self.args = spec, spec.kernels, args
        self.reduction, self.n_threads = reduction, n_threads
        dt, dp = spec.domain("y_true"), spec.domain("y_pred")
        self.bounds = (*dt.interval.closed_bounds(), bool(dt.allow_nan),
                       *dp.interval.closed_bounds(), bool(dp.allow_nan))
        self.serial_below = int(self.kernels.serial_below)
        self.workers = n_threads if n_threads is not None else default_workers()
        self.plain_inputs = self.kernels.layout == "elementwise"
        checked = set(self.kernels.checks)
        self.needs_scan = (not {"y_true", "y_pred"} <= checked
                           or any(d.integer or d.row_sum is not None
                                  or d.nonzero_rows is not None for d in (dt, dp))
                           or dp.label_sets is not None
                           or (dt.label_sets is not None
                               and not fuses_label_sets(self.kernels, dt)))
        labels = getattr(self.kernels, "labels", None)
        # label targets under "mean": the mean divides by the same class weights, so a
        # loss may rescale them (by a power of two) so that their sums never overflow
        self.label_args = (labels.scale_free(args) if reduction == "mean" and labels
                           is not None and labels.scale_free is not None else args)
        self.row_rules = _row_rules(self.kernels, dt, dp)
        # the element-wise fast path (``_elementcall``): plain inputs, no weights, no out=
        self.fast = ElementCall.build(self)
        # plain row batches below this many elements take ``_small_rows``: serial
        # kernels and serial scans (0: never, e.g. an ``outer`` loss)
        self.rows_below = 0 if self.row_rules is None or spec.outer is not None else (
            SCAN_SERIAL_BELOW if self.workers == 1
            else min(self.serial_below, SCAN_SERIAL_BELOW))
        # ``_small_rows`` leaves the label check to the kernels when they count invalid
        # labels and no scan of y_pred runs before them (the label error comes first)
        self.kernel_labels = bool(getattr(self.kernels, "checks_labels", False)
                                  and self.row_rules is not None
                                  and self.row_rules[1] is None)
        self.args_shape = None      # the last shape ``spec.check_args`` accepted

    def workers_for(self, n_elements: int) -> int:
        """Threads for the loss's kernels over ``n_elements``: 1 (serial) or the plan's
        workers. Serial or parallel is decided here and in ``scan_workers_for`` only."""
        return self.workers if n_elements >= self.serial_below else 1

    def scan_workers_for(self, n_elements: int) -> int:
        """Threads for a cheap pass (a domain scan, a sum of weights or row values; they run
        on Numba's threads, ``kernels.reduce.Chunked``): from ``SCAN_SERIAL_BELOW``
        elements."""
        return self.workers if n_elements >= SCAN_SERIAL_BELOW else 1

    # -- entry point ---------------------------------------------------------------------
    def run(self, y_true: Any, y_pred: Any, sample_weight: Any, value: bool = False,
            grad: bool = False, hess: bool = False, out: Any = None, hess_out: Any = None,
            validate: bool = True) -> tuple[Any, np.ndarray | None, np.ndarray | None]:
        """``(value, gradient, Hessian diagonal)``, each None unless asked for."""
        batch = None
        if sample_weight is None:
            if self.plain_inputs:
                batch = self._plain_batch(y_true, y_pred)
            elif self.row_rules is not None:
                if type(y_pred) is np.ndarray and 0 < y_pred.size < self.rows_below:
                    result = self._small_rows(y_true, y_pred, value, grad, hess, out,
                                              hess_out, validate)
                    if result is not None:
                        return result
                batch = self._plain_rows(y_true, y_pred)
        if batch is None:
            batch = prepare(self.spec, y_true, y_pred, sample_weight, self.reduction,
                            self.scan_workers_for)
        if out is not None:
            out = check_out(out, batch, "out")
        if hess_out is not None:
            hess_out = check_out(hess_out, batch, "hessian out")
        if batch.n_terms == 0:
            return self._empty(batch, value, grad, hess, out, hess_out)
        if self.spec.check_args is not None:
            self.spec.check_args(self.args, batch.pred_shape)
        return self.execute(batch, value, grad, hess, out, hess_out, validate)

    def _plain_batch(self, y_true: Any, y_pred: Any) -> Batch | None:
        """The cheap input check: two C-contiguous native float64 (or float32) arrays of
        one shape, no weights. Anything else takes ``dispatch.prepare``."""
        if type(y_pred) is not np.ndarray or type(y_true) is not np.ndarray:
            return None
        dtype = y_pred.dtype
        if (dtype is not _F64 and dtype is not _F32) or y_true.dtype is not dtype:
            return None
        shape = y_pred.shape
        n = y_pred.size
        if y_true.shape != shape or n == 0 or not (y_pred.flags.c_contiguous
                                                     and y_true.flags.c_contiguous):
            return None
        if len(shape) != 1:
            y_true, y_pred = y_true.reshape(-1), y_pred.reshape(-1)
        return Batch(y_true, y_pred, _EMPTY_F64, shape, shape, n, float(n), dtype)

    def _plain_rows(self, y_true: Any, y_pred: Any) -> Batch | None:
        """The cheap input check of a row loss: y_pred a C-contiguous native float64 (or
        float32) array (n, C), n, C >= 1, below ``SCAN_SERIAL_BELOW`` elements; y_true
        the same, or (a loss taking labels) C-contiguous int64 labels (n,); no weights.
        Anything else takes ``dispatch.prepare`` (which gives the same batch here)."""
        labels = self._row_labels(y_true, y_pred)
        if labels is None or not 0 < y_pred.size < SCAN_SERIAL_BELOW:
            return None
        shape = y_pred.shape
        n = shape[0]
        return Batch(y_true, y_pred, _EMPTY_F64, shape, (n,), n, float(n), y_pred.dtype,
                     labels)

    def _row_labels(self, y_true: Any, y_pred: Any) -> bool | None:
        """Whether a plain row batch's y_true holds class labels (True) or a row per
        y_pred row (False); None when the inputs are not plain (the general path answers
        them). Plain: C-contiguous arrays, y_pred a native float64 (or float32) (n, C),
        y_true the same, or int64 labels (n,) for a loss taking labels."""
        if type(y_pred) is not np.ndarray or type(y_true) is not np.ndarray:
            return None
        dtype = y_pred.dtype
        shape = y_pred.shape
        if (dtype is not _F64 and dtype is not _F32) or len(shape) != 2:
            return None
        t_dtype = y_true.dtype
        if t_dtype is dtype:
            if y_true.shape != shape:
                return None
            labels = False
        elif t_dtype is _I64 and y_true.shape == (shape[0],) \
                and self.kernels.labels is not None:
            labels = True
        else:
            return None
        if not (y_pred.flags.c_contiguous and y_true.flags.c_contiguous):
            return None
        return labels

    def _small_rows(self, y_true: Any, y_pred: np.ndarray, value: bool, grad: bool,
                    hess: bool, out: Any, hess_out: Any, validate: bool):
        """A row loss's call on a plain batch (``_plain_rows``'s inputs) below
        ``rows_below`` elements, with no buffer or a C-contiguous one of the right shape
        and dtype: ``execute``'s steps for that case alone (serial kernels, serial scans,
        no weights), without building a Batch; the same checks in the same order, the
        same kernels' job, so the same bits and errors. None: anything else (the general
        path answers it)."""
        labels = self._row_labels(y_true, y_pred)
        if labels is None:
            return None
        dtype = y_pred.dtype
        shape = y_pred.shape
        n, n_classes = shape
        for buf in (out, hess_out):
            if buf is not None and not (type(buf) is np.ndarray and buf.shape == shape
                                        and buf.dtype is dtype and buf.flags.c_contiguous
                                        and buf.flags.writeable):
                return None                     # the general path checks (or copies) it
        spec = self.spec
        if spec.check_args is not None and shape != self.args_shape:
            spec.check_args(self.args, shape)   # a function of the plan's args and shape:
            self.args_shape = shape             # checked again when the shape changes
        reduction = self.reduction
        weight_sum = float(n)
        if labels:
            args = self.label_args
            # the kernels count invalid labels when they can (``kernel_labels``)
            mean = label_mean(self.kernels.labels, y_true, n_classes, _EMPTY_F64, args,
                              reduction, validate, 1, not self.kernel_labels)
            if mean is not None:
                weight_sum = mean
            rules = self.row_rules[1]
            if validate and self.needs_scan and rules is not None \
                    and R.row_violations(y_pred, y_pred, rules):
                self._scan_error(y_true, y_pred, labels)
        else:
            args = self.args
            if validate and self.needs_scan \
                    and R.row_violations(y_true, y_pred, self.row_rules[0]):
                self._scan_error(y_true, y_pred, labels)
        g = (out if out is not None else np.empty(shape, dtype)) if grad else None
        h = (hess_out if hess_out is not None else np.empty(shape, dtype)) if hess else None
        if reduction == "none":
            values = np.empty(n, dtype) if value else None
            self._run(Job(y_true, y_pred, _EMPTY_F64, args, self.bounds, False, values, g,
                          h, 1.0, validate, False, 1, labels))
            return values, g, h
        scale = 1.0 / weight_sum if reduction == "mean" else 1.0
        total = self._run(Job(y_true, y_pred, _EMPTY_F64, args, self.bounds, value, None,
                              g, h, scale, validate, False, 1, labels)).total
        if value:
            return (total * scale if reduction == "mean" else total), g, h
        return None, g, h

    def _scan_error(self, y_true: np.ndarray, y_pred: np.ndarray, labels: bool) -> None:
        """``check_domains``' scans (serial) of a plain row batch whose counting pass
        found a violation: they locate it and raise its error."""
        n = y_pred.shape[0]
        check_domains(self.spec, Batch(y_true, y_pred, _EMPTY_F64, y_pred.shape, (n,), n,
                                       float(n), y_pred.dtype, labels), 1)
        raise AssertionError("the row rules counted a violation that the domain scans "
                             "do not find")  # pragma: no cover

    def _check_domains(self, batch: Batch, scan: int) -> None:
        """``check_domains`` of the batch; for a row loss's plain batch (serial scans, no
        zero weights) one fused counting pass first, and the scans only to locate what
        it counted (so the same error, the same index)."""
        rules = self.row_rules
        if rules is not None and scan == 1 and not batch.zeros and batch.p.ndim == 2 \
                and (batch.labels or batch.t.shape == batch.p.shape):
            p = batch.p
            if batch.labels:
                if rules[1] is None or not R.row_violations(p, p, rules[1]):
                    return
            elif not R.row_violations(batch.t, p, rules[0]):
                return
        check_domains(self.spec, batch, scan, every=batch.zeros)

    def _empty(self, batch: Batch, value: bool, grad: bool, hess: bool, out, hess_out):
        v = None
        if value:
            if self.reduction == "mean":
                raise AssertionError("prepare() refuses an empty mean")  # pragma: no cover
            v = 0.0 if self.reduction == "sum" else np.zeros(batch.value_shape, batch.dtype)
        g = (out if out is not None else np.zeros(batch.pred_shape, batch.dtype)) if grad else None
        h = (hess_out if hess_out is not None else np.zeros(batch.pred_shape, batch.dtype)) \
            if hess else None
        return v, g, h

    # -- the work ------------------------------------------------------------------------
    def execute(self, batch: Batch, value: bool, grad: bool, hess: bool,
                out: np.ndarray | None, hess_out: np.ndarray | None, validate: bool,
                checked: bool = False, zero: np.ndarray | None = None):
        """Checks on the whole batch (unless ``checked``: already done, on this batch or
        the one it was derived from), then the kernels. When some weight is exactly 0
        the domains are checked on every term, then those terms get a stand-in input
        (``_zero_weights``: the layout, and with it every chunked sum, stays that of the
        whole input) and ``zero`` lists them; their derivatives and values end as +0.0."""
        spec, reduction = self.spec, self.reduction
        n = batch.p.size
        workers = self.workers_for(n)
        scan = self.scan_workers_for(n)
        args = self.args
        if batch.labels:
            args = self.label_args
            if not checked:
                label_weights(spec, args, batch, reduction, validate, scan)
        if not checked:
            if validate and (self.needs_scan or batch.zeros):
                self._check_domains(batch, scan)
            if batch.zeros:
                batch, zero = neutralized(spec, batch)
                validate = False     # every term was checked and the stand-ins are valid
        g = _buffer(out, batch) if grad else None
        h = _buffer(hess_out, batch) if hess else None
        parallel = workers > 1
        result = None
        if spec.outer is not None:
            job = Job(batch.t, batch.p, batch.w, args, self.bounds, True, None, None,
                      None, 1.0, validate, parallel, workers, batch.labels, scan)
            m = self._run(job, batch).total / batch.weight_sum
            if not _OUTER_SAFE_LOW <= m <= _OUTER_SAFE_HIGH and spec.homogeneity is not None:
                scaled = _homogeneous(batch)
                if scaled is not None:
                    return self._rescaled(scaled, value, grad, hess, out, hess_out,
                                          validate, zero)
            if value:
                result = float(spec.outer[0](m))
            if grad or hess:
                self._outer_derivatives(job, batch, m, g, h)
        elif reduction == "none":
            values = np.empty(batch.n_terms, dtype=batch.dtype) if value else None
            self._run(Job(batch.t, batch.p, batch.w, args, self.bounds, False, values, g,
                          h, 1.0, validate, parallel, workers, batch.labels, scan), batch)
            if value:
                result = values.reshape(batch.value_shape)
        else:
            scale = 1.0 / batch.weight_sum if reduction == "mean" else 1.0
            total = self._run(Job(batch.t, batch.p, batch.w, args, self.bounds, value,
                                  None, g, h, scale, validate, parallel, workers,
                                  batch.labels), batch).total
            if value:
                result = total * scale if reduction == "mean" else total
        if zero is not None:
            cleared(zero, g, h, values if reduction == "none" and value else None)
        return result, _finish(g, out, batch), _finish(h, hess_out, batch)

    def _rescaled(self, scaled: tuple, value: bool, grad: bool, hess: bool, out, hess_out,
                  validate: bool, zero: np.ndarray | None):
        """A loss homogeneous of degree k (value(s t, s p) = s^k value(t, p)) on inputs
        scaled by 2^-e: value times 2^(e k), gradient 2^(e (k - 1)), Hessian
        2^(e (k - 2)); powers of two, so exact (RMSE of residuals whose squares overflow
        or underflow)."""
        batch, e = scaled
        k = self.spec.homogeneity
        v, g, h = self.execute(batch, value, grad, hess, out, hess_out, validate, True, zero)
        if v is not None:
            v = math.ldexp(v, e * k)
        for arr, power in ((g, e * (k - 1)), (h, e * (k - 2))):
            if arr is not None and power:
                np.ldexp(arr, power, out=arr)
        return v, g, h

    def _outer_derivatives(self, job, batch: Batch, m: float, g, h) -> None:
        """value = f(m), m = sum_i w_i l_i / W: with u_i = w_i l'_i / W and
        v_i = w_i l''_i / W, the gradient is f'(m) u and the Hessian diagonal
        f''(m) u^2 + f'(m) v, computed as f'(m) (v + (c(m) u) u) with c = f''/f' (the
        spec's third ``outer`` function), which keeps RMSE's diagonal finite and exact
        for residuals from 1e-160 to 1e150; 0 where f' is taken as 0."""
        outer = self.spec.outer
        u = g if g is not None else np.empty(batch.p.shape, batch.dtype)
        job.summed, job.check, job.grad, job.hess = False, False, u, h
        job.scale = 1.0 / batch.weight_sum
        self._run(job, batch)
        d1 = u.dtype.type(outer[1](m))
        if h is not None:
            h += (u.dtype.type(outer[2](m)) * u) * u
            h *= d1
        u *= d1

    def _run(self, job, batch: Batch | None = None):
        """``kernels.run(job)``; a compile failure, or an exception raised by a plugin's
        kernel, becomes a PluginError naming the loss and its source (the original as
        ``__cause__``); a reported bad index a DomainError naming the argument (``job.t``
        and ``job.p`` are the batch's arrays: ``batch`` is not needed)."""
        try:
            outcome = self.kernels.run(job)
        except PluginError as exc:
            if exc.source is None:
                exc.source = self.spec.source
            raise
        except (LossError, MemoryError):
            raise
        except Exception as exc:
            if not isinstance(exc, NumbaError) and self.spec.source == BUILTIN_SOURCE:
                raise
            text = str(exc).strip()
            first = text.splitlines()[0] if text else ""
            what = ("failed to compile or run" if isinstance(exc, NumbaError)
                    else f"raised {type(exc).__name__}")
            raise PluginError(f"kernel of loss {self.spec.name!r} (from {self.spec.source}) "
                              f"{what}: {first or type(exc).__name__}",
                              source=self.spec.source) from exc
        if outcome.sets_t:
            flat = job.t.reshape(-1)
            raise label_set_error(self.spec.domain("y_true"), flat,
                                  self.scan_workers_for(flat.shape[0]))
        if outcome.bad_t >= 0:
            if job.labels:
                raise label_range_error(job.t, job.p.shape[1], outcome.bad_t)
            raise domain_error("y_true", self.spec.domain("y_true"), job.t.reshape(-1),
                               outcome.bad_t)
        if outcome.bad_p >= 0:
            raise domain_error("y_pred", self.spec.domain("y_pred"), job.p.reshape(-1),
                               outcome.bad_p)
        return outcome


def positional(kernels, args: tuple) -> bool:
    """Whether ``kernels`` with these arguments depend on each term's position (a
    per-class weight read at flat index k mod C, ``losses.pos_weight``):
    ``lossreg.dask``, whose blocks start anywhere, refuses them."""
    check = getattr(kernels, "positional", None)
    return bool(check is not None and check(args))


def _row_rules(kernels, dt, dp) -> tuple[np.ndarray, np.ndarray | None] | None:
    """A row loss's domain rules for ``reduce.row_violations``: (with probability rows,
    with labels: y_true's rules off); None when the loss is not on rows or a domain has
    a rule it does not count (whole numbers, label sets): then every call scans with
    ``dispatch.check_domains``. A new kind of domain rule must be added here too (or
    make this step aside)."""
    if kernels.layout != "rows" or any(d.integer or d.label_sets is not None
                                       for d in (dt, dp)):
        return None
    parts = []
    for argument, d in (("y_true", dt), ("y_pred", dp)):
        a, b = d.interval.closed_bounds()
        parts.append([float(argument not in kernels.checks), a, b, float(d.allow_nan),
                      float(d.row_sum is not None),
                      float(d.row_sum) if d.row_sum is not None else 0.0,
                      float(d.row_sum_tol),
                      float(R.NONZERO_KINDS.get(d.nonzero_rows, 0))])
    labels = None                   # labels and y_pred's rules all in the kernels: none
    if parts[1][0] or parts[1][4] or parts[1][7]:
        labels = np.array([0.0] * 8 + parts[1], dtype=np.float64)
    return np.array(parts[0] + parts[1], dtype=np.float64), labels


def _homogeneous(batch: Batch) -> tuple[Batch, int] | None:
    """The batch with y_true and y_pred times 2^-e putting max |y_pred - y_true| in
    [0.5, 1), and e; None when every residual is 0 or the scale is already that one
    (nothing to rescale: a mean still out of range comes from the weights)."""
    with np.errstate(over="ignore", invalid="ignore"):
        top = float(np.max(np.abs(batch.p.astype(np.float64) - batch.t)))
    if not math.isfinite(top):       # the residual itself overflows: bound it by the inputs
        top = max(float(np.max(np.abs(batch.t))), float(np.max(np.abs(batch.p))))
    e = math.frexp(top)[1]
    if top == 0.0 or e == 0:
        return None
    t, p = np.ldexp(batch.t, -e).astype(batch.dtype), np.ldexp(batch.p, -e).astype(batch.dtype)
    return Batch(t, p, batch.w, batch.pred_shape, batch.value_shape, batch.n_terms,
                 batch.weight_sum, batch.dtype, batch.labels), e


def _buffer(out: np.ndarray | None, batch: Batch) -> np.ndarray:
    if out is not None and out.flags.c_contiguous:
        return out.reshape(batch.p.shape)
    return np.empty(batch.p.shape, dtype=batch.dtype)


def _finish(buf: np.ndarray | None, out: np.ndarray | None, batch: Batch):
    if buf is None:
        return None
    if out is None:
        return buf if buf.shape == batch.pred_shape else buf.reshape(batch.pred_shape)
    if not out.flags.c_contiguous:
        out[...] = buf.reshape(batch.pred_shape)
    return out
