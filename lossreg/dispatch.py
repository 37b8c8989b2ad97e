"""Input conversion and validation between a Loss and its kernels.

Converts and checks dtypes, shapes and sample weights in Python (cheap, O(1) or one pass
over the weights) into a ``Batch``; checks class labels and the domain rules that a
loss's kernels do not check themselves (``check_domains``), and turns a kernel's report
of a bad index into a typed ``DomainError``. ``lossreg.plan`` runs the kernels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from ._numba_threads import launch
from .errors import DomainError, DTypeError, HyperparameterError, ShapeError
from .kernels import reduce as R
from .spec import Domain, LossSpec

_EMPTY_F64 = np.empty(0, dtype=np.float64)
_MAX_F64 = float(np.finfo(np.float64).max)
_MIN_POSITIVE = 5e-324                   # the smallest subnormal: w >= it means w > 0


@dataclass(slots=True)
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
    zeros: bool = False      # some weight in w is exactly 0 (the plan skips those terms)


# -- conversion and checks ---------------------------------------------------------------

def as_real_array(x: Any, argument: str) -> np.ndarray:
    """``np.asarray`` that rejects non-real dtypes with a DTypeError naming the argument,
    and masked arrays with masked elements (``np.asarray`` would drop the mask and use
    the hidden values as data); a masked array with nothing masked is its data. A dask
    collection is refused, not computed (``np.asarray`` would silently load all of it
    into memory): ``lossreg.dask`` evaluates it block by block."""
    if _is_lazy(x):
        raise DTypeError(f"{argument} is a dask collection ({type(x).__name__}); use "
                         f"lossreg.dask.evaluate(loss, y_true, y_pred) (or grad, "
                         f"value_and_grad, ...), which evaluates it block by block with the "
                         f"same result, or call .compute() first", argument=argument,
                         constraint="not a dask collection (see lossreg.dask)")
    if isinstance(x, np.ma.MaskedArray) and np.ma.getmask(x) is not np.ma.nomask:
        masked = np.flatnonzero(np.ma.getmaskarray(x))
        if masked.size:
            i = int(masked[0])
            raise DTypeError(f"{argument} is a masked array with {masked.size} masked "
                             f"element(s), first at flat index {i}: lossreg does not drop "
                             f"masked elements; pass sample_weight=0 for them (and "
                             f"x.filled(v) with any valid v) or select the unmasked ones",
                             argument=argument, constraint="no masked elements", index=i)
    try:
        arr = np.asarray(x)
    except Exception as exc:  # ragged lists and the like
        raise DTypeError(f"{argument} cannot be converted to an array: {exc}",
                         argument=argument, constraint="real numeric array") from None
    if arr.dtype.kind not in "fiub":
        raise DTypeError(f"{argument} must be a real numeric array, got dtype {arr.dtype}",
                         argument=argument, constraint="real numeric dtype")
    return arr


def _is_lazy(x: Any) -> bool:
    """A dask collection (xarray objects define ``__dask_graph__`` too, returning None
    when they hold NumPy data)."""
    graph = getattr(type(x), "__dask_graph__", None)
    return graph is not None and x.__dask_graph__() is not None


def working_dtype(y_pred: np.ndarray) -> np.dtype:
    """float32 (and float16) inputs compute in float32, whatever their byte order
    (``'>f4'`` too: the conversion makes it native); everything else in float64."""
    if y_pred.dtype.kind == "f" and y_pred.dtype.itemsize <= 4:
        return np.dtype(np.float32)
    return np.dtype(np.float64)


def _shape_error(y_true: np.ndarray, y_pred: np.ndarray, expected: str) -> ShapeError:
    return ShapeError(f"y_true has shape {y_true.shape} but y_pred has shape {y_pred.shape}; "
                      f"{expected}")


def prepare(spec: LossSpec, y_true: Any, y_pred: Any, sample_weight: Any,
            reduction: str, workers_for: Callable[[int], int]) -> Batch:
    """Convert inputs, check shapes and weights; no domain checks yet. ``workers_for(n)``:
    the plan's choice of threads for a cheap pass over n elements (1: serial)."""
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
        labels = spec.takes_labels and y_true.shape == y_pred.shape[:-1]
        if y_true.shape != y_pred.shape and not labels:
            raise _shape_error(y_true, y_pred, "they must be equal (rows of the same classes)"
                               + (" or y_true must hold one class label per row"
                                  if spec.takes_labels else ""))
        if y_pred.shape[-1] == 0:
            raise ShapeError(f"y_pred has shape {y_pred.shape}: rows need at least one class")
        t = (_as_labels(y_true) if labels else
             np.ascontiguousarray(y_true, dtype=dtype).reshape(-1, y_pred.shape[-1]))
        p = np.ascontiguousarray(y_pred, dtype=dtype).reshape(-1, y_pred.shape[-1])
        value_shape, n_terms = y_pred.shape[:-1], p.shape[0]
    w, weight_sum, zeros = _weights(sample_weight, value_shape, n_terms, workers_for)
    if reduction == "mean" and not 2.0 ** -64 <= weight_sum <= 2.0 ** 64 and weight_sum > 0:
        w, weight_sum = _rescaled(w)
        zeros = zeros or not bool(w.all())       # a weight 2**1074 times below the max
    if n_terms == 0 and reduction == "mean":
        raise ShapeError(f"empty input (y_pred has shape {y_pred.shape}): the mean of no "
                         f"elements is undefined; use reduction='sum' or 'none'")
    if reduction == "mean" and weight_sum <= 0.0:
        raise DomainError("sample_weight sums to 0: the weighted mean is undefined",
                          argument="sample_weight", constraint="sum(sample_weight) > 0")
    return Batch(t, p, w, y_pred.shape, value_shape, n_terms, weight_sum, dtype,
                 labels=spec.layout == "rows" and t.ndim == 1, zeros=zeros)


def _as_labels(y_true: np.ndarray) -> np.ndarray:
    """Class labels as a flat int64 array; floats must be whole numbers and unsigned
    labels below 2**63 (DomainError with the value as given: a uint64 label 2**64 - 1
    must not wrap to -1, which ``ignore_index=-1`` would silently ignore)."""
    flat = y_true.reshape(-1)
    if flat.dtype.kind == "u" and flat.dtype.itemsize == 8 and flat.size \
            and int(flat.max()) >= 2 ** 63:
        i = int(np.argmax(flat >= np.uint64(2 ** 63)))
        raise DomainError(f"y_true class labels must be below 2**63 (int64); first "
                          f"violation at index {i} ({int(flat[i])})", argument="y_true",
                          constraint="integer class label", index=i)
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
                  validate: bool, workers: int) -> None:
    """Label targets: range-check the labels, then set the "mean" denominator.

    The denominator is sum(sample_weight * mean_weights) when the spec gives
    ``mean_weights`` (PyTorch's class-weighted mean over non-ignored rows).
    """
    weight_sum = label_mean(spec.kernels.labels, batch.t, batch.p.shape[1], batch.w, args,
                            reduction, validate, workers)
    if weight_sum is not None:
        batch.weight_sum = weight_sum


def label_mean(lt, labels: np.ndarray, n_classes: int, w: np.ndarray, args: tuple,
               reduction: str, validate: bool, workers: int,
               check_labels: bool = True) -> float | None:
    """Range-check the labels (``validate`` and ``check_labels``; a caller whose kernels
    count invalid labels passes False), then the "mean" denominator
    sum(w * mean_weights), or None when every row counts 1 (the batch's own sum
    stands). A denominator <= 0 raises, after a bad label's error when the labels were
    not checked first."""
    if validate and check_labels:
        i = _first_invalid(lt, labels, n_classes, args, workers)
        if i >= 0:
            raise label_range_error(labels, n_classes, i)
    if lt.mean_weights is None or reduction != "mean":
        return None
    d = np.empty(labels.shape[0], dtype=np.float64)
    if workers > 1:
        with launch(workers) as parallel:
            filled = lt.mean_weights(labels, n_classes, d, parallel, *args)
    else:
        filled = lt.mean_weights(labels, n_classes, d, False, *args)
    if filled is False:
        return None                              # every row counts 1
    weight_sum = R.weighted_sum(d, w, workers)
    if not weight_sum > 0.0:
        if validate and not check_labels:        # a bad label's error first
            i = _first_invalid(lt, labels, n_classes, args, workers)
            if i >= 0:
                raise label_range_error(labels, n_classes, i)
        raise mean_weight_error()
    return weight_sum


def _first_invalid(lt, labels: np.ndarray, n_classes: int, args: tuple, workers: int) -> int:
    """The first label outside [0, C) and not ignored, or -1."""
    if workers > 1:
        with launch(workers) as parallel:
            return int(lt.first_invalid(labels, n_classes, parallel, *args))
    return int(lt.first_invalid(labels, n_classes, False, *args))  # serial: no launch


def label_range_error(labels: np.ndarray, n_classes: int, i: int) -> DomainError:
    """The error of label ``labels[i]`` outside [0, C) (and not ignored)."""
    return DomainError(f"y_true class labels must be in [0, {n_classes}) (or ignored); "
                       f"first violation at index {i} ({int(labels[i])})",
                       argument="y_true", constraint=f"label in [0, {n_classes})", index=i)


def mean_weight_error() -> DomainError:
    """The error of a labels' "mean" whose denominator (``LabelKernels.mean_weights``
    times the sample weights) sums to 0."""
    return DomainError("the rows' weights in the mean (class weights of the labels, "
                       "times sample_weight; ignored rows count 0) sum to 0: the "
                       "weighted mean is undefined", argument="y_true",
                       constraint="some non-ignored row with positive weight")


def _weights(sample_weight: Any, value_shape: tuple, n_terms: int,
             workers_for: Callable[[int], int]) -> tuple[np.ndarray, float, bool]:
    """Weights as contiguous float64, their sum, and whether some weight is exactly 0
    (found by the same pass: it scans for values outside [min subnormal, max] and
    rescans for the error only when the first one found is not a 0)."""
    if sample_weight is None:
        return _EMPTY_F64, float(n_terms), False
    w = as_real_array(sample_weight, "sample_weight")
    if w.shape != tuple(value_shape):
        raise ShapeError(f"sample_weight has shape {w.shape} but the loss has "
                         f"{n_terms} terms of shape {tuple(value_shape)}; they must be equal")
    w = np.ascontiguousarray(w, dtype=np.float64).reshape(-1)
    # finite and > 0: one pass, parallel unless small; a 0 found first needs a second
    # pass for the error (finite and >= 0)
    i = R.first_outside_index(w, _MIN_POSITIVE, _MAX_F64, False, workers_for(w.size))
    zeros = i >= 0 and w[i] == 0.0
    if zeros:
        i = R.first_outside_index(w, 0.0, _MAX_F64, False, workers_for(w.size))
    if i >= 0:
        raise DomainError(f"sample_weight must be finite and >= 0; first violation at index "
                          f"{i} ({w[i]!r})", argument="sample_weight",
                          constraint="finite and >= 0", index=i)
    return w, R.weighted_sum(w, _EMPTY_F64, workers_for(w.size)), zeros


def _rescaled(w: np.ndarray) -> tuple[np.ndarray, float]:
    """Weights times a power of two putting max(w) in [0.5, 1), and their sum.

    A weighted mean does not change when all weights are scaled, and scaling by a power
    of two is exact, so huge weights (sum overflowing to inf: inf/inf = NaN) or tiny ones
    (w * l underflowing to 0) give the same mean as moderate ones. A copy: never the
    caller's array.
    """
    w = np.ldexp(w, -math.frexp(float(w.max()))[1])  # any exponent, subnormals included
    return w, R.weighted_sum(w, _EMPTY_F64, 1)


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


def check_domains(spec: LossSpec, batch: Batch, workers: int, every: bool = False) -> None:
    """Domain scans for what the loss's kernels do not check themselves: the intervals
    of the arguments outside ``spec.kernels.checks`` (of all arguments when ``every``:
    the kernels will see only part of the data), whole-number, label-set (y_true's
    unless ``fuses_label_sets``), row-sum and non-zero-row rules, per argument in that
    order (y_true first)."""
    fused = () if every else spec.kernels.checks
    for argument, arr in (("y_true", batch.t), ("y_pred", batch.p)):
        if argument == "y_true" and batch.labels:
            continue  # class labels: range-checked by label_weights
        domain = spec.domain(argument)
        flat = arr.reshape(-1)
        if argument not in fused:
            a, b = domain.interval.closed_bounds()
            i = R.first_outside_index(flat, a, b, domain.allow_nan, workers)
            if i >= 0:
                raise domain_error(argument, domain, flat, i)
        if domain.integer:
            bad = np.empty(R.n_chunks(flat.shape[0]), dtype=np.int64)
            R.first_not_integer(workers, bad.shape[0], flat, bad)
            i = R.first_index(bad)
            if i >= 0:
                raise DomainError(f"{argument} must hold whole numbers (class labels); first "
                                  f"violation at index {i} ({flat[i].item()!r})", argument=argument,
                                  constraint="integer", index=i)
        in_kernels = not every and argument == "y_true" and fuses_label_sets(spec.kernels,
                                                                             domain)
        if domain.label_sets is not None and not in_kernels:
            i = R.first_outside_label_sets(flat, domain.label_sets, workers)
            if i >= 0:
                raise _label_set_error(argument, domain, flat, i)
        if domain.row_sum is not None and arr.ndim == 2 and arr.shape[0] > 0:
            rows = np.empty(arr.shape[0], dtype=np.int64)
            R.row_sum_errors(workers, R.n_chunks(arr.shape[0], R.ROW_BLOCK), arr,
                             float(domain.row_sum), float(domain.row_sum_tol), rows)
            hits = np.flatnonzero(rows)
            if hits.size:
                raise _row_sum_error(argument, domain, arr, int(hits[0]))
        if domain.nonzero_rows is not None and arr.ndim == 2 and arr.shape[0] > 0:
            other = batch.p if argument == "y_true" else batch.t
            rows = np.empty(arr.shape[0], dtype=np.int64)
            R.zero_row_errors(workers, R.n_chunks(arr.shape[0], R.ROW_BLOCK), arr,
                              other if other.shape == arr.shape else arr,
                              R.NONZERO_KINDS[domain.nonzero_rows], rows)
            hits = np.flatnonzero(rows)
            if hits.size:
                raise zero_row_error(argument, domain.nonzero_rows, arr.shape[1],
                                     int(hits[0]))


def fuses_label_sets(kernels: Any, domain: Domain) -> bool:
    """Whether checked runs of ``kernels`` check y_true's ``domain.label_sets``
    themselves (``ElementwiseKernels`` built with the same sets): they report a
    violation (``Outcome.sets_t``) and ``label_set_error`` locates it."""
    fuses = getattr(kernels, "fuses_label_sets", None)
    return domain.label_sets is not None and fuses is not None and bool(fuses(domain))


def label_set_error(domain: Domain, flat: np.ndarray, workers: int) -> DomainError:
    """The error for y_true's labels (``flat``) that a kernel found in no one label set
    of ``domain``: the first offending index, located by the dispatcher's scan (the
    same error as ``check_domains`` raises)."""
    i = R.first_outside_label_sets(flat, domain.label_sets, workers)
    if i < 0:
        raise AssertionError("the kernels reported labels outside the label sets, "
                             "but the scan finds none")  # pragma: no cover
    return _label_set_error("y_true", domain, flat, i)


def _label_set_error(argument: str, domain: Domain, flat: np.ndarray, i: int) -> DomainError:
    text = domain.label_sets_text()
    return DomainError(f"{argument} must hold labels in {text}, one set throughout (not "
                       f"mixed); first violation at index {i} ({flat[i].item()!r})",
                       argument=argument, constraint=f"labels in {text}", index=i)


def zero_row_error(argument: str, rule: str, n_cols: int, r: int) -> DomainError:
    """The error of row r breaking a ``Domain.nonzero_rows`` rule: the index is the
    row's first flat element, as for every row rule."""
    constraint = {"self": "a non-zero norm",
                  "either": "a non-zero element in the y_true or y_pred row",
                  "both": "a non-zero y_true * y_pred product"}[rule]
    index = r * n_cols
    return DomainError(f"{argument} rows must have {constraint}; first violation at index "
                       f"{index} (the row's first element; row = index // {n_cols})",
                       argument=argument, constraint=constraint, index=index)


def _row_sum_error(argument: str, domain: Domain, arr: np.ndarray, r: int) -> DomainError:
    s = float(np.sum(arr[r], dtype=np.float64))
    return DomainError(f"{argument} rows must sum to {domain.row_sum:g} within "
                       f"{domain.row_sum_tol:g}; first violation at row {r} (sum {s!r})",
                       argument=argument, constraint=f"rows sum to {domain.row_sum:g}",
                       index=r * arr.shape[1])


# -- threads -----------------------------------------------------------------------------

def check_n_threads(n_threads: Any) -> int | None:
    if n_threads is None:
        return None
    import numba

    limit = numba.config.NUMBA_NUM_THREADS
    if isinstance(n_threads, bool) or not isinstance(n_threads, (int, np.integer)) \
            or not 1 <= n_threads <= limit:
        raise HyperparameterError(f"n_threads must be an int in [1, {limit}], got {n_threads!r}")
    return int(n_threads)


def check_out(out: Any, batch: Batch, argument: str = "out") -> np.ndarray:
    """Validate a user-supplied gradient (or Hessian) buffer."""
    if not isinstance(out, np.ndarray):
        raise DTypeError(f"{argument} must be a numpy.ndarray, got {type(out).__name__}",
                         argument=argument, constraint="numpy.ndarray")
    if out.shape != tuple(batch.pred_shape):
        raise ShapeError(f"{argument} has shape {out.shape} but y_pred has shape "
                         f"{batch.pred_shape}; they must be equal")
    if out.dtype != batch.dtype:
        raise DTypeError(f"{argument} has dtype {out.dtype} but the derivatives are "
                         f"{batch.dtype} (they follow y_pred)", argument=argument,
                         constraint=f"dtype {batch.dtype}")
    if not out.flags.writeable:
        raise DomainError(f"{argument} is read-only", argument=argument, constraint="writeable")
    return out
