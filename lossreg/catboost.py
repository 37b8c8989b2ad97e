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
Hessian; weights are CatBoost's own and are applied once, by lossreg. The multiclass
Hessian CatBoost asks for is a C x C matrix: the adapter gives the diagonal one (the
exact diagonal p (1 - p), floored; ``multiclass_hessian_scale`` multiplies it). CatBoost's
built-in ``MultiClass`` uses the full matrix, so a lossreg softmax objective trains a
different (diagonal-Newton) model from it. Element-wise objectives train like the
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

__all__ = ["CatBoostMetric", "CatBoostObjective", "metric", "objective"]


def _array(values: Any) -> np.ndarray:
    """CatBoost's array wrappers (sequences) as a float64 array."""
    try:
        return np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        return np.fromiter((float(v) for v in values), dtype=np.float64, count=len(values))


class CatBoostObjective:
    """The object ``objective(...)`` returns (see the module docstring)."""

    def __init__(self, core: Objective):
        self.core = core

    def calc_ders_range(self, approxes, targets, weights):
        """``[(der1, der2), ...]`` of the negated loss, one pair per sample."""
        w = None if weights is None else _array(weights)
        g, h = self.core.grad_hess(_array(targets), _array(approxes), w)
        return list(zip((-g).tolist(), (-h).tolist()))

    def calc_ders_multi(self, approxes, target, weight):
        """``(der1, der2)`` of the negated loss for one sample: a gradient of length C and
        the diagonal C x C Hessian."""
        z = _array(approxes)[None, :]
        g, h = self.core.grad_hess(np.array([float(target)]), z,
                                   None if weight is None else np.array([float(weight)]))
        der2 = np.diag(-h[0])
        return (-g[0]).tolist(), der2.tolist()

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


def objective(name_or_loss: Any, *, hessian_floor: float = DEFAULT_HESSIAN_FLOOR,
              multiclass_hessian_scale: float = 1.0, n_threads: int | None = None,
              **hyperparameters: Any) -> CatBoostObjective:
    """A registered loss (name, alias or ``lossreg.Loss``) as a CatBoost ``loss_function``
    object. ``hessian_floor`` as in ``lossreg.xgboost.objective``."""
    return CatBoostObjective(Objective(name_or_loss, hessian_floor=hessian_floor,
                                       multiclass_hessian_scale=multiclass_hessian_scale,
                                       multiclass_hessian_note=(
                                           f"{multiclass_hessian_scale:g} p (1 - p), as a "
                                           f"diagonal C x C matrix"),
                                       n_threads=n_threads, **hyperparameters))


def metric(name_or_loss: Any, *, n_threads: int | None = None,
           **hyperparameters: Any) -> CatBoostMetric:
    """A registered loss as a CatBoost ``eval_metric`` object (lower is better)."""
    return CatBoostMetric(Metric(name_or_loss, n_threads=n_threads, **hyperparameters))
