"""nll: PyTorch's nll_loss, the negative log-likelihood of log-probabilities (n, C).

Integer labels (n,) pick -w_y x_y per row (class weights, ignore_index, PyTorch's
weighted mean: the label-range check and the "mean" denominator are softmax
cross-entropy's, ``rows.softmax_ce_first_invalid`` (run serially here,
``nll_first_invalid``) / ``softmax_ce_mean_weights`` / ``softmax_ce_scale_free``, fed a
label smoothing of 0); probability rows (n, C) give -sum_j w_j t_j x_j (cross-entropy on
log-probabilities). The loss is linear in y_pred: gradient -w t, Hessian 0.
Registered through the ``register_losses`` hook like a plugin.

Speed: the work is memory-bound (read y_pred, write the gradient), so everything is one
pass. The kernels count the values outside both domains as they go (``NllKernels``:
the plan runs no scan of its own), zero the gradient by blocks that stay in L1 before
the labels' entries land, and a large summed call adds up each chunk of row values in
the same pass (``reduce``'s chunks and order: the same bits as a separate sum). Units
of rows run on Numba's threads (prange) from ``rows.SERIAL_BELOW`` elements, serially
below.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from .._numba_threads import launch
from ..hookspecs import hookimpl
from ..kernels import LabelKernels, njit
from ..kernels import reduce as R
from ..kernels.protocol import (_NOTHING, Job, Outcome, _located, _nothing, clean,
                                row_total, store_values)
from ..spec import NONNEGATIVE, Domain, Hyperparameter, Interval, LossSpec
from .probabilistic import LOG_PROBABILITIES, SAMPLE_CLASSES, TargetFormKernels, \
    _dirichlet_rows, _softmax_check_args
from .rows import (BLOCK, SERIAL_BELOW, _block_rows, _label_state, _unlabelled_fill,
                   softmax_ce_first_invalid, softmax_ce_mean_weights, softmax_ce_scale_free)

CHUNK = R.CHUNK


@njit(inline="always", error_model="numpy")
def _outside_log_probabilities(pf):
    """How many of the flat ``pf`` are outside y_pred's domain [-inf, 0] (NaN included):
    one branch-free loop LLVM vectorizes, fused into the pass that writes the gradient
    so that a validated call reads y_pred once (the plan skips its own scan)."""
    bad = 0
    for q in range(pf.shape[0]):
        bad += 0 if pf[q] <= 0.0 else 1
    return bad


@njit(inline="always", error_model="numpy")
def _nll_soft_rows(t, p, w, scale, values, grad, hess, cw, r0, r1):
    """Rows [r0, r1), probability targets: l_i = -sum_j w_j t_ij x_ij (0 where t = 0).
    Returns how many of their y_true values are outside [0, 1] plus how many y_pred
    values are outside [-inf, 0] (NaN included); both counts are branch-free loops."""
    n_classes = p.shape[1]
    lo, hi = r0 * n_classes, r1 * n_classes
    tf = t.reshape(t.size)[lo:hi]
    bad = _outside_log_probabilities(p.reshape(p.size)[lo:hi])
    for q in range(hi - lo):
        v = tf[q]
        bad += 0 if (v >= 0.0) & (v <= 1.0) else 1
    for i in range(r0, r1):
        f = scale * (w[i] if w.shape[0] > 0 else 1.0)
        s = 0.0
        for j in range(n_classes):
            tw = np.float64(t[i, j]) * (cw[j] if cw.shape[0] > 0 else 1.0)
            s += -(tw * np.float64(p[i, j])) if tw != 0.0 else 0.0
            if grad.shape[0] > 0:
                grad[i, j] = -tw * f
            if hess.shape[0] > 0:
                hess[i, j] = 0.0
        if values.shape[0] > 0:
            values[i] = s
    return bad


@njit(inline="always", error_model="numpy")
def _nll_label_rows(t, p, w, scale, values, grad, hess, cw, ignore, has_ignore, r0, r1):
    """Rows [r0, r1), integer labels: l_i = -w_y x_iy; ignored rows 0 everywhere,
    out-of-range labels (validate=False) NaN. The rows' gradient (and Hessian) is
    zeroed by one flat loop (vectorized stores of at most ``BLOCK`` elements, in L1
    when the labels' entries follow), in the loop that counts the y_pred values outside
    [-inf, 0] (returned)."""
    n_classes = p.shape[1]
    lo, hi = r0 * n_classes, r1 * n_classes
    pf = p.reshape(p.size)[lo:hi]
    bad = 0
    if grad.shape[0] > 0:
        gf = grad.reshape(grad.size)[lo:hi]
        for q in range(hi - lo):
            bad += 0 if pf[q] <= 0.0 else 1
            gf[q] = 0.0
    else:
        bad = _outside_log_probabilities(pf)
    if hess.shape[0] > 0:
        hf = hess.reshape(hess.size)[lo:hi]
        for q in range(hi - lo):
            hf[q] = 0.0
    weighted = w.shape[0] > 0
    for i in range(r0, r1):
        y, wy = _label_state(t, i, n_classes, cw, ignore, has_ignore)
        if y >= 0:
            if values.shape[0] > 0:
                values[i] = -(wy * np.float64(p[i, y]))
            if grad.shape[0] > 0:
                grad[i, y] = -wy * scale * (w[i] if weighted else 1.0)
            continue
        fill = _unlabelled_fill(t, i, ignore, has_ignore)
        if values.shape[0] > 0:
            values[i] = fill
        if fill != 0.0:                     # NaN: an out-of-range label (validate=False)
            for j in range(n_classes * (grad.shape[0] > 0)):
                grad[i, j] = fill
            for j in range(n_classes * (hess.shape[0] > 0)):
                hess[i, j] = fill
    return bad


@njit(inline="always", error_model="numpy")
def _unit_rows(n_rows, n_classes, summed, u):
    """Rows [r0, r1) of unit u: a chunk of ``reduce.CHUNK`` rows when its total is
    summed in the same pass, else a block of ``BLOCK`` elements."""
    rows = CHUNK if summed else _block_rows(n_classes)
    r0 = u * rows
    return r0, min(r0 + rows, n_rows)


@njit(inline="always", error_model="numpy")
def _chunk_total(values, w, r0, r1):
    """sum_i values_i (* w_i) over rows [r0, r1) in float64, in index order:
    ``reduce.chunk_sums``'s arithmetic, so a chunk total is the same bits either way."""
    s = 0.0
    if w.shape[0] > 0:
        for i in range(r0, r1):
            s += np.float64(values[i]) * np.float64(w[i])
    else:
        for i in range(r0, r1):
            s += np.float64(values[i])
    return s


@njit(error_model="numpy")
def _nll_soft_unit(t, p, w, scale, values, grad, hess, partials, cw, u):
    """Unit u (``_unit_rows``) of probability rows, by blocks of ``BLOCK`` elements;
    with ``partials`` (non-empty) its chunk total into partials[u]. Returns the count
    of values outside the domains."""
    n_rows, n_classes = p.shape
    r0, r1 = _unit_rows(n_rows, n_classes, partials.shape[0] > 0, u)
    br = _block_rows(n_classes)
    bad = 0
    for s0 in range(r0, r1, br):
        bad += _nll_soft_rows(t, p, w, scale, values, grad, hess, cw, s0, min(s0 + br, r1))
    if partials.shape[0] > 0:
        partials[u] = _chunk_total(values, w, r0, r1)
    return bad


@njit(error_model="numpy")
def _nll_label_unit(t, p, w, scale, values, grad, hess, partials, cw, ignore, has_ignore, u):
    """Unit u of rows with integer labels: ``_nll_soft_unit``'s work for labels."""
    n_rows, n_classes = p.shape
    r0, r1 = _unit_rows(n_rows, n_classes, partials.shape[0] > 0, u)
    br = _block_rows(n_classes)
    bad = 0
    for s0 in range(r0, r1, br):
        bad += _nll_label_rows(t, p, w, scale, values, grad, hess, cw, ignore, has_ignore,
                               s0, min(s0 + br, r1))
    if partials.shape[0] > 0:
        partials[u] = _chunk_total(values, w, r0, r1)
    return bad


# The prange drivers: one per target form, over units (np.int64(u): prange's index is
# unsigned, the serial path passes a Python int; one signature, one compile of the unit).

@njit(parallel=True, error_model="numpy")
def _nll_soft_prange(t, p, w, scale, values, grad, hess, partials, cw):
    rows = CHUNK if partials.shape[0] > 0 else _block_rows(p.shape[1])
    bad = 0
    for u in prange((p.shape[0] + rows - 1) // rows):
        bad += _nll_soft_unit(t, p, w, scale, values, grad, hess, partials, cw, np.int64(u))
    return bad


@njit(parallel=True, error_model="numpy")
def _nll_label_prange(t, p, w, scale, values, grad, hess, partials, cw, ignore, has_ignore):
    rows = CHUNK if partials.shape[0] > 0 else _block_rows(p.shape[1])
    bad = 0
    for u in prange((p.shape[0] + rows - 1) // rows):
        bad += _nll_label_unit(t, p, w, scale, values, grad, hess, partials, cw, ignore,
                               has_ignore, np.int64(u))
    return bad


_NO_PARTIALS = np.empty(0, dtype=np.float64)


def _run_units(labels, t, p, w, scale, values, grad, hess, partials, parallel, cw, ignore,
               has_ignore):
    """The units of either form, on Numba's threads or one by one (a small input: one
    call of the unit function, whose compile is the only one a small call needs)."""
    if parallel:
        if labels:
            return _nll_label_prange(t, p, w, scale, values, grad, hess, partials, cw,
                                     ignore, has_ignore)
        return _nll_soft_prange(t, p, w, scale, values, grad, hess, partials, cw)
    n_rows, n_classes = p.shape
    rows = CHUNK if partials.shape[0] > 0 else max(1, BLOCK // n_classes)
    bad = 0
    for u in range((n_rows + rows - 1) // rows):
        if labels:
            bad += _nll_label_unit(t, p, w, scale, values, grad, hess, partials, cw, ignore,
                                   has_ignore, u)
        else:
            bad += _nll_soft_unit(t, p, w, scale, values, grad, hess, partials, cw, u)
    return bad


def nll_impl(t, p, w, scale, values, grad, hess, parallel, ls, cw, ignore, has_ignore):
    """nll on probability rows (the row-impl protocol): values[i] = -sum_j w_j t_ij x_ij,
    grad = -w t * f_i, hess = 0; returns the count of y_true values outside [0, 1] and
    y_pred values outside [-inf, 0]."""
    return _run_units(False, t, p, w, scale, values, grad, hess, _NO_PARTIALS, parallel,
                      cw, ignore, has_ignore)


def nll_label_impl(t, p, w, scale, values, grad, hess, parallel, ls, cw, ignore,
                   has_ignore):
    """nll on integer labels (the row-impl protocol): values[i] = -w_y x_iy (PyTorch),
    grad = -w_y f_i at the label, 0 elsewhere, hess = 0; returns the count of y_pred
    values outside [-inf, 0]."""
    return _run_units(True, t, p, w, scale, values, grad, hess, _NO_PARTIALS, parallel,
                      cw, ignore, has_ignore)


FUSED_SUM_ROWS = 8 * CHUNK     # rows from which a summed parallel call sums its chunks in
#                                the pass (8 chunks or more: both threads kept busy)


class NllKernels(TargetFormKernels):
    """nll's kernels: the row kernels, with both domains checked in the kernels' pass
    (``checks``: the plan scans neither; a count there is located here, y_true first as
    the plan's scans would) and, for a summed parallel call on ``FUSED_SUM_ROWS`` rows or
    more, each chunk's total summed in the same pass (no second pass over the row
    values, no second launch: the same chunk totals, so the same bits)."""

    def __init__(self, impl, loss, **options):
        TargetFormKernels.__init__(self, impl, loss, **options)
        self.checks = ("y_true", "y_pred")

    def run(self, job: Job) -> Outcome:
        if job.args[-1] and not job.labels:
            return TargetFormKernels.run(self, job)         # raises (ignore_index)
        p = job.p
        n, dtype = p.shape[0], p.dtype
        nothing = _NOTHING.get(dtype) or _nothing(dtype)
        grad = nothing[1] if job.grad is None else job.grad
        hess = nothing[1] if job.hess is None else job.hess
        # serial on at most one chunk of rows: one unit (one compiled call) that also
        # sums its chunk (the values are then computed even when not wanted: one pick or
        # row sum per row, less than a second call)
        one = not job.parallel and n <= CHUNK and job.partials is None
        values = np.empty(n, dtype=dtype) if one or job.summed or job.values is not None \
            else nothing[0]
        fused = job.summed and job.values is None and job.parallel and n >= FUSED_SUM_ROWS
        partials = _NO_PARTIALS
        if fused:
            partials = job.partials if job.partials is not None else \
                np.empty(R.n_chunks(n), dtype=np.float64)
        elif one:
            partials = np.empty(1, dtype=np.float64)
        if one:                            # the one unit, called directly
            if job.labels:
                count = _nll_label_unit(job.t, p, job.w, float(job.scale), values, grad,
                                        hess, partials, *job.args[1:], 0)
            else:
                count = _nll_soft_unit(job.t, p, job.w, float(job.scale), values, grad,
                                       hess, partials, job.args[1], 0)
        else:
            units = (job.labels, job.t, p, job.w, float(job.scale), values, grad, hess,
                     partials)
            if job.parallel:
                with launch(job.workers) as parallel:
                    count = _run_units(*units, parallel, *job.args[1:])
            else:           # serial: no launch context (``launch(1)`` is a no-op)
                count = _run_units(*units, False, *job.args[1:])
        if fused:
            total = R.total(partials)
        elif one:
            total = float(partials[0]) if job.summed else None    # the one chunk's total
        else:
            total = row_total(job, values)
        store_values(job, values)
        if not (job.check and count):
            return clean(total)
        if not job.labels:
            bad_t = R.first_outside_index(job.t.reshape(-1), *job.bounds[:3],
                                          job.scan_workers)
            if bad_t >= 0:
                return Outcome(total, bad_t, -1)
        return Outcome(total, -1, _located(count, p.reshape(-1), job.bounds[3:],
                                           job.scan_workers))


def nll_first_invalid(labels, n_classes, parallel, ls, cw, ignore, has_ignore):
    """``rows.softmax_ce_first_invalid`` always serial: the count of bad labels reads
    8 bytes a row at about 0.4 ns a label on one thread, while a second parallel launch
    in a call (the kernels' pass is the first) waited 8-16 ms for a thread on a busy
    2-core machine (median 10 ms against 1.2 ms serial, 2.5e6 labels)."""
    return softmax_ce_first_invalid(labels, n_classes, False, ls, cw, ignore, has_ignore)


def _args(hp):
    cw = hp["class_weight"]
    cw = np.zeros(0) if cw is None else np.array(cw, dtype=np.float64)
    ignore = hp["ignore_index"]
    return (0.0, cw, 0 if ignore is None else int(ignore), ignore is not None)


def nll_reference(y_true, y_pred, class_weight=None, ignore_index=None):
    x = np.asarray(y_pred, dtype=np.float64)
    t = np.asarray(y_true)
    w = np.ones(x.shape[-1]) if class_weight is None else np.asarray(class_weight, float)
    if t.shape == x.shape[:-1]:                                   # labels
        labels = t.astype(np.int64)
        keep = np.ones(labels.shape, bool) if ignore_index is None else labels != ignore_index
        safe = np.where(keep, labels, 0)
        picked = np.take_along_axis(x, safe[..., None], axis=-1)[..., 0]
        return np.where(keep, -w[safe] * picked, 0.0)
    tw = t.astype(np.float64) * w
    return -np.sum(np.where(tw != 0, tw * x, 0.0), axis=-1)


def nll_reference_hessian(y_true, y_pred, class_weight=None, ignore_index=None):
    """0: the loss is linear in y_pred."""
    return np.zeros(np.shape(y_pred))


def nll_sampler(rng, n, **hyper):
    """Probability target rows (with zeros, one one-hot row) and log-probability rows."""
    t = _dirichlet_rows(rng, n, SAMPLE_CLASSES, zeros=True)
    q = 0.9 * _dirichlet_rows(rng, n, SAMPLE_CLASSES, zeros=False) + 0.1 / SAMPLE_CLASSES
    return t, np.log(q / q.sum(axis=1, keepdims=True))


def specs() -> list[LossSpec]:
    return [LossSpec(
        name="nll", aliases=("nll_loss",), family="probabilistic", task="multiclass",
        kernels=NllKernels(
            nll_impl, "nll", serial_below=SERIAL_BELOW,
            labels=LabelKernels(nll_label_impl, nll_first_invalid,
                                softmax_ce_mean_weights, softmax_ce_scale_free)),
        reference=nll_reference, reference_hessian=nll_reference_hessian,
        sampler=nll_sampler, kernel_args=_args, check_args=_softmax_check_args,
        hyperparameters={
            "class_weight": Hyperparameter(
                "array", None, NONNEGATIVE, "per-class weights (length C), None: all 1"),
            "ignore_index": Hyperparameter(
                int, None, None, "label whose rows count 0 (loss, gradient and mean)")},
        domains={"y_true": Domain(Interval(0.0, 1.0), doc="integer class labels (n,) in "
                                  "[0, C), or probability rows (n, C) (see notes)"),
                 "y_pred": LOG_PROBABILITIES},
        summary="Negative log-likelihood of log-probabilities (n, C) (PyTorch's nll_loss): "
                "integer labels, class weights, ignore_index.",
        formula=r"\ell(y, x) = -w_y\, x_y \quad\text{(labels)},\qquad "
                r"\ell(t, x) = -\sum_j w_j t_j x_j \quad\text{(probability rows)}",
        properties={"convex", "nonnegative"},
        notes="y_pred holds log-probabilities (log_softmax outputs); for logits use "
              "softmax_cross_entropy, which is nll of log_softmax in one stable pass. "
              "With integer labels (shape y_pred.shape[:-1]) reduction='mean' is "
              "PyTorch's weighted mean: divided by the sum of the class weights of the "
              "non-ignored rows (times sample_weight); a mean over no weight raises "
              "DomainError. Probability rows (y_pred's shape) give -sum_j w_j t_j x_j "
              "per row (PyTorch's nll_loss takes labels only) and a mean over rows; "
              "ignore_index with them raises HyperparameterError. Linear in y_pred: "
              "gradient -w_y at the label (0 elsewhere), Hessian 0. A label's "
              "log-probability of -inf gives +inf.",
    )]


@hookimpl
def register_losses(register):
    for spec in specs():
        register(spec)
