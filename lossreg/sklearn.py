"""Any registered loss as a scikit-learn scorer, for model selection.

    >>> from sklearn.model_selection import GridSearchCV
    >>> import lossreg.sklearn
    >>> search = GridSearchCV(model, grid, scoring=lossreg.sklearn.make_scorer("huber", delta=0.5))

``make_scorer`` returns a scorer built by ``sklearn.metrics.make_scorer`` with
``greater_is_better=False`` (scores are the negated "mean" loss, like sklearn's
``neg_log_loss``), so it works wherever ``scoring=`` is accepted (``cross_val_score``,
``GridSearchCV``, ``permutation_importance``) and supports ``sample_weight``, both when
called directly and through metadata routing (``scorer.set_score_request(sample_weight=True)``).

Which prediction the loss sees follows its ``y_pred`` domain:

* bounded predictions (probabilities: bce, focal, cross_entropy, kl_div, ...) use
  ``predict_proba``;
* unbounded predictions of a classification loss (logits: bce_with_logits,
  sigmoid_focal, softmax_cross_entropy) use ``decision_function``;
* anything else (regression losses) uses ``predict``.

Class labels become what the loss takes: 0/1 targets for element-wise binary losses (the
positive class is the larger label, sklearn's ``classes_[1]``), class indices for
``softmax_cross_entropy`` and one-hot rows for the other losses on rows; a binary
classifier's single column becomes the rows ``(1 - p, p)`` (probabilities) or ``(0, z)``
(logits). Labels are matched to the prediction's columns through the sorted labels of
``y_true``; when a split may miss a class, pass ``labels=`` (all the classes, e.g. the
estimator's ``classes_``), as for sklearn's ``log_loss``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ._bridge import describe, require, resolve, terms
from .errors import HyperparameterError, ReductionError, ShapeError
from .loss import BaseLoss

require("sklearn", "sklearn", "lossreg.sklearn")
from sklearn.metrics import make_scorer as _sklearn_make_scorer  # noqa: E402

__all__ = ["LossMetric", "make_scorer", "response_method"]


def _route(loss: BaseLoss) -> tuple[str, str]:
    """``(response method, target kind)``; kinds: "values", "binary", "rows"."""
    routes = set()
    for leaf in terms(loss):
        spec = leaf.spec
        iv = spec.domain("y_pred").interval
        if math.isfinite(iv.low) and math.isfinite(iv.high):
            method = "predict_proba"
        elif spec.task in ("binary", "multiclass", "distribution"):
            method = "decision_function"
        else:
            method = "predict"
        kind = ("values" if method == "predict" else
                "rows" if spec.layout == "rows" else "binary")
        routes.add((method, kind))
    if len(routes) != 1:
        raise HyperparameterError(f"the terms of {describe(loss)} need different predictions "
                                  f"({sorted(routes)}); a scorer can use one")
    return routes.pop()


def response_method(name_or_loss: Any, **hyper: Any) -> str:
    """The estimator method a loss is scored on: "predict_proba", "decision_function"
    or "predict" (see the module docstring)."""
    reduction = hyper.pop("reduction", None)
    return _route(resolve(name_or_loss, reduction, hyper))[0]


def _classes(y_true: np.ndarray, labels: Any, n_columns: int | None) -> np.ndarray:
    classes = np.unique(y_true) if labels is None else np.unique(np.asarray(labels))
    wanted = 2 if n_columns is None else n_columns
    if classes.shape[0] != wanted:
        where = "y_true" if labels is None else "labels"
        raise ShapeError(f"{where} has {classes.shape[0]} classes but the predictions have "
                         f"{wanted}; pass labels= (all the classes, e.g. the estimator's "
                         f"classes_) to make_scorer when a split may miss a class")
    if labels is not None and not np.all(np.isin(y_true, classes)):
        raise ShapeError("y_true holds labels that are not in labels=")
    return classes


class LossMetric:
    """``metric(y_true, y_pred, sample_weight=None, labels=None) -> float``: the loss's
    "mean" value on sklearn-style targets and predictions (the score function inside the
    scorer). Picklable through the loss's config, for ``n_jobs``."""

    def __init__(self, loss: BaseLoss):
        if loss.reduction != "mean":
            raise ReductionError(f"a scorer needs reduction 'mean' (comparable across "
                                 f"splits of different sizes), got {loss.reduction!r}")
        self.loss = loss
        self.method, self.kind = _route(loss)
        self.__name__ = loss.name

    def __call__(self, y_true, y_pred, sample_weight=None, labels=None) -> float:
        y_true = np.asarray(y_true)
        y_pred = np.asarray(y_pred)
        if self.kind == "binary":
            if y_pred.ndim != 1:
                raise ShapeError(f"{self.loss.name} is a binary loss but the predictions have "
                                 f"shape {y_pred.shape} (more than two classes?)")
            classes = _classes(y_true, labels, None)
            target = (y_true == classes[1]).astype(y_pred.dtype)
        elif self.kind == "rows":
            if y_pred.ndim == 1:                 # a binary classifier: one column
                y_pred = (np.stack([1.0 - y_pred, y_pred], axis=1)
                          if self.method == "predict_proba"
                          else np.stack([np.zeros_like(y_pred), y_pred], axis=1))
            classes = _classes(y_true, labels, y_pred.shape[1])
            index = np.searchsorted(classes, y_true)
            if all(leaf.spec.takes_labels for leaf in terms(self.loss)):
                target = index.astype(np.int64)
            else:
                target = np.zeros(y_pred.shape, dtype=y_pred.dtype)
                target[np.arange(index.shape[0]), index] = 1.0
        else:
            target = y_true
        return float(self.loss(target, y_pred, sample_weight))

    def __getstate__(self):
        return {"config": self.loss.config()}

    def __setstate__(self, state):
        from .config import from_config

        self.__init__(from_config(state["config"]))

    def __repr__(self) -> str:
        return f"lossreg.sklearn.LossMetric({describe(self.loss)})"


def make_scorer(name_or_loss: Any, *, labels: Any = None, **hyper: Any):
    """A scikit-learn scorer (greater is better: the negated "mean" loss) for a loss name
    (with ``hyper``), a config dict or a loss object with reduction "mean".

    ``labels``: all the class labels, for splits that may miss a class (see the module
    docstring). The prediction method follows the loss's domain (``response_method``).
    """
    reduction = hyper.pop("reduction", None)
    metric = LossMetric(resolve(name_or_loss, reduction, hyper))
    kwargs = {} if labels is None else {"labels": labels}
    return _sklearn_make_scorer(metric, response_method=metric.method, greater_is_better=False,
                                **kwargs)
