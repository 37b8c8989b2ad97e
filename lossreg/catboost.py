"""Any registered lossreg loss as a CatBoost objective and evaluation metric.

    >>> from catboost import CatBoostRegressor
    >>> import lossreg.catboost as lc
    >>> model = CatBoostRegressor(loss_function=lc.objective("huber", delta=0.5),
    ...                           eval_metric=lc.metric("huber", delta=0.5))

CatBoost takes objects rather than functions: ``objective(...)`` returns one with
``calc_ders_range(approxes, targets, weights)`` (element-wise losses: one raw score per
sample) and ``calc_ders_multi(approx, target, weight)`` (``softmax_cross_entropy``: one
sample's score vector). CatBoost *maximises*: its ``der1``/``der2`` are the derivatives of
the negated loss, so this adapter returns minus lossreg's gradient and (floored)
Hessian; weights are CatBoost's own and are applied once, by lossreg.

The multiclass Hessian CatBoost asks for is a C x C matrix. With
``multiclass_hessian="full"`` (the default) the adapter gives the full softmax
cross-entropy Hessian ``c (diag(p) - p p^T)``, as CatBoost's built-in ``MultiClass`` does,
so a lossreg softmax objective trains the same model (tested to 1e-6, weighted and
not). ``c`` is the sample's weight times its class weight (with label smoothing, the
class weights averaged over the smoothed target); it is read off lossreg's exact
diagonal, ``c = sum_j h_jj / sum_j p_j (1 - p_j)``, so every hyperparameter of the loss
carries through, and the diagonal itself is lossreg's, floored. ``"diagonal"`` gives the
diagonal alone (a diagonal-Newton step, as XGBoost and LightGBM take);
``multiclass_hessian_scale`` multiplies either. Element-wise objectives train like the
built-ins: ``mse`` like ``RMSE`` and ``binary_cross_entropy_with_logits`` like ``Logloss``
(tested with ``bootstrap_type="No"``, ``l2_leaf_reg=0``, ``boost_from_average=False``).
CatBoost asks for an explicit ``eval_metric`` with a custom objective. Link and floor
follow ``lossreg._gbdt`` (``objective(...).describe()``).

``metric(...)`` returns an object with ``evaluate``, ``is_max_optimal`` (False) and
``get_final_error``: the weighted mean of the per-sample loss at the raw score.

Bad labels or shapes raise lossreg's typed error inside the callback; CatBoost
re-raises it as ``CatBoostError`` whose message carries the lossreg error's name and
text (CatBoost's own wrapping, not avoidable from the callback). Bad names, losses
without Hessian and bad hyperparameters raise the lossreg error itself, at
``objective(...)``.

CatBoost calls these methods from Python once per block of samples (once per sample for
multiclass), so a lossreg objective here is as slow as CatBoost's Python callbacks
make it: correct, not fast. Importing this module without CatBoost raises
``MissingDependencyError``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .plotting import MissingDependencyError

try:
    import catboost as _catboost  # noqa: F401  (presence check)
except ImportError:  # pragma: no cover - exercised in a subprocess by the tests
    raise MissingDependencyError(
        'lossreg.catboost needs CatBoost: pip install "lossreg[catboost]" (from a checkout: '
        'pip install -e ".[catboost]")') from None

from ._gbdt import DEFAULT_HESSIAN_FLOOR, Metric, Objective
from .errors import HyperparameterError

__all__ = ["CatBoostMetric", "CatBoostObjective", "metric", "objective"]


def _array(values: Any) -> np.ndarray:
    """CatBoost's array wrappers (sequences) as a float64 array."""
    try:
        return np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        return np.fromiter((float(v) for v in values), dtype=np.float64, count=len(values))


class CatBoostObjective:
    """The object ``objective(...)`` returns (see the module docstring)."""

    def __init__(self, core: Objective, multiclass_hessian: str = "full"):
        self.core = core
        self.multiclass_hessian = multiclass_hessian

    def calc_ders_range(self, approxes, targets, weights):
        """``[(der1, der2), ...]`` of the negated loss, one pair per sample."""
        w = None if weights is None else _array(weights)
        g, h = self.core.grad_hess(_array(targets), _array(approxes), w)
        return list(zip((-g).tolist(), (-h).tolist()))

    def calc_ders_multi(self, approxes, target, weight):
        """``(der1, der2)`` of the negated loss for one sample: a gradient of length C and
        the C x C Hessian (full or diagonal: ``multiclass_hessian``)."""
        z = _array(approxes)[None, :]
        w = None if weight is None else np.array([float(weight)])
        labels = np.array([float(target)])
        if self.multiclass_hessian == "diagonal":
            g, h = self.core.grad_hess(labels, z, w)
            return (-g[0]).tolist(), np.diag(-h[0]).tolist()
        g, h = self.core.grad_hess(labels, z, w, floored=False)
        return (-g[0]).tolist(), (-self._full_hessian(z[0], h[0], w)).tolist()

    def _full_hessian(self, z: np.ndarray, diagonal: np.ndarray, w) -> np.ndarray:
        """``c (diag(p) - p p^T)`` for one sample with lossreg's own ``diagonal`` on the
        diagonal, floored; all of it scaled as the core scales multiclass Hessians."""
        p = np.exp(z - z.max())
        p /= p.sum()
        spread = float(np.sum(p * (1.0 - p)))
        c = float(np.sum(diagonal)) / spread if spread > 0.0 else 0.0
        scale = self.core._scale(len(z))
        full = (-c * scale) * np.outer(p, p)
        floor = self.core.hessian_floor * (1.0 if w is None else float(w[0]))
        np.fill_diagonal(full, np.maximum(scale * diagonal, floor))
        return full

    def describe(self) -> str:
        return self.core.describe() + "\n  CatBoost: calc_ders_range / calc_ders_multi " \
            "(derivatives of the negated loss)"


class CatBoostMetric:
    """The object ``metric(...)`` returns: CatBoost's custom-metric protocol."""

    def __init__(self, core: Metric):
        self.core = core

    def is_max_optimal(self) -> bool:
        return False

    def evaluate(self, approxes, target, weight):
        """``(sum of w_i l_i, sum of w_i)`` over the samples."""
        cols = [_array(a) for a in approxes]
        z = cols[0] if len(cols) == 1 else np.stack(cols, axis=1)
        y = _array(target)
        w = None if weight is None else _array(weight)
        values = self.core.per_sample(y, z, w)
        return float(np.sum(values)), float(len(y) if w is None else np.sum(w))

    def get_final_error(self, error, weight):
        return error / weight if weight else 0.0

    def describe(self) -> str:
        return self.core.describe()


MULTICLASS_HESSIANS = ("full", "diagonal")


def objective(name_or_loss: Any, *, hessian_floor: float = DEFAULT_HESSIAN_FLOOR,
              multiclass_hessian: str = "full", multiclass_hessian_scale: float = 1.0,
              n_threads: int | None = None, **hyperparameters: Any) -> CatBoostObjective:
    """A registered loss (name, alias or ``lossreg.Loss``) as a CatBoost ``loss_function``
    object. ``hessian_floor`` as in ``lossreg.xgboost.objective``; ``multiclass_hessian``
    "full" (CatBoost's ``MultiClass`` convention) or "diagonal" (see the module
    docstring)."""
    if multiclass_hessian not in MULTICLASS_HESSIANS:
        raise HyperparameterError(f"multiclass_hessian must be one of {MULTICLASS_HESSIANS}, "
                                  f"got {multiclass_hessian!r}")
    shape = ("c (diag(p) - p p^T), the full C x C matrix (CatBoost's MultiClass)"
             if multiclass_hessian == "full" else "p (1 - p), as a diagonal C x C matrix")
    return CatBoostObjective(Objective(name_or_loss, hessian_floor=hessian_floor,
                                       multiclass_hessian_scale=multiclass_hessian_scale,
                                       multiclass_hessian_note=(
                                           f"{multiclass_hessian_scale:g} x {shape}"),
                                       n_threads=n_threads, **hyperparameters),
                             multiclass_hessian)


def metric(name_or_loss: Any, *, n_threads: int | None = None,
           **hyperparameters: Any) -> CatBoostMetric:
    """A registered loss as a CatBoost ``eval_metric`` object (lower is better)."""
    return CatBoostMetric(Metric(name_or_loss, n_threads=n_threads, **hyperparameters))
