"""Probabilistic family: KL, JS, cross-entropy, BCE (probabilities and logits), softmax
cross-entropy and focal losses.

Element-wise losses (BCE, BCE with logits, focal, sigmoid focal) are one scalar float64
function ``elem(t, p, *hp) -> (loss, dloss/dp, d^2loss/dp^2)`` turned into fused kernels by
``elementwise_kernels`` (the "blocks" style: their logs and exps come from
``lossreg.kernels.vmath`` and vectorize). Row losses (KL, JS, cross-entropy, softmax
cross-entropy) have module-level kernels in ``rows.py``: forward, gradient and a fused
value-and-gradient kernel each, parallel over rows; the dispatcher reduces.

Numerics: all arithmetic in float64 whatever the input dtype; 0 * log 0 = 0; logs of
probabilities clamped at -100 as PyTorch does; BCE-type gradients use PyTorch's bounded
denominator max(p (1 - p), 1e-12) so they stay finite at p in {0, 1}; logit losses use
softplus(z) = max(z, 0) + log1p(exp(-|z|)) (= -log(1 - sigmoid(z))) and are finite for
any finite logit; softmax subtracts the row max (log-sum-exp). Kernels use Numba's "numpy"
error model, so a division by zero gives inf (IEEE) rather than raising. Registered
through the ``register_losses`` hook like any third-party plugin.
"""

from __future__ import annotations

import numpy as np

from ..errors import HyperparameterError, ShapeError
from ..hookspecs import hookimpl
from ..kernels import (ElementwiseKernels, Job, Kernels, LabelKernels, Outcome, RowKernels,
                       elementwise_kernels, njit, row_kernels, vmath)
from ..spec import (FINITE, NONNEGATIVE, POSITIVE, UNIT, Domain, Hyperparameter, Interval,
                    LossSpec)
from .pos_weight import PosWeightKernels, check_pos_weight, pos_weight_args
from .rows import (SERIAL_BELOW as ROW_SERIAL_BELOW, ce_impl, js_impl, kl_impl,
                   kl_log_impl, softmax_ce_first_invalid, softmax_ce_impl,
                   softmax_ce_label_impl, softmax_ce_mean_weights, softmax_ce_scale_free)

FAMILY = "probabilistic"
LOG_CLAMP = -100.0       # PyTorch's clamp of log p in binary_cross_entropy
GRAD_EPS = 9.999999960041972e-13   # PyTorch's bound of p (1 - p) in the BCE gradient:
#                                    its EPSILON 1e-12 is a float32 constant
TORCH_HESS_EPS = 1e-12   # PyTorch's eps in binary_cross_entropy's double backward (float64)
ROW_SUM_TOL = 1e-4       # distributions: |sum of a row - 1| <= this (float64 sum);
#                          loose enough for float32 rows of 1000 classes

DISTRIBUTION = Domain(UNIT, row_sum=1.0, row_sum_tol=ROW_SUM_TOL,
                      doc="rows are probability distributions")
PROBABILITIES = Domain(UNIT, doc="probabilities")
LOG_PROBABILITIES = Domain(Interval(-np.inf, 0.0, closed_low=True),
                           doc="log-probabilities (-inf: probability 0); rows not checked "
                               "to normalise")
LOGITS = Domain(FINITE.interval, doc="logits (any finite real)")


# -- element-wise losses (scalar float64 functions) ------------------------------------------

@njit(inline="always", error_model="numpy")
def _torch_pq_elem(q, r):
    """(p + 1e-12)(1 - p + 1e-12): PyTorch's regularised p (1 - p) in binary_cross_entropy's
    double backward (float64 eps 1e-12 there), never 0; its square is the denominator of
    d^2 BCE / dp^2, itself the denominator of d BCE / dp in the grad_output branch."""
    return (q + TORCH_HESS_EPS) * (r + TORCH_HESS_EPS)


@njit(error_model="numpy")
def bce_elem(t, p, a, b):
    """-a y log p - b (1 - y) log(1 - p), logs clamped at -100; d/dp with PyTorch's bound.

    Returns (loss, d/dp, d^2/dp^2). d/dp = [b (1-y) p - a y (1-p)] / max(p (1-p), 1e-12)
    (PyTorch's binary_cross_entropy backward). d^2/dp^2 is PyTorch's double backward of
    binary_cross_entropy: [a y (1-p)^2 + b (1-y) p^2] / ((p + 1e-12)^2 (1-p + 1e-12)^2),
    i.e. the curvature of the UNclamped logs with a regularised denominator: it ignores
    the -100 clamp of the logs (true curvature 0 for p < e^-100) and the 1e-12 bound of
    the gradient (whose own slope is 1e12 there); finite everywhere (about 1e24 at p in
    {0, 1} against the target). The numerator is written as the sum of two non-negative
    terms: PyTorch's p^2 - 2 p y + y cancels near p = y in {0, 1} (relative error up to
    1 there, e.g. 0 instead of 1 at p = 1 - 1e-9, y = 1); this is the exact value.
    """
    y = np.float64(t)
    q = np.float64(p)
    r = 1.0 - q
    l1 = max(vmath.log(q), LOG_CLAMP)
    l0 = max(vmath.log1p(-q), LOG_CLAMP)
    loss = -(a * y * l1 + b * (1.0 - y) * l0)
    if a == b:
        num = a * (q - y)
    else:
        num = b * (1.0 - y) * q - a * y * r
    d = _torch_pq_elem(q, r)
    hess = (a * y * (r * r) + b * (1.0 - y) * (q * q)) / (d * d)
    return loss, num / max(q * r, GRAD_EPS), hess


@njit(error_model="numpy")
def bce_logits_elem(t, z, a, b):
    """a y softplus(-z) + b (1 - y) softplus(z); d/dz = -a y sigmoid(-z) + b (1 - y) sigmoid(z).

    Returns (loss, d/dz, d^2/dz^2) with d^2/dz^2 = (a y + b (1 - y)) sigmoid(z) sigmoid(-z)
    (both sigmoids from exp(-|z|), so it is accurate, not 1 - 1, for large |z|: it
    underflows to 0 only beyond |z| ~ 745). No clamps or kinks: smooth everywhere.
    """
    y = np.float64(t)
    x = np.float64(z)
    u = vmath.exp(-abs(x))        # one exp serves the log terms and both sigmoids
    e = vmath.log1p(u)
    sp_pos = max(x, 0.0) + e      # -log(1 - sigmoid(x))
    sp_neg = max(-x, 0.0) + e     # -log sigmoid(x)
    loss = a * y * sp_neg + b * (1.0 - y) * sp_pos
    big = 1.0 / (1.0 + u)         # sigmoid(|x|)
    small = u * big               # sigmoid(-|x|)
    sig = big if x >= 0.0 else small        # sigmoid(x)
    sig_neg = small if x >= 0.0 else big    # sigmoid(-x)
    if a == b:
        grad = a * (sig - y)
    else:
        grad = b * (1.0 - y) * sig - a * y * sig_neg
    return loss, grad, (a * y + b * (1.0 - y)) * (big * small)


@njit(inline="always", error_model="numpy")
def _power_from_log(x, lx, g):
    """x ** g from lx = log x (shared by the four powers of focal_elem: two logs instead
    of six), as vmath.power: exact for g in {0, 1, 2}, 0 ** 0 = 1; g may be negative
    (x ** (g - 1) in the second derivative: inf at x = 0)."""
    v = vmath.exp(g * lx)
    v = x * x if g == 2.0 else v
    v = x if g == 1.0 else v
    return 1.0 if g == 0.0 else v


@njit(error_model="numpy")
def focal_elem(t, p, a, b, gamma, split):
    """torchvision's focal loss on probabilities: alpha_t (1 - p_t)^g BCE(p, y) with
    p_t = p y + (1-p)(1-y), alpha_t = a y + b (1-y) and PyTorch's BCE (logs clamped at
    -100). ``split`` is ignored: ``focal_split_elem`` serves split_terms=True.

    With m = 1 - p_t, computed as y (1-p) + (1-y) p (no cancellation; the same value as
    torch's 1 - p_t for y in {0, 1}), M = m^g, B = BCE and s = 1 - 2y = dm/dp:
      d/dp    = alpha_t [g m^(g-1) s B + M (p - y) / max(p (1-p), 1e-12)],
      d2/dp2  = alpha_t [g (g-1) m^(g-2) s^2 B + g m^(g-1) s (p - y) (1/max(p r, 1e-12)
                + 1/E) + M (y r^2 + (1-y) p^2) / E^2],   E = (p + 1e-12)(r + 1e-12),
    i.e. PyTorch's autograd (and double backward) of that expression, the cross term
    once with each of BCE's two derivative forms (as ``focal_split_elem``). m^(g-1) B
    and m^(g-2) B are computed as m^g (B/m) and m^(g-1) (B/m), with B/m at m = 0 (p = y
    in {0, 1}: B = 0) taking its limit 1 and (p - y)/m its limit s: so the gradient is
    finite everywhere; the curvature is finite for g = 0 or g >= 1 and, as for the split
    form, -inf where 0 < g < 1 and m = 0 (the true curvature diverges there). For
    y in {0, 1} this is the split form exactly (up to rounding).
    """
    y = np.float64(t)
    q = np.float64(p)
    r = 1.0 - q
    l1 = max(vmath.log(q), LOG_CLAMP)
    l0 = max(vmath.log1p(-q), LOG_CLAMP)
    bce = -(y * l1 + (1.0 - y) * l0)
    m = y * r + (1.0 - y) * q
    s = 1.0 - 2.0 * y
    at = a * y + b * (1.0 - y)
    lm = vmath.log(m)
    mg = _power_from_log(m, lm, gamma)                   # m^g
    bm = bce / m if m > 0.0 else 1.0                     # B / m (limit 1 at m = 0)
    dm = (q - y) / m if m > 0.0 else s                   # (p - y) / m (limit s at m = 0)
    bound = max(q * r, GRAD_EPS)
    grad = at * (gamma * mg * s * bm + mg * (q - y) / bound)
    c = gamma * (gamma - 1.0)
    mg1 = _power_from_log(m, lm, gamma - 1.0)            # m^(g-1) (inf at m = 0, g < 1)
    t2 = 0.0 if c == 0.0 else c * mg1 * (s * s) * bm
    d = _torch_pq_elem(q, r)
    hess = at * (t2 + gamma * mg * s * dm * (1.0 / bound + 1.0 / d)
                 + mg * (y * (r * r) + (1.0 - y) * (q * q)) / (d * d))
    return at * mg * bce, grad, hess


@njit(error_model="numpy")
def focal_split_elem(t, p, a, b, gamma, split):
    """-a (1-p)^g y log p - b p^g (1-y) log(1-p); logs clamped at -100.

    Gradient: the modulating factors are differentiated exactly, the log terms as in BCE
    (bounded denominator max(p (1-p), 1e-12)), i.e. autograd of
    a y (1-p)^g BCE(p, 1) + b (1-y) p^g BCE(p, 0) with PyTorch's BCE. Finite at p in
    {0, 1}; gamma = 0 gives binary_cross_entropy. log p / (1-p) and log(1-p) / p take
    their limit -1 where 1-p or p is 0.

    Returns (loss, d/dp, d^2/dp^2). The second derivative is PyTorch's double backward of
    that same expression (product rule; BCE's double backward as in ``bce_elem``):
    with r = 1-p, w1 = a y r^g, w0 = b (1-y) p^g, M = max(p r, 1e-12) and
    E = (p + 1e-12)(r + 1e-12),
      -g (g-1) [a y r^(g-1) log(p)/r + b (1-y) p^(g-1) log(1-p)/p]
      + g (w1 + w0) (1/M + 1/E) + (w1 r^2 + w0 p^2) / E^2.
    The cross term f' BCE' appears twice, once with each of PyTorch's two BCE derivative
    forms (the backward's bound M, the double backward's grad_output branch E; E/(p r)
    - 1 is about 1e-12/min(p, 1-p), so this matters to 1e-10 only near 0 and 1). The
    logs are clamped at -100 (their value, as PyTorch multiplies the clamped forward) and
    log(p)/r, log(1-p)/p at their limit -1 where r or p is 0. A term whose factor
    g (g-1) or weight is 0 is exactly 0 (no 0 * inf). Finite for every p in [0, 1] when
    gamma = 0 or gamma >= 1 (where PyTorch gives NaN for 1 < gamma < 2 at p in {0, 1}:
    0 * inf in pow's double backward; here the limit 0). For 0 < gamma < 1 the true
    curvature diverges at p = 1 (y > 0) and p = 0 (y < 1): -inf is returned there.
    """
    y = np.float64(t)
    q = np.float64(p)
    r = 1.0 - q
    lq = vmath.log(q)
    lr = vmath.log1p(-q)
    l1 = max(lq, LOG_CLAMP)
    l0 = max(lr, LOG_CLAMP)
    ay = a * y
    by = b * (1.0 - y)
    w1 = ay * _power_from_log(r, lr, gamma)
    w0 = by * _power_from_log(q, lq, gamma)
    loss = -(w1 * l1 + w0 * l0)
    ratio1 = l1 / r if r > 0.0 else -1.0
    ratio0 = l0 / q if q > 0.0 else -1.0
    bound = max(q * r, GRAD_EPS)
    grad = gamma * (w1 * ratio1 - w0 * ratio0) + (w0 * q - w1 * r) / bound
    # the modulating factors' second derivative: g (g-1) r^(g-2) and g (g-1) p^(g-2),
    # times the (clamped) BCE values -l1 = -ratio1 r, -l0 = -ratio0 p
    c = gamma * (gamma - 1.0)
    s1 = ay * _power_from_log(r, lr, gamma - 1.0) * ratio1
    s0 = by * _power_from_log(q, lq, gamma - 1.0) * ratio0
    s1 = 0.0 if (ay == 0.0) | (c == 0.0) else s1
    s0 = 0.0 if (by == 0.0) | (c == 0.0) else s0
    d = _torch_pq_elem(q, r)
    hess = (gamma * (w1 + w0) * (1.0 / bound + 1.0 / d) - c * (s1 + s0)
            + (w1 * (r * r) + w0 * (q * q)) / (d * d))
    return loss, grad, hess


@njit(error_model="numpy")
def sigmoid_focal_elem(t, z, a, b, gamma, split):
    """torchvision.ops.sigmoid_focal_loss: alpha_t (1 - p_t)^g BCE_logits(z, y) with
    p = sigmoid(z), p_t = p y + (1-p)(1-y), alpha_t = a y + b (1-y). ``split`` is
    ignored (``sigmoid_focal_split_elem`` serves split_terms=True).

    With r = 1 - p, m = 1 - p_t = y r + (1-y) p, M = m^g, s = 1 - 2y, B = y softplus(-z)
    + (1-y) softplus(z) and v = p r / m (so dm/dz = s m v; v = p or r for y in {0, 1},
    bounded for any y, which keeps every term finite without a power g - 1 or g - 2):
      d/dz   = alpha_t M [g s v B + p - y],
      d2/dz2 = alpha_t M [g (g-1) s^2 v^2 B + g s v (r - p) B + 2 g s v (p - y) + p r],
    with p - y computed as (1-y) p - y r (exact, not 1 - 1, for y in {0, 1}).
    p and r come from exp(-|z|) (no 1 - 1), m's log from vmath.log; smooth and finite for
    every finite logit. For y in {0, 1} this is the split form exactly (up to rounding).
    """
    y = np.float64(t)
    x = np.float64(z)
    u = vmath.exp(-abs(x))
    e = vmath.log1p(u)
    sp_pos = max(x, 0.0) + e          # -log(1 - p)
    sp_neg = max(-x, 0.0) + e         # -log p
    big = 1.0 / (1.0 + u)
    small = u * big
    p = big if x >= 0.0 else small
    r = small if x >= 0.0 else big
    bce = y * sp_neg + (1.0 - y) * sp_pos
    m = y * r + (1.0 - y) * p
    s = 1.0 - 2.0 * y
    pr = p * r
    v = pr / m if m > 0.0 else y * p + (1.0 - y) * r
    mg = _power_from_log(m, vmath.log(m), gamma)
    at = a * y + b * (1.0 - y)
    w = at * mg
    gsv = gamma * s * v
    d = (1.0 - y) * p - y * r        # p - y, exact for y in {0, 1} (no 1 - 1)
    grad = w * (gsv * bce + d)
    hess = w * (gsv * ((gamma - 1.0) * s * v * bce + (r - p) * bce + 2.0 * d) + pr)
    return w * bce, grad, hess


@njit(error_model="numpy")
def sigmoid_focal_split_elem(t, z, a, b, gamma, split):
    """Focal loss on logits via log-sigmoid identities: with p = sigmoid(z),
    -log p = softplus(-z), -log(1-p) = softplus(z), (1-p)^g = exp(-g softplus(z)).

    Returns (loss, d/dz, d^2/dz^2); with r = 1 - p, w1 = a y r^g, w0 = b (1-y) p^g:
      d^2/dz^2 = w1 [g p softplus(-z) (g p - r) + (2g + 1) p r]
               + w0 [g r softplus(z) (g r - p) + (2g + 1) p r].
    Smooth (no clamps or kinks); finite for every finite logit (p and r come from
    exp(-|z|), so p r is not 1 - 1 for large |z|, and p softplus(-z) is 0 * finite).
    """
    y = np.float64(t)
    x = np.float64(z)
    u = vmath.exp(-abs(x))
    e = vmath.log1p(u)
    sp_pos = max(x, 0.0) + e
    sp_neg = max(-x, 0.0) + e
    big = 1.0 / (1.0 + u)             # sigmoid(|x|)
    small = u * big                   # sigmoid(-|x|)
    p = big if x >= 0.0 else small    # sigmoid(x)
    r = small if x >= 0.0 else big    # sigmoid(-x)
    m1 = vmath.exp(-gamma * sp_pos)   # (1 - p)^gamma
    m0 = vmath.exp(-gamma * sp_neg)   # p^gamma
    w1 = a * y * m1
    w0 = b * (1.0 - y) * m0
    loss = w1 * sp_neg + w0 * sp_pos
    grad = w0 * (gamma * r * sp_pos + p) - w1 * (gamma * p * sp_neg + r)
    pr = (2.0 * gamma + 1.0) * (p * r)
    hess = (w1 * (gamma * p * sp_neg * (gamma * p - r) + pr)
            + w0 * (gamma * r * sp_pos * (gamma * r - p) + pr))
    return loss, grad, hess


# -- NumPy references (per-element or per-row values, float64) -------------------------------

def _f64(x):
    return np.asarray(x, dtype=np.float64)


def _weights_ab(alpha, pos_weight=None):
    """(a, b): a = alpha pos_weight (an array for a per-class pos_weight, broadcast over
    the last axis), b = 1 - alpha; alpha None: 1 and 1, pos_weight None: 1."""
    a = 1.0 if alpha is None else float(alpha)
    b = 1.0 if alpha is None else 1.0 - float(alpha)
    return a * (1.0 if pos_weight is None else np.asarray(pos_weight, np.float64)), b


def bce_reference(y_true, y_pred, alpha=None):
    y, p = _f64(y_true), _f64(y_pred)
    a, b = _weights_ab(alpha)
    with np.errstate(divide="ignore"):
        return -(a * y * np.maximum(np.log(p), LOG_CLAMP)
                 + b * (1 - y) * np.maximum(np.log(1 - p), LOG_CLAMP))


def bce_logits_reference(y_true, y_pred, alpha=None, pos_weight=None):
    y, z = _f64(y_true), _f64(y_pred)
    a, b = _weights_ab(alpha, pos_weight)
    # -log sigmoid(z) = logaddexp(0, -z); -log(1 - sigmoid(z)) = logaddexp(0, z)
    return a * y * np.logaddexp(0.0, -z) + b * (1 - y) * np.logaddexp(0.0, z)


def _alpha_t(y, alpha):
    a, b = _weights_ab(alpha)
    return a * y + b * (1 - y)


def focal_reference(y_true, y_pred, alpha=0.25, gamma=2.0, split_terms=False):
    """torchvision's alpha_t (1 - p_t)^gamma BCE(p, y); the split form if split_terms."""
    if split_terms:
        return focal_split_reference(y_true, y_pred, alpha, gamma)
    y, p = _f64(y_true), _f64(y_pred)
    m = y * (1 - p) + (1 - y) * p
    return _alpha_t(y, alpha) * m ** gamma * _bce_log1p(y, p)


def _bce_log1p(y, p):
    """BCE with log1p(-p) for log(1 - p) (as the kernels): exact for tiny p."""
    with np.errstate(divide="ignore"):
        return -(y * np.maximum(np.log(p), LOG_CLAMP)
                 + (1 - y) * np.maximum(np.log1p(-p), LOG_CLAMP))


def sigmoid_focal_reference(y_true, y_pred, alpha=0.25, gamma=2.0, split_terms=False):
    """torchvision.ops.sigmoid_focal_loss; the split form if split_terms."""
    if split_terms:
        return sigmoid_focal_split_reference(y_true, y_pred, alpha, gamma)
    y, z = _f64(y_true), _f64(y_pred)
    p, r = _sigmoids(z)
    m = y * r + (1 - y) * p
    return _alpha_t(y, alpha) * m ** gamma * bce_logits_reference(y, z)


def focal_split_reference(y_true, y_pred, alpha=0.25, gamma=2.0):
    y, p = _f64(y_true), _f64(y_pred)
    a, b = _weights_ab(alpha)
    with np.errstate(divide="ignore"):
        return -(a * y * (1 - p) ** gamma * np.maximum(np.log(p), LOG_CLAMP)
                 + b * (1 - y) * p ** gamma * np.maximum(np.log(1 - p), LOG_CLAMP))


def sigmoid_focal_split_reference(y_true, y_pred, alpha=0.25, gamma=2.0):
    y, z = _f64(y_true), _f64(y_pred)
    a, b = _weights_ab(alpha)
    nlp, nlq = np.logaddexp(0.0, -z), np.logaddexp(0.0, z)   # -log p, -log(1-p)
    return a * y * np.exp(-gamma * nlq) * nlp + b * (1 - y) * np.exp(-gamma * nlp) * nlq


def _xlogy(x, y):
    """x * log y with 0 * log(anything) = 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(x > 0, x * np.log(np.where(x > 0, y, 1.0)), 0.0)


def kl_reference(y_true, y_pred, eps=0.0, log_pred=False, log_target=False):
    if log_pred or log_target:
        t, x = _f64(y_true), _f64(y_pred)
        big_p = np.exp(t) if log_target else t
        with np.errstate(divide="ignore", invalid="ignore"):
            log_p = t if log_target else np.log(t)
            x = x if log_pred else np.log(np.maximum(x, eps))
            return np.sum(np.where(big_p > 0, big_p * (log_p - x), 0.0), axis=-1)
    p, q = _f64(y_true), np.maximum(_f64(y_pred), eps)
    with np.errstate(divide="ignore"):
        return np.sum(_xlogy(p, p) - _xlogy(p, q), axis=-1)


def js_reference(y_true, y_pred):
    p, q = _f64(y_true), _f64(y_pred)
    m = (p + q) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        return 0.5 * np.sum(_xlogy(p, p / m) + _xlogy(q, q / m), axis=-1)


def ce_reference(y_true, y_pred):
    return -np.sum(_xlogy(_f64(y_true), _f64(y_pred)), axis=-1)


def _log_softmax(z):
    m = np.max(z, axis=-1, keepdims=True)
    return (z - m) - np.log(np.sum(np.exp(z - m), axis=-1, keepdims=True))


def _softmax_targets(y_true, z, label_smoothing, ignore_index):
    """(smoothed target rows t', rows kept): integer labels become one-hot rows."""
    t = np.asarray(y_true)
    keep = np.ones(z.shape[:-1], dtype=bool)
    if t.shape == z.shape[:-1]:                           # integer class labels
        labels = t.astype(np.int64)
        if ignore_index is not None:
            keep = labels != ignore_index
        t = np.zeros(z.shape)
        np.put_along_axis(t, np.where(keep, labels, 0)[..., None], 1.0, axis=-1)
    return _f64(t) * (1 - label_smoothing) + label_smoothing / z.shape[-1], keep


def softmax_ce_reference(y_true, y_pred, label_smoothing=0.0, class_weight=None,
                         ignore_index=None):
    z = _f64(y_pred)
    n_classes = z.shape[-1]
    t, keep = _softmax_targets(y_true, z, label_smoothing, ignore_index)
    w = np.ones(n_classes) if class_weight is None else _f64(class_weight)
    tw = t * w
    terms = np.where(tw != 0, -tw * _log_softmax(z), 0.0)
    return np.where(keep, np.sum(terms, axis=-1), 0.0)


# -- NumPy reference Hessians (the diagonal d^2 l / d y_pred^2, float64, y_pred's shape) ----
# The same conventions as the kernels (documented in the element functions): PyTorch's
# double backward for the BCE-type terms, exact formulas elsewhere.

def _torch_pq(p):
    return (p + TORCH_HESS_EPS) * (1 - p + TORCH_HESS_EPS)


def _sigmoids(z):
    """(sigmoid(z), sigmoid(-z)) without overflow or 1 - 1 cancellation."""
    return np.exp(-np.logaddexp(0.0, -z)), np.exp(-np.logaddexp(0.0, z))


def bce_reference_hessian(y_true, y_pred, alpha=None):
    y, p = _f64(y_true), _f64(y_pred)
    a, b = _weights_ab(alpha)
    return (a * y * (1 - p) ** 2 + b * (1 - y) * p ** 2) / _torch_pq(p) ** 2


def bce_logits_reference_hessian(y_true, y_pred, alpha=None, pos_weight=None):
    y, z = _f64(y_true), _f64(y_pred)
    a, b = _weights_ab(alpha, pos_weight)
    p, r = _sigmoids(z)
    return (a * y + b * (1 - y)) * p * r


def focal_reference_hessian(y_true, y_pred, alpha=0.25, gamma=2.0, split_terms=False):
    """The torchvision form's diagonal as ``focal_elem`` documents it (product rule over
    alpha_t m^g BCE, BCE's derivatives as PyTorch's backward and double backward)."""
    if split_terms:
        return focal_split_reference_hessian(y_true, y_pred, alpha, gamma)
    y, p = _f64(y_true), _f64(y_pred)
    g = float(gamma)
    r = 1 - p
    m = y * r + (1 - y) * p
    s = 1 - 2 * y
    bce = _bce_log1p(y, p)
    with np.errstate(divide="ignore", invalid="ignore"):
        bm = np.where(m > 0, bce / np.where(m > 0, m, 1.0), 1.0)
        dm = np.where(m > 0, (p - y) / np.where(m > 0, m, 1.0), s)
        mg1 = m ** (g - 1) if g != 1 else np.ones_like(m)
        c = g * (g - 1)
        t2 = np.zeros_like(m) if c == 0 else c * mg1 * s * s * bm
    mg = m ** g
    d = _torch_pq(p)
    return _alpha_t(y, alpha) * (t2 + g * mg * s * dm * (1 / np.maximum(p * r, GRAD_EPS) + 1 / d)
                                 + mg * (y * r ** 2 + (1 - y) * p ** 2) / d ** 2)


def sigmoid_focal_reference_hessian(y_true, y_pred, alpha=0.25, gamma=2.0, split_terms=False):
    """The torchvision form's d2/dz2 as ``sigmoid_focal_elem`` documents it."""
    if split_terms:
        return sigmoid_focal_split_reference_hessian(y_true, y_pred, alpha, gamma)
    y, z = _f64(y_true), _f64(y_pred)
    g = float(gamma)
    p, r = _sigmoids(z)
    m = y * r + (1 - y) * p
    s = 1 - 2 * y
    with np.errstate(divide="ignore", invalid="ignore"):
        v = np.where(m > 0, p * r / np.where(m > 0, m, 1.0), y * p + (1 - y) * r)
    bce = bce_logits_reference(y, z)
    gsv = g * s * v
    d = (1 - y) * p - y * r
    return _alpha_t(y, alpha) * m ** g * (
        gsv * ((g - 1) * s * v * bce + (r - p) * bce + 2 * d) + p * r)


def focal_split_reference_hessian(y_true, y_pred, alpha=0.25, gamma=2.0):
    y, p = _f64(y_true), _f64(y_pred)
    a, b = _weights_ab(alpha)
    g = float(gamma)
    r = 1 - p
    with np.errstate(divide="ignore", invalid="ignore"):
        l1 = np.maximum(np.log(p), LOG_CLAMP)
        l0 = np.maximum(np.log1p(-p), LOG_CLAMP)
        ratio1 = np.where(r > 0, l1 / np.where(r > 0, r, 1.0), -1.0)
        ratio0 = np.where(p > 0, l0 / np.where(p > 0, p, 1.0), -1.0)
        w1, w0 = a * y * r ** g, b * (1 - y) * p ** g
        c = g * (g - 1)
        s1 = np.where((a * y == 0) | (c == 0), 0.0, a * y * r ** (g - 1) * ratio1)
        s0 = np.where((b * (1 - y) == 0) | (c == 0), 0.0, b * (1 - y) * p ** (g - 1) * ratio0)
        return (g * (w1 + w0) * (1 / np.maximum(p * r, GRAD_EPS) + 1 / _torch_pq(p))
                - c * (s1 + s0) + (w1 * r ** 2 + w0 * p ** 2) / _torch_pq(p) ** 2)


def sigmoid_focal_split_reference_hessian(y_true, y_pred, alpha=0.25, gamma=2.0):
    y, z = _f64(y_true), _f64(y_pred)
    a, b = _weights_ab(alpha)
    g = float(gamma)
    nlp, nlq = np.logaddexp(0.0, -z), np.logaddexp(0.0, z)   # -log p, -log(1-p)
    p, r = _sigmoids(z)
    w1, w0 = a * y * np.exp(-g * nlq), b * (1 - y) * np.exp(-g * nlp)
    pr = (2 * g + 1) * p * r
    return w1 * (g * p * nlp * (g * p - r) + pr) + w0 * (g * r * nlq * (g * r - p) + pr)


def kl_reference_hessian(y_true, y_pred, eps=0.0, log_pred=False, log_target=False):
    """t/q^2 where t > 0 and q >= eps (P = exp(t) with log_target); 0 with log_pred (the
    loss is linear in log-probabilities)."""
    t, q = _f64(y_true), _f64(y_pred)
    if log_pred:
        return np.zeros_like(q)
    t = np.exp(t) if log_target else t
    mask = (t > 0) & (q >= eps)
    with np.errstate(divide="ignore"):
        return np.where(mask, t / np.where(mask, q, 1.0) / np.where(mask, q, 1.0), 0.0)


def js_reference_hessian(y_true, y_pred):
    t, q = _f64(y_true), _f64(y_pred)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where((t == 0) & (q == 0), 0.0, 0.5 * (t / (t + q)) / q)


def ce_reference_hessian(y_true, y_pred):
    t, q = _f64(y_true), _f64(y_pred)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(t > 0, t / q / q, 0.0)


def softmax_ce_reference_hessian(y_true, y_pred, label_smoothing=0.0, class_weight=None,
                                 ignore_index=None):
    """S_i s_ij (1 - s_ij), S_i = sum_j w_j t'_ij, s = softmax(z_i); 0 for ignored rows."""
    z = _f64(y_pred)
    t, keep = _softmax_targets(y_true, z, label_smoothing, ignore_index)
    w = np.ones(z.shape[-1]) if class_weight is None else _f64(class_weight)
    s = np.exp(_log_softmax(z))
    mass = np.sum(t * w, axis=-1, keepdims=True)
    return np.where(keep[..., None], mass * s * (1 - s), 0.0)


# -- samplers (valid inputs for tests and benchmarks) ----------------------------------------

SAMPLE_CLASSES = 4


def _dirichlet_rows(rng, n, n_classes, zeros: bool):
    rows = rng.dirichlet(np.full(n_classes, 0.7), size=n)
    if zeros and n_classes > 1:
        rows[rng.random(rows.shape) < 0.2] = 0.0
        rows[np.arange(n), rng.integers(0, n_classes, n)] += 0.05
        if n > 2:
            rows[1] = 0.0
            rows[1, rng.integers(n_classes)] = 1.0     # one one-hot row
        rows /= rows.sum(axis=1, keepdims=True)
    return rows


def distribution_sampler(rng, n, **hyper):
    """Target rows with exact zeros and a one-hot row; strictly positive prediction rows
    (>= 0.1 / C, so finite differences and gradients stay finite). kl_div's log_pred /
    log_target: those rows' logs (targets then without zeros)."""
    t = _dirichlet_rows(rng, n, SAMPLE_CLASSES, zeros=not hyper.get("log_target"))
    q = 0.9 * _dirichlet_rows(rng, n, SAMPLE_CLASSES, zeros=False) + 0.1 / SAMPLE_CLASSES
    q = q / q.sum(axis=1, keepdims=True)
    return (np.log(t) if hyper.get("log_target") else t,
            np.log(q) if hyper.get("log_pred") else q)


def softmax_sampler(rng, n, **hyper):
    """Probability target rows (some one-hot) and logits with a spread of a few units."""
    t = _dirichlet_rows(rng, n, SAMPLE_CLASSES, zeros=True)
    return t, rng.normal(0.0, 2.0, size=(n, SAMPLE_CLASSES))


def label_sampler(rng, n, **hyper):
    """Integer class labels (n,) and logits (n, C): the label form of softmax_cross_entropy."""
    return (rng.integers(0, SAMPLE_CLASSES, size=n),
            rng.normal(0.0, 2.0, size=(n, SAMPLE_CLASSES)))


# -- kernel arguments -------------------------------------------------------------------------

def _kl_args(hp):
    """(eps,) for probabilities (kl_impl), (eps, log_pred, log_target) for a log form
    (kl_log_impl): ``KLKernels`` picks the implementation by the count."""
    if hp["log_pred"] and hp["eps"] > 0:
        raise HyperparameterError(
            f"eps={hp['eps']!r} clamps probabilities, but log_pred=True: y_pred holds "
            "log-probabilities; use eps=0 (loss 'kl_div')")
    if not (hp["log_pred"] or hp["log_target"]):
        return (float(hp["eps"]),)
    return (float(hp["eps"]), bool(hp["log_pred"]), bool(hp["log_target"]))


def _kl_domains(hp):
    out = {}
    if hp.get("log_target"):
        out["y_true"] = LOG_PROBABILITIES
    if hp.get("log_pred"):
        out["y_pred"] = LOG_PROBABILITIES
    return out


class KLKernels(RowKernels):
    """kl_div's kernels: ``kl_impl`` on probabilities (the default; args (eps,)), and
    ``kl_log_impl`` when either argument is in log space (args (eps, log_pred,
    log_target)), compiled only when first used."""

    def __init__(self, prob_impl, log_impl, serial_below: int):
        RowKernels.__init__(self, prob_impl, serial_below=serial_below)
        self.log_form = RowKernels(log_impl, serial_below=serial_below)

    def describe(self) -> str:
        return f"{RowKernels.describe(self)}; log inputs: {self.log_form.describe()}"

    def run(self, job: Job) -> Outcome:
        if len(job.args) == 1:
            return RowKernels.run(self, job)
        return self.log_form.run(job)


def _bce_args(hp):
    return _weights_ab(hp["alpha"])


def _bce_logits_args(hp):
    return pos_weight_args(hp["alpha"], hp["pos_weight"])


def _focal_args(hp):
    return (*_weights_ab(hp["alpha"]), float(hp["gamma"]), bool(hp["split_terms"]))


class FormKernels(Kernels):
    """Two element-wise kernel sets behind one loss, picked per call by a bool kernel
    argument (the last one, ``split_terms``): both element functions take it, so the
    job is passed on unchanged. Each set compiles only when first used, so the default
    form costs nothing extra and the alternative keeps its own, unchanged speed (a
    branch-free blend of the two forms in one element function would cost every call
    the other form's logs)."""

    fills_partials = True          # run passes the job on whole to a kernels set that does

    def __init__(self, default: ElementwiseKernels, alternative: ElementwiseKernels):
        self.default, self.alternative = default, alternative
        self.layout = default.layout
        self.has_hessian = default.has_hessian and alternative.has_hessian
        self.checks = default.checks
        self.serial_below = default.serial_below

    def describe(self) -> str:
        return f"{self.default.describe()}; split_terms=True: {self.alternative.describe()}"

    def for_args(self, args: tuple) -> ElementwiseKernels:
        """The set that runs every job with these kernel arguments."""
        return self.alternative if args[-1] else self.default

    def run(self, job: Job) -> Outcome:
        return self.for_args(job.args).run(job)


def _focal_kernels(default, alternative) -> FormKernels:
    return FormKernels(elementwise_kernels(default, style="blocks"),
                       elementwise_kernels(alternative, style="blocks"))


def _softmax_args(hp):
    cw = hp["class_weight"]
    cw = np.zeros(0) if cw is None else np.array(cw, dtype=np.float64)   # writeable copy
    ignore = hp["ignore_index"]
    return (float(hp["label_smoothing"]), cw, 0 if ignore is None else int(ignore),
            ignore is not None)


class TargetFormKernels(RowKernels):
    """Row kernels for labels or probability rows whose kernel arguments end with
    (ignore_index, has_ignore) (softmax_cross_entropy, nll): they refuse ignore_index
    with probability rows (PyTorch raises there too; silently ignoring it would hide a
    wrong target form)."""

    def __init__(self, impl, loss: str, **options):
        RowKernels.__init__(self, impl, **options)
        self.loss = loss

    def run(self, job: Job) -> Outcome:
        if job.args[-1] and not job.labels:
            raise HyperparameterError(
                f"ignore_index={job.args[-2]} applies to integer class labels only, but "
                "y_true holds probability rows (its shape equals y_pred's); pass labels of "
                f"shape y_pred.shape[:-1] or drop ignore_index (loss {self.loss!r})")
        return RowKernels.run(self, job)


def _softmax_check_args(args, pred_shape):
    cw = args[1]
    if cw.shape[0] and cw.shape[0] != pred_shape[-1]:
        raise ShapeError(f"class_weight has {cw.shape[0]} entries but y_pred has shape "
                         f"{tuple(pred_shape)} ({pred_shape[-1]} classes); they must be equal")


# -- specs ------------------------------------------------------------------------------------

ALPHA_DOC = "weight of the positive term (1 - alpha: negative term); None weighs both 1"


def focal_hyper() -> dict:
    """The hyperparameters of focal and sigmoid_focal."""
    return {
        "alpha": Hyperparameter(float, 0.25, UNIT, ALPHA_DOC, nullable=True),
        "gamma": Hyperparameter(float, 2.0, NONNEGATIVE,
                                "focusing exponent; 0 gives alpha-weighted BCE"),
        "split_terms": Hyperparameter(
            bool, False, None, "False: torchvision's alpha_t (1-p_t)^gamma BCE; True: the "
            "split form alpha y (1-p)^gamma (-log p) + (1-alpha)(1-y) p^gamma (-log(1-p)) "
            "(equal for y in {0, 1})")}


def specs() -> list[LossSpec]:
    """The probabilistic-family specs (kernels are compiled on first call)."""
    alpha_none = Hyperparameter(float, None, UNIT, ALPHA_DOC)
    return [
        LossSpec(
            name="kl_div", aliases=("kl",), family=FAMILY, task="distribution",
            kernels=KLKernels(kl_impl, kl_log_impl, serial_below=ROW_SERIAL_BELOW),
            reference=kl_reference, reference_hessian=kl_reference_hessian,
            sampler=distribution_sampler, kernel_args=_kl_args, domains_for=_kl_domains,
            hyperparameters={
                "eps": Hyperparameter(
                    float, 0.0, UNIT, "clamp y_pred from below at eps (0: no clamp, KL may "
                    "be +inf); probabilities only"),
                "log_pred": Hyperparameter(
                    bool, False, None, "y_pred holds log-probabilities (PyTorch's input)"),
                "log_target": Hyperparameter(
                    bool, False, None, "y_true holds log-probabilities (PyTorch's "
                    "log_target=True)")},
            domains={"y_true": DISTRIBUTION, "y_pred": DISTRIBUTION},
            summary="Kullback-Leibler divergence KL(y_true || y_pred) between rows of "
                    "distributions, mean over rows (batchmean).",
            formula=r"\ell(p, q) = \sum_{j} p_j \log\frac{p_j}{\max(q_j, \epsilon)},"
                    r"\quad 0 \log 0 = 0",
            properties={"asymmetric"},
            notes="Non-negative and convex in y_pred for eps = 0 (the default); a clamp "
                  "eps > 0 can make it negative (the clamped row no longer sums to 1), so "
                  "neither is declared as a property. "
                  "reduction='mean' averages the per-row divergences over rows: PyTorch's "
                  "reduction='batchmean', NOT its 'mean' (which also divides by C, a "
                  "classic trap). Arguments are probabilities by default; log_pred=True "
                  "takes y_pred as log-probabilities and log_target=True y_true, so "
                  "kl_div(log_pred=True, log_target=...) is torch.nn.KLDivLoss(log_target="
                  "..., reduction='batchmean') (arguments in lossreg's order: target "
                  "first). Log-space rows are not checked to normalise (PyTorch does not "
                  "either); with log_pred the loss is linear in y_pred (gradient -P, "
                  "Hessian 0) and eps must be 0; where P = 0 (y_true = -inf with "
                  "log_target) a term is 0, where PyTorch gives NaN. "
                  "Where y_true > 0 and y_pred = 0 (eps = 0) the value is +inf and the "
                  "gradient -inf; set eps > 0 to clamp y_pred. Rows must sum to 1 within "
                  f"{ROW_SUM_TOL:g}. The gradient is the partial derivative -p/q, not "
                  "projected onto the simplex.",
        ),
        LossSpec(
            name="js_div", aliases=("js",), family=FAMILY, task="distribution",
            kernels=row_kernels(js_impl, serial_below=ROW_SERIAL_BELOW),
            reference=js_reference, reference_hessian=js_reference_hessian,
            sampler=distribution_sampler,
            domains={"y_true": DISTRIBUTION, "y_pred": DISTRIBUTION},
            summary="Jensen-Shannon divergence: symmetric, finite, bounded by log 2 (natural log).",
            formula=r"\ell(p, q) = \tfrac12 \mathrm{KL}(p \,\|\, m) + \tfrac12 "
                    r"\mathrm{KL}(q \,\|\, m),\quad m = \tfrac12 (p + q)",
            properties={"symmetric", "bounded", "nonnegative", "smooth"},
            notes="Always finite. The gradient 1/2 log(q/m) is -inf where y_pred = 0 < "
                  "y_true (an infinite slope of q log q), and 1/2 log 2 (the right limit) "
                  "where both are 0. Rows must sum to 1 within "
                  f"{ROW_SUM_TOL:g}. sqrt(JS) is a metric.",
        ),
        LossSpec(
            name="cross_entropy", aliases=("ce",), family=FAMILY, task="multiclass",
            kernels=row_kernels(ce_impl, serial_below=ROW_SERIAL_BELOW),
            reference=ce_reference, reference_hessian=ce_reference_hessian,
            sampler=distribution_sampler,
            domains={"y_true": PROBABILITIES, "y_pred": PROBABILITIES},
            summary="Cross-entropy -sum p log q between target rows (soft allowed) and "
                    "predicted probabilities.",
            formula=r"\ell(p, q) = -\sum_j p_j \log q_j,\quad 0 \log 0 = 0",
            properties={"convex", "nonnegative"},
            notes="Takes probabilities; for logits use softmax_cross_entropy (stable). "
                  "Rows need not sum to 1 (the source article's example does not). "
                  "Where y_true > 0 and y_pred = 0 the value is +inf and the gradient -inf. "
                  "Equals KL(p||q) + H(p), so it has the same minimiser as kl_div.",
        ),
        LossSpec(
            name="binary_cross_entropy", aliases=("bce", "log_loss"), family=FAMILY,
            task="binary", reference=bce_reference, reference_hessian=bce_reference_hessian,
            kernels=elementwise_kernels(bce_elem, style="blocks"),
            kernel_args=_bce_args,
            hyperparameters={"alpha": alpha_none},
            domains={"y_true": PROBABILITIES, "y_pred": PROBABILITIES},
            summary="Binary cross-entropy (log loss) on probabilities, log clamped at -100, "
                    "optionally alpha-weighted.",
            formula=r"\ell(y, p) = -\alpha\, y \log p - (1-\alpha)(1-y) \log(1-p)",
            properties={"convex", "nonnegative"},
            notes="As PyTorch: each log is clamped at -100, so p in {0, 1} gives at most "
                  "100 per weight, and the gradient is [(1-a)(1-y)p - a y (1-p)] / "
                  "max(p(1-p), 1e-12) (finite at p in {0, 1}; exact for p(1-p) > 1e-12). "
                  "alpha=None weighs both terms 1; alpha is the source article's "
                  "class-imbalance weight. Prefer binary_cross_entropy_with_logits when you "
                  "have logits.",
        ),
        LossSpec(
            name="binary_cross_entropy_with_logits", aliases=("bce_with_logits",),
            family=FAMILY, task="binary", reference=bce_logits_reference,
            reference_hessian=bce_logits_reference_hessian,
            kernels=PosWeightKernels(elementwise_kernels(bce_logits_elem, style="blocks")),
            kernel_args=_bce_logits_args, check_args=check_pos_weight,
            hyperparameters={
                "alpha": alpha_none,
                "pos_weight": Hyperparameter(
                    "float_or_array", None, POSITIVE, "extra weight of positives (PyTorch's "
                    "pos_weight): a float, or one per class (length C, last axis)")},
            domains={"y_true": PROBABILITIES, "y_pred": LOGITS},
            summary="Binary cross-entropy on logits, computed stably for any finite logit.",
            formula=r"\ell(y, z) = \alpha\, w_+\, y\, \mathrm{softplus}(-z) + (1-\alpha)(1-y)"
                    r"\, \mathrm{softplus}(z)",
            properties={"convex", "smooth", "nonnegative"},
            notes="softplus(z) = max(z, 0) + log1p(exp(-|z|)) = -log(1 - sigmoid(z)), so no "
                  "overflow and no log(0) for any finite z; gradient sigmoid(z) - y (with "
                  "weights: -a y sigmoid(-z) + b (1-y) sigmoid(z)). pos_weight multiplies the "
                  "positive term as in PyTorch; alpha=None and pos_weight=None mean 1. A "
                  "vector pos_weight of C entries weighs the positives of multi-label "
                  "logits (..., C) per class, broadcast over the last axis (PyTorch's "
                  "pos_weight of shape (C,)); its length must equal y_pred's last axis "
                  "(ShapeError otherwise). lossreg.dask takes a scalar pos_weight only.",
        ),
        LossSpec(
            name="softmax_cross_entropy", aliases=("softmax",), family=FAMILY,
            task="multiclass",
            kernels=TargetFormKernels(
                softmax_ce_impl, "softmax_cross_entropy", checks_pred=True, serial_below=ROW_SERIAL_BELOW,
                labels=LabelKernels(softmax_ce_label_impl, softmax_ce_first_invalid,
                                    softmax_ce_mean_weights, softmax_ce_scale_free)),
            reference=softmax_ce_reference, reference_hessian=softmax_ce_reference_hessian,
            sampler=softmax_sampler,
            kernel_args=_softmax_args, check_args=_softmax_check_args,
            hyperparameters={
                "label_smoothing": Hyperparameter(
                    float, 0.0, Interval(0.0, 1.0, closed_high=False),
                    "mix targets with the uniform distribution: (1-e) t + e/C"),
                "class_weight": Hyperparameter(
                    "array", None, NONNEGATIVE, "per-class weights (length C), None: all 1"),
                "ignore_index": Hyperparameter(
                    int, None, None, "label whose rows count 0 (loss, gradient and mean)")},
            domains={"y_true": Domain(UNIT, doc="probability rows (n, C), or integer class "
                                             "labels (n,) in [0, C) (see notes)"),
                     "y_pred": LOGITS},
            summary="Softmax cross-entropy on logits (n, C) with integer labels (n,) or "
                    "probability rows, via log-sum-exp.",
            formula=r"\ell(t, z) = -\sum_j w_j t'_j \log\frac{e^{z_j}}{\sum_k e^{z_k}},"
                    r"\quad t' = (1-\varepsilon)\, t + \varepsilon / C",
            properties={"convex", "smooth", "nonnegative"},
            notes="y_true is either integer class labels, shape y_pred.shape[:-1], each in "
                  "[0, C) unless equal to ignore_index, or probability rows of y_pred's shape. "
                  "PyTorch's conventions: with labels, reduction='mean' divides by the sum of "
                  "the class weights of the non-ignored rows (times sample_weight); with "
                  "probability rows by the number of rows (sum of sample_weight). A mean "
                  "over no weight (all rows ignored) raises DomainError. ignore_index applies "
                  "to labels only: with probability rows it raises HyperparameterError, as "
                  "PyTorch does. Gradient S softmax(z) - w t' with S = sum_j w_j t'_j; the "
                  "row max is subtracted, so logits of any size are safe.",
        ),
        LossSpec(
            name="focal", family=FAMILY, task="binary", reference=focal_reference,
            reference_hessian=focal_reference_hessian,
            kernels=_focal_kernels(focal_elem, focal_split_elem), kernel_args=_focal_args,
            hyperparameters=focal_hyper(),
            domains={"y_true": PROBABILITIES, "y_pred": PROBABILITIES},
            summary="Focal loss on probabilities: BCE down-weighting easy examples by "
                    "(1 - p_t)^gamma (torchvision's form, soft targets allowed).",
            formula=r"\ell(y, p) = \alpha_t (1-p_t)^\gamma\, \mathrm{BCE}(p, y),\quad "
                    r"p_t = p y + (1-p)(1-y),\ \alpha_t = \alpha y + (1-\alpha)(1-y)",
            properties={"nonnegative", "smooth"},
            notes="The default is the form of torchvision, optax and Keras: alpha_t "
                  "(1 - p_t)^gamma BCE(p, y). split_terms=True gives the source article's "
                  "form (lossreg's earlier default) -alpha (1-p)^gamma y log p - (1-alpha) p^gamma "
                  "(1-y) log(1-p). The two are equal for y in {0, 1} and differ for soft "
                  "targets (label smoothing): the torchvision form is minimised at p = y "
                  "only when gamma = 0, the split form neither. BCE is PyTorch's (logs "
                  "clamped at -100, gradient denominator max(p(1-p), 1e-12)), so values and "
                  "gradients are finite at p in {0, 1} and gamma = 0 with alpha=None gives "
                  "binary_cross_entropy exactly. Not convex for gamma > 0.",
        ),
        LossSpec(
            name="sigmoid_focal", family=FAMILY, task="binary",
            reference=sigmoid_focal_reference,
            reference_hessian=sigmoid_focal_reference_hessian,
            kernels=_focal_kernels(sigmoid_focal_elem, sigmoid_focal_split_elem),
            kernel_args=_focal_args,
            hyperparameters=focal_hyper(),
            domains={"y_true": PROBABILITIES, "y_pred": LOGITS},
            summary="Focal loss on logits (RetinaNet, torchvision's sigmoid_focal_loss), "
                    "stable, soft targets allowed.",
            formula=r"\ell(y, z) = \alpha_t (1-p_t)^\gamma\, \mathrm{BCE}_{\mathrm{logits}}"
                    r"(z, y),\quad p = \sigma(z),\ p_t = p y + (1-p)(1-y)",
            properties={"nonnegative", "smooth"},
            notes="Equals torchvision.ops.sigmoid_focal_loss (and optax's, Keras' "
                  "BinaryFocalCrossentropy with from_logits) for any y in [0, 1]; "
                  "split_terms=True gives the split form alpha y (1-p)^gamma softplus(-z) + "
                  "(1-alpha)(1-y) p^gamma softplus(z) (equal for y in {0, 1}). BCE is "
                  "computed from softplus and 1 - p_t from exp(-|z|): finite values and "
                  "gradients for every finite logit. alpha=None weighs both terms 1 "
                  "(torchvision's alpha < 0).",
        ),
    ]


@hookimpl
def register_losses(register):
    for spec in specs():
        register(spec)
