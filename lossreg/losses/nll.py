"""nll: PyTorch's nll_loss, the negative log-likelihood of log-probabilities (n, C).

Integer labels (n,) pick -w_y x_y per row (class weights, ignore_index, PyTorch's
weighted mean: the label-range check and the "mean" denominator are softmax
cross-entropy's, ``rows.softmax_ce_first_invalid`` / ``softmax_ce_mean_weights`` /
``softmax_ce_scale_free``, fed a
label smoothing of 0); probability rows (n, C) give -sum_j w_j t_j x_j (cross-entropy on
log-probabilities). The loss is linear in y_pred: gradient -w t, Hessian 0. Block
functions on ``rows._drivers`` (serial below ``rows.SERIAL_BELOW`` elements, prange
above), registered through the ``register_losses`` hook like a plugin.
"""

from __future__ import annotations

import numpy as np

from ..hookspecs import hookimpl
from ..kernels import LabelKernels, njit
from ..spec import NONNEGATIVE, Domain, Hyperparameter, Interval, LossSpec
from .probabilistic import LOG_PROBABILITIES, SAMPLE_CLASSES, TargetFormKernels, \
    _dirichlet_rows, _softmax_check_args
from .rows import (SERIAL_BELOW, _block_range, _drivers, _label_state, _unlabelled_fill,
                   softmax_ce_first_invalid, softmax_ce_mean_weights, softmax_ce_scale_free)


@njit(error_model="numpy")
def _nll_soft_block(t, p, w, scale, values, grad, hess, ls, cw, ignore, has_ignore, b):
    """Rows of block b, probability targets: l_i = -sum_j w_j t_ij x_ij (0 where t = 0)."""
    n_classes = p.shape[1]
    r0, r1 = _block_range(p, b)
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
    return 0


@njit(error_model="numpy")
def _nll_label_block(t, p, w, scale, values, grad, hess, ls, cw, ignore, has_ignore, b):
    """Rows of block b, integer labels: l_i = -w_y x_iy; ignored rows 0 everywhere,
    out-of-range labels (validate=False) NaN."""
    n_classes = p.shape[1]
    r0, r1 = _block_range(p, b)
    for i in range(r0, r1):
        y, wy = _label_state(t, i, n_classes, cw, ignore, has_ignore)
        fill = 0.0 if y >= 0 else _unlabelled_fill(t, i, ignore, has_ignore)
        if values.shape[0] > 0:
            values[i] = -(wy * np.float64(p[i, y])) if y >= 0 else fill
        if grad.shape[0] > 0:
            for j in range(n_classes):
                grad[i, j] = fill
            if y >= 0:
                grad[i, y] = -wy * scale * (w[i] if w.shape[0] > 0 else 1.0)
        if hess.shape[0] > 0:
            for j in range(n_classes):
                hess[i, j] = fill
    return 0


_HP = ("ls", "cw", "ignore", "has_ignore")
nll_impl = _drivers("nll_impl", _nll_soft_block, _HP,
                    doc="nll on probability rows: -sum_j w_j t_ij x_ij per row.")
nll_label_impl = _drivers("nll_label_impl", _nll_label_block, _HP,
                          doc="nll on integer labels: -w_y x_iy per row (PyTorch).")


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
        kernels=TargetFormKernels(
            nll_impl, "nll", serial_below=SERIAL_BELOW,
            labels=LabelKernels(nll_label_impl, softmax_ce_first_invalid,
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
