"""lossreg objectives in CatBoost: calc_ders_range gives minus lossreg's gradient and
floored Hessian (CatBoost maximises), element-wise objectives train like the built-ins,
weights come from CatBoost once, and calc_ders_multi gives the full softmax Hessian
(CatBoost's MultiClass convention: the same model as the built-in) or its diagonal."""

import warnings

import numpy as np
import pytest

catboost = pytest.importorskip("catboost")

import lossreg  # noqa: E402
import lossreg.catboost as lc  # noqa: E402

# bootstrap_type="No": CatBoost's default Bayesian bootstrap draws differently for custom
# objectives; l2_leaf_reg=0: lossreg's mse is (p - y)^2, twice CatBoost's RMSE derivatives.
KW = {"iterations": 10, "depth": 3, "learning_rate": 0.3, "random_seed": 0, "verbose": 0,
      "thread_count": 1, "boost_from_average": False, "bootstrap_type": "No",
      "l2_leaf_reg": 0.0, "allow_writing_files": False}


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(7)
    n = 300
    x = rng.normal(size=(n, 5))
    y = x @ np.array([1.0, -2.0, 0.5, 0.0, 1.5]) + rng.normal(0.0, 0.5, n)
    y_bin = (x[:, 0] - x[:, 1] > 0.3).astype(np.float64)
    y_mc = np.digitize(x[:, 0] + 0.5 * x[:, 2], [-0.5, 0.5])
    return x, y, y_bin, y_mc, rng.uniform(0.2, 3.0, n)


def fit(cls, x, y, w=None, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")     # CatBoost tries to JIT Python callbacks
        return cls(**{**KW, **kw}).fit(x, y, sample_weight=w)


def close(a, b, rtol=1e-6):
    err = np.max(np.abs(np.asarray(a) - np.asarray(b))) / np.max(np.abs(b))
    assert err <= rtol, err


@pytest.mark.parametrize("weighted", [False, True])
def test_mse_equals_rmse_and_bce_with_logits_equals_logloss(data, weighted):
    x, y, y_bin, _, w = data
    w = w if weighted else None
    a = fit(catboost.CatBoostRegressor, x, y, w, loss_function="RMSE")
    b = fit(catboost.CatBoostRegressor, x, y, w, loss_function=lc.objective("mse"),
            eval_metric="RMSE")
    close(b.predict(x), a.predict(x))
    a = fit(catboost.CatBoostClassifier, x, y_bin, w, loss_function="Logloss")
    b = fit(catboost.CatBoostClassifier, x, y_bin, w,
            loss_function=lc.objective("bce_with_logits"),
            eval_metric=lc.metric("bce_with_logits"))
    close(b.predict(x, prediction_type="RawFormulaVal"),
          a.predict(x, prediction_type="RawFormulaVal"))


def test_ders_are_the_negated_floored_derivatives(data):
    _, y, _, _, w = data
    z = np.linspace(-2.0, 2.0, len(y))
    ders = lc.objective("huber", delta=0.5).calc_ders_range(z, y, w)
    g, h = lossreg.get("huber", delta=0.5, reduction="none").grad_hess(y, z, w)
    np.testing.assert_allclose([d[0] for d in ders], -g, rtol=1e-15)
    np.testing.assert_allclose([d[1] for d in ders], -np.maximum(h, 1e-6 * w), rtol=1e-15)
    p = np.exp([0.0, 1.0, -1.0]) / np.exp([0.0, 1.0, -1.0]).sum()
    der1, der2 = lc.objective("softmax", multiclass_hessian="diagonal").calc_ders_multi(
        [0.0, 1.0, -1.0], 1, 2.0)
    np.testing.assert_allclose(der1, -2.0 * (p - np.eye(3)[1]), rtol=1e-14)
    np.testing.assert_allclose(der2, np.diag(-2.0 * p * (1 - p)), rtol=1e-14)


@pytest.mark.parametrize("hyper, c", [({}, 2.0), ({"class_weight": [1.0, 3.0, 0.5]}, 6.0),
                                      ({"class_weight": [1.0, 3.0, 0.5],
                                        "label_smoothing": 0.3}, 2.0 * (0.8 * 3.0 + 0.1 * 1.5))])
def test_full_multiclass_hessian_is_the_softmax_hessian(hyper, c):
    """c (diag(p) - p p^T), c = weight x the class weight averaged over the (smoothed)
    target: derived by hand, independently of the adapter's reading of lossreg's diagonal."""
    z = np.array([0.0, 1.0, -1.0])
    p = np.exp(z) / np.exp(z).sum()
    der1, der2 = lc.objective("softmax", **hyper).calc_ders_multi(z.tolist(), 1, 2.0)
    g = lossreg.get("softmax", reduction="none", **hyper).grad(np.array([1]), z[None, :],
                                                               np.array([2.0]))[0]
    np.testing.assert_allclose(der1, -g, rtol=1e-14)
    np.testing.assert_allclose(der2, -c * (np.diag(p) - np.outer(p, p)), rtol=1e-13)


def test_full_multiclass_hessian_floors_the_diagonal_only():
    z = [0.0, 40.0, -40.0]                      # p ~ one-hot: the Hessian is ~0
    _, der2 = lc.objective("softmax", hessian_floor=0.5).calc_ders_multi(z, 1, 2.0)
    np.testing.assert_allclose(np.diag(der2), [-1.0, -1.0, -1.0])     # floor x weight
    off = np.asarray(der2)[~np.eye(3, dtype=bool)]
    assert np.all(np.abs(off) < 1e-16)


@pytest.mark.parametrize("weighted", [False, True])
def test_softmax_equals_multiclass(data, weighted):
    """The full Hessian is CatBoost's MultiClass convention: the same model, to 1e-6."""
    x, _, _, y, w = data
    w = w if weighted else None
    a = fit(catboost.CatBoostClassifier, x, y, w, loss_function="MultiClass", classes_count=3)
    b = fit(catboost.CatBoostClassifier, x, y, w, loss_function=lc.objective("softmax"),
            eval_metric="MultiClass", classes_count=3)
    za = a.predict(x, prediction_type="RawFormulaVal")
    zb = b.predict(x, prediction_type="RawFormulaVal")
    # softmax margins are defined up to a per-row shift
    close(zb - zb.mean(axis=1, keepdims=True), za - za.mean(axis=1, keepdims=True))


def test_multiclass_trains_with_the_diagonal_hessian(data):
    x, _, _, y, _ = data
    model = fit(catboost.CatBoostClassifier, x, y,
                loss_function=lc.objective("softmax", multiclass_hessian="diagonal"),
                eval_metric="MultiClass", classes_count=3)
    z = model.predict(x, prediction_type="RawFormulaVal")
    assert z.shape == (len(y), 3)
    assert lossreg.get("softmax")(y, z) < 0.6 * np.log(3)
    with pytest.raises(lossreg.HyperparameterError, match="multiclass_hessian"):
        lc.objective("softmax", multiclass_hessian="block")


def test_metric_and_errors(data):
    x, _, y_bin, _, w = data
    m = lc.metric("bce_with_logits")
    z = np.linspace(-1, 1, len(y_bin))
    err, weight = m.evaluate([z], y_bin, w)
    assert m.get_final_error(err, weight) == pytest.approx(
        lossreg.get("bce_with_logits")(y_bin, z, w), rel=1e-12)
    assert not m.is_max_optimal()
    # CatBoost re-raises a callback's exception as CatBoostError carrying its text
    with pytest.raises(catboost.CatBoostError,
                       match="ShapeError: objective 'softmax_cross_entropy' is multiclass"):
        fit(catboost.CatBoostClassifier, x, y_bin, loss_function=lc.objective("softmax"),
            eval_metric="Logloss")
