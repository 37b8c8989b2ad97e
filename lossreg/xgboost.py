"""Any registered lossreg loss as an XGBoost objective and evaluation metric.

    >>> import xgboost as xgb, lossreg.xgboost as lx
    >>> booster = xgb.train(params, dtrain, obj=lx.objective("focal", gamma=2.0),
    ...                     custom_metric=lx.metric("focal", gamma=2.0))
    >>> model = xgb.XGBRegressor(objective=lx.objective("pinball", q=0.9, hessian_floor=1.0))

``objective(...)`` returns one callable for both of XGBoost's calling conventions:
``obj(predt, dtrain)`` (``xgb.train``: labels and weights from the DMatrix) and
``objective(y_true, y_pred, sample_weight=None)`` (the scikit-learn estimators, which pass
``sample_weight`` by keyword when ``fit`` got one). It returns the per-sample gradient
and Hessian with respect to the raw margin, shaped like the margin ((n,) or (n, C)).
Link, Hessian floor and weights follow ``lossreg._gbdt`` (``objective(...).describe()``).

**Multiclass** (``softmax_cross_entropy``, with ``num_class=C``): XGBoost hands the
margin as (n, C) rows, lossreg's own layout (XGBoost < 2.1 passed it flat, row-major;
that is reshaped). Its built-in ``multi:softprob`` uses the Hessian 2 p (1 - p) (a
factor 2 over the exact diagonal p (1 - p)); this adapter applies the same factor 2, so
a lossreg softmax objective trains exactly like the built-in one. Pass
``multiclass_hessian_scale=1.0`` for the exact diagonal.

**Metrics** (``metric(...)``) report the loss's weighted mean at the margin (through the
same link), lower is better: XGBoost passes raw margins to a custom metric when the
objective is custom; with a built-in objective it passes transformed predictions, for
which this metric is not meant.

Importing this module without XGBoost raises ``MissingDependencyError``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .plotting import MissingDependencyError

try:
    import xgboost as _xgb
except ImportError:  # pragma: no cover - exercised in a subprocess by the tests
    raise MissingDependencyError(
        'lossreg.xgboost needs XGBoost: pip install "lossreg[xgboost]" (from a checkout: '
        'pip install -e ".[xgboost]")') from None

from ._gbdt import DEFAULT_HESSIAN_FLOOR, Metric, Objective

__all__ = ["DEFAULT_HESSIAN_FLOOR", "MULTICLASS_HESSIAN_SCALE", "XGBMetric", "XGBObjective",
           "metric", "objective"]

#: XGBoost's multi:softprob Hessian is 2 p (1 - p): twice the exact diagonal.
MULTICLASS_HESSIAN_SCALE = 2.0


def _rows(margin: np.ndarray, labels: np.ndarray, multiclass: bool) -> np.ndarray:
    """XGBoost < 2.1 passed multiclass margins flat (row-major): back to (n, C)."""
    margin = np.asarray(margin)
    n = np.shape(labels)[0] if np.ndim(labels) else 0
    if multiclass and margin.ndim == 1 and n and margin.size != n and margin.size % n == 0:
        return margin.reshape(n, margin.size // n)
    return margin


class XGBObjective:
    """The callable ``objective(...)`` returns (see the module docstring).

    ``core`` is the library-independent ``lossreg._gbdt.Objective``. Gradient and
    Hessian buffers are reused from call to call (XGBoost copies them), so keep a copy
    if you call the objective yourself and need earlier results.
    """

    def __init__(self, core: Objective):
        self.core = core
        self.__name__ = f"lossreg_{core.name}"

    def __call__(self, y_true: Any, y_pred: Any, sample_weight: Any = None):
        if isinstance(y_pred, _xgb.DMatrix):          # xgb.train: obj(predt, dtrain)
            margin, dtrain = y_true, y_pred
            labels, weight = dtrain.get_label(), dtrain.get_weight()
        else:                                         # sklearn: (y_true, y_pred, sample_weight)
            labels, margin, weight = y_true, y_pred, sample_weight
        margin = _rows(margin, labels, self.core.multiclass)
        return self.core.grad_hess(labels, margin, weight, out=self.core.buffers(margin))

    def describe(self) -> str:
        """The core's description plus XGBoost's conventions."""
        return self.core.describe() + "\n  XGBoost: obj(predt, dtrain) and sklearn " \
            "objective(y_true, y_pred, sample_weight=None)"

    def __repr__(self) -> str:
        return f"lossreg.xgboost.objective({self.core.name!r}, " \
               f"hessian_floor={self.core.hessian_floor:g})"


class XGBMetric:
    """The callable ``metric(...)`` returns: ``custom_metric(predt, dtrain) -> (name,
    value)`` for ``xgb.train`` and ``eval_metric(y_true, y_pred, sample_weight=None) ->
    value`` for the scikit-learn estimators (which take the name from ``__name__``)."""

    def __init__(self, core: Metric):
        self.core = core
        self.__name__ = f"lossreg_{core.name}"

    def __call__(self, y_true: Any, y_pred: Any, sample_weight: Any = None):
        if isinstance(y_pred, _xgb.DMatrix):
            margin, dtrain = y_true, y_pred
            labels = dtrain.get_label()
            value = self.core.value(labels, _rows(margin, labels, self.core.multiclass),
                                    dtrain.get_weight())
            return self.__name__, value
        return self.core.value(y_true, _rows(y_pred, np.asarray(y_true), self.core.multiclass),
                               sample_weight)

    def describe(self) -> str:
        return self.core.describe()


def objective(name_or_loss: Any, *, hessian_floor: float = DEFAULT_HESSIAN_FLOOR,
              multiclass_hessian_scale: float = MULTICLASS_HESSIAN_SCALE,
              n_threads: int | None = None, **hyperparameters: Any) -> XGBObjective:
    """A registered loss (name, alias or ``lossreg.Loss``) as an XGBoost objective.

    ``hessian_floor`` (default 1e-6): each sample's Hessian is at least this (times its
    weight); use 1.0 for piecewise-linear losses (mae, pinball). ``multiclass_hessian_scale``
    (default 2.0, XGBoost's softprob convention) multiplies the softmax Hessian.
    Bad names, losses without Hessian and bad hyperparameters raise here; bad labels or
    margin shapes at the first boosting round, before any tree is built.
    """
    note = (f"{multiclass_hessian_scale:g} p (1 - p) (XGBoost's multi:softprob convention)"
            if multiclass_hessian_scale == MULTICLASS_HESSIAN_SCALE
            else f"{multiclass_hessian_scale:g} x the exact diagonal")
    return XGBObjective(Objective(name_or_loss, hessian_floor=hessian_floor,
                                  multiclass_hessian_scale=multiclass_hessian_scale,
                                  multiclass_hessian_note=note, n_threads=n_threads,
                                  **hyperparameters))


def metric(name_or_loss: Any, *, n_threads: int | None = None,
           **hyperparameters: Any) -> XGBMetric:
    """A registered loss as an XGBoost custom metric on raw margins (lower is better)."""
    return XGBMetric(Metric(name_or_loss, n_threads=n_threads, **hyperparameters))
