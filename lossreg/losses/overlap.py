"""Overlap family: how much two rows agree, normalised: Keras's cosine_similarity, Dice
and Tversky.

All three are row losses (a value per row of (n, C), mean over rows) of the form
"1 - a normalised agreement" (cosine: minus the agreement), scale-free in the row, so
they share this module and the row-kernel structure of ``rows.py``: one block function
per loss on ``rows._drivers`` (serial below ``rows.SERIAL_BELOW`` elements, prange
above), float64 accumulation in index order (deterministic whatever the thread count),
and the kernel protocol's ``RowKernels`` signature.

* ``cosine_similarity`` [``cosine``]: Keras's -sum(l2_normalize(y_true) *
  l2_normalize(y_pred)) per row, in [-1, 1]. A row whose squared norm would underflow
  or overflow (elements below ~1e-135 or above ~1e150, float64) is rescaled by a power
  of two before normalising (exact), so a row of norm 1e-300 gets its exact cosine and
  gradient (~1/|y_pred|). Keras adds an epsilon to the squared norm, which makes a
  zero row's loss 0 and tiny rows wrong; here a zero row (either argument) is a
  DomainError.
* ``dice`` and ``tversky``: soft overlap of probability rows, in Keras's formulas,
  with the usual ``smooth`` (numerator and denominator) and Keras's ``eps``
  (denominator only, backend.epsilon() = 1e-7 by default, so the defaults give Keras's
  numbers). One generic kernel: with I = sum t p, A = sum t (1 - p), B = sum p (1 - t),
  N = k I + smooth and D = k I + alpha A + beta B + smooth + eps, the loss is 1 - N / D
  (Dice: k = 2, alpha = beta = 1, so D = sum t + sum p + smooth + eps; Tversky: k = 1).
  A row with D = 0 (all zero, smooth = eps = 0) is a DomainError.

Row errors (zero norms, zero denominators) are rules of the domains
(``Domain.nonzero_rows``), checked with every other domain rule before any kernel runs
(``dispatch.check_domains``: argument, constraint, flat index of the row's first
element, which lossreg.dask maps to its global index like any other), whatever a row's
sample weight; the kernels, which never raise, leave NaN in such rows (validate=False).
Dice and Tversky declare the rule their hyperparameters call for (``_denominator_rule``).
"""

from __future__ import annotations

import math

import numpy as np

from ..hookspecs import hookimpl
from ..kernels import RowKernels, njit
from ..spec import NONNEGATIVE, FINITE, Domain, Hyperparameter, LossSpec
from .probabilistic import PROBABILITIES
from .rows import SERIAL_BELOW, _block_range, _drivers

FAMILY = "overlap"
KERAS_EPSILON = 1e-7       # keras.backend.epsilon(): Keras's Dice / Tversky denominator term
_SAFE_LOW = 2.0 ** -900    # squared norms in [_SAFE_LOW, _SAFE_HIGH]: no rescaling needed
_SAFE_HIGH = 2.0 ** 1000


# -- cosine similarity ------------------------------------------------------------------------

@njit(inline="always", error_model="numpy")
def _pow2_scale(x):
    """2^-e with max |x_j| = m 2^e, m in [0.5, 1) (1.0 for a zero row): exact rescaling."""
    m = 0.0
    for j in range(x.shape[0]):
        m = max(m, abs(np.float64(x[j])))
    if m == 0.0:
        return 1.0
    return math.ldexp(1.0, -math.frexp(m)[1])


@njit(inline="always", error_model="numpy")
def _products(ti, pi, sa, sb):
    """|sa t|^2, |sb p|^2 and (sa t).(sb p) of one row pair, float64 sums in index order
    (sa, sb powers of two: exact; 1.0 leaves the rows as they are)."""
    aa = 0.0
    bb = 0.0
    ab = 0.0
    for j in range(ti.shape[0]):
        x = np.float64(ti[j]) * sa
        y = np.float64(pi[j]) * sb
        aa += x * x
        bb += y * y
        ab += x * y
    return aa, bb, ab


@njit(inline="always", error_model="numpy")
def _cosine_block(t, p, w, scale, values, grad, hess, b):
    """Rows of block b: values[i] = -cos(t_i, p_i), clamped to [-1, 1]; grad[i, j] =
    f (cos p_j / |p|^2 - t_j / (|t| |p|)), hess[i, j] = f (cos + p_j (2 t_j / (|t| |p|)
    - 3 cos p_j / |p|^2)) / |p|^2 with f = w_i * scale. Squared norms outside
    [2^-900, 2^1000] are recomputed on rows rescaled by powers of two (sa, sb): the
    gradient is then sb (...) of the scaled rows, the Hessian sb^2 (...). A zero-norm
    row (refused by the domains, ``nonzero_rows``; reached only unvalidated) gets NaN
    outputs. Returns 0: no value is counted here."""
    n_classes = p.shape[1]
    r0, r1 = _block_range(p, b)
    for i in range(r0, r1):
        ti = t[i]
        pi = p[i]
        sa = 1.0
        sb = 1.0
        aa, bb, ab = _products(ti, pi, sa, sb)
        if not ((aa >= _SAFE_LOW) & (aa <= _SAFE_HIGH) & (bb >= _SAFE_LOW) & (bb <= _SAFE_HIGH)):
            sa = _pow2_scale(ti)
            sb = _pow2_scale(pi)
            aa, bb, ab = _products(ti, pi, sa, sb)
        if not ((aa > 0.0) & (bb > 0.0)):   # a zero row (validate=False): NaN
            if values.shape[0] > 0:
                values[i] = np.nan
            for j in range(n_classes * (grad.shape[0] > 0)):
                grad[i, j] = np.nan
            for j in range(n_classes * (hess.shape[0] > 0)):
                hess[i, j] = np.nan
            continue
        inv = 1.0 / (math.sqrt(aa) * math.sqrt(bb))       # 1 / (|t| |p|), scaled rows
        c = min(max(ab * inv, -1.0), 1.0)
        if values.shape[0] > 0:
            values[i] = -c
        f = scale * (w[i] if w.shape[0] > 0 else 1.0)
        k1 = c / bb
        if grad.shape[0] > 0:
            fg = f * sb
            for j in range(n_classes):
                x = np.float64(ti[j]) * sa
                y = np.float64(pi[j]) * sb
                grad[i, j] = (k1 * y - inv * x) * fg
        if hess.shape[0] > 0:
            fh = (f * sb) * (sb / bb)
            for j in range(n_classes):
                x = np.float64(ti[j]) * sa
                y = np.float64(pi[j]) * sb
                hess[i, j] = (c + y * (2.0 * inv * x - 3.0 * k1 * y)) * fh
    return 0


cosine_impl = _drivers(
    "cosine_impl", _cosine_block, (),
    doc="""Keras's cosine_similarity per row, -t.p / (|t| |p|) (rows rescaled by powers
    of two where their squared norms leave [2^-900, 2^1000]); returns 0 (zero-norm rows
    are a domain rule, checked before the kernels run).""")


# -- Dice and Tversky ---------------------------------------------------------------------

@njit(inline="always", error_model="numpy")
def _overlap_block(t, p, w, scale, values, grad, hess, kappa, alpha, beta, smooth, eps, b):
    """Rows of block b: with I = sum t p, A = sum t (1-p), B = sum p (1-t), N = k I + s,
    D = k I + alpha A + beta B + s + eps: values[i] = 1 - N / D; with c_j = (k - alpha) t_j
    + beta (1 - t_j) = dD/dp_j: grad[i, j] = f (N c_j / D - k t_j) / D =: f g_j and
    hess[i, j] = -2 c_j g_j f / D (f = w_i * scale). A row with D = 0 (refused by the
    domains, ``nonzero_rows``; reached only unvalidated) gets non-finite outputs.
    Returns 0: no value is counted here."""
    n_classes = p.shape[1]
    r0, r1 = _block_range(p, b)
    for i in range(r0, r1):
        ti = t[i]
        pi = p[i]
        inter = 0.0
        miss = 0.0
        extra = 0.0
        for j in range(n_classes):
            x = np.float64(ti[j])
            y = np.float64(pi[j])
            inter += x * y
            miss += x * (1.0 - y)
            extra += y * (1.0 - x)
        num = kappa * inter + smooth
        den = kappa * inter + alpha * miss + beta * extra + smooth + eps
        if values.shape[0] > 0:
            values[i] = 1.0 - num / den
        f = scale * (w[i] if w.shape[0] > 0 else 1.0)
        ratio = num / den
        if grad.shape[0] > 0:
            for j in range(n_classes):
                x = np.float64(ti[j])
                c = (kappa - alpha) * x + beta * (1.0 - x)
                grad[i, j] = ((ratio * c - kappa * x) / den) * f
        if hess.shape[0] > 0:
            for j in range(n_classes):
                x = np.float64(ti[j])
                c = (kappa - alpha) * x + beta * (1.0 - x)
                g = (ratio * c - kappa * x) / den
                hess[i, j] = ((-2.0 * c) * g / den) * f
    return 0


overlap_impl = _drivers(
    "overlap_impl", _overlap_block, ("kappa", "alpha", "beta", "smooth", "eps"),
    doc="""Dice / Tversky per row, 1 - (k I + s) / (k I + alpha A + beta B + s + eps);
    returns 0 (a zero denominator is a domain rule, checked before the kernels run).""")


# -- the rules of whole rows, as domains ---------------------------------------------------

NONZERO_FINITE_ROWS = Domain(FINITE.interval, doc="rows of finite reals, not all zero",
                             nonzero_rows="self")


def _denominator_rule(kappa, alpha, beta, smooth, eps) -> dict:
    """The domains under which D = k I + alpha A + beta B + smooth + eps > 0 on
    probability rows (k > 0): none when smooth + eps > 0; else with alpha, beta > 0 the
    pair of rows must not be all zero (Dice: D = sum t + sum p); alpha = 0 leaves
    D = sum p (t + beta (1 - t)): y_pred's row non-zero; beta = 0 leaves y_true's; both
    0 leave D = I: a position where both are non-zero. Exact for Dice, alpha = beta = 1 and
    alpha = beta = 0; otherwise products rounding below the smallest subnormal (row mass
    near 1e-308) can still make D = 0, where the kernels leave NaN."""
    if smooth + eps > 0.0:
        return {}
    if alpha > 0.0 and beta > 0.0:
        return {"y_pred": _rule("either")}
    if beta > 0.0:
        return {"y_pred": _rule("self")}
    if alpha > 0.0:
        return {"y_true": _rule("self")}
    return {"y_pred": _rule("both")}


def _rule(kind: str) -> Domain:
    return Domain(PROBABILITIES.interval, doc=PROBABILITIES.doc + " (with smooth = eps = 0: "
                  "rows keeping the denominator positive)", nonzero_rows=kind)


# -- NumPy references ---------------------------------------------------------------------------

def cosine_reference(y_true, y_pred):
    """-cos per row (Keras without its epsilon), rows rescaled by their max first."""
    t, p = np.asarray(y_true, np.float64), np.asarray(y_pred, np.float64)
    t = t / np.max(np.abs(t), axis=-1, keepdims=True)
    p = p / np.max(np.abs(p), axis=-1, keepdims=True)
    c = np.sum(t * p, axis=-1) / (np.linalg.norm(t, axis=-1) * np.linalg.norm(p, axis=-1))
    return -np.clip(c, -1.0, 1.0)


def cosine_reference_hessian(y_true, y_pred):
    """Diagonal of each row's Hessian of -cos: (cos + 2 v_j u_j - 3 cos u_j^2) / |p|^2
    with u = p / |p|, v = t / |t|."""
    t, p = np.asarray(y_true, np.float64), np.asarray(y_pred, np.float64)
    v = t / np.linalg.norm(t, axis=-1, keepdims=True)
    norm = np.linalg.norm(p, axis=-1, keepdims=True)
    u = p / norm
    c = np.sum(u * v, axis=-1, keepdims=True)
    return (c + 2 * v * u - 3 * c * u * u) / norm ** 2


def _overlap_parts(y_true, y_pred, kappa, alpha, beta, smooth, eps):
    t, p = np.asarray(y_true, np.float64), np.asarray(y_pred, np.float64)
    inter = np.sum(t * p, axis=-1, keepdims=True)
    den = (kappa * inter + alpha * np.sum(t * (1 - p), axis=-1, keepdims=True)
           + beta * np.sum(p * (1 - t), axis=-1, keepdims=True) + smooth + eps)
    c = (kappa - alpha) * t + beta * (1 - t)
    return t, kappa * inter + smooth, den, c


def dice_reference(y_true, y_pred, smooth=0.0, eps=KERAS_EPSILON):
    """1 - (2 sum t p + smooth) / (sum t + sum p + smooth + eps) per row."""
    t, p = np.asarray(y_true, np.float64), np.asarray(y_pred, np.float64)
    return 1 - (2 * np.sum(t * p, axis=-1) + smooth) / (
        np.sum(t, axis=-1) + np.sum(p, axis=-1) + smooth + eps)


def tversky_reference(y_true, y_pred, alpha=0.5, beta=0.5, smooth=0.0, eps=KERAS_EPSILON):
    """1 - (I + smooth) / (I + alpha sum t (1-p) + beta sum p (1-t) + smooth + eps)."""
    _, num, den, _ = _overlap_parts(y_true, y_pred, 1.0, alpha, beta, smooth, eps)
    return 1 - num[..., 0] / den[..., 0]


def _overlap_hessian(y_true, y_pred, kappa, alpha, beta, smooth, eps):
    """d2/dp_j^2 of 1 - N/D: (2 k t_j c_j D - 2 N c_j^2) / D^3, c_j = dD/dp_j."""
    t, num, den, c = _overlap_parts(y_true, y_pred, kappa, alpha, beta, smooth, eps)
    return (2 * kappa * t * c * den - 2 * num * c * c) / den ** 3


def dice_reference_hessian(y_true, y_pred, smooth=0.0, eps=KERAS_EPSILON):
    return _overlap_hessian(y_true, y_pred, 2.0, 1.0, 1.0, smooth, eps)


def tversky_reference_hessian(y_true, y_pred, alpha=0.5, beta=0.5, smooth=0.0,
                              eps=KERAS_EPSILON):
    return _overlap_hessian(y_true, y_pred, 1.0, alpha, beta, smooth, eps)


# -- samplers, kernel arguments, specs ----------------------------------------------------------

SAMPLE_COLUMNS = 4


def cosine_sampler(rng, n, **hyper):
    """Rows of normal values (none zero), with a parallel and an anti-parallel pair."""
    t = rng.normal(0.0, 1.0, (n, SAMPLE_COLUMNS))
    p = rng.normal(0.0, 1.0, (n, SAMPLE_COLUMNS))
    if n > 2:
        p[1] = 2.0 * t[1] + 0.05 * p[1]
        p[2] = -0.5 * t[2] + 0.05 * p[2]
    return t, p


def overlap_sampler(rng, n, **hyper):
    """Soft masks: targets with exact 0s and 1s, predictions in (0.02, 0.98)."""
    t = rng.random((n, SAMPLE_COLUMNS))
    t[t < 0.3] = 0.0
    t[t > 0.8] = 1.0
    p = 0.02 + 0.96 * rng.random((n, SAMPLE_COLUMNS))
    return t, p


def _dice_args(hp):
    return (2.0, 1.0, 1.0, float(hp["smooth"]), float(hp["eps"]))


def _tversky_args(hp):
    return (1.0, float(hp["alpha"]), float(hp["beta"]), float(hp["smooth"]), float(hp["eps"]))


def _smooth_hyper() -> dict:
    return {
        "smooth": Hyperparameter(float, 0.0, NONNEGATIVE,
                                 "added to numerator and denominator (1: the V-Net / "
                                 "segmentation_models 'smooth'; 0: Keras)"),
        "eps": Hyperparameter(float, KERAS_EPSILON, NONNEGATIVE,
                              "added to the denominator only (Keras's backend.epsilon())")}


def _overlap_kernels():
    return RowKernels(overlap_impl, serial_below=SERIAL_BELOW)


OVERLAP_NOTES = (
    "Per row of (n, C), mean over rows: Keras's {keras} with axis=-1 (Keras's default "
    "axis=None reduces the whole tensor to one number: pass y.reshape(1, -1) for that). "
    "The defaults smooth=0, eps=1e-7 give Keras's numbers; smooth=1 is the V-Net / "
    "segmentation_models form (an empty target predicted empty then scores loss 0). "
    "Inputs are probabilities in [0, 1] (apply a sigmoid or softmax first). A row whose "
    "denominator is 0 (all zero, with smooth = eps = 0) raises DomainError naming the "
    "row (validate=False: NaN). Not convex; values in [0, 1].")


def specs() -> list[LossSpec]:
    return [
        LossSpec(
            name="cosine_similarity", aliases=("cosine",), family=FAMILY, task="embedding",
            kernels=RowKernels(cosine_impl, serial_below=SERIAL_BELOW),
            reference=cosine_reference, reference_hessian=cosine_reference_hessian,
            sampler=cosine_sampler,
            domains={"y_true": NONZERO_FINITE_ROWS, "y_pred": NONZERO_FINITE_ROWS},
            summary="Negative cosine similarity of rows (Keras's cosine_similarity): -1 for "
                    "the same direction, 1 for the opposite one.",
            formula=r"\ell(t, p) = -\frac{\sum_j t_j p_j}{\lVert t\rVert_2\, \lVert p\rVert_2}",
            properties={"bounded", "symmetric"},
            notes="keras.losses.cosine_similarity(y_true, y_pred, axis=-1): -sum of the "
                  "l2-normalised rows' product, in [-1, 1], mean over rows. Keras (and "
                  "torch's F.cosine_similarity, eps 1e-8) clamp the norm with an epsilon, "
                  "so an all-zero row silently gives 0; lossreg refuses it: a zero row in "
                  "either argument raises DomainError naming the argument and the row "
                  "(validate=False: NaN). Rows whose squared norm would underflow or "
                  "overflow are rescaled by a power of two first, so tiny (1e-300) and huge "
                  "(1e300) rows get exact values and gradients. The gradient scales as "
                  "1/|y_pred| and the Hessian diagonal as 1/|y_pred|^2 (each overflows only "
                  "where that true value exceeds the float range). Invariant to the scale "
                  "of each row; not convex. 'hessian' is the diagonal of each row's "
                  "Hessian in y_pred, as for every row loss.",
        ),
        LossSpec(
            name="dice", family=FAMILY, task="other", kernels=_overlap_kernels(),
            reference=dice_reference, reference_hessian=dice_reference_hessian,
            sampler=overlap_sampler, kernel_args=_dice_args, hyperparameters=_smooth_hyper(),
            domains={"y_true": PROBABILITIES, "y_pred": PROBABILITIES},
            domains_for=lambda hp: _denominator_rule(*_dice_args(hp)),
            summary="Soft Dice loss on rows of probabilities (segmentation masks), with a "
                    "smooth term (Keras's Dice).",
            formula=r"\ell(t, p) = 1 - \frac{2 \sum_j t_j p_j + s}{\sum_j t_j + \sum_j p_j "
                    r"+ s + \epsilon}",
            properties={"bounded", "nonnegative", "symmetric"},
            notes=OVERLAP_NOTES.format(keras="keras.losses.dice"),
        ),
        LossSpec(
            name="tversky", family=FAMILY, task="other", kernels=_overlap_kernels(),
            reference=tversky_reference, reference_hessian=tversky_reference_hessian,
            sampler=overlap_sampler, kernel_args=_tversky_args,
            hyperparameters={
                "alpha": Hyperparameter(float, 0.5, NONNEGATIVE,
                                        "weight of sum t (1 - p): missed target mass"),
                "beta": Hyperparameter(float, 0.5, NONNEGATIVE,
                                       "weight of sum p (1 - t): predicted mass off target"),
                **_smooth_hyper()},
            domains={"y_true": PROBABILITIES, "y_pred": PROBABILITIES},
            domains_for=lambda hp: _denominator_rule(*_tversky_args(hp)),
            summary="Tversky loss on rows of probabilities: Dice with separate weights for "
                    "missed and spurious mass (Keras's Tversky).",
            formula=r"\ell(t, p) = 1 - \frac{I + s}{I + \alpha \sum_j t_j (1-p_j) + \beta "
                    r"\sum_j p_j (1-t_j) + s + \epsilon},\quad I = \sum_j t_j p_j",
            properties={"bounded", "nonnegative"},
            notes=OVERLAP_NOTES.format(keras="keras.losses.tversky") + " As in Keras's "
                  "source, alpha multiplies sum t (1 - p) (target mass the prediction "
                  "misses) and beta sum p (1 - t) (mass predicted off the target); Keras's "
                  "docstring calls alpha the false-positive weight, its code and lossreg "
                  "apply it as written here. alpha = beta = 0.5 is Dice with eps doubled; "
                  "alpha = beta = 1 is the soft Jaccard (IoU) loss.",
        ),
    ]


@hookimpl
def register_losses(register):
    for spec in specs():
        register(spec)
