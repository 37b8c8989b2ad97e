"""Margin family: Keras's hinge, squared_hinge and categorical_hinge, PyTorch's MultiMarginLoss.

* ``hinge``, ``squared_hinge``: element-wise (one scalar function each,
  ``elementwise_kernels``). Labels -1/1, or 0/1 as Keras converts them (0 -> -1): the
  kernel maps a label t to s = 1 if t > 0 else -1, and the y_true domain's
  ``label_sets`` ({-1, 1} or {0, 1}, one set for the whole array) refuses anything else,
  a mix of -1 and 0 included. The kernels check the label sets in the same pass as the
  loss (``elementwise_kernels(..., label_sets=...)``); the dispatcher locates the first
  offending label only when they report one.
* ``categorical_hinge``: rows (n, C) of targets in [0, 1] (one-hot, as Keras expects).
* ``multi_margin``: rows (n, C) of scores with integer labels (n,) (PyTorch), or with
  probability rows (n, C): then the expected loss sum_c t_c l(x, c) over the target
  distribution (one-hot rows: the label's loss).

Row blocks run on ``rows._drivers`` (serial below ``rows.SERIAL_BELOW`` elements, prange
above) and count non-finite scores in the same pass (the y_pred domain check, fused).

Kinks: every loss here is piecewise polynomial in y_pred. Where a hinge term is exactly
at its kink (margin term exactly 0) it counts as inactive: gradient 0 from it (as MAE's
at r = 0, and PyTorch's MultiMarginLoss, which tests z > 0) and second derivative 0 (as
Smooth L1's at |r| = beta). The Hessian diagonal is 0 for the piecewise-linear losses
(hinge, categorical_hinge, multi_margin with p = 1) and 2 w (times the weights) per
active term for the squared ones.
"""

from __future__ import annotations

import numpy as np

from ..errors import ShapeError
from ..hookspecs import hookimpl
from ..kernels import LabelKernels, elementwise_kernels, njit, row_kernels
from ..kernels.elementwise import CHEAP_SERIAL_BELOW
from ..spec import NONNEGATIVE, Domain, Hyperparameter, Interval, LossSpec
from .rows import SERIAL_BELOW, _block_range, _drivers, softmax_ce_first_invalid

FAMILY = "margin"
_HUGE = 1.7976931348623157e308

HINGE_LABELS = Domain(Interval(-1.0, 1.0), label_sets=((-1.0, 1.0), (0.0, 1.0)),
                      doc="labels -1/1, or 0/1 (0 counts as -1, as Keras converts them); "
                          "one set for the whole array")
SCORES = Domain(doc="scores (decision values, logits: any finite real)")
TARGET_ROWS = Domain(Interval(0.0, 1.0), doc="one-hot rows (n, C) (or soft targets in "
                                             "[0, 1])")
LABELS_OR_ROWS = Domain(Interval(0.0, 1.0), doc="integer class labels (n,) in [0, C), or "
                                                "probability rows (n, C) (see notes)")


# -- element-wise: hinge, squared_hinge --------------------------------------------------------

@njit(error_model="numpy")
def hinge_elem(t, p):
    """max(1 - s p, 0), s = 1 if t > 0 else -1; d/dp -s where active (1 - s p > 0), else 0."""
    s = 1.0 if np.float64(t) > 0.0 else -1.0
    m = 1.0 - s * np.float64(p)
    active = m > 0.0
    return (m if active else 0.0), (-s if active else 0.0), 0.0


@njit(error_model="numpy")
def squared_hinge_elem(t, p):
    """max(1 - s p, 0)^2; d/dp -2 s max(1 - s p, 0); d2/dp2 2 where active, else 0."""
    s = 1.0 if np.float64(t) > 0.0 else -1.0
    m = 1.0 - s * np.float64(p)
    active = m > 0.0
    v = m if active else 0.0
    return v * v, -2.0 * s * v, (2.0 if active else 0.0)


def _signs(y_true):
    """Keras's labels as -1/1 (0/1 labels: 0 -> -1)."""
    return np.where(np.asarray(y_true, np.float64) > 0, 1.0, -1.0)


def _hinge_margins(y_true, y_pred):
    return 1.0 - _signs(y_true) * np.asarray(y_pred, np.float64)


def hinge_reference(y_true, y_pred):
    return np.maximum(_hinge_margins(y_true, y_pred), 0.0)


def hinge_reference_hessian(y_true, y_pred):
    return np.zeros(np.shape(y_pred))


def squared_hinge_reference(y_true, y_pred):
    return np.maximum(_hinge_margins(y_true, y_pred), 0.0) ** 2


def squared_hinge_reference_hessian(y_true, y_pred):
    return np.where(_hinge_margins(y_true, y_pred) > 0.0, 2.0, 0.0)


def hinge_sampler(rng, n, **hyper):
    """-1/1 labels (0/1 with probability 1/2) and scores whose margins 1 - s p keep at
    least 0.05 from the kink (finite differences stay on one side), some active, some not."""
    s = np.where(rng.random(n) < 0.5, 1.0, -1.0)
    d = rng.uniform(0.05, 2.0, n) * np.where(rng.random(n) < 0.6, -1.0, 1.0)
    p = s * (1.0 + d)                               # margin 1 - s p = -d
    t = (s + 1.0) / 2.0 if rng.random() < 0.5 else s
    return t, p


# -- categorical_hinge (rows) ------------------------------------------------------------------

@njit(inline="always", error_model="numpy")
def _categorical_hinge_block(t, p, w, scale, values, grad, hess, b):
    """Rows of block b: pos = sum_j t_j p_j, a_j = (1 - t_j) p_j, neg = max_j a_j,
    l = max(neg - pos + 1, 0); where l > 0, d l/dp_j = -t_j + (1 - t_j) / m on the m
    classes attaining the max (the max's gradient shared among ties, as TensorFlow and
    PyTorch do), else 0. Hessian 0. Returns the number of non-finite scores."""
    n_classes = p.shape[1]
    r0, r1 = _block_range(p, b)
    weighted = w.shape[0] > 0
    bad = 0
    for i in range(r0, r1):
        pos = 0.0
        neg = -np.inf
        for j in range(n_classes):
            tj = np.float64(t[i, j])
            pj = np.float64(p[i, j])
            bad += 0 if (pj >= -_HUGE) & (pj <= _HUGE) else 1
            pos += tj * pj
            neg = max(neg, (1.0 - tj) * pj)
        ties = 0
        for j in range(n_classes):
            ties += 1 if (1.0 - np.float64(t[i, j])) * np.float64(p[i, j]) == neg else 0
        v = neg - pos + 1.0
        active = v > 0.0
        if values.shape[0] > 0:
            values[i] = v if active else 0.0
        if grad.shape[0] > 0:
            f = (w[i] * scale if weighted else scale) if active else 0.0
            share = 1.0 / max(ties, 1)
            for j in range(n_classes):
                tj = np.float64(t[i, j])
                a = (1.0 - tj) * np.float64(p[i, j])
                g = -tj + ((1.0 - tj) * share if a == neg else 0.0)
                grad[i, j] = g * f
        if hess.shape[0] > 0:
            for j in range(n_classes):
                hess[i, j] = 0.0
    return bad


categorical_hinge_impl = _drivers(
    "categorical_hinge_impl", _categorical_hinge_block, (),
    doc="Keras's categorical_hinge per row: max(max_j (1 - t_j) p_j - sum_j t_j p_j + 1, "
        "0); Hessian 0. Returns the number of non-finite scores.")


def categorical_hinge_reference(y_true, y_pred):
    t, p = np.asarray(y_true, np.float64), np.asarray(y_pred, np.float64)
    pos = np.sum(t * p, axis=-1)
    neg = np.max((1.0 - t) * p, axis=-1)
    return np.maximum(neg - pos + 1.0, 0.0)


def categorical_hinge_reference_hessian(y_true, y_pred):
    return np.zeros(np.shape(y_pred))


def _near_kinks(z, margins):
    """Rows of scores where some hinge term is within 0.05 of its kink: two scores within
    0.1 (ties of a max), a gap within 0.05 of a margin, a score within 0.05 of 0 or +-1
    (categorical_hinge's max with 0, its margin of 1)."""
    gaps = np.abs(z[:, :, None] - z[:, None, :])
    gaps = gaps + 10.0 * np.eye(z.shape[1])
    bad = (gaps < 0.1).any(axis=(1, 2))
    for m in margins:
        bad |= (np.abs(gaps - m) < 0.05).any(axis=(1, 2))
    a = np.abs(z)
    return bad | (a < 0.05).any(axis=1) | (np.abs(a - 1.0) < 0.05).any(axis=1)


def _score_rows(rng, n, n_classes=4, margins=(1.0,)):
    """One-hot rows and scores whose hinge terms stay at least 0.05 away from their kinks
    (redrawn where not; large samples, for benchmarks, are not filtered)."""
    labels = rng.integers(0, n_classes, n)
    t = np.zeros((n, n_classes))
    t[np.arange(n), labels] = 1.0
    z = rng.normal(0.0, 1.5, (n, n_classes))
    for _ in range(200 if n <= 4096 else 0):
        bad = _near_kinks(z, margins)
        if not bad.any():
            break
        z[bad] = rng.normal(0.0, 1.5, (int(bad.sum()), n_classes))
    return t, z, labels


def categorical_hinge_sampler(rng, n, **hyper):
    """One-hot target rows (one all-zero row, as in Keras's own example) and scores."""
    t, z, _ = _score_rows(rng, n)
    if n > 2:
        t[1] = 0.0
    return t, z


# -- multi_margin (rows; labels or probability rows) -------------------------------------------

@njit(inline="always", error_model="numpy")
def _mm_class_terms(row, c, wc, power, margin, gj, hj, want_grad, want_hess):
    """sum_{j != c} max(margin - x_c + x_j, 0)^p times wc; adds wc d/dx_j into gj and
    wc d2/dx_j2 into hj (x_c's own share included). Inactive at the kink (z > 0 only).
    Branch-free selects: with branches on z > 0 (random signs) the loop ran 4-5x slower."""
    n_classes = row.shape[0]
    xc = np.float64(row[c])
    s = 0.0
    gc = 0.0
    hc = 0.0
    for j in range(n_classes):
        v = max(margin - xc + np.float64(row[j]), 0.0)
        v = v if j != c else 0.0
        s += v if power == 1 else v * v
        if want_grad:
            d = (np.float64(v > 0.0) if power == 1 else 2.0 * v) * wc
            gj[j] += d
            gc += d
        if want_hess:
            h = (0.0 if power == 1 else 2.0 * np.float64(v > 0.0)) * wc
            hj[j] += h
            hc += h
    if want_grad:
        gj[c] -= gc
    if want_hess:
        hj[c] += hc
    return s * wc


@njit(inline="always", error_model="numpy")
def _mm_label_block(t, p, w, scale, values, grad, hess, power, margin, cw, b):
    """Rows of block b, labels y: l_i = w_y / C sum_{j != y} max(margin - x_y + x_j, 0)^p
    (PyTorch's multi_margin_loss); out-of-range labels (validate=False) give NaN. One
    branch-free pass per row (the runtime flags are loop-invariant: hoisted)."""
    n_classes = p.shape[1]
    r0, r1 = _block_range(p, b)
    weighted = w.shape[0] > 0
    want_grad = grad.shape[0] > 0
    want_hess = hess.shape[0] > 0
    inv_c = 1.0 / n_classes
    bad = 0
    for i in range(r0, r1):
        row = p[i]
        y = t[i]
        if y < 0 or y >= n_classes:
            for j in range(n_classes):
                v = np.float64(row[j])
                bad += 0 if (v >= -_HUGE) & (v <= _HUGE) else 1
            if values.shape[0] > 0:
                values[i] = np.nan
            for j in range(n_classes * want_grad):
                grad[i, j] = np.nan
            for j in range(n_classes * want_hess):
                hess[i, j] = np.nan
            continue
        wy = cw[y] if cw.shape[0] > 0 else 1.0
        f = (w[i] * scale if weighted else scale) * (wy * inv_c)
        xy = np.float64(row[y])
        s = 0.0
        gs = 0.0
        hs = 0.0
        for j in range(n_classes):
            x = np.float64(row[j])
            bad += 0 if (x >= -_HUGE) & (x <= _HUGE) else 1
            v = max(margin - xy + x, 0.0)
            v = v if j != y else 0.0
            s += v if power == 1 else v * v
            if want_grad:
                d = np.float64(v > 0.0) if power == 1 else 2.0 * v
                grad[i, j] = d * f
                gs += d
            if want_hess:
                h = 0.0 if power == 1 else 2.0 * np.float64(v > 0.0)
                hess[i, j] = h * f
                hs += h
        if values.shape[0] > 0:
            values[i] = wy * s * inv_c
        if want_grad:
            grad[i, y] = -gs * f
        if want_hess:
            hess[i, y] = hs * f
    return bad


@njit(inline="always", error_model="numpy")
def _mm_rows_block(t, p, w, scale, values, grad, hess, power, margin, cw, b):
    """Rows of block b, probability rows t: l_i = 1/C sum_c t_c w_c sum_{j != c}
    max(margin - x_c + x_j, 0)^p, the labels' loss averaged over the target distribution
    (classes with t_c = 0 skipped)."""
    n_classes = p.shape[1]
    r0, r1 = _block_range(p, b)
    weighted = w.shape[0] > 0
    want_grad = grad.shape[0] > 0
    want_hess = hess.shape[0] > 0
    inv_c = 1.0 / n_classes
    gj = np.zeros(n_classes)
    hj = np.zeros(n_classes)
    bad = 0
    for i in range(r0, r1):
        row = p[i]
        for j in range(n_classes):
            v = np.float64(row[j])
            bad += 0 if (v >= -_HUGE) & (v <= _HUGE) else 1
            gj[j] = 0.0
            hj[j] = 0.0
        s = 0.0
        for c in range(n_classes):
            tc = np.float64(t[i, c])
            if tc != 0.0:
                wc = tc * (cw[c] if cw.shape[0] > 0 else 1.0)
                s += _mm_class_terms(row, c, wc, power, margin, gj, hj, want_grad,
                                     want_hess)
        if values.shape[0] > 0:
            values[i] = s * inv_c
        f = (w[i] * scale if weighted else scale) * inv_c
        for j in range(n_classes * want_grad):
            grad[i, j] = gj[j] * f
        for j in range(n_classes * want_hess):
            hess[i, j] = hj[j] * f
    return bad


_MM_HP = ("power", "margin", "cw")
multi_margin_impl = _drivers("multi_margin_impl", _mm_rows_block, _MM_HP,
                             doc="multi_margin on probability rows: sum_c t_c l(x, c).")
multi_margin_label_impl = _drivers("multi_margin_label_impl", _mm_label_block, _MM_HP,
                                   labels="0, False",
                                   doc="multi_margin on integer labels (PyTorch).")


def _mm_first_invalid(labels, n_classes, parallel, power, margin, cw):
    """First label outside [0, C), or -1 (softmax cross-entropy's scan, nothing ignored)."""
    return softmax_ce_first_invalid(labels, n_classes, parallel, 0.0, cw, 0, False)


def _mm_args(hp):
    cw = hp["class_weight"]
    return (int(hp["p"]), float(hp["margin"]),
            np.zeros(0) if cw is None else np.array(cw, dtype=np.float64))


def _mm_check_args(args, pred_shape):
    cw = args[2]
    if cw.shape[0] and cw.shape[0] != pred_shape[-1]:
        raise ShapeError(f"class_weight has {cw.shape[0]} entries but y_pred has shape "
                         f"{tuple(pred_shape)} ({pred_shape[-1]} classes); they must be equal")


def _mm_label_terms(labels, x, p, margin, w):
    """Per-row PyTorch MultiMarginLoss for integer labels (float64)."""
    n_classes = x.shape[-1]
    xy = np.take_along_axis(x, labels[..., None], axis=-1)
    z = np.maximum(margin - xy + x, 0.0) ** p
    np.put_along_axis(z, labels[..., None], 0.0, axis=-1)
    return w[labels] * z.sum(axis=-1) / n_classes


def multi_margin_reference(y_true, y_pred, p=1, margin=1.0, class_weight=None):
    x = np.asarray(y_pred, dtype=np.float64)
    t = np.asarray(y_true)
    n_classes = x.shape[-1]
    w = np.ones(n_classes) if class_weight is None else np.asarray(class_weight, float)
    if t.shape == x.shape[:-1]:                                   # labels
        labels = t.astype(np.int64)
        return _mm_label_terms(labels, x, p, margin, w)
    t = t.astype(np.float64)
    total = np.zeros(x.shape[:-1])
    for c in range(n_classes):
        labels = np.full(x.shape[:-1], c, dtype=np.int64)
        tc = t[..., c]
        total = total + np.where(tc != 0, tc * _mm_label_terms(labels, x, p, margin, w), 0.0)
    return total


def multi_margin_reference_hessian(y_true, y_pred, p=1, margin=1.0, class_weight=None):
    """Diagonal: 0 for p = 1; for p = 2, 2 w_c t_c / C per active term at x_j (j != c)
    and the same at x_c (labels: t one-hot)."""
    x = np.asarray(y_pred, dtype=np.float64)
    t = np.asarray(y_true)
    if p == 1:
        return np.zeros(x.shape)
    n_classes = x.shape[-1]
    w = np.ones(n_classes) if class_weight is None else np.asarray(class_weight, float)
    if t.shape == x.shape[:-1]:
        rows = np.zeros(x.shape)
        np.put_along_axis(rows, t.astype(np.int64)[..., None], 1.0, axis=-1)
        t = rows
    t = t.astype(np.float64)
    h = np.zeros(x.shape)
    for c in range(n_classes):
        z = margin - x[..., c:c + 1] + x
        active = (z > 0.0)
        active[..., c] = False
        coef = (2.0 * w[c] * t[..., c] / n_classes)[..., None]
        h = h + coef * active
        h[..., c] += (coef[..., 0] * active.sum(axis=-1))
    return h


def multi_margin_sampler(rng, n, **hyper):
    """Probability rows (a one-hot row, soft rows) and scores away from the kinks of a
    margin of 1 or 0.5 (the hyperparameter cases the kit tries)."""
    margin = float(hyper.get("margin", 1.0))
    t, z, _ = _score_rows(rng, n, margins=(1.0, margin))
    soft = rng.dirichlet(np.full(4, 0.7), size=n)
    keep = rng.random(n) < 0.5
    t[keep] = soft[keep]
    return t, z


# -- specs ------------------------------------------------------------------------------------

_HINGE_NOTES = (
    "Keras's {name}: y_true holds -1/1 labels, or 0/1 labels, which count as -1/1 (Keras "
    "converts a 0/1 tensor the same way); all of y_true must use one of the two sets: a "
    "mix of -1 and 0, or any other value, is a DomainError naming the first index that "
    "breaks the rule (lossreg.dask checks it per block). Element-wise: reduction='mean' "
    "averages over all elements, which is Keras's mean over the last axis then over the "
    "batch for rectangular inputs; reduction='none' gives per-element values (Keras's "
    "per-sample values are their mean over the last axis), and sample_weight is per "
    "element. At the kink (1 - s y_pred = 0) the term counts as inactive: {kink}.")


def _hinge_kernels(elem):
    """Element-wise kernels of a hinge loss that check ``HINGE_LABELS``'s label sets in
    their own pass (the domain and the kernels name the same sets, so the dispatcher
    skips its scan: ``dispatch.fuses_label_sets``)."""
    return elementwise_kernels(elem, style="quads", label_sets=HINGE_LABELS.label_sets,
                               serial_below=CHEAP_SERIAL_BELOW)


def specs() -> list[LossSpec]:
    mm_kernels = row_kernels(
        multi_margin_impl, checks_pred=True, serial_below=SERIAL_BELOW,
        labels=LabelKernels(multi_margin_label_impl, _mm_first_invalid))
    return [
        LossSpec(
            name="hinge", family=FAMILY, task="binary",
            reference=hinge_reference, reference_hessian=hinge_reference_hessian,
            kernels=_hinge_kernels(hinge_elem),
            domains={"y_true": HINGE_LABELS, "y_pred": SCORES}, sampler=hinge_sampler,
            summary="Hinge loss (Keras's hinge): the soft-margin SVM loss on -1/1 or 0/1 "
                    "labels.",
            formula=r"\ell(y, s) = \max(0,\ 1 - y\,s),\quad y \in \{-1, 1\}"
                    r"\ (0 \mapsto -1)",
            properties={"convex", "robust", "nonnegative"},
            notes=_HINGE_NOTES.format(name="hinge", kink="gradient 0 there (the "
                                      "subgradient MAE takes at r = 0); Hessian 0 "
                                      "everywhere (piecewise linear)"),
        ),
        LossSpec(
            name="squared_hinge", family=FAMILY, task="binary",
            reference=squared_hinge_reference,
            reference_hessian=squared_hinge_reference_hessian,
            kernels=_hinge_kernels(squared_hinge_elem),
            domains={"y_true": HINGE_LABELS, "y_pred": SCORES}, sampler=hinge_sampler,
            summary="Squared hinge loss (Keras's squared_hinge): the L2-SVM loss, "
                    "differentiable everywhere.",
            formula=r"\ell(y, s) = \max(0,\ 1 - y\,s)^2,\quad y \in \{-1, 1\}"
                    r"\ (0 \mapsto -1)",
            properties={"convex", "smooth", "nonnegative"},
            notes=_HINGE_NOTES.format(name="squared_hinge", kink="the gradient is "
                                      "continuous (0 there), the second derivative is "
                                      "taken as 0 there (2 where 1 - s y_pred > 0)"),
        ),
        LossSpec(
            name="categorical_hinge", family=FAMILY, task="multiclass",
            reference=categorical_hinge_reference,
            reference_hessian=categorical_hinge_reference_hessian,
            kernels=row_kernels(categorical_hinge_impl, checks_pred=True,
                                serial_below=SERIAL_BELOW),
            domains={"y_true": TARGET_ROWS, "y_pred": SCORES},
            sampler=categorical_hinge_sampler,
            summary="Categorical hinge (Keras's categorical_hinge): the best wrong class's "
                    "score must trail the true class's by a margin of 1.",
            formula=r"\ell(t, s) = \max\!\left(0,\ \max_j (1 - t_j) s_j - "
                    r"\sum_j t_j s_j + 1\right)",
            properties={"convex", "nonnegative"},
            notes="Keras's formula on rows (n, C) of one-hot targets, mean over rows. "
                  "Keras's docstring also mentions -1/+1 targets, but its formula does not "
                  "convert them (a -1 doubles that class's score in the max and "
                  "subtracts it from the target term), so lossreg asks y_true to be in "
                  "[0, 1] (one-hot rows; soft or all-zero rows follow the same formula). "
                  "The gradient of the max is shared equally among tied classes (as "
                  "TensorFlow and PyTorch do); at the kink (the bracket exactly 0) the "
                  "gradient is taken as 0; the Hessian is 0 (piecewise linear).",
        ),
        LossSpec(
            name="multi_margin", aliases=("multi_margin_loss",), family=FAMILY,
            task="multiclass", kernels=mm_kernels,
            reference=multi_margin_reference,
            reference_hessian=multi_margin_reference_hessian,
            sampler=multi_margin_sampler, kernel_args=_mm_args, check_args=_mm_check_args,
            hyperparameters={
                "p": Hyperparameter(int, 1, Interval(1, 2), "exponent of each margin "
                                    "term: 1 (hinge) or 2 (squared hinge)"),
                "margin": Hyperparameter(float, 1.0, NONNEGATIVE,
                                         "required gap between the true class's score and "
                                         "every other class's"),
                "class_weight": Hyperparameter(
                    "array", None, NONNEGATIVE, "per-class weights (length C) multiplying "
                    "the terms of a row whose label is that class; None: all 1")},
            domains={"y_true": LABELS_OR_ROWS, "y_pred": SCORES},
            summary="Multi-class margin loss (PyTorch's MultiMarginLoss): a hinge per wrong "
                    "class, on scores (n, C) and integer labels.",
            formula=r"\ell(y, x) = \frac{w_y}{C} \sum_{j \ne y} "
                    r"\max(0,\ \mathrm{margin} - x_y + x_j)^p",
            properties={"convex", "nonnegative"},
            notes="PyTorch's semantics: class_weight[y] multiplies each term of a row with "
                  "label y (after the power, as PyTorch's kernel does), and the sum over "
                  "the C - 1 wrong classes is divided by C; reduction='mean' is the plain "
                  "mean over rows (class weights do not enter the denominator, unlike nll). "
                  "PyTorch allows any margin; lossreg asks margin >= 0. With probability "
                  "rows (y_pred's shape) as y_true the loss is the labels' loss averaged "
                  "over the target distribution, sum_c t_c l(x, c) (one-hot rows give the "
                  "labels' loss). A term exactly at its kink (margin - x_y + x_j = 0) is "
                  "inactive, as in PyTorch (gradient 0). Hessian diagonal: 0 for p = 1; "
                  "for p = 2, 2 w_y / C per active term at x_j and their sum at x_y "
                  "(PyTorch has no double backward for this loss).",
        ),
    ]


@hookimpl
def register_losses(register):
    for spec in specs():
        register(spec)
