"""lossreg objectives in XGBoost: training with a lossreg objective gives the built-in
objective's model (same data, seed and parameters), weights come from the DMatrix and
count once, the multiclass Hessian follows softprob's 2 p (1 - p), the floor changes the
fit of a piecewise-linear loss, and bad input fails before any tree is built."""

import numpy as np
import pytest

xgb = pytest.importorskip("xgboost")

import lossreg  # noqa: E402
import lossreg.xgboost as lx  # noqa: E402
from lossreg import DomainError, LossError, ShapeError, UnknownLossError  # noqa: E402

from .conftest import close_to_scale as close  # noqa: E402

# reg_lambda=0: lossreg's mse is (p - y)^2 (gradient 2 r, Hessian 2), XGBoost's squared
# error half of it; Newton steps -G/H agree for any scale, the L2 term lambda does not.
PARAMS = {"max_depth": 3, "eta": 0.3, "seed": 0, "nthread": 1, "tree_method": "hist",
          "reg_lambda": 0.0}
ROUNDS = 8


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(7)
    n = 600
    x = rng.normal(size=(n, 5))
    y_reg = x @ np.array([1.0, -2.0, 0.5, 0.0, 1.5]) + rng.normal(0.0, 0.5, n)
    logit = x[:, 0] - x[:, 1] + 0.5 * rng.normal(size=n)
    y_bin = (logit > 0.3).astype(np.float64)
    y_mc = np.digitize(x[:, 0] + 0.5 * x[:, 2], [-0.5, 0.5]).astype(np.float64)
    w = rng.uniform(0.2, 3.0, n)
    return x, y_reg, y_bin, y_mc, w


def margins(params, dtrain, obj=None, rounds=ROUNDS):
    booster = xgb.train({**PARAMS, **params}, dtrain, rounds, obj=obj)
    return booster.predict(dtrain, output_margin=True)


@pytest.mark.parametrize("weighted", [False, True])
def test_mse_equals_squarederror(data, weighted):
    x, y, _, _, w = data
    d = xgb.DMatrix(x, label=y, weight=w if weighted else None)
    builtin = margins({"objective": "reg:squarederror", "base_score": 0.5}, d)
    ours = margins({"base_score": 0.5}, d, lx.objective("mse"))
    close(ours, builtin)


@pytest.mark.parametrize("weighted", [False, True])
def test_bce_with_logits_equals_binary_logistic(data, weighted):
    x, _, y, _, w = data
    d = xgb.DMatrix(x, label=y, weight=w if weighted else None)
    builtin = margins({"objective": "binary:logistic", "base_score": 0.5}, d)
    ours = margins({"base_score": 0.0}, d, lx.objective("binary_cross_entropy_with_logits"))
    close(ours, builtin)
    # probabilities through the sigmoid link: the same model
    linked = margins({"base_score": 0.0}, d, lx.objective("binary_cross_entropy"))
    close(linked, builtin, rtol=1e-5)


@pytest.mark.parametrize("weighted", [False, True])
def test_softmax_equals_multi_softprob(data, weighted):
    x, _, _, y, w = data
    d = xgb.DMatrix(x, label=y, weight=w if weighted else None)
    builtin = margins({"objective": "multi:softprob", "num_class": 3, "base_score": 0.5}, d)
    ours = margins({"num_class": 3, "base_score": 0.5}, d, lx.objective("softmax"))
    assert ours.shape == builtin.shape == (len(y), 3)
    close(ours, builtin)
    # without softprob's factor 2 the exact diagonal gives another model
    exact = margins({"num_class": 3, "base_score": 0.5}, d,
                    lx.objective("softmax", multiclass_hessian_scale=1.0))
    assert np.max(np.abs(exact - builtin)) > 0.1


def test_sklearn_estimators(data):
    x, y_reg, y_bin, y_mc, w = data
    kw = {"n_estimators": ROUNDS, "max_depth": 3, "learning_rate": 0.3, "random_state": 0,
          "n_jobs": 1, "tree_method": "hist", "reg_lambda": 0.0, "base_score": 0.5}
    a = xgb.XGBRegressor(objective="reg:squarederror", **kw).fit(x, y_reg, sample_weight=w)
    b = xgb.XGBRegressor(objective=lx.objective("mse"), **kw).fit(x, y_reg, sample_weight=w)
    close(b.predict(x), a.predict(x))
    a = xgb.XGBClassifier(**kw).fit(x, y_bin)
    b = xgb.XGBClassifier(objective=lx.objective("bce_with_logits"), **kw).fit(x, y_bin)
    close(b.predict_proba(x), a.predict_proba(x))
    a = xgb.XGBClassifier(**kw).fit(x, y_mc)
    b = xgb.XGBClassifier(objective=lx.objective("softmax"), **kw).fit(x, y_mc)
    close(b.predict(x, output_margin=True), a.predict(x, output_margin=True))


def test_metric_matches_builtin_logloss_and_the_loss(data):
    x, _, y, _, w = data
    d = xgb.DMatrix(x, label=y, weight=w)
    log: dict = {}
    # the learner's objective (as XGBClassifier sets it) only makes logloss see sigmoid(margin)
    params = {**PARAMS, "objective": "binary:logistic", "base_score": 0.5,
              "eval_metric": "logloss"}
    booster = xgb.train(params, d, ROUNDS, obj=lx.objective("bce_with_logits"),
                        custom_metric=lx.metric("bce_with_logits"), evals=[(d, "train")],
                        evals_result=log)
    ours, builtin = log["train"]["lossreg_binary_cross_entropy_with_logits"], log["train"]["logloss"]
    np.testing.assert_allclose(ours, builtin, rtol=1e-5)
    z = booster.predict(d, output_margin=True)
    assert ours[-1] == pytest.approx(lossreg.get("bce_with_logits")(y, z, w), rel=1e-6)


def test_hessian_floor_changes_the_fit_of_pinball(data):
    if "pinball" not in lossreg.names():
        pytest.skip("the lossreg-quantile plugin (pinball) is not installed")
    x, y, _, _, _ = data
    d = xgb.DMatrix(x, label=y)
    q = 0.9
    base = float(np.median(y))
    fits = {}
    for floor in (1.0, 1e-6):
        z = margins({"base_score": base, "eta": 0.5, "reg_lambda": 1.0}, d,
                    lx.objective("pinball", q=q, hessian_floor=floor), rounds=60)
        fits[floor] = (np.mean(y <= z), lossreg.get("pinball", q=q)(y, z))
    coverage, loss = fits[1.0]
    assert abs(coverage - q) < 0.05                 # floor 1: XGBoost's quantile Hessian
    assert fits[1e-6][1] > 3 * loss                 # floor 1e-6: no curvature, wild steps
    assert "hessian_floor: 1 " in lx.objective("pinball", hessian_floor=1.0).describe()


def test_describe_names_the_softprob_convention():
    text = lx.objective("softmax").describe()
    assert "2 p (1 - p)" in text and "softprob" in text


# -- bad input fails before training -------------------------------------------------------

def test_construction_errors():
    with pytest.raises(UnknownLossError):
        lx.objective("not_a_loss")
    with pytest.raises(LossError, match="'rmse'"):
        lx.objective("rmse")


def test_first_round_errors_are_lossreg_errors(data):
    x, _, y_bin, y_mc, _ = data
    d_bin = xgb.DMatrix(x, label=y_bin)
    with pytest.raises(ShapeError, match="'softmax_cross_entropy' is multiclass"):
        xgb.train(PARAMS, d_bin, 2, obj=lx.objective("softmax"))
    d_mc = xgb.DMatrix(x, label=y_mc)
    with pytest.raises(ShapeError, match="'focal' is an element-wise"):
        xgb.train({**PARAMS, "num_class": 3}, d_mc, 2, obj=lx.objective("focal"))
    with pytest.raises(DomainError, match="'softmax_cross_entropy'.*\\[0, 3\\)"):
        xgb.train({**PARAMS, "num_class": 3}, xgb.DMatrix(x, label=y_mc + 1), 2,
                  obj=lx.objective("softmax"))
    with pytest.raises(ShapeError, match="class_weight has 2 entries"):
        xgb.train({**PARAMS, "num_class": 3}, d_mc, 2,
                  obj=lx.objective("softmax", class_weight=[1.0, 2.0]))
    with pytest.raises(DomainError, match="'focal'"):
        xgb.train(PARAMS, xgb.DMatrix(x, label=y_mc), 2, obj=lx.objective("focal"))


def test_bench_section_measures_the_objectives_and_reports_targets(capsys):
    """``lossreg bench`` times the objectives against NumPy (small N here: the shape of
    the results and the target lines, never the timings themselves)."""
    from lossreg import bench

    g = bench.gbdt_objectives(n=5_000, classes=3, budget=0.005, features=4, rounds=1)
    assert [r["objective"] for r in g["rows"]] == ["bce_with_logits", "sigmoid_focal",
                                                   "softmax_cross_entropy"]
    assert all(r["lossreg"] > 0 and r["numpy"] > 0 for r in g["rows"])
    assert g["round_seconds"] > 0 and g["rows"][2]["classes"] == 3
    bench.print_gbdt(g)
    assert "one XGBoost round" in capsys.readouterr().out
    names = [t for t, _, _ in bench.targets({"rows": [], "gbdt": g})]
    assert any("NumPy objective" in t for t in names) and any("round" in t for t in names)


@pytest.mark.parametrize("name", ["bce_with_logits", "sigmoid_focal", "softmax"])
def test_bench_numpy_objectives_agree_with_lossreg(name):
    from lossreg import bench

    rng = np.random.default_rng(3)
    if name == "softmax":
        y, z = rng.integers(0, 4, 50).astype(np.float64), rng.normal(size=(50, 4))
        want = bench.numpy_softprob(z, y)
    else:
        y, z = (rng.random(50) < 0.4).astype(np.float64), rng.normal(size=50)
        want = (bench.numpy_logistic if name == "bce_with_logits" else bench.numpy_focal)(z, y)
    hyper = {"alpha": None} if name == "sigmoid_focal" else {}
    g, h = lx.objective(name, **hyper)(y, z)
    np.testing.assert_allclose(g, want[0], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(h, want[1], rtol=1e-8, atol=1e-12)


def test_objectives_pickle_and_clone_with_their_estimator():
    """sklearn's clone (grid searches) deep-copies the objective; joblib pickles it."""
    import pickle

    from sklearn.base import clone

    obj = lx.objective("focal", gamma=2.0, hessian_floor=1e-3)
    y, z = np.array([1.0, 0.0, 1.0]), np.array([0.3, -0.2, 2.0])
    want = [a.copy() for a in obj(y, z)]
    for copy in (pickle.loads(pickle.dumps(obj)),
                 clone(xgb.XGBClassifier(objective=obj)).get_params()["objective"]):
        assert copy.core.hessian_floor == 1e-3
        for a, b in zip(copy(y, z), want):
            np.testing.assert_array_equal(a, b)
