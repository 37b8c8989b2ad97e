"""lossreg.sklearn: registered losses as scorers, against scikit-learn's own scorers."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

import lossreg
from lossreg.errors import ShapeError

pytest.importorskip("sklearn")
ls = pytest.importorskip("lossreg.sklearn")

from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris  # noqa: E402
from sklearn.inspection import permutation_importance  # noqa: E402
from sklearn.linear_model import LogisticRegression, Ridge  # noqa: E402
from sklearn.metrics import get_scorer, log_loss  # noqa: E402
from sklearn.model_selection import GridSearchCV, KFold, StratifiedKFold, cross_val_score  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402


def binary_data():
    X, y = load_breast_cancer(return_X_y=True)
    return X[::2], y[::2]


def classifier(C=1.0):
    return make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=2000))


def test_routing_follows_the_domain():
    assert ls.response_method("bce") == "predict_proba"
    assert ls.response_method("focal") == "predict_proba"
    assert ls.response_method("cross_entropy") == "predict_proba"
    assert ls.response_method("bce_with_logits") == "decision_function"
    assert ls.response_method("softmax_cross_entropy") == "decision_function"
    assert ls.response_method("huber", delta=2.0) == "predict"


def test_grid_search_bce_agrees_with_neg_log_loss():
    X, y = binary_data()
    grid = {"logisticregression__C": [0.01, 0.1, 1.0, 10.0]}
    cv = StratifiedKFold(4, shuffle=True, random_state=0)
    ours = GridSearchCV(classifier(), grid, scoring=ls.make_scorer("binary_cross_entropy"),
                        cv=cv).fit(X, y)
    ref = GridSearchCV(classifier(), grid, scoring="neg_log_loss", cv=cv).fit(X, y)
    assert ours.best_params_ == ref.best_params_
    np.testing.assert_allclose(ours.cv_results_["mean_test_score"],
                               ref.cv_results_["mean_test_score"], rtol=1e-9)
    assert np.all(ours.cv_results_["mean_test_score"] < 0)          # greater is better


def test_logits_route_bce_with_logits_and_softmax_agree_with_log_loss():
    X, y = binary_data()
    model = classifier().fit(X, y)
    ref = get_scorer("neg_log_loss")(model, X, y)
    for name in ("bce_with_logits", "softmax_cross_entropy", "cross_entropy"):
        assert ls.make_scorer(name)(model, X, y) == pytest.approx(ref, rel=1e-9), name
    Xi, yi = load_iris(return_X_y=True)
    labels = np.array(["setosa", "versicolor", "virginica"])[yi]          # string labels
    iris = classifier().fit(Xi, labels)
    ref = get_scorer("neg_log_loss")(iris, Xi, labels)
    for name in ("softmax_cross_entropy", "cross_entropy"):
        assert ls.make_scorer(name)(iris, Xi, labels) == pytest.approx(ref, rel=1e-9), name


def test_regression_cross_val_score_matches_neg_mse_and_weights_pass_through():
    X, y = load_diabetes(return_X_y=True)
    cv = KFold(5, shuffle=True, random_state=0)
    ours = cross_val_score(Ridge(alpha=0.1), X, y, scoring=ls.make_scorer("mse"), cv=cv)
    ref = cross_val_score(Ridge(alpha=0.1), X, y, scoring="neg_mean_squared_error", cv=cv)
    np.testing.assert_allclose(ours, ref, rtol=1e-12)
    model = Ridge(alpha=0.1).fit(X, y)
    w = np.random.default_rng(0).uniform(0.0, 2.0, y.shape[0])
    scorer = ls.make_scorer("mse")
    assert scorer(model, X, y, sample_weight=w) == pytest.approx(
        get_scorer("neg_mean_squared_error")(model, X, y, sample_weight=w), rel=1e-12)
    r = permutation_importance(model, X, y, scoring=ls.make_scorer("huber", delta=20.0),
                               sample_weight=w, n_repeats=3, random_state=0)
    assert r.importances_mean.shape == (X.shape[1],) and r.importances_mean.max() > 0


def test_weights_through_metadata_routing():
    import sklearn

    X, y = load_diabetes(return_X_y=True)
    w = np.random.default_rng(1).uniform(0.0, 2.0, y.shape[0])
    cv = KFold(3)
    with sklearn.config_context(enable_metadata_routing=True):
        ours = cross_val_score(Ridge().set_fit_request(sample_weight=False), X, y, cv=cv,
                               scoring=ls.make_scorer("mse").set_score_request(sample_weight=True),
                               params={"sample_weight": w})
        ref = cross_val_score(Ridge().set_fit_request(sample_weight=False), X, y, cv=cv,
                              scoring=get_scorer("neg_mean_squared_error")
                              .set_score_request(sample_weight=True),
                              params={"sample_weight": w})
    np.testing.assert_allclose(ours, ref, rtol=1e-12)


def test_missing_class_needs_labels_and_pickles():
    Xi, yi = load_iris(return_X_y=True)
    model = classifier().fit(Xi, yi)
    part = yi < 2                                   # a split without class 2
    scorer = ls.make_scorer("softmax_cross_entropy")
    with pytest.raises(ShapeError, match="labels="):
        scorer(model, Xi[part], yi[part])
    with_labels = ls.make_scorer("softmax_cross_entropy", labels=model.classes_)
    ref = -log_loss(yi[part], model.predict_proba(Xi[part]), labels=model.classes_)
    assert with_labels(model, Xi[part], yi[part]) == pytest.approx(ref, rel=1e-9)
    clone = pickle.loads(pickle.dumps(with_labels))
    assert clone(model, Xi[part], yi[part]) == pytest.approx(ref, rel=1e-9)


def test_configs_loss_objects_and_bad_reductions():
    X, y = load_diabetes(return_X_y=True)
    model = Ridge().fit(X, y)
    cfg = {"terms": [{"name": "mse", "weight": 1.0}, {"name": "mae", "weight": 0.5}]}
    pred = model.predict(X)
    expected = -(np.mean((pred - y) ** 2) + 0.5 * np.mean(np.abs(pred - y)))
    assert ls.make_scorer(cfg)(model, X, y) == pytest.approx(expected, rel=1e-12)
    assert ls.make_scorer(lossreg.get("huber", delta=30.0))(model, X, y) < 0
    with pytest.raises(lossreg.ReductionError, match="reduction 'mean'"):
        ls.make_scorer("mse", reduction="sum")
    with pytest.raises(lossreg.ReductionError, match="reduction 'mean'"):
        ls.make_scorer(lossreg.get("mse", reduction="none"))
