"""Any registered lossreg loss as a LightGBM objective and evaluation metric.

    >>> import lightgbm as lgb, lossreg.lightgbm as ll
    >>> params = {"objective": ll.objective("focal", gamma=2.0), "metric": "None"}
    >>> booster = lgb.train(params, dtrain, feval=ll.metric("focal", gamma=2.0))
    >>> model = lgb.LGBMRegressor(objective=ll.objective("huber", delta=0.5))

``objective(...)`` returns one callable for both of LightGBM's calling conventions:
``fobj(preds, train_data)`` (the native ``params["objective"]`` callable of lightgbm >= 4,
labels and weights from the Dataset) and ``objective(y_true, y_pred, weight)`` (the
scikit-learn estimators, which pass the weight as a third positional argument). It
returns the per-sample gradient and Hessian with respect to the raw score, shaped like
it. Link, Hessian floor and weights follow ``lossreg._gbdt``
(``objective(...).describe()``).

**Multiclass** (``softmax_cross_entropy`` with ``num_class=C``): LightGBM keeps scores
class-major (all samples of class 0, then class 1, ...). lightgbm >= 4 shows them to a
custom objective as an (n, C) view and reads (n, C) gradients back in that order;
lightgbm < 4 passed the flat class-major buffer, which is converted both ways here. Its
built-in ``multiclass`` objective uses the Hessian C / (C - 1) p (1 - p) (Friedman's
rescaling of the redundant K-class form); this adapter applies the same factor, so a
lossreg softmax objective trains exactly like the built-in one. Pass
``multiclass_hessian_scale=1.0`` for the exact diagonal.

With a custom objective LightGBM starts every score at 0 (no ``boost_from_average``);
give ``init_score`` on the Dataset for another start.

**Metrics** (``metric(...)``) return ``(name, value, False)`` (lower is better): the
loss's weighted mean at the raw score through the same link. LightGBM passes raw scores
to ``feval`` when the objective is custom.

Importing this module without LightGBM raises ``MissingDependencyError``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .plotting import MissingDependencyError

try:
    import lightgbm as _lgb
except ImportError:  # pragma: no cover - exercised in a subprocess by the tests
    raise MissingDependencyError(
        'lossreg.lightgbm needs LightGBM: pip install "lossreg[lightgbm]" (from a checkout: '
        'pip install -e ".[lightgbm]")') from None

from ._gbdt import (DEFAULT_HESSIAN_FLOOR, Metric, Objective, class_major_from_rows,
                    rows_from_class_major)

__all__ = ["DEFAULT_HESSIAN_FLOOR", "LGBMMetric", "LGBMObjective", "metric",
           "multiclass_factor", "objective"]


def multiclass_factor(n_classes: int) -> float:
    """LightGBM's multiclass Hessian factor C / (C - 1)."""
    return n_classes / (n_classes - 1.0)


def _rows(preds: np.ndarray, labels: Any, multiclass: bool) -> tuple[np.ndarray, bool]:
    """(n, C) rows from what LightGBM passes; True when it was the flat class-major
    buffer of lightgbm < 4 (the gradients go back the same way)."""
    preds = np.asarray(preds)
    n = np.shape(labels)[0] if np.ndim(labels) else 0
    if multiclass and preds.ndim == 1 and n and preds.size != n and preds.size % n == 0:
        return rows_from_class_major(preds, n), True
    return preds, False


class LGBMObjective:
    """The callable ``objective(...)`` returns (see the module docstring); ``core`` is the
    library-independent ``lossreg._gbdt.Objective``. Buffers are reused from call to call
    (LightGBM copies them to float32)."""

    def __init__(self, core: Objective):
        self.core = core
        self.__name__ = f"lossreg_{core.name}"

    def __call__(self, y_true: Any, y_pred: Any, weight: Any = None):
        if isinstance(y_pred, _lgb.Dataset):          # native: fobj(preds, train_data)
            preds, data = y_true, y_pred
            labels, weight = data.get_label(), data.get_weight()
        else:                                         # sklearn: (y_true, y_pred, weight)
            labels, preds = y_true, y_pred
        margin, flat = _rows(preds, labels, self.core.multiclass)
        g, h = self.core.grad_hess(labels, margin, weight, out=self.core.buffers(margin))
        if flat:
            return class_major_from_rows(g), class_major_from_rows(h)
        return g, h

    def describe(self) -> str:
        """The core's description plus LightGBM's conventions."""
        return self.core.describe() + "\n  LightGBM: fobj(preds, train_data) and sklearn " \
            "objective(y_true, y_pred, weight)"

    def __repr__(self) -> str:
        return f"lossreg.lightgbm.objective({self.core.name!r}, " \
               f"hessian_floor={self.core.hessian_floor:g})"


class LGBMMetric:
    """The callable ``metric(...)`` returns: ``feval(preds, eval_data)`` and the sklearn
    ``eval_metric(y_true, y_pred, weight)``, both giving ``(name, value, False)``."""

    def __init__(self, core: Metric):
        self.core = core
        self.__name__ = f"lossreg_{core.name}"

    def __call__(self, y_true: Any, y_pred: Any, weight: Any = None):
        if isinstance(y_pred, _lgb.Dataset):
            preds, data = y_true, y_pred
            labels, weight = data.get_label(), data.get_weight()
        else:
            labels, preds = y_true, y_pred
        margin, _ = _rows(preds, labels, self.core.multiclass)
        return self.__name__, self.core.value(labels, margin, weight), False

    def describe(self) -> str:
        return self.core.describe()


def objective(name_or_loss: Any, *, hessian_floor: float = DEFAULT_HESSIAN_FLOOR,
              multiclass_hessian_scale: Any = multiclass_factor,
              n_threads: int | None = None, **hyperparameters: Any) -> LGBMObjective:
    """A registered loss (name, alias or ``lossreg.Loss``) as a LightGBM objective.

    ``hessian_floor`` (default 1e-6): each sample's Hessian is at least this (times its
    weight); use 1.0 for piecewise-linear losses (mae, pinball). The softmax Hessian is
    multiplied by ``multiclass_hessian_scale`` (default C / (C - 1), LightGBM's
    convention; a float or a function of C). Bad names, losses without Hessian and bad
    hyperparameters raise here; bad labels or score shapes at the first boosting round.
    """
    note = ("C / (C - 1) p (1 - p) (LightGBM's multiclass convention)"
            if multiclass_hessian_scale is multiclass_factor
            else f"{multiclass_hessian_scale!r} x the exact diagonal")
    return LGBMObjective(Objective(name_or_loss, hessian_floor=hessian_floor,
                                   multiclass_hessian_scale=multiclass_hessian_scale,
                                   multiclass_hessian_note=note, n_threads=n_threads,
                                   **hyperparameters))


def metric(name_or_loss: Any, *, n_threads: int | None = None,
           **hyperparameters: Any) -> LGBMMetric:
    """A registered loss as a LightGBM ``feval``/``eval_metric`` on raw scores."""
    return LGBMMetric(Metric(name_or_loss, n_threads=n_threads, **hyperparameters))
