"""lossreg objectives in LightGBM: the same proofs as for XGBoost in LightGBM's
conventions (native ``params["objective"]`` callable, (n, C) class-major score views,
the C / (C - 1) multiclass Hessian, no boost_from_average with a custom objective)."""

import numpy as np
import pytest

lgb = pytest.importorskip("lightgbm")

import lossreg  # noqa: E402
import lossreg.lightgbm as ll  # noqa: E402
from lossreg import DomainError, ShapeError, UnknownLossError  # noqa: E402

from .conftest import close_to_scale as close  # noqa: E402

# lambda_l2 = 0 (LightGBM's default): lossreg's mse (p - y)^2 has twice the gradient and
# Hessian of LightGBM's l2; Newton steps -G/H agree. A custom objective starts at score 0,
# so the built-in runs set boost_from_average=False.
PARAMS = {"num_leaves": 7, "learning_rate": 0.3, "seed": 0, "num_threads": 1,
          "verbose": -1, "deterministic": True, "force_row_wise": True, "lambda_l2": 0.0}
BUILTIN = {"boost_from_average": False}
ROUNDS = 8


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(11)
    n = 600
    x = rng.normal(size=(n, 5))
    y_reg = x @ np.array([1.0, -2.0, 0.5, 0.0, 1.5]) + rng.normal(0.0, 0.5, n)
    y_bin = (x[:, 0] - x[:, 1] + 0.5 * rng.normal(size=n) > 0.3).astype(np.float64)
    y_mc = np.digitize(x[:, 0] + 0.5 * x[:, 2], [-0.5, 0.5]).astype(np.float64)
    w = rng.uniform(0.2, 3.0, n)
    return x, y_reg, y_bin, y_mc, w


def scores(params, x, y, w=None, rounds=ROUNDS):
    d = lgb.Dataset(x, label=y, weight=w, free_raw_data=False)
    booster = lgb.train({**PARAMS, **params}, d, rounds)
    return booster.predict(x, raw_score=True)


@pytest.mark.parametrize("weighted", [False, True])
def test_mse_equals_l2_regression(data, weighted):
    x, y, _, _, w = data
    w = w if weighted else None
    builtin = scores({"objective": "regression", **BUILTIN}, x, y, w)
    ours = scores({"objective": ll.objective("mse")}, x, y, w)
    close(ours, builtin)


@pytest.mark.parametrize("weighted", [False, True])
def test_bce_with_logits_equals_binary(data, weighted):
    x, _, y, _, w = data
    w = w if weighted else None
    builtin = scores({"objective": "binary", **BUILTIN}, x, y, w)
    close(scores({"objective": ll.objective("bce_with_logits")}, x, y, w), builtin)
    close(scores({"objective": ll.objective("bce")}, x, y, w), builtin, rtol=1e-5)


@pytest.mark.parametrize("weighted", [False, True])
def test_softmax_equals_multiclass(data, weighted):
    x, _, _, y, w = data
    w = w if weighted else None
    builtin = scores({"objective": "multiclass", "num_class": 3, **BUILTIN}, x, y, w)
    ours = scores({"objective": ll.objective("softmax"), "num_class": 3}, x, y, w)
    assert ours.shape == builtin.shape == (len(y), 3)
    close(ours, builtin)
    # without the C / (C - 1) factor the exact diagonal gives another model
    exact = scores({"objective": ll.objective("softmax", multiclass_hessian_scale=1.0),
                    "num_class": 3}, x, y, w)
    assert np.max(np.abs(exact - builtin)) > 0.1


def test_sklearn_estimators(data):
    x, y_reg, y_bin, y_mc, w = data
    kw = {"n_estimators": ROUNDS, "num_leaves": 7, "learning_rate": 0.3, "random_state": 0,
          "n_jobs": 1, "verbose": -1, "deterministic": True, "force_row_wise": True}
    a = lgb.LGBMRegressor(objective="regression", boost_from_average=False, **kw)
    b = lgb.LGBMRegressor(objective=ll.objective("mse"), **kw)
    close(b.fit(x, y_reg, sample_weight=w).predict(x),
          a.fit(x, y_reg, sample_weight=w).predict(x))
    a = lgb.LGBMClassifier(objective="binary", boost_from_average=False, **kw).fit(x, y_bin)
    b = lgb.LGBMClassifier(objective=ll.objective("bce_with_logits"), **kw).fit(x, y_bin)
    close(b.predict(x, raw_score=True), a.predict(x, raw_score=True))
    a = lgb.LGBMClassifier(objective="multiclass", boost_from_average=False, **kw).fit(x, y_mc)
    b = lgb.LGBMClassifier(objective=ll.objective("softmax"), **kw).fit(x, y_mc)
    close(b.predict(x, raw_score=True), a.predict(x, raw_score=True))


def test_metric_is_the_weighted_logloss_at_the_raw_score(data):
    # (LightGBM's own binary_logloss reads raw scores as probabilities under a custom
    # objective, so the reference is computed from the final scores)
    x, _, y, _, w = data
    d = lgb.Dataset(x, label=y, weight=w)
    log: dict = {}
    booster = lgb.train({**PARAMS, "objective": ll.objective("bce_with_logits"),
                         "metric": "None"}, d, ROUNDS, valid_sets=[d], valid_names=["train"],
                        feval=ll.metric("bce_with_logits"),
                        callbacks=[lgb.record_evaluation(log)])
    ours = log["train"]["lossreg_binary_cross_entropy_with_logits"]
    assert len(ours) == ROUNDS and ours[-1] < ours[0]
    z = booster.predict(x, raw_score=True)
    p = 1.0 / (1.0 + np.exp(-z))
    logloss = -np.sum(w * (y * np.log(p) + (1 - y) * np.log(1 - p))) / np.sum(w)
    assert ours[-1] == pytest.approx(logloss, rel=1e-6)


def test_flat_class_major_scores_of_old_lightgbm(data, rng):
    """lightgbm < 4 passed multiclass scores flat, class-major; the gradients go back so."""
    _, _, _, y, _ = data
    obj = ll.objective("softmax")
    z = rng.normal(size=(len(y), 3))
    g2, h2 = (a.copy() for a in obj(y, z))
    g1, h1 = obj(y, np.ascontiguousarray(z.T).reshape(-1))
    np.testing.assert_array_equal(g1, g2.T.reshape(-1))
    np.testing.assert_array_equal(h1, h2.T.reshape(-1))
    assert "C / (C - 1)" in obj.describe()


def test_errors_before_training(data):
    x, _, y_bin, y_mc, _ = data
    with pytest.raises(UnknownLossError):
        ll.objective("softmaxx")
    with pytest.raises(ShapeError, match="'softmax_cross_entropy' is multiclass"):
        scores({"objective": ll.objective("softmax")}, x, y_bin)
    with pytest.raises(ShapeError, match="'focal' is an element-wise"):
        scores({"objective": ll.objective("focal"), "num_class": 3}, x, y_mc)
    with pytest.raises(DomainError, match="'focal'"):
        scores({"objective": ll.objective("focal")}, x, y_mc)
