"""Terms of sample weight exactly 0: harmless stand-in inputs, in place.

A term of weight 0 must add exactly 0, even where its loss or derivative is infinite
(0 * inf would be NaN). Rather than dropping such terms (which would shift every later
term into another reduction chunk, so a piece of the input, a ``lossreg.dask`` block,
would no longer sum like the whole), the plan keeps the layout and replaces the inputs
of those terms, on a copy, by a stand-in term where the loss and its derivatives are
finite: the kernels' w * finite = 0 then gives exactly 0 there, and every other term
sits in the same chunk at the same position as without weights. The domains are
checked on the original inputs first (a NaN under a weight 0 still raises), and the
derivatives and per-term values at those terms are then set to +0.0.

The stand-in: ``LossSpec.neutral`` (a ``(y_true, y_pred)`` element pair) when the loss
gives one, else a point inside each argument's domain interval (the midpoint of a
bounded interval, one unit inside a half-bounded one, 0 on the reals; a whole number
for integer domains); rows whose domain fixes their sum are uniform (sum / classes);
where a domain asks for non-zero rows (``Domain.nonzero_rows``) a non-zero point
(``spec.nonzero_point``) replaces a 0; class labels become label 0.
"""

from __future__ import annotations

import math

import numpy as np

from .dispatch import Batch
from .spec import ARGUMENTS, Domain, LossSpec, nonzero_point


def interior(domain: Domain) -> float:
    """A point inside ``domain.interval`` away from its ends (whole for integer domains)."""
    iv = domain.interval
    lo, hi = iv.low, iv.high
    if math.isfinite(lo) and math.isfinite(hi):
        x = lo + (hi - lo) / 2 if lo < hi else lo
    elif math.isfinite(lo):
        x = lo + 1.0
    elif math.isfinite(hi):
        x = hi - 1.0
    else:
        x = 0.0
    if domain.integer:
        for whole in (math.floor(x), math.ceil(x)):
            if whole in iv:
                return float(whole)
    return x


def stand_in(spec: LossSpec, argument: str, n_cols: int | None) -> float | np.ndarray:
    """The stand-in value of one element (``n_cols`` None) or one row of ``argument``."""
    domain = spec.domain(argument)
    neutral = getattr(spec, "neutral", None)
    x = float(neutral[0 if argument == "y_true" else 1]) if neutral is not None \
        else interior(domain)
    if neutral is None and x == 0.0 and n_cols is not None \
            and any(spec.domain(a).nonzero_rows is not None for a in ARGUMENTS):
        x = nonzero_point(domain)      # a zero row would break the rule (cosine: 0 / 0)
    if n_cols is None:
        return x
    if neutral is None and domain.row_sum is not None \
            and float(domain.row_sum) / n_cols in domain.interval:
        x = float(domain.row_sum) / n_cols
    return np.full(n_cols, x)


def neutralized(spec: LossSpec, batch: Batch) -> tuple[Batch, np.ndarray]:
    """A copy of ``batch`` with the stand-in at every term of weight 0, and those terms'
    indices (elements, or rows for row losses)."""
    zero = np.flatnonzero(batch.w == 0.0)
    rows = batch.p.ndim == 2
    n_cols = batch.p.shape[1] if rows else None
    t, p = batch.t.copy(), batch.p.copy()
    t[zero] = 0 if batch.labels else stand_in(spec, "y_true", n_cols)
    p[zero] = stand_in(spec, "y_pred", n_cols)
    return Batch(t, p, batch.w, batch.pred_shape, batch.value_shape, batch.n_terms,
                 batch.weight_sum, batch.dtype, batch.labels, False), zero


def cleared(zero: np.ndarray, *arrays: np.ndarray | None) -> None:
    """+0.0 at the terms ``zero`` (first axis) of each array given (the kernels left
    0 * finite there, which may be -0.0)."""
    for a in arrays:
        if a is not None:
            a[zero] = 0
