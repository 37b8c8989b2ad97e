"""The kernel protocol: one ``Kernels`` object per loss, one entry point, ``run(job)``.

A ``LossSpec`` carries its metadata and one ``Kernels`` object. The plan of a ``Loss``
(``lossreg.plan``) converts and checks the inputs, then describes one call as a ``Job``
(what to compute: the weighted sum of the losses, per-term values, gradient, Hessian
diagonal, any subset; the weights, the scale and the output buffers; whether to check
domains; serial or parallel) and hands it to ``kernels.run``. Three implementations:

* ``ElementwiseKernels`` (``lossreg.kernels.elementwise_kernels(elem)``): fused kernels
  generated from one scalar function ``elem(t, p, *hp) -> (l, dl, d2l)``;
* ``RowKernels`` (``row_kernels(impl, ...)``): one implementation function per target
  form of a loss on rows, ``impl(t, p, w, scale, values, grad, hess, parallel, *hp)``;
* ``PairKernels``: the plain per-element ``forward``/``gradient`` (and optional
  ``hessian``) kernels of the API.md plugin example, ``(y_true, y_pred, out, *hyper)``,
  adapted so that nothing else special-cases them.

Kernels never raise on data: they report the first index outside a domain interval
(``Outcome``) and the plan raises the typed error. Outputs are allocated by the caller.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, NamedTuple

import numpy as np

from .._numba_threads import launch
from . import reduce as R

_EMPTY_F64 = np.empty(0, dtype=np.float64)


@dataclass(slots=True)
class Job:
    """One call's work, on converted inputs (see the module docstring).

    ``t``, ``p``: C-contiguous, 1-D (element-wise) or 2-D (rows) arrays of the working
    dtype (``t`` is 1-D int64 class labels when ``labels``). ``w``: float64 weights per
    term or an empty array. ``summed``: return sum_i w_i l_i. ``values``: fill w_i l_i per
    term. ``grad``/``hess``: fill w_i * scale * dl_i/dp and d2l_i/dp2 (shape of ``p``).
    ``bounds``: (a_t, b_t, nan_t, a_p, b_p, nan_p), the closed domain intervals.
    ``parallel``: the plan's choice; ``workers``: how many threads a parallel run may use;
    ``scan_workers``: threads for cheap passes (sums of row values, locating a bad value).
    ``partials``: with ``summed``, an optional float64 array of ``reduce.n_chunks(n)``
    slots (n: elements, or rows for row losses) that kernels whose class sets
    ``fills_partials`` fill with the chunk totals of sum_i w_i l_i (``reduce.total`` of
    them is ``Outcome.total``), so that a caller can combine chunk totals of several
    pieces of one array exactly as one call would (``lossreg.dask``).
    """

    t: np.ndarray
    p: np.ndarray
    w: np.ndarray
    args: tuple
    bounds: tuple
    summed: bool = False
    values: np.ndarray | None = None
    grad: np.ndarray | None = None
    hess: np.ndarray | None = None
    scale: float = 1.0
    check: bool = True
    parallel: bool = False
    workers: int = 1
    labels: bool = False
    scan_workers: int = 1
    partials: np.ndarray | None = None


class Outcome(NamedTuple):
    """``total``: sum_i w_i l_i (None unless summed); ``bad_t``/``bad_p``: first flat index
    of y_true / y_pred outside its interval, among the arguments the kernels check (-1:
    none found or not checked here; with class labels, ``bad_t`` is the first invalid
    label, for kernels that count them: ``RowKernels.checks_labels``); ``sets_t``: no
    one of y_true's label sets holds every label (kernels that check them,
    ``fuses_label_sets``; the plan locates the first offending label, and reports it
    before any bad index)."""

    total: float | None
    bad_t: int = -1
    bad_p: int = -1
    sets_t: bool = False


def clean(total: float | None) -> Outcome:
    """``Outcome(total)`` with no bad index, built without NamedTuple's Python-level
    ``__new__`` (it is on every call's path)."""
    return _tuple_new(Outcome, (total, -1, -1, False))


_tuple_new = tuple.__new__


class Kernels:
    """Base of the protocol. ``checks``: the arguments whose domain intervals ``run``
    checks itself (the plan scans the others first). ``serial_below``: below this many
    elements of y_pred the plan asks for a serial run (a parallel launch costs more).
    ``fills_partials``: ``run`` honours ``Job.partials`` (all built-in kernel classes do;
    a subclass that does not cannot be evaluated by ``lossreg.dask``). A composite that
    hands every job to one of several ``ElementwiseKernels`` picked by the kernel
    arguments may define ``for_args(args)`` returning that set: the element-wise fast
    path (``lossreg._elementcall``) then calls its kernels directly."""

    layout = "elementwise"
    has_hessian = False
    fills_partials = False
    checks: tuple[str, ...] = ()
    serial_below = R.CHUNK
    labels: "LabelKernels | None" = None

    def run(self, job: Job) -> Outcome:  # pragma: no cover - interface
        raise NotImplementedError

    def describe(self) -> str:
        return type(self).__name__


@dataclass(frozen=True)
class LabelKernels:
    """How a row loss also takes integer class labels as ``y_true`` (shape
    ``y_pred.shape[:-1]``): ``impl`` has the row-impl signature with 1-D int64 labels as
    ``t``; ``first_invalid(labels, n_classes, parallel, *hp)`` returns the first label
    outside [0, C) that the hyperparameters do not ignore, or -1;
    ``mean_weights(labels, n_classes, out, parallel, *hp)`` (optional) fills each row's
    weight in the "mean" denominator (PyTorch: the class weight of its label, 0 when
    ignored) and returns True, or returns False: every row counts 1. Kernels must not
    read out of bounds for bad labels (with ``validate=False`` they are not checked).
    ``scale_free(hp) -> hp`` (optional, with ``mean_weights``): the hyperparameter
    arguments with the weights that ``mean_weights`` divides by multiplied by one power
    of two (max in [0.5, 1)); the plan uses them for the "mean" of labels, which that
    leaves unchanged, so huge or tiny class weights never overflow their sums."""

    impl: Callable
    first_invalid: Callable
    mean_weights: Callable | None = None
    scale_free: Callable | None = None


class RowKernels(Kernels):
    """A loss on rows (n, C) from one implementation function per target form.

    ``impl(t, p, w, scale, values, grad, hess, parallel, *hp) -> int`` fills any subset
    of: values[i] = l_i (unweighted), grad[i, j] = w_i * scale * dl_i/dp_ij and
    hess[i, j] = w_i * scale * d2l_i/dp_ij^2 (an empty array: not wanted), over blocks
    of rows on Numba's threads (prange) when ``parallel`` (the plan's choice, made safe by
    ``_numba_threads.launch``), else serially; it returns the
    number of y_pred values outside y_pred's domain when ``checks_pred`` (else anything).
    The plan locates the first one. (Row kernels keep ``prange``: their serial loops
    measured up to 5x slower per thread than the parallel gufunc, so wave 1's cheap
    Numba launch serves them best.)
    """

    layout = "rows"
    fills_partials = True

    def __init__(self, impl: Callable, *, labels: LabelKernels | None = None,
                 hessian: bool = True, checks_pred: bool = False, serial_below: int = 1024):
        self.impl = impl
        self.labels = labels
        self.has_hessian = bool(hessian)
        self.checks = ("y_pred",) if checks_pred else ()
        self.serial_below = int(serial_below)
        # the impls' fused serial entries (``rows._drivers``: ``impl.summed``), or None
        self._summed = (getattr(impl, "summed", None),
                        getattr(labels.impl, "summed", None) if labels is not None else None)
        # a serial run on labels counts the invalid ones itself (reported as bad_t)
        self.checks_labels = self._summed[1] is not None and bool(
            getattr(labels.impl, "checks_labels", False))

    def describe(self) -> str:
        return f"rows: {_qualname(self.impl)}"

    def run(self, job: Job) -> Outcome:
        p = job.p
        dtype = p.dtype
        n = p.shape[0]
        nothing = _NOTHING.get(dtype) or _nothing(dtype)
        values = np.empty(n, dtype=dtype) if job.summed or job.values is not None \
            else nothing[0]
        grad = nothing[1] if job.grad is None else job.grad
        hess = nothing[1] if job.hess is None else job.hess
        bad_labels = 0
        if job.parallel:
            impl = self.labels.impl if job.labels else self.impl
            with launch(job.workers) as parallel:
                count = impl(job.t, p, job.w, float(job.scale), values, grad, hess,
                             parallel, *job.args)
            total = row_total(job, values)
        else:               # serial: no launch context (``launch(1)`` is a no-op)
            summed = self._summed[1 if job.labels else 0]
            if summed is not None:
                # one compiled call: every block, the count of invalid labels and, for
                # one chunk of rows, the sum of the row values
                one = job.summed and job.partials is None and n <= R.CHUNK
                count, total, bad_labels = summed(job.t, p, job.w, float(job.scale),
                                                  values, grad, hess, *job.args, 0, -1, one)
                if not one:
                    total = row_total(job, values)
            else:
                impl = self.labels.impl if job.labels else self.impl
                count = impl(job.t, p, job.w, float(job.scale), values, grad, hess, False,
                             *job.args)
                total = row_total(job, values)
        store_values(job, values)
        if not job.check or (count == 0 and bad_labels == 0):
            return clean(total)
        bad_t = -1
        if bad_labels:
            bad_t = int(self.labels.first_invalid(job.t, p.shape[1], False, *job.args))
        bad_p = -1
        if self.checks and count != 0:
            bad_p = _located(count, p.reshape(-1), job.bounds[3:], job.scan_workers)
        return Outcome(total, bad_t, bad_p)


def row_total(job: Job, values: np.ndarray) -> float | None:
    """sum_i w_i values_i of a row kernel's per-row ``values`` (None unless the job sums):
    the deterministic chunked sum, or one chunk's sum directly when that is all there is."""
    if not job.summed:
        return None
    if job.partials is None and job.scan_workers <= 1 and values.shape[0] <= R.CHUNK:
        return R.one_chunk_sum(values, job.w)     # one chunk: its sum is the total
    return R.total(R.partial_sums(values, job.w, job.scan_workers, job.partials))


def store_values(job: Job, values: np.ndarray) -> None:
    """Per-row ``values`` times their weights into ``job.values`` (reduction "none");
    nothing when the job does not ask for them. ``values`` is scaled in place."""
    if job.values is not None:
        if job.w.shape[0]:
            values *= job.w.astype(values.dtype, copy=False)
        job.values[...] = values


_NOTHING: dict = {}


def _nothing(dtype) -> tuple[np.ndarray, np.ndarray]:
    """Shared empty (0,) and (0, 0) arrays of ``dtype``: "not wanted" outputs (nothing
    can be written to them; writeable all the same, since Numba would compile a
    read-only array type apart)."""
    pair = (np.empty(0, dtype), np.empty((0, 0), dtype))
    return _NOTHING.setdefault(np.dtype(dtype), pair)


def _located(count, flat: np.ndarray, bounds: tuple, workers: int) -> int:
    """The first index of ``flat`` outside ``bounds`` when a kernel counted ``count`` of
    them; PluginError when the count is missing or wrong."""
    from ..errors import PluginError

    if count is None:
        raise PluginError("a row kernel that checks y_pred returned no count of values "
                          "outside the domain")
    if not count:
        return -1
    i = R.first_outside_index(flat, *bounds, workers)
    if i < 0:
        raise PluginError(f"a row kernel reported {count} y_pred values outside the "
                          f"domain, but there are none")
    return i


class PairKernels(Kernels):
    """Adapter for plain per-element (or per-row) kernels ``(y_true, y_pred, out, *hp)``.

    ``forward`` fills per-term values, ``gradient`` per-element derivatives and the
    optional ``hessian`` per-element second derivatives; the adapter weights, scales and
    sums them. A parallel plugin kernel gets a serial twin (compiled from the same
    source) for small inputs, built on first need and kept here, per kernel.
    """

    fills_partials = True

    def __init__(self, forward: Callable, gradient: Callable, hessian: Callable | None = None,
                 *, layout: str = "elementwise", serial_below: int = R.CHUNK):
        self.forward, self.gradient, self.hessian = forward, gradient, hessian
        self.layout = layout
        self.has_hessian = hessian is not None
        self.serial_below = int(serial_below)
        self._serial: dict[int, Callable] = {}

    def describe(self) -> str:
        names = [_qualname(k) for k in (self.forward, self.gradient, self.hessian) if k]
        return "plain kernels: " + ", ".join(names)

    def _twin(self, kernel: Callable) -> Callable:
        twin = self._serial.get(id(kernel))
        if twin is None:
            from ._jit import serial_twin

            twin = self._serial.setdefault(id(kernel), serial_twin(kernel))
        return twin

    def _call(self, kernel: Callable, job: Job, out: np.ndarray) -> None:
        """``kernel(t, p, out, *hp)``: the plugin's (parallel) kernel through
        ``_numba_threads.launch`` when the plan asks for a parallel run, else its serial
        twin."""
        with launch(job.workers if job.parallel else 1) as parallel:
            if parallel:
                kernel(job.t, job.p, out, *job.args)
                return
        self._twin(kernel)(job.t, job.p, out, *job.args)

    def _derivative(self, kernel: Callable, job: Job, out: np.ndarray) -> None:
        self._call(kernel, job, out)
        if job.w.shape[0]:
            factor = job.w * job.scale
            out *= (factor if out.ndim == 1 else factor[:, None]).astype(out.dtype, copy=False)
        elif job.scale != 1.0:
            out *= out.dtype.type(job.scale)

    def run(self, job: Job) -> Outcome:
        total = None
        if job.summed or job.values is not None:
            values = np.empty(job.p.shape[0], dtype=job.p.dtype)
            self._call(self.forward, job, values)
            if job.summed:
                total = R.total(R.partial_sums(values, job.w, job.scan_workers, job.partials))
            if job.values is not None:
                if job.w.shape[0]:
                    values *= job.w.astype(values.dtype, copy=False)
                job.values[...] = values
        if job.grad is not None:
            self._derivative(self.gradient, job, job.grad)
        if job.hess is not None:
            self._derivative(self.hessian, job, job.hess)
        return clean(total)


def _qualname(obj: Any) -> str:
    py = getattr(obj, "py_func", obj)
    return f"{getattr(py, '__module__', '?')}.{getattr(py, '__qualname__', repr(py))}"
