"""Row kernels of the probabilistic family: KL, JS, cross-entropy, softmax cross-entropy.

Every row loss has three module-level kernels (parallel over blocks of rows, serial for
small inputs):

* ``*_forward(t, p, values, *hp)``: values[i] = l_i, the loss of row i;
* ``*_gradient(t, p, grad, *hp)``: grad[i, :] = d l_i / d p_i;
* ``*_value_grad(t, p, w, scale, values, grad, *hp)``: both in one pass over the data,
  the gradient already multiplied by ``w_i * scale`` (``scale`` alone when ``w`` is
  empty), which is what the dispatcher would otherwise do in a further pass.

The three run the same block function, so the fused kernel gives bit-identical float64
results to the forward/gradient pair (tests/test_rows.py). Transcendentals come from
``lossreg.kernels.vmath``, and the per-element work of a block is a flat loop with no
float reduction (terms into a float64 scratch, summed per row in index order
afterwards), which LLVM vectorizes; libm calls would stop it. softmax_ce's value_grad
also counts non-finite logits (``LossSpec.value_grad_checks``).

Numerics: float64 arithmetic whatever the input dtype; 0 log 0 = 0; softmax subtracts
the row max (log-sum-exp). Kernels use Numba's "numpy" error model: a division by zero
gives inf (IEEE) rather than raising.
"""

from __future__ import annotations

import math

import numpy as np
from numba import prange

from ..kernels import njit, vmath

_TINY = 2.2250738585072014e-308   # smallest normal float64
_HUGE = 1.7976931348623157e308
_HALF_LOG2 = 0.5 * math.log(2.0)


# -- per-element terms (shared by every kernel of a loss) ---------------------------------

@njit(inline="always", error_model="numpy")
def _xlog_ratio(a, b):
    """a log(a / b) for a > 0, b >= 0 (+inf at b = 0) without overflow of a / b:
    log(a / b) when the ratio is a normal float, else log a - log b (two logs either way,
    selected branch-free so the loop vectorizes)."""
    r = a / b
    normal = (r >= _TINY) & (r <= _HUGE)
    return a * (vmath.log(r if normal else a) - vmath.log(1.0 if normal else b))


@njit(inline="always", error_model="numpy")
def _kl_term(t, q, eps):
    a = np.float64(t)
    v = _xlog_ratio(a if a > 0.0 else 1.0, max(np.float64(q), eps))
    return v if a > 0.0 else 0.0


@njit(inline="always", error_model="numpy")
def _kl_term_fast(t, q, eps):
    """(_kl_term's value when ok, ok): one log, exact whenever the ratio is normal."""
    a = np.float64(t)
    b = max(np.float64(q), eps)
    r = a / b
    ok = ((r >= _TINY) & (r <= _HUGE)) | ~(a > 0.0)
    v = a * vmath.log(r if ok else 1.0)     # == _xlog_ratio's a * (log r - log 1)
    return (v if a > 0.0 else 0.0), ok


@njit(inline="always", error_model="numpy")
def _kl_grad(t, q, eps):
    a = np.float64(t)
    b = np.float64(q)
    return -a / b if (a > 0.0) & (b >= eps) else 0.0


@njit(inline="always", error_model="numpy")
def _js_term(t, q):
    a = np.float64(t)
    b = np.float64(q)
    m = 0.5 * a + 0.5 * b
    la = a * vmath.log(a / m)
    lb = b * vmath.log(b / m)
    return (la if a > 0.0 else 0.0) + (lb if b > 0.0 else 0.0)


@njit(inline="always", error_model="numpy")
def _js_grad(t, q):
    a = np.float64(t)
    b = np.float64(q)
    g = 0.5 * vmath.log(b / (0.5 * a + 0.5 * b))
    return _HALF_LOG2 if (a == 0.0) & (b == 0.0) else g


@njit(inline="always", error_model="numpy")
def _ce_term(t, q):
    a = np.float64(t)
    v = -(a * vmath.log(np.float64(q)))
    return v if a > 0.0 else 0.0


@njit(inline="always", error_model="numpy")
def _ce_grad(t, q):
    a = np.float64(t)
    g = -a / np.float64(q)
    return g if a > 0.0 else 0.0


# -- element-wise row losses: KL, JS, cross-entropy ----------------------------------------
# A row's terms do not depend on the rest of the row, so each block of rows is handled as
# one flat run of BLOCK elements: terms into a float64 scratch and derivatives into the
# gradient by loops LLVM vectorizes whatever C is, then each row's terms summed in index
# order. ``values`` or ``grad`` empty: not wanted (forward / gradient kernels).

@njit(inline="always", error_model="numpy")
def _flat_block(t, p, grad, b):
    """Rows [r0, r1) of block b as flat element ranges of t, p and grad."""
    n, n_classes = p.shape
    br = _block_rows(n_classes)
    r0 = b * br
    r1 = min(r0 + br, n)
    lo, hi = r0 * n_classes, r1 * n_classes
    gf = grad.reshape(grad.size)[lo:hi] if grad.shape[0] > 0 else grad.reshape(grad.size)
    return r0, r1, t.reshape(t.size)[lo:hi], p.reshape(p.size)[lo:hi], gf


@njit(inline="always", error_model="numpy")
def _row_sums(e, n_classes, values, r0, r1, half):
    """values[r] = sum_j e[k * C + j] in index order (times 1/2 for JS), k = r - r0."""
    for k in range(r1 - r0):
        s = 0.0
        base = k * n_classes
        for j in range(n_classes):
            s += e[base + j]
        values[r0 + k] = 0.5 * s if half else s


@njit(error_model="numpy")
def _kl_block(t, p, w, scale, values, grad, eps, b):
    n_classes = p.shape[1]
    r0, r1, tf, pf, gf = _flat_block(t, p, grad, b)
    if values.shape[0] > 0:
        e = np.empty(tf.shape[0])
        # one log per element, a log(a / b); the rare terms whose ratio a / b is not a
        # normal float (they need log a - log b) are counted and redone one by one
        rare = 0
        for q in range(tf.shape[0]):
            v, ok = _kl_term_fast(tf[q], pf[q], eps)
            e[q] = v
            rare += 0 if ok else 1
        if rare:
            for q in range(tf.shape[0]):
                e[q] = _kl_term(tf[q], pf[q], eps)
        _row_sums(e, n_classes, values, r0, r1, False)
    if grad.shape[0] > 0:
        if w.shape[0] == 0:
            for q in range(tf.shape[0]):
                gf[q] = _kl_grad(tf[q], pf[q], eps) * scale
        else:
            for k in range(r1 - r0):
                factor = w[r0 + k] * scale
                for q in range(k * n_classes, (k + 1) * n_classes):
                    gf[q] = _kl_grad(tf[q], pf[q], eps) * factor


@njit(error_model="numpy")
def _js_block(t, p, w, scale, values, grad, b):
    n_classes = p.shape[1]
    r0, r1, tf, pf, gf = _flat_block(t, p, grad, b)
    if values.shape[0] > 0:
        e = np.empty(tf.shape[0])
        for q in range(tf.shape[0]):
            e[q] = _js_term(tf[q], pf[q])
        _row_sums(e, n_classes, values, r0, r1, True)
    if grad.shape[0] > 0:
        if w.shape[0] == 0:
            for q in range(tf.shape[0]):
                gf[q] = _js_grad(tf[q], pf[q]) * scale
        else:
            for k in range(r1 - r0):
                factor = w[r0 + k] * scale
                for q in range(k * n_classes, (k + 1) * n_classes):
                    gf[q] = _js_grad(tf[q], pf[q]) * factor


@njit(error_model="numpy")
def _ce_block(t, p, w, scale, values, grad, b):
    n_classes = p.shape[1]
    r0, r1, tf, pf, gf = _flat_block(t, p, grad, b)
    if values.shape[0] > 0:
        e = np.empty(tf.shape[0])
        for q in range(tf.shape[0]):
            e[q] = _ce_term(tf[q], pf[q])
        _row_sums(e, n_classes, values, r0, r1, False)
    if grad.shape[0] > 0:
        if w.shape[0] == 0:
            for q in range(tf.shape[0]):
                gf[q] = _ce_grad(tf[q], pf[q]) * scale
        else:
            for k in range(r1 - r0):
                factor = w[r0 + k] * scale
                for q in range(k * n_classes, (k + 1) * n_classes):
                    gf[q] = _ce_grad(tf[q], pf[q]) * factor


@njit(parallel=True, error_model="numpy")
def _kl_parallel(t, p, w, scale, values, grad, eps):
    for b in prange(_n_blocks(p)):
        _kl_block(t, p, w, scale, values, grad, eps, b)


@njit(error_model="numpy")
def _kl(t, p, w, scale, values, grad, eps):
    if p.size >= SERIAL_BELOW:
        _kl_parallel(t, p, w, scale, values, grad, eps)
        return
    for b in range(_n_blocks(p)):
        _kl_block(t, p, w, scale, values, grad, eps, b)


@njit(parallel=True, error_model="numpy")
def _js_parallel(t, p, w, scale, values, grad):
    for b in prange(_n_blocks(p)):
        _js_block(t, p, w, scale, values, grad, b)


@njit(error_model="numpy")
def _js(t, p, w, scale, values, grad):
    if p.size >= SERIAL_BELOW:
        _js_parallel(t, p, w, scale, values, grad)
        return
    for b in range(_n_blocks(p)):
        _js_block(t, p, w, scale, values, grad, b)


@njit(parallel=True, error_model="numpy")
def _ce_parallel(t, p, w, scale, values, grad):
    for b in prange(_n_blocks(p)):
        _ce_block(t, p, w, scale, values, grad, b)


@njit(error_model="numpy")
def _ce(t, p, w, scale, values, grad):
    if p.size >= SERIAL_BELOW:
        _ce_parallel(t, p, w, scale, values, grad)
        return
    for b in range(_n_blocks(p)):
        _ce_block(t, p, w, scale, values, grad, b)


@njit(error_model="numpy")
def kl_forward(t, p, out, eps):
    """out[i] = sum_j t_ij log(t_ij / max(p_ij, eps)), 0 log 0 = 0 (+inf if t > 0 = q)."""
    _kl(t, p, np.empty(0), 1.0, out, np.empty((0, 0), out.dtype), eps)


@njit(error_model="numpy")
def kl_gradient(t, p, out, eps):
    """d/dq_ij = -t_ij / q_ij where t_ij > 0 and q_ij >= eps, else 0 (-inf at q = 0 < t)."""
    _kl(t, p, np.empty(0), 1.0, np.empty(0, out.dtype), out, eps)


@njit(error_model="numpy")
def kl_value_grad(t, p, w, scale, values, grad, eps):
    _kl(t, p, w, scale, values, grad, eps)


@njit(error_model="numpy")
def js_forward(t, p, out):
    """out[i] = 1/2 sum_j [t log(t/m) + q log(q/m)], m = (t + q)/2, 0 log 0 = 0."""
    _js(t, p, np.empty(0), 1.0, out, np.empty((0, 0), out.dtype))


@njit(error_model="numpy")
def js_gradient(t, p, out):
    """d/dq_ij = 1/2 log(q / m); at q = t = 0 its right limit 1/2 log 2; -inf at q = 0 < t."""
    _js(t, p, np.empty(0), 1.0, np.empty(0, out.dtype), out)


@njit(error_model="numpy")
def js_value_grad(t, p, w, scale, values, grad):
    _js(t, p, w, scale, values, grad)


@njit(error_model="numpy")
def ce_forward(t, p, out):
    """out[i] = -sum_j t_ij log q_ij, 0 log 0 = 0 (+inf where t > 0 = q)."""
    _ce(t, p, np.empty(0), 1.0, out, np.empty((0, 0), out.dtype))


@njit(error_model="numpy")
def ce_gradient(t, p, out):
    """d/dq_ij = -t_ij / q_ij where t_ij > 0, else 0 (-inf at q = 0 < t)."""
    _ce(t, p, np.empty(0), 1.0, np.empty(0, out.dtype), out)


@njit(error_model="numpy")
def ce_value_grad(t, p, w, scale, values, grad):
    _ce(t, p, w, scale, values, grad)


# -- softmax cross-entropy -----------------------------------------------------------------
# Rows are processed in blocks of about BLOCK elements. Per block: the row maxima, then
# exp(z - max) for the whole block as one flat loop into a float64 scratch (vectorized
# whatever C is: a row of 4 classes is too short for the loop vectorizer), the row sums
# in index order, their logs (another flat loop), and finally each row's value and
# gradient. Forward, gradient and value_grad all run this same block code.

BLOCK = 2048            # elements per block (the float64 scratch: 16 KiB, in L1)
TRANSPOSE_BELOW = 16    # fewer classes than this: blocks are processed class-major
SERIAL_BELOW = 1024     # elements: below, a serial loop (measured crossover ~600 elements)


@njit(inline="always", error_model="numpy")
def _block_rows(n_classes):
    return max(1, BLOCK // n_classes)


@njit(inline="always", error_model="numpy")
def _n_blocks(z):
    br = _block_rows(z.shape[1])
    return (z.shape[0] + br - 1) // br


@njit(inline="always", error_model="numpy")
def _row_max(zi):
    m = np.float64(zi[0])
    for j in range(1, zi.shape[0]):
        m = max(m, np.float64(zi[j]))
    return m


@njit(inline="always", error_model="numpy")
def _softmax_block(z, r0, r1, e, m, se, lse):
    """For rows r0 <= r < r1 (k = r - r0): m[k] = max_j z_rj, se[k] = sum_j exp(z_rj - m[k])
    (index order), lse[k] = log se[k], and the exps in the float64 scratch ``e``; returns
    the strides (sk, sj) of exp (k, j) in ``e``: element e[k * sk + j * sj], and the
    number of logits in the block that are not finite (the y_pred domain check, fused).

    Few classes (C < TRANSPOSE_BELOW): the block is stored transposed (class-major), so
    every step is a loop over the block's rows that LLVM vectorizes, instead of a loop
    over a handful of classes per row. Many classes: row-major, loops over classes.
    Either way each row's max and sum run over j = 0, 1, ... in order: the same numbers.
    """
    n_classes = z.shape[1]
    rows = r1 - r0
    zb = z[r0:r1]
    if n_classes < TRANSPOSE_BELOW:
        for k in range(rows):
            zk = zb[k]
            for j in range(n_classes):
                e[j * rows + k] = np.float64(zk[j])
        for k in range(rows):
            m[k] = e[k]
        for j in range(1, n_classes):
            ej = e[j * rows:(j + 1) * rows]
            for k in range(rows):
                m[k] = max(m[k], ej[k])
        for k in range(rows):
            se[k] = 0.0
        for j in range(n_classes):
            ej = e[j * rows:(j + 1) * rows]
            for k in range(rows):
                ej[k] = vmath.exp(ej[k] - m[k])
            for k in range(rows):
                se[k] += ej[k]
        sk, sj = 1, rows
    else:
        for k in range(rows):
            zk = zb[k]
            mk = _row_max(zk)
            m[k] = mk
            ek = e[k * n_classes:(k + 1) * n_classes]
            for j in range(n_classes):
                ek[j] = vmath.exp(np.float64(zk[j]) - mk)
            s = 0.0
            for j in range(n_classes):
                s += ek[j]
            se[k] = s
        sk, sj = n_classes, 1
    for k in range(rows):
        lse[k] = vmath.log(se[k])
    zf = z.reshape(z.size)[r0 * n_classes:r1 * n_classes]   # the block's logits, flat
    bad = 0
    for q in range(zf.shape[0]):
        v = np.float64(zf[q])
        bad += 0 if (v >= -_HUGE) & (v <= _HUGE) else 1
    return sk, sj, bad


@njit(inline="always", error_model="numpy")
def _target_weight(t, i, j, ls, n_classes, cw):
    """Smoothed soft target times class weight: ((1-ls) t_ij + ls/C) w_j."""
    v = np.float64(t[i, j]) * (1.0 - ls) + ls / n_classes
    if cw.shape[0] > 0:
        v *= cw[j]
    return v


@njit(inline="always", error_model="numpy")
def _soft_value(t, i, zi, m, lse, ls, cw):
    """-sum_j w_j t'_ij log softmax_j, terms with w_j t'_ij = 0 skipped (no 0 * inf)."""
    n_classes = zi.shape[0]
    s = 0.0
    for j in range(n_classes):
        v = _target_weight(t, i, j, ls, n_classes, cw)
        if v != 0.0:
            s += v * ((m - np.float64(zi[j])) + lse)
    return s


@njit(inline="always", error_model="numpy")
def _soft_mass(t, i, ls, n_classes, cw):
    s = 0.0
    for j in range(n_classes):
        s += _target_weight(t, i, j, ls, n_classes, cw)
    return s


@njit(error_model="numpy")
def _soft_block(t, z, w, scale, values, grad, ls, cw, b):
    """Probability targets, block b of rows: values[i] = -sum_j w_j t'_ij log softmax_ij;
    grad[i, j] = (S_i softmax_ij - w_j t'_ij) * factor_i, S_i = sum_j w_j t'_ij, factor_i =
    w_i * scale (``scale`` when ``w`` is empty). An empty ``values`` or ``grad``: not
    wanted (runtime flags, so one compile serves all three kernels)."""
    n, n_classes = z.shape
    br = _block_rows(n_classes)
    weighted = w.shape[0] > 0
    want_value = values.shape[0] > 0
    want_grad = grad.shape[0] > 0
    r0 = b * br
    r1 = min(r0 + br, n)
    e = np.empty((r1 - r0) * n_classes)
    m = np.empty(r1 - r0)
    se = np.empty(r1 - r0)
    lse = np.empty(r1 - r0)
    sk, sj, bad = _softmax_block(z, r0, r1, e, m, se, lse)
    for k in range(r1 - r0):
        i = r0 + k
        if want_value:
            values[i] = _soft_value(t, i, z[i], m[k], lse[k], ls, cw)
        if want_grad:
            factor = w[i] * scale if weighted else scale
            sc = (1.0 / se[k]) * _soft_mass(t, i, ls, n_classes, cw)
            gi = grad[i]
            for j in range(n_classes):
                g = sc * e[k * sk + j * sj] - _target_weight(t, i, j, ls, n_classes, cw)
                gi[j] = g * factor
    return bad


@njit(error_model="numpy")
def softmax_ce_forward(t, z, out, ls, cw, ignore, has_ignore):
    """Probability targets: out[i] = -sum_j w_j t'_ij log softmax(z_i)_j."""
    _soft(t, z, np.empty(0), 1.0, out, np.empty((0, 0), out.dtype), ls, cw)


@njit(error_model="numpy")
def softmax_ce_gradient(t, z, out, ls, cw, ignore, has_ignore):
    """d/dz_ij = S_i softmax(z_i)_j - w_j t'_ij with S_i = sum_j w_j t'_ij."""
    _soft(t, z, np.empty(0), 1.0, np.empty(0, out.dtype), out, ls, cw)


@njit(error_model="numpy")
def softmax_ce_value_grad(t, z, w, scale, values, grad, ls, cw, ignore, has_ignore):
    """Returns the number of non-finite logits (value_grad_checks)."""
    return _soft(t, z, w, scale, values, grad, ls, cw)


@njit(inline="always", error_model="numpy")
def _label_state(labels, i, n_classes, cw, ignore, has_ignore):
    """(label, weight of the label's class) for row i; label -1 for ignored or invalid rows."""
    y = labels[i]
    if (has_ignore and y == ignore) or y < 0 or y >= n_classes:
        return -1, 0.0
    return y, (cw[y] if cw.shape[0] > 0 else 1.0)


@njit(error_model="numpy")
def _smooth_weight(ls, n_classes, cw):
    """ls/C * sum_j w_j: the smoothing share of the target mass."""
    if ls == 0.0:
        return 0.0
    if cw.shape[0] == 0:
        return ls
    s = 0.0
    for j in range(n_classes):
        s += cw[j]
    return ls / n_classes * s


@njit(inline="always", error_model="numpy")
def _label_value(zi, y, c, m, lse, ls, cw):
    """(1-ls) w_y (-log s_y) + ls/C sum_j w_j (-log s_j) from the row's max and lse."""
    n_classes = zi.shape[0]
    s = 0.0
    if c != 0.0:
        s += c * ((m - np.float64(zi[y])) + lse)
    if ls != 0.0:
        for j in range(n_classes):
            v = ls / n_classes * (cw[j] if cw.shape[0] > 0 else 1.0)
            if v != 0.0:
                s += v * ((m - np.float64(zi[j])) + lse)
    return s


@njit(error_model="numpy")
def _label_block(labels, z, w, scale, values, grad, ls, cw, ignore, has_ignore, b):
    """Labels, block b of rows: values[i] = (1-ls) w_y (-log s_y) + ls/C sum_j w_j (-log s_j);
    grad[i, j] = (S softmax_j - (1-ls) w_y [j = y] - ls/C w_j) * factor_i. An ignored row
    gives 0s, an out-of-range label (only reachable with validate=False) NaNs."""
    n, n_classes = z.shape
    br = _block_rows(n_classes)
    weighted = w.shape[0] > 0
    want_value = values.shape[0] > 0
    want_grad = grad.shape[0] > 0
    smooth = _smooth_weight(ls, n_classes, cw)
    r0 = b * br
    r1 = min(r0 + br, n)
    e = np.empty((r1 - r0) * n_classes)
    m = np.empty(r1 - r0)
    se = np.empty(r1 - r0)
    lse = np.empty(r1 - r0)
    sk, sj, bad = _softmax_block(z, r0, r1, e, m, se, lse)
    if want_grad and sj != 1:
        _label_block_class_major(labels, z, w, scale, values, grad, ls, cw, ignore,
                                 has_ignore, r0, r1, e, m, se, lse, smooth, want_value)
        return bad
    for k in range(r1 - r0):
        i = r0 + k
        y, wy = _label_state(labels, i, n_classes, cw, ignore, has_ignore)
        factor = w[i] * scale if weighted else scale
        if y < 0:
            fill = 0.0 if (has_ignore and labels[i] == ignore) else np.nan
            if want_value:
                values[i] = fill
            if want_grad:
                gi = grad[i]
                for j in range(n_classes):
                    gi[j] = fill * factor
            continue
        c = (1.0 - ls) * wy
        if want_value:
            values[i] = _label_value(z[i], y, c, m[k], lse[k], ls, cw)
        if want_grad:
            sc = (1.0 / se[k]) * (c + smooth)
            gi = grad[i]
            for j in range(n_classes):
                g = sc * e[k * sk + j * sj] - ls / n_classes * (cw[j] if cw.shape[0] > 0 else 1.0)
                gi[j] = (g - c if j == y else g) * factor
    return bad


@njit(inline="always", error_model="numpy")
def _label_block_class_major(labels, z, w, scale, values, grad, ls, cw, ignore, has_ignore,
                             r0, r1, e, m, se, lse, smooth, want_value):
    """The gradient of a class-major block (few classes): per-row scalars first, then the
    gradient computed in place in ``e`` by loops over the block's rows (vectorized), then
    copied out row by row. The same arithmetic per element as the row-major loop."""
    n_classes = z.shape[1]
    rows = r1 - r0
    weighted = w.shape[0] > 0
    yk = np.empty(rows, dtype=np.int64)
    ck = np.empty(rows)
    sck = np.empty(rows)
    fk = np.empty(rows)
    unlabelled = 0
    for k in range(rows):
        i = r0 + k
        y, wy = _label_state(labels, i, n_classes, cw, ignore, has_ignore)
        c = (1.0 - ls) * wy
        yk[k] = y
        ck[k] = c
        sck[k] = (1.0 / se[k]) * (c + smooth)
        fk[k] = w[i] * scale if weighted else scale
        if y < 0:
            unlabelled += 1
        elif want_value:
            values[i] = _label_value(z[i], y, c, m[k], lse[k], ls, cw)
    for j in range(n_classes):
        smooth_j = ls / n_classes * (cw[j] if cw.shape[0] > 0 else 1.0)
        ej = e[j * rows:(j + 1) * rows]
        for k in range(rows):
            g = sck[k] * ej[k] - smooth_j
            ej[k] = (g - ck[k] if j == yk[k] else g) * fk[k]
    gb = grad[r0:r1]
    for k in range(rows):
        gk = gb[k]
        for j in range(n_classes):
            gk[j] = e[j * rows + k]
    if unlabelled:
        for k in range(rows):
            if yk[k] < 0:
                i = r0 + k
                fill = 0.0 if (has_ignore and labels[i] == ignore) else np.nan
                if want_value:
                    values[i] = fill
                for j in range(n_classes):
                    gb[k, j] = fill * fk[k]


# The block functions above are compiled once per dtype and shared by the forward,
# gradient and value_grad kernels (they differ only in which outputs are empty) and by
# the parallel and serial loops below (small inputs: a parallel launch costs more than
# the work). Keeping the prange body a call keeps Numba's parfor passes small: with the
# block code inlined into the prange loop one kernel took 7-10 s to compile.

# Each returns the number of non-finite logits (see LossSpec.value_grad_checks).

@njit(parallel=True, error_model="numpy")
def _soft_parallel(t, z, w, scale, values, grad, ls, cw):
    bad = 0
    for b in prange(_n_blocks(z)):
        bad += _soft_block(t, z, w, scale, values, grad, ls, cw, b)
    return bad


@njit(error_model="numpy")
def _soft(t, z, w, scale, values, grad, ls, cw):
    if z.size >= SERIAL_BELOW:
        return _soft_parallel(t, z, w, scale, values, grad, ls, cw)
    bad = 0
    for b in range(_n_blocks(z)):
        bad += _soft_block(t, z, w, scale, values, grad, ls, cw, b)
    return bad


@njit(parallel=True, error_model="numpy")
def _labels_parallel(labels, z, w, scale, values, grad, ls, cw, ignore, has_ignore):
    bad = 0
    for b in prange(_n_blocks(z)):
        bad += _label_block(labels, z, w, scale, values, grad, ls, cw, ignore, has_ignore, b)
    return bad


@njit(error_model="numpy")
def _labels(labels, z, w, scale, values, grad, ls, cw, ignore, has_ignore):
    if z.size >= SERIAL_BELOW:
        return _labels_parallel(labels, z, w, scale, values, grad, ls, cw, ignore,
                                has_ignore)
    bad = 0
    for b in range(_n_blocks(z)):
        bad += _label_block(labels, z, w, scale, values, grad, ls, cw, ignore, has_ignore, b)
    return bad


@njit(error_model="numpy")
def softmax_ce_label_forward(labels, z, out, ls, cw, ignore, has_ignore):
    """Labels: out[i] = (1-ls) w_y (-log s_y) + ls/C sum_j w_j (-log s_j); 0 if ignored,
    NaN for an out-of-range label (only reachable with validate=False)."""
    _labels(labels, z, np.empty(0), 1.0, out, np.empty((0, 0), out.dtype), ls, cw, ignore,
            has_ignore)


@njit(error_model="numpy")
def softmax_ce_label_gradient(labels, z, out, ls, cw, ignore, has_ignore):
    """Labels: d/dz_ij = S softmax_j - (1-ls) w_y [j = y] - ls/C w_j; zero rows if ignored."""
    _labels(labels, z, np.empty(0), 1.0, np.empty(0, out.dtype), out, ls, cw, ignore,
            has_ignore)


@njit(error_model="numpy")
def softmax_ce_label_value_grad(labels, z, w, scale, values, grad, ls, cw, ignore,
                                has_ignore):
    """Returns the number of non-finite logits (value_grad_checks)."""
    return _labels(labels, z, w, scale, values, grad, ls, cw, ignore, has_ignore)


@njit(parallel=True, error_model="numpy")
def softmax_ce_first_invalid(labels, n_classes, ls, cw, ignore, has_ignore):
    """First index of a label outside [0, C) that is not ignore_index, or -1: a parallel
    branch-free count (vectorizable), then a scan only when something is wrong."""
    count = 0
    for i in prange(labels.shape[0]):
        y = labels[i]
        count += 1 if ((y < 0) | (y >= n_classes)) & ~(has_ignore & (y == ignore)) else 0
    if count == 0:
        return -1
    for i in range(labels.shape[0]):
        y = labels[i]
        if (y < 0 or y >= n_classes) and not (has_ignore and y == ignore):
            return i
    return -1


@njit(error_model="numpy")
def softmax_ce_mean_weights(labels, n_classes, out, ls, cw, ignore, has_ignore):
    """PyTorch's "mean" denominator per row: the label's class weight, 0 when ignored.
    Without class weights and ignore_index every row counts 1: returns False, unfilled."""
    if cw.shape[0] == 0 and not has_ignore:
        return False
    _fill_mean_weights(labels, n_classes, out, cw, ignore, has_ignore)
    return True


@njit(parallel=True, error_model="numpy")
def _fill_mean_weights(labels, n_classes, out, cw, ignore, has_ignore):
    for i in prange(labels.shape[0]):
        out[i] = _label_state(labels, i, n_classes, cw, ignore, has_ignore)[1]
