"""Validation, kernel choice, allocation and reduction between a Loss and its kernels.

Order of work for every call: convert and check dtypes, shapes and sample weights in
Python (cheap, O(1) or one pass over the weights); then run the kernels. Domain checks
are fused into the generated kernels of built-in losses (the kernel reports the first
violating index per chunk and the dispatcher raises); plugin kernels get a separate
compiled scan before they run. Kernels never raise: they fill arrays the Python layer
allocated.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import DomainError, DTypeError, HyperparameterError, PluginError, ShapeError
from .kernels import reduce as R
from .kernels._jit import serial_twin
from .spec import Domain, LossSpec

_EMPTY_F64 = np.empty(0, dtype=np.float64)
_MAX_F64 = float(np.finfo(np.float64).max)


@dataclass
class Batch:
    """Inputs converted for the kernels plus what is needed to shape the results."""

    t: np.ndarray            # working dtype, 1-D (elementwise) or 2-D (rows), C-contiguous
    p: np.ndarray
    w: np.ndarray            # float64 weights per loss term, or an empty array
    pred_shape: tuple        # shape of the user's y_pred (gradient shape)
    value_shape: tuple       # shape of reduction="none" values
    n_terms: int             # elements (elementwise) or rows (rows)
    weight_sum: float
    dtype: np.dtype
    labels: bool = False     # t holds int64 class labels (n,) for a rows loss (LabelTargets)


# -- conversion and checks ---------------------------------------------------------------

def as_real_array(x: Any, argument: str) -> np.ndarray:
    """``np.asarray`` that rejects non-real dtypes with a DTypeError naming the argument."""
    try:
        arr = np.asarray(x)
    except Exception as exc:  # ragged lists and the like
        raise DTypeError(f"{argument} cannot be converted to an array: {exc}",
                         argument=argument, constraint="real numeric array") from None
    if arr.dtype.kind not in "fiub":
        raise DTypeError(f"{argument} must be a real numeric array, got dtype {arr.dtype}",
                         argument=argument, constraint="real numeric dtype")
    return arr


def working_dtype(y_pred: np.ndarray) -> np.dtype:
    """float32 (and float16) inputs compute in float32; everything else in float64."""
    if y_pred.dtype in (np.float32, np.float16):
        return np.dtype(np.float32)
    return np.dtype(np.float64)


def _shape_error(y_true: np.ndarray, y_pred: np.ndarray, expected: str) -> ShapeError:
    return ShapeError(f"y_true has shape {y_true.shape} but y_pred has shape {y_pred.shape}; "
                      f"{expected}")


def prepare(spec: LossSpec, y_true: Any, y_pred: Any, sample_weight: Any,
            reduction: str) -> Batch:
    """Convert inputs, check shapes and weights; no domain checks yet."""
    y_true = as_real_array(y_true, "y_true")
    y_pred = as_real_array(y_pred, "y_pred")
    dtype = working_dtype(y_pred)
    if spec.layout == "elementwise":
        if y_true.shape != y_pred.shape:
            raise _shape_error(y_true, y_pred, "they must be equal (no broadcasting)")
        t = np.ascontiguousarray(y_true, dtype=dtype).reshape(-1)
        p = np.ascontiguousarray(y_pred, dtype=dtype).reshape(-1)
        value_shape, n_terms = y_pred.shape, p.shape[0]
    else:
        if y_pred.ndim not in (1, 2):
            raise ShapeError(f"y_pred must be 1-D (one row) or 2-D (rows, classes), "
                             f"got shape {y_pred.shape}")
        labels = spec.label_targets is not None and y_true.shape == y_pred.shape[:-1]
        if y_true.shape != y_pred.shape and not labels:
            raise _shape_error(y_true, y_pred, "they must be equal (rows of the same classes)"
                               + (" or y_true must hold one class label per row"
                                  if spec.label_targets is not None else ""))
        if y_pred.shape[-1] == 0:
            raise ShapeError(f"y_pred has shape {y_pred.shape}: rows need at least one class")
        t = (_as_labels(y_true) if labels else
             np.ascontiguousarray(y_true, dtype=dtype).reshape(-1, y_pred.shape[-1]))
        p = np.ascontiguousarray(y_pred, dtype=dtype).reshape(-1, y_pred.shape[-1])
        value_shape, n_terms = y_pred.shape[:-1], p.shape[0]
    w, weight_sum = _weights(sample_weight, value_shape, n_terms, spec)
    if reduction == "mean" and not 2.0 ** -64 <= weight_sum <= 2.0 ** 64 and weight_sum > 0:
        w, weight_sum = _rescaled(w)
    if n_terms == 0 and reduction == "mean":
        raise ShapeError(f"empty input (y_pred has shape {y_pred.shape}): the mean of no "
                         f"elements is undefined; use reduction='sum' or 'none'")
    if reduction == "mean" and weight_sum <= 0.0:
        raise DomainError("sample_weight sums to 0: the weighted mean is undefined",
                          argument="sample_weight", constraint="sum(sample_weight) > 0")
    return Batch(t, p, w, y_pred.shape, value_shape, n_terms, weight_sum, dtype,
                 labels=spec.layout == "rows" and t.ndim == 1)


def _as_labels(y_true: np.ndarray) -> np.ndarray:
    """Class labels as a flat int64 array; floats must be whole numbers (DomainError)."""
    flat = y_true.reshape(-1)
    if flat.dtype.kind == "f":
        with np.errstate(invalid="ignore"):
            bad = np.flatnonzero(~(np.isfinite(flat) & (flat == np.floor(flat))
                                   & (np.abs(flat) < 2.0 ** 63)))
        if bad.size:
            i = int(bad[0])
            raise DomainError(f"y_true class labels must be whole numbers; first violation "
                              f"at index {i} ({flat[i].item()!r})", argument="y_true",
                              constraint="integer class label", index=i)
    return np.ascontiguousarray(flat, dtype=np.int64)


def label_weights(spec: LossSpec, args: tuple, batch: Batch, reduction: str,
                  validate: bool) -> None:
    """Label targets: range-check the labels, then set the "mean" denominator.

    The denominator is sum(sample_weight * mean_weights) when the spec gives
    ``mean_weights`` (PyTorch's class-weighted mean over non-ignored rows).
    """
    lt = spec.label_targets
    n_classes = batch.p.shape[1]
    if validate:
        i = int(_call(spec, _pick(spec, lt.first_invalid, batch.p.size), batch.t, n_classes,
                      *args))
        if i >= 0:
            raise DomainError(f"y_true class labels must be in [0, {n_classes}) (or ignored); "
                              f"first violation at index {i} ({int(batch.t[i])})",
                              argument="y_true", constraint=f"label in [0, {n_classes})",
                              index=i)
    if lt.mean_weights is None or reduction != "mean":
        return
    d = np.empty(batch.n_terms, dtype=np.float64)
    if _call(spec, lt.mean_weights, batch.t, n_classes, d, *args) is False:
        return                                   # every row counts 1: weight_sum stands
    partials = np.empty(R.n_chunks(d.shape[0]), dtype=np.float64)
    _pick(spec, R.chunk_sums, batch.p.size)(d, batch.w, partials)
    batch.weight_sum = R.total(partials)
    if not batch.weight_sum > 0.0:
        raise DomainError("the rows' weights in the mean (class weights of the labels, "
                          "times sample_weight; ignored rows count 0) sum to 0: the "
                          "weighted mean is undefined", argument="y_true",
                          constraint="some non-ignored row with positive weight")


def _weights(sample_weight: Any, value_shape: tuple, n_terms: int,
             spec: LossSpec) -> tuple[np.ndarray, float]:
    if sample_weight is None:
        return _EMPTY_F64, float(n_terms)
    w = as_real_array(sample_weight, "sample_weight")
    if w.shape != tuple(value_shape):
        raise ShapeError(f"sample_weight has shape {w.shape} but the loss has "
                         f"{n_terms} terms of shape {tuple(value_shape)}; they must be equal")
    w = np.ascontiguousarray(w, dtype=np.float64).reshape(-1)
    bad = np.empty(R.n_chunks(w.shape[0]), dtype=np.int64)
    # finite and >= 0: one pass, parallel unless small
    _pick(spec, R.first_outside, w.size)(w, 0.0, _MAX_F64, False, bad)
    i = R.first_index(bad)
    if i >= 0:
        raise DomainError(f"sample_weight must be finite and >= 0; first violation at index "
                          f"{i} ({w[i]!r})", argument="sample_weight",
                          constraint="finite and >= 0", index=i)
    partials = np.empty(R.n_chunks(w.shape[0]), dtype=np.float64)
    _pick(spec, R.chunk_sums, w.size)(w, _EMPTY_F64, partials)
    return w, R.total(partials)


def _rescaled(w: np.ndarray) -> tuple[np.ndarray, float]:
    """Weights times a power of two putting max(w) in [0.5, 1), and their sum.

    A weighted mean does not change when all weights are scaled, and scaling by a power
    of two is exact, so huge weights (sum overflowing to inf: inf/inf = NaN) or tiny ones
    (w * l underflowing to 0) give the same mean as moderate ones. A copy: never the
    caller's array.
    """
    w = np.ldexp(w, -math.frexp(float(w.max()))[1])  # any exponent, subnormals included
    partials = np.empty(R.n_chunks(w.shape[0]), dtype=np.float64)
    R.chunk_sums(w, _EMPTY_F64, partials)
    return w, R.total(partials)


def domain_error(argument: str, domain: Domain, flat: np.ndarray, index: int) -> DomainError:
    value = flat[index].item()
    if domain.interval.low == -math.inf and domain.interval.high == math.inf:
        constraint = "finite" if not domain.allow_nan else str(domain.interval)
        text = f"{argument} must be finite (no NaN or inf)"
    else:
        constraint = f"in {domain.interval}"
        text = f"{argument} must be in {domain.interval}"
        if not domain.allow_nan and value != value:
            text += " (NaN is not allowed)"
    return DomainError(f"{text}; first violation at index {index} ({value!r})",
                       argument=argument, constraint=constraint, index=index)


def check_domains(spec: LossSpec, batch: Batch, intervals: bool = True,
                  pred_interval: bool = True) -> None:
    """Domain scans for kernels that do not fuse them (and integer / row-sum rules);
    ``pred_interval=False`` leaves y_pred's interval to a kernel that checks it."""
    for argument, arr in (("y_true", batch.t), ("y_pred", batch.p)):
        if argument == "y_true" and batch.labels:
            continue  # class labels: range-checked by label_weights
        domain = spec.domain(argument)
        flat = arr.reshape(-1)
        rows_rule = domain.row_sum is not None and arr.ndim == 2 and arr.shape[0] > 0
        bad = np.empty(R.n_chunks(flat.shape[0]), dtype=np.int64)
        if intervals and (pred_interval or argument != "y_pred"):
            a, b = domain.interval.closed_bounds()
            R.first_outside(flat, a, b, domain.allow_nan, bad)
            i = R.first_index(bad)
            if i >= 0:
                raise domain_error(argument, domain, flat, i)
        if domain.integer:
            R.first_not_integer(flat, bad)
            i = R.first_index(bad)
            if i >= 0:
                raise DomainError(f"{argument} must hold whole numbers (class labels); first "
                                  f"violation at index {i} ({flat[i].item()!r})", argument=argument,
                                  constraint="integer", index=i)
        if rows_rule:
            rows = np.empty(arr.shape[0], dtype=np.int64)
            R.row_sum_errors(arr, float(domain.row_sum), float(domain.row_sum_tol), rows)
            hits = np.flatnonzero(rows)
            if hits.size:
                raise _row_sum_error(argument, domain, arr, int(hits[0]))


def _row_sum_error(argument: str, domain: Domain, arr: np.ndarray, r: int) -> DomainError:
    s = float(np.sum(arr[r], dtype=np.float64))
    return DomainError(f"{argument} rows must sum to {domain.row_sum:g} within "
                       f"{domain.row_sum_tol:g}; first violation at row {r} (sum {s!r})",
                       argument=argument, constraint=f"rows sum to {domain.row_sum:g}",
                       index=r * arr.shape[1])


# -- threads -----------------------------------------------------------------------------

@contextlib.contextmanager
def threads(n_threads: int | None):
    """Run the block with ``n_threads`` Numba threads (thread-local), then restore."""
    if n_threads is None:
        yield
        return
    import numba

    previous = numba.get_num_threads()
    numba.set_num_threads(n_threads)
    try:
        yield
    finally:
        numba.set_num_threads(previous)


def check_n_threads(n_threads: Any) -> int | None:
    if n_threads is None:
        return None
    import numba

    limit = numba.config.NUMBA_NUM_THREADS
    if isinstance(n_threads, bool) or not isinstance(n_threads, (int, np.integer)) \
            or not 1 <= n_threads <= limit:
        raise HyperparameterError(f"n_threads must be an int in [1, {limit}], got {n_threads!r}")
    return int(n_threads)


# -- kernels -----------------------------------------------------------------------------

def _call(spec: LossSpec, kernel, *args):
    """Run a kernel; turn a compile failure into a PluginError naming the source."""
    from numba.core.errors import NumbaError

    try:
        return kernel(*args)
    except NumbaError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise PluginError(f"kernel of loss {spec.name!r} (from {spec.source}) failed to "
                          f"compile or run: {first}", source=spec.source) from exc


_TWINS: dict = {}


def _pick(spec: LossSpec, kernel, n_elements: int):
    """The serial twin of a parallel kernel for small inputs (launch cost dominates)."""
    return kernel if n_elements >= spec.serial_below else _serial(kernel)


def _serial(kernel):
    twin = _TWINS.get(kernel)
    if twin is None:
        twin = _TWINS.setdefault(kernel, serial_twin(kernel))
    return twin


class Evaluation:
    """One call's worth of work: value and/or gradient of a loss on a Batch."""

    def __init__(self, spec: LossSpec, args: tuple, reduction: str, batch: Batch,
                 validate: bool):
        self.spec, self.args, self.reduction, self.batch = spec, args, reduction, batch
        self.validate = validate
        self.fused = spec.fused if spec.layout == "elementwise" else None
        n_elements = batch.p.size
        self.serial = n_elements < spec.serial_below
        self.pred_checked_by_kernel = False

    # reduced value (before ``outer``) as the weighted sum of per-term losses
    def run(self, want_value: bool, want_grad: bool, out: np.ndarray | None):
        spec, batch, reduction = self.spec, self.batch, self.reduction
        if self.validate:
            # Fused element-wise kernels check intervals themselves, and a row loss's
            # value_grad kernel may check y_pred's (value_grad_checks); the rest runs here.
            self.pred_checked_by_kernel = (
                spec.value_grad_checks and want_value and want_grad
                and reduction != "none" and spec.outer is None
                and self._row_value_grad_kernel() is not None)
            check_domains(spec, batch, intervals=self.fused is None,
                          pred_interval=not self.pred_checked_by_kernel)
        grad = self._grad_buffer(out) if want_grad else None
        value = None
        if spec.outer is not None:
            f, df = spec.outer
            m = self._sum(grad=None) / batch.weight_sum
            value = float(f(m))
            if want_grad:
                self._gradient(grad, df(m) / batch.weight_sum)
        elif reduction == "none":
            if want_value:
                value = self._values()
            if want_grad:
                self._gradient(grad, 1.0)
        else:
            scale = 1.0 / batch.weight_sum if reduction == "mean" else 1.0
            if want_value:
                total = self._sum(grad=grad if want_grad else None, scale=scale)
                value = total * scale if reduction == "mean" else total
            elif want_grad:
                self._gradient(grad, scale)
        if grad is not None:
            grad = self._finish_grad(grad, out)
        return value, grad

    # -- pieces ------------------------------------------------------------------------
    def _grad_buffer(self, out: np.ndarray | None) -> np.ndarray:
        batch = self.batch
        if out is not None and out.flags.c_contiguous:
            return out.reshape(batch.p.shape)
        return np.empty(batch.p.shape, dtype=batch.dtype)

    def _finish_grad(self, grad: np.ndarray, out: np.ndarray | None) -> np.ndarray:
        shape = self.batch.pred_shape
        if out is None:
            return grad.reshape(shape)
        if not out.flags.c_contiguous:
            out[...] = grad.reshape(shape)
        return out

    def _fused(self, kind: str, out: np.ndarray, scale: float) -> np.ndarray:
        batch, spec = self.batch, self.spec
        partials = np.empty(R.n_chunks(batch.n_terms), dtype=np.float64)
        bad = np.empty((partials.shape[0], 2), dtype=np.int64)
        check = self.validate
        self.validate = False  # one scan per call is enough
        dt, dp = spec.domain("y_true"), spec.domain("y_pred")
        a_t, b_t = dt.interval.closed_bounds()
        a_p, b_p = dp.interval.closed_bounds()
        kernel = self.fused.get(kind, self.serial, batch.w.shape[0] > 0, check, batch.dtype)
        _call(spec, kernel, batch.t, batch.p, batch.w, out, float(scale), partials, bad,
              a_t, b_t, dt.allow_nan, a_p, b_p, dp.allow_nan, check, *self.args)
        if check:
            for col, argument in enumerate(("y_true", "y_pred")):
                i = R.first_index(bad[:, col])
                if i >= 0:
                    arr = batch.t if col == 0 else batch.p
                    raise domain_error(argument, spec.domain(argument), arr.reshape(-1), i)
        return partials

    def _sum(self, grad: np.ndarray | None, scale: float = 1.0) -> float:
        """Weighted sum of per-term losses; fills ``grad`` (times scale) when given."""
        if self.fused is not None:
            if grad is None:
                return R.total(self._fused("sum", _EMPTY_F64, 1.0))
            return R.total(self._fused("value_grad", grad.reshape(-1), scale))
        row_kernel = self._row_value_grad_kernel() if grad is not None else None
        if row_kernel is not None:
            return self._row_value_grad(row_kernel, grad, scale)
        values = self._plain_values()
        partials = np.empty(R.n_chunks(values.shape[0]), dtype=np.float64)
        _call(self.spec, _pick(self.spec, R.chunk_sums, values.size), values, self.batch.w,
              partials)
        if grad is not None:
            self._gradient(grad, scale)
        return R.total(partials)

    def _row_value_grad_kernel(self):
        spec, batch = self.spec, self.batch
        if spec.layout != "rows":
            return None
        kernel = spec.label_targets.value_grad if batch.labels else spec.value_grad
        return None if kernel is None else _pick(spec, kernel, batch.p.size)

    def _row_value_grad(self, kernel, grad: np.ndarray, scale: float) -> float:
        """One pass of a row loss's value_grad kernel: the weighted sum of row values,
        and ``grad`` filled with w_i * scale * dl_i/dp (no further pass over it)."""
        batch = self.batch
        values = np.empty(batch.n_terms, dtype=batch.dtype)
        outside = _call(self.spec, kernel, batch.t, batch.p, batch.w, float(scale), values,
                        grad, *self.args)
        if self.pred_checked_by_kernel and (outside is None or outside):
            self._raise_pred_outside(outside)
        partials = np.empty(R.n_chunks(values.shape[0]), dtype=np.float64)
        _call(self.spec, _pick(self.spec, R.chunk_sums, values.size), values, batch.w,
              partials)
        return R.total(partials)

    def _raise_pred_outside(self, count) -> None:
        """Locate the first y_pred value a value_grad kernel counted outside its domain."""
        spec, flat = self.spec, self.batch.p.reshape(-1)
        if count is None:
            raise PluginError(f"loss {spec.name!r} sets value_grad_checks but its value_grad "
                              f"kernel returned no count of y_pred values outside the domain",
                              source=spec.source)
        domain = spec.domain("y_pred")
        a, b = domain.interval.closed_bounds()
        bad = np.empty(R.n_chunks(flat.shape[0]), dtype=np.int64)
        R.first_outside(flat, a, b, domain.allow_nan, bad)
        i = R.first_index(bad)
        if i < 0:
            raise PluginError(f"value_grad of loss {spec.name!r} reported {count} y_pred "
                              f"values outside {domain.interval}, but there are none",
                              source=spec.source)
        raise domain_error("y_pred", domain, flat, i)

    def _plain_values(self) -> np.ndarray:
        batch, spec = self.batch, self.spec
        values = np.empty(batch.n_terms, dtype=batch.dtype)
        forward = spec.label_targets.forward if batch.labels else spec.forward
        kernel = _pick(spec, forward, batch.p.size)
        _call(spec, kernel, batch.t, batch.p, values, *self.args)
        return values

    def _values(self) -> np.ndarray:
        """Per-term values times weights, shaped for reduction='none'."""
        batch = self.batch
        if self.fused is not None:
            values = np.empty(batch.n_terms, dtype=batch.dtype)
            self._fused("none", values, 1.0)
        else:
            values = self._plain_values()
            if batch.w.shape[0]:
                values *= batch.w.astype(batch.dtype, copy=False)
        return values.reshape(batch.value_shape)

    def _gradient(self, grad: np.ndarray, scale: float) -> None:
        batch, spec = self.batch, self.spec
        if self.fused is not None:
            self._fused("grad", grad.reshape(-1), scale)
            return
        gradient = spec.label_targets.gradient if batch.labels else spec.gradient
        kernel = _pick(spec, gradient, batch.p.size)
        _call(spec, kernel, batch.t, batch.p, grad, *self.args)
        if batch.w.shape[0]:
            factor = batch.w * scale
            grad *= (factor if spec.layout == "elementwise" else factor[:, None]).astype(
                batch.dtype, copy=False)
        elif scale != 1.0:
            grad *= batch.dtype.type(scale)


def check_out(out: Any, batch: Batch) -> np.ndarray:
    """Validate a user-supplied gradient buffer."""
    if not isinstance(out, np.ndarray):
        raise DTypeError(f"out must be a numpy.ndarray, got {type(out).__name__}",
                         argument="out", constraint="numpy.ndarray")
    if out.shape != tuple(batch.pred_shape):
        raise ShapeError(f"out has shape {out.shape} but y_pred has shape {batch.pred_shape}; "
                         f"they must be equal")
    if out.dtype != batch.dtype:
        raise DTypeError(f"out has dtype {out.dtype} but the gradient is {batch.dtype} "
                         f"(it follows y_pred)", argument="out", constraint=f"dtype {batch.dtype}")
    if not out.flags.writeable:
        raise DomainError("out is read-only", argument="out", constraint="writeable")
    return out


def evaluate(spec: LossSpec, args: tuple, reduction: str, y_true: Any, y_pred: Any,
             sample_weight: Any, *, want_value: bool, want_grad: bool,
             out: Any = None, validate: bool = True, n_threads: int | None = None):
    """Value and/or gradient of ``spec`` on the given data; the one entry point of Loss."""
    batch = prepare(spec, y_true, y_pred, sample_weight, reduction)
    if out is not None:
        out = check_out(out, batch)
    if batch.n_terms == 0:
        value = 0.0 if reduction == "sum" else np.zeros(batch.value_shape, batch.dtype)
        grad = None
        if want_grad:
            grad = out if out is not None else np.zeros(batch.pred_shape, batch.dtype)
        return value, grad
    if spec.check_args is not None:
        spec.check_args(args, batch.pred_shape)
    with threads(n_threads):
        if batch.labels:
            label_weights(spec, args, batch, reduction, validate)
        evaluation = Evaluation(spec, args, reduction, batch, validate)
        return evaluation.run(want_value, want_grad, out)
