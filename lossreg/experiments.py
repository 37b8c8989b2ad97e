"""Config-driven experiments: compare losses by fitting a linear model on a real dataset.

An experiment file (TOML, JSON or YAML) has an ``[experiment]`` table and one
``[losses.LABEL]`` table per loss to compare (any ``lossreg.from_config`` mapping, weighted
sums included)::

    [experiment]
    task = "regression"          # or "binary"
    dataset = "diabetes"         # scikit-learn's bundled datasets: diabetes, breast_cancer
    outlier_fraction = 0.15      # regression: share of training targets corrupted

    [losses.mse]
    name = "mse"
    [losses.huber]
    name = "huber"
    delta = 1.0

``model = "xgboost"`` fits gradient-boosted trees instead, with each loss as the XGBoost
objective (``lossreg.xgboost``; ``epochs`` are boosting rounds, ``learning_rate`` is eta,
``max_depth`` and ``hessian_floor`` apply). Otherwise each loss fits the same linear model
``X @ w + b`` by full-batch gradient descent in
NumPy, using ``loss.value_and_grad`` for the gradient with respect to the model output
(for losses on probabilities, ``y_pred = sigmoid(X @ w + b)`` and the chain rule gives the
gradient of the logits). Metrics are computed on a held-out split that is never corrupted.
The data come from scikit-learn (``pip install "lossreg[examples]"``); nothing else is
downloaded. ``run_experiment`` returns the rows, ``format_table`` prints them.

Regression: targets are centred on the training median and scaled by the training
median absolute deviation (robust to the outliers being studied); features are
standardised on the training split. Outliers add ``outlier_scale`` standard deviations
of the clean training targets to a random ``outlier_fraction`` of the training targets
(``outlier_sign = "positive"``: all upwards, which biases a least-squares fit; ``"both"``:
random signs). Binary: the positive class (``positive_class``) is subsampled so it makes
up ``positive_fraction`` of the data; the split is stratified.
"""

from __future__ import annotations

import math
import numbers
import os
import pathlib
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from ._suggest import did_you_mean
from ._limits import check_size, short_repr
from .config import (WeightedSum, _refuse_code_key, _refuse_value, from_config,
                     load_file)
from .errors import ConfigError, LossError, MissingDependencyError, install_hint
from .loss import Loss

__all__ = ["Experiment", "MissingDependencyError", "load_experiment", "run_experiment",
           "format_table", "DATASETS"]


#: Bundled scikit-learn datasets an experiment may name, and the task each fits.
DATASETS = {"diabetes": ("load_diabetes", "regression"),
            "breast_cancer": ("load_breast_cancer", "binary")}

# key: (default, kind, check, text). kind: float, int, str or "list".
_COMMON = {
    "task": (None, str, lambda v: v in ("regression", "binary"), "'regression' or 'binary'"),
    "dataset": (None, str, lambda v: v in DATASETS, " or ".join(map(repr, DATASETS))),
    "title": ("", str, lambda v: True, "a string"),
    "description": ("", str, lambda v: True, "a string"),
    "seed": (0, int, lambda v: v >= 0, "an int >= 0"),
    "test_fraction": (0.3, float, lambda v: 0.05 <= v <= 0.9, "in [0.05, 0.9]"),
    "epochs": (500, int, lambda v: 1 <= v <= 100_000, "an int in [1, 100000]"),
    "learning_rate": (0.1, float, lambda v: 0 < v <= 100, "in (0, 100]"),
    "lr_decay": (0.0, float, lambda v: v >= 0, ">= 0 (lr_t = lr / (1 + lr_decay * t))"),
    "l2": (0.0, float, lambda v: v >= 0, ">= 0 (ridge penalty on w)"),
    "model": ("linear", str, lambda v: v in ("linear", "xgboost"),
              "'linear' or 'xgboost' (gradient boosting, needs lossreg[xgboost])"),
    "max_depth": (3, int, lambda v: 1 <= v <= 16, "an int in [1, 16] (model 'xgboost')"),
    "hessian_floor": (1e-6, float, lambda v: v >= 0, ">= 0 (model 'xgboost')"),
    "features": (None, "list", lambda v: len(v) > 0 and all(isinstance(f, (str, int)) and
                                                             not isinstance(f, bool) for f in v),
                 "a non-empty list of feature names or column indices"),
}
_REGRESSION = {
    "outlier_fraction": (0.1, float, lambda v: 0 <= v < 0.5, "in [0, 0.5)"),
    "outlier_scale": (10.0, float, lambda v: v >= 0, ">= 0 (standard deviations)"),
    "outlier_sign": ("positive", str, lambda v: v in ("positive", "both"), "'positive' or 'both'"),
}
_BINARY = {
    "positive_class": (0, int, lambda v: v in (0, 1), "0 or 1 (the dataset's label)"),
    "positive_fraction": (0.1, float, lambda v: 0 < v <= 0.5, "in (0, 0.5]"),
    "threshold": (0.5, float, lambda v: 0 < v < 1, "in (0, 1)"),
}
_TOP_KEYS = ("experiment", "losses")


@dataclass
class Experiment:
    """A validated experiment: its settings and the losses to compare, by label."""

    settings: dict[str, Any]
    losses: dict[str, Loss]
    source: str = "<mapping>"

    @property
    def task(self) -> str:
        return self.settings["task"]


@dataclass
class Result:
    """What ``run_experiment`` returns: settings, data description and one row per loss."""

    experiment: Experiment
    data: dict[str, Any]
    metrics: list[str]
    rows: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.experiment.source, "settings": self.experiment.settings,
                "data": self.data, "metrics": self.metrics, "rows": self.rows}


# -- loading and validation --------------------------------------------------------------------

def load_experiment(config: Mapping[str, Any] | str | os.PathLike, *, registry=None,
                    overrides: Mapping[str, Any] | None = None) -> Experiment:
    """Validate an experiment mapping or file; build its losses with ``from_config``.

    ``overrides`` replace ``[experiment]`` settings (the CLI's ``--epochs``/``--seed``).
    Unknown keys raise ConfigError with suggestions; bad loss hyperparameters raise
    HyperparameterError as ``lossreg.get`` does.
    """
    source = "<mapping>"
    if isinstance(config, (str, os.PathLike)):
        source = str(config)
        config = load_file(config)             # bounded by load_file
    elif isinstance(config, Mapping):
        check_size(config, source)             # before anything walks it
    if not isinstance(config, Mapping):
        raise ConfigError(f"an experiment must be a mapping, got {type(config).__name__}")
    if "experiment" not in config:
        raise ConfigError(f"{source}: no [experiment] table; this looks like a loss config "
                          f"(evaluate it with `lossreg eval --config`)")
    for key in config:
        if key not in _TOP_KEYS:
            raise ConfigError(f"{source}: unknown top-level key {short_repr(key)}"
                              f"{did_you_mean(str(key), _TOP_KEYS)} (an experiment has "
                              f"[experiment] and [losses.LABEL] tables)")
    exp = config["experiment"]
    if not isinstance(exp, Mapping):
        raise ConfigError(f"{source}: [experiment] must be a table")
    exp = dict(exp)
    exp.update(overrides or {})
    settings = _settings(exp, source)
    losses_cfg = config.get("losses")
    if not isinstance(losses_cfg, Mapping) or not losses_cfg:
        raise ConfigError(f"{source}: [losses] must hold at least one [losses.LABEL] table")
    losses = {}
    for label, cfg in losses_cfg.items():
        if not isinstance(cfg, Mapping):
            raise ConfigError(f"{source}: losses.{label} must be a table (a loss config)")
        try:
            loss = from_config(cfg, registry=registry)
        except ConfigError as exc:
            raise ConfigError(f"{source}: losses.{label}: {exc}") from None
        if loss.reduction == "none":
            raise ConfigError(f"{source}: losses.{label}: reduction 'none' gives no scalar to "
                              f"minimise; use 'mean' or 'sum'")
        losses[str(label)] = loss
    return Experiment(settings, losses, source)


def _settings(exp: dict, source: str) -> dict[str, Any]:
    for key in exp:
        _refuse_code_key(str(key), f"{source}: experiment")
    task = exp.get("task")
    if task is None and isinstance(exp.get("dataset"), str) and exp["dataset"] in DATASETS:
        task = DATASETS[exp["dataset"]][1]
    schema = dict(_COMMON)
    schema.update(_REGRESSION if task == "regression" else _BINARY if task == "binary" else {})
    for key in exp:
        if key not in schema:
            allowed = list(_COMMON) + list(_REGRESSION) + list(_BINARY)
            hint = did_you_mean(str(key), allowed)
            where = (f" for task {task!r}" if key in allowed else "")
            raise ConfigError(f"{source}: unknown [experiment] key {short_repr(key)}{where}"
                              f"{hint}")
    for key, value in exp.items():             # keys first, then values
        _refuse_value(value, f"{source}: experiment.{key}")
    out = {}
    for key, (default, kind, check, text) in schema.items():
        value = exp.get(key, default if key != "task" else task)
        if value is None and key == "features":
            out[key] = None
            continue
        if value is None:
            raise ConfigError(f"{source}: [experiment] needs {key} ({text})")
        if kind is int:
            ok = isinstance(value, numbers.Integral) and not isinstance(value, bool)
        elif kind is float:
            ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and \
                math.isfinite(float(value))
            value = float(value) if ok else value
        elif kind == "list":
            ok = isinstance(value, (list, tuple))
            value = list(value) if ok else value
        else:
            ok = isinstance(value, str)
        if not ok or not check(value):
            raise ConfigError(f"{source}: [experiment] {key} must be {text}, got "
                              f"{short_repr(value)}")
        out[key] = int(value) if kind is int else value
    if DATASETS[out["dataset"]][1] != out["task"]:
        raise ConfigError(f"{source}: dataset {out['dataset']!r} is for task "
                          f"{DATASETS[out['dataset']][1]!r}, not {out['task']!r}")
    return out


# -- data --------------------------------------------------------------------------------------

def _load_dataset(name: str, features: list | None = None) -> tuple[np.ndarray, np.ndarray]:
    try:
        import sklearn.datasets as skd
    except ImportError:
        raise MissingDependencyError("experiments load scikit-learn's bundled datasets: "
                                     + install_hint("examples")) from None
    bunch = getattr(skd, DATASETS[name][0])()
    x = np.asarray(bunch.data, dtype=np.float64)
    if features is not None:
        names = [str(f) for f in bunch.feature_names]
        cols = []
        for f in features:
            if isinstance(f, str):
                if f not in names:
                    raise ConfigError(f"dataset {name!r} has no feature {f!r}"
                                      f"{did_you_mean(f, names)}")
                cols.append(names.index(f))
            elif not 0 <= f < len(names):
                raise ConfigError(f"dataset {name!r} has {len(names)} features; column {f} "
                                  f"does not exist")
            else:
                cols.append(int(f))
        x = x[:, cols]
    return x, np.asarray(bunch.target, dtype=np.float64)


def _split(n: int, test_fraction: float, rng: np.random.Generator,
           strata: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    groups = [np.arange(n)] if strata is None else [np.flatnonzero(strata == s)
                                                     for s in np.unique(strata)]
    train, test = [], []
    for idx in groups:
        idx = rng.permutation(idx)
        k = max(1, int(round(test_fraction * idx.size)))
        test.append(idx[:k])
        train.append(idx[k:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def _standardize(x_train: np.ndarray, x_test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mu, sd = x_train.mean(axis=0), x_train.std(axis=0)
    sd[sd == 0] = 1.0
    return (x_train - mu) / sd, (x_test - mu) / sd


def regression_data(s: dict[str, Any]) -> dict[str, Any]:
    """Standardised train/test split with outliers injected into the training targets."""
    x, y = _load_dataset(s["dataset"], s["features"])
    rng = np.random.default_rng(s["seed"])
    tr, te = _split(len(y), s["test_fraction"], rng)
    x_tr, x_te = _standardize(x[tr], x[te])
    y_tr, y_te = y[tr].copy(), y[te]
    n_out = int(round(s["outlier_fraction"] * len(y_tr)))
    bad = rng.choice(len(y_tr), size=n_out, replace=False)
    sign = np.ones(n_out) if s["outlier_sign"] == "positive" else rng.choice([-1.0, 1.0], n_out)
    y_tr[bad] += sign * s["outlier_scale"] * y[tr].std()
    center = float(np.median(y_tr))
    scale = float(np.median(np.abs(y_tr - center))) * 1.4826 or 1.0
    return {"x_train": x_tr, "x_test": x_te, "y_train": (y_tr - center) / scale,
            "y_test": y_te, "center": center, "scale": scale,
            "info": {"dataset": s["dataset"], "n_train": len(tr), "n_test": len(te),
                     "n_features": x.shape[1], "n_outliers": n_out}}


def binary_data(s: dict[str, Any]) -> dict[str, Any]:
    """Imbalanced, stratified split: positives subsampled to ``positive_fraction``."""
    x, y = _load_dataset(s["dataset"], s["features"])
    rng = np.random.default_rng(s["seed"])
    pos = y == s["positive_class"]
    neg_idx, pos_idx = np.flatnonzero(~pos), np.flatnonzero(pos)
    f = s["positive_fraction"]
    n_pos = min(pos_idx.size, max(4, int(round(f * neg_idx.size / (1 - f)))))
    keep = np.sort(np.concatenate([neg_idx, rng.choice(pos_idx, n_pos, replace=False)]))
    x, t = x[keep], pos[keep].astype(np.float64)
    tr, te = _split(len(t), s["test_fraction"], rng, strata=t)
    x_tr, x_te = _standardize(x[tr], x[te])
    return {"x_train": x_tr, "x_test": x_te, "y_train": t[tr], "y_test": t[te],
            "info": {"dataset": s["dataset"], "n_train": len(tr), "n_test": len(te),
                     "n_features": x.shape[1], "positives_train": int(t[tr].sum()),
                     "positives_test": int(t[te].sum())}}


# -- model and training ------------------------------------------------------------------------

def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))   # stable for any z, no overflow warnings


def _takes_probabilities(loss: Loss) -> bool:
    """Whether the loss's y_pred is a probability (its domain is inside [0, 1])."""
    if isinstance(loss, WeightedSum):
        kinds = {_takes_probabilities(t) for _, t in loss.terms}
        if len(kinds) > 1:
            raise ConfigError(f"{loss.label}: the terms mix losses on probabilities and on "
                              f"logits; the experiment cannot feed both")
        return kinds.pop()
    iv = loss.spec.domain("y_pred").interval
    return iv.low >= 0.0 and iv.high <= 1.0


def objective(loss: Loss, y: np.ndarray, z: np.ndarray, link: str,
              out: np.ndarray) -> tuple[float, np.ndarray]:
    """Loss value and its gradient with respect to the linear output ``z``.

    ``link="identity"``: y_pred = z. ``link="sigmoid"``: y_pred = sigmoid(z), and the
    gradient is multiplied by p (1 - p) (chain rule).
    """
    if link == "sigmoid":
        p = _sigmoid(z)
        value, g = loss.value_and_grad(y, p, out=out)
        g *= p * (1.0 - p)
        return value, g
    return loss.value_and_grad(y, z, out=out)


def fit_linear(loss: Loss, x: np.ndarray, y: np.ndarray, *, link: str, epochs: int,
               learning_rate: float, lr_decay: float = 0.0, l2: float = 0.0
               ) -> tuple[np.ndarray, float, float]:
    """Full-batch gradient descent on ``loss(y, link(x @ w + b)) + l2/2 |w|^2``.

    Returns ``(w, b, final training loss)``. The gradient buffer is preallocated and
    passed as ``out=``, so the loop allocates only NumPy temporaries.
    """
    n, d = x.shape
    w, b = np.zeros(d), 0.0
    grad = np.empty(n)
    value = math.nan
    for t in range(epochs):
        z = x @ w + b
        value, g = objective(loss, y, z, link, grad)
        lr = learning_rate / (1.0 + lr_decay * t)
        w -= lr * (x.T @ g + l2 * w)
        b -= lr * float(g.sum())
        if not (math.isfinite(value) and np.all(np.isfinite(w))):
            raise LossError(f"training with {loss!r} diverged at epoch {t} (value {value}); "
                            f"lower learning_rate")
    value, _ = objective(loss, y, x @ w + b, link, grad)
    return w, b, float(value)


def fit_xgboost(loss: Loss, x: np.ndarray, y: np.ndarray, *, rounds: int, learning_rate: float,
                max_depth: int, seed: int, hessian_floor: float, l2: float = 0.0):
    """Gradient-boosted trees (XGBoost, ``hist``, one thread) with ``loss`` as the
    objective (``lossreg.xgboost.objective``: its link, Hessian floor and weights).
    Returns ``(predict_margin, final training loss)``; ``epochs`` are boosting rounds
    and ``learning_rate`` is XGBoost's eta. The booster starts from margin 0."""
    if isinstance(loss, WeightedSum):
        raise ConfigError(f"{loss.label}: model 'xgboost' takes one registered loss, not a "
                          f"weighted sum")
    import xgboost as xgb

    from . import xgboost as lx

    obj = lx.objective(loss, hessian_floor=hessian_floor)
    params = {"max_depth": max_depth, "eta": learning_rate, "seed": seed, "nthread": 1,
              "tree_method": "hist", "base_score": 0.0, "reg_lambda": 1.0 + l2}
    booster = xgb.train(params, xgb.DMatrix(x, label=y), rounds, obj=obj)

    def predict_margin(features: np.ndarray) -> np.ndarray:
        return booster.predict(xgb.DMatrix(features), output_margin=True).astype(np.float64)

    value = obj.core.value(y, predict_margin(x))
    return predict_margin, float(value)


# -- metrics -----------------------------------------------------------------------------------

def regression_metrics(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    r = pred - y
    return {"MAE": float(np.mean(np.abs(r))), "RMSE": float(np.sqrt(np.mean(r * r))),
            "MedAE": float(np.median(np.abs(r))),
            "R2": float(1.0 - np.sum(r * r) / np.sum((y - y.mean()) ** 2))}


def roc_auc(y: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U, ties counted half)."""
    pos, neg = score[y == 1], score[y == 0]
    if pos.size == 0 or neg.size == 0:
        return math.nan
    order = np.argsort(np.concatenate([pos, neg]), kind="mergesort")
    allv = np.concatenate([pos, neg])[order]
    ranks = np.empty(allv.size)
    i = 0
    while i < allv.size:           # average ranks over ties
        j = i
        while j + 1 < allv.size and allv[j + 1] == allv[i]:
            j += 1
        ranks[i:j + 1] = 0.5 * (i + j) + 1.0
        i = j + 1
    r = np.empty(allv.size)
    r[order] = ranks
    return float((r[:pos.size].sum() - pos.size * (pos.size + 1) / 2) / (pos.size * neg.size))


def average_precision(y: np.ndarray, score: np.ndarray) -> float:
    """Average precision: mean precision at the rank of each positive (ties grouped)."""
    if not np.any(y == 1):
        return math.nan
    order = np.argsort(-score, kind="mergesort")
    ys, ss = y[order], score[order]
    tp = np.cumsum(ys)
    last = np.r_[ss[1:] != ss[:-1], True]     # the end of each group of tied scores
    tp, k = tp[last], (np.flatnonzero(last) + 1)
    precision = tp / k
    recall_step = np.diff(np.r_[0.0, tp]) / tp[-1]
    return float(np.sum(precision * recall_step))


def binary_metrics(y: np.ndarray, prob: np.ndarray, threshold: float) -> dict[str, float]:
    hit = prob >= threshold
    tp = float(np.sum(hit & (y == 1)))
    fp = float(np.sum(hit & (y == 0)))
    fn = float(np.sum(~hit & (y == 1)))
    tn = float(np.sum(~hit & (y == 0)))
    recall = tp / (tp + fn) if tp + fn else math.nan
    precision = tp / (tp + fp) if tp + fp else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    specificity = tn / (tn + fp) if tn + fp else math.nan
    return {"AP": average_precision(y, prob), "ROC-AUC": roc_auc(y, prob),
            "recall": recall, "precision": precision, "F1": f1,
            "bal-acc": 0.5 * (recall + specificity)}


# -- running -----------------------------------------------------------------------------------

def run_experiment(experiment: Experiment | Mapping | str | os.PathLike, *, registry=None,
                   overrides: Mapping[str, Any] | None = None,
                   progress: Callable[[str], None] | None = None) -> Result:
    """Fit the model once per loss; return a Result with one metrics row per loss.

    ``progress(label)`` is called after each loss (the CLI draws a bar with it).
    """
    if not isinstance(experiment, Experiment):
        experiment = load_experiment(experiment, registry=registry, overrides=overrides)
    s = experiment.settings
    data = regression_data(s) if s["task"] == "regression" else binary_data(s)
    x_tr, y_tr, x_te, y_te = data["x_train"], data["y_train"], data["x_test"], data["y_test"]
    result = Result(experiment, data["info"], [])
    if s["model"] == "xgboost":
        from . import xgboost as _  # noqa: F401  (MissingDependencyError before any fit)
    for label, loss in experiment.losses.items():
        link = "identity"
        if s["task"] == "binary" and _takes_probabilities(loss):
            link = "sigmoid"
        # Compile outside the timed fit (first call per dtype compiles the kernels).
        objective(loss, y_tr[:2], np.zeros(2), link, np.empty(2))
        start = time.perf_counter()
        if s["model"] == "xgboost":
            margin, train_value = fit_xgboost(
                loss, x_tr, y_tr, rounds=s["epochs"], learning_rate=s["learning_rate"],
                max_depth=s["max_depth"], seed=s["seed"], hessian_floor=s["hessian_floor"],
                l2=s["l2"])
            seconds = time.perf_counter() - start
            z = margin(x_te)
        else:
            w, b, train_value = fit_linear(loss, x_tr, y_tr, link=link, epochs=s["epochs"],
                                           learning_rate=s["learning_rate"],
                                           lr_decay=s["lr_decay"], l2=s["l2"])
            seconds = time.perf_counter() - start
            z = x_te @ w + b
        if s["task"] == "regression":
            metrics = regression_metrics(y_te, z * data["scale"] + data["center"])
        else:
            metrics = binary_metrics(y_te, _sigmoid(z), s["threshold"])
        result.metrics = list(metrics)
        result.rows.append({"label": label, "loss": loss.config(), "link": link,
                            "train_loss": train_value, "fit_ms": 1000.0 * seconds, **metrics})
        if progress is not None:
            progress(label)
    return result


def format_table(result: Result) -> str:
    """The metrics table as aligned text, with a header describing the data."""
    s, info = result.experiment.settings, result.data
    title = s.get("title") or f"{s['task']} on {s['dataset']}"
    lines = [title] + ([s["description"]] if s.get("description") else [])
    if s["task"] == "regression":
        lines.append(f"data: {info['dataset']}, {info['n_train']} train / {info['n_test']} test "
                     f"rows, {info['n_features']} features; {info['n_outliers']} training "
                     f"targets shifted by {s['outlier_scale']:g} sd ({s['outlier_sign']}); "
                     f"test set clean")
    else:
        lines.append(f"data: {info['dataset']}, {info['n_train']} train "
                     f"({info['positives_train']} positive) / {info['n_test']} test "
                     f"({info['positives_test']} positive), {info['n_features']} features; "
                     f"threshold {s['threshold']:g}")
    if s["model"] == "xgboost":
        lines.append(f"model: XGBoost trees with the lossreg objective, {s['epochs']} rounds, "
                     f"eta {s['learning_rate']:g}, max_depth {s['max_depth']}, hessian_floor "
                     f"{s['hessian_floor']:g}")
    else:
        lines.append(f"model: linear, full-batch gradient descent, {s['epochs']} epochs, "
                     f"lr {s['learning_rate']:g}" + (f", decay {s['lr_decay']:g}"
                                                      if s["lr_decay"] else "")
                     + (f", l2 {s['l2']:g}" if s["l2"] else ""))
    cols = ["loss"] + result.metrics + ["train loss", "fit ms"]
    body = []
    for row in result.rows:
        body.append([row["label"]] + [_num(row[m]) for m in result.metrics]
                    + [_num(row["train_loss"]), f"{row['fit_ms']:.0f}"])
    widths = [max(len(c), *(len(r[i]) for r in body)) for i, c in enumerate(cols)]
    fmt = lambda cells: "  ".join(c.ljust(w) if i == 0 else c.rjust(w)  # noqa: E731
                                  for i, (c, w) in enumerate(zip(cells, widths)))
    lines += ["", fmt(cols), fmt(["-" * w for w in widths])] + [fmt(r) for r in body]
    best = _best(result)
    if best:
        lines += ["", best]
    return "\n".join(lines)


_HIGHER_IS_BETTER = {"R2", "AP", "ROC-AUC", "recall", "precision", "F1", "bal-acc"}


def _best(result: Result) -> str:
    if len(result.rows) < 2:
        return ""
    key = "MAE" if "MAE" in result.metrics else "AP"
    vals = [(r[key], r["label"]) for r in result.rows if not math.isnan(r[key])]
    if not vals:
        return ""
    sign = -1.0 if key in _HIGHER_IS_BETTER else 1.0
    value, label = min(vals, key=lambda v: sign * v[0])     # first of equals wins
    return f"best test {key}: {label} ({_num(value)})"


def _num(v: float) -> str:
    if isinstance(v, float) and math.isnan(v):
        return "nan"
    a = abs(v)
    return f"{v:.4f}" if a < 10 else f"{v:.2f}" if a < 1e4 else f"{v:.3g}"


def example_paths() -> list[pathlib.Path]:
    """The experiment files in the source tree's examples/ folder (empty when installed)."""
    folder = pathlib.Path(__file__).resolve().parents[1] / "examples"
    return sorted(folder.glob("*.toml")) if folder.is_dir() else []
