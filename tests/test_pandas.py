"""pandas Series and DataFrame inputs: results carry y_pred's index; indexes never align."""

import numpy as np
import pytest

import lossreg

pd = pytest.importorskip("pandas")


@pytest.fixture
def series():
    index = pd.Index(["a", "b", "c", "d"], name="id")
    return (pd.Series([0.0, 1.0, 2.0, 3.0], index=index),
            pd.Series([0.5, 1.0, 4.0, 2.0], index=index, name="pred"))


def test_none_reduction_and_derivatives_are_series_on_the_index(series):
    t, p = series
    loss = lossreg.get("huber", reduction="none")
    for result, expect in ((loss(t, p), loss(t.to_numpy(), p.to_numpy())),
                           (loss.grad(t, p), loss.grad(t.to_numpy(), p.to_numpy())),
                           (loss.hessian(t, p), loss.hessian(t.to_numpy(), p.to_numpy()))):
        assert isinstance(result, pd.Series)
        assert result.index.equals(p.index) and result.name == "pred"
        np.testing.assert_array_equal(result.to_numpy(), expect)
    g, h = loss.grad_hess(t, p)
    assert isinstance(g, pd.Series) and isinstance(h, pd.Series)


def test_reduced_values_are_floats_and_weights_may_be_series(series):
    t, p = series
    w = pd.Series([1.0, 2.0, 0.5, 1.0], index=p.index)
    loss = lossreg.get("mse")
    assert loss(t, p) == loss(t.to_numpy(), p.to_numpy())
    assert loss(t, p, sample_weight=w) == loss(t.to_numpy(), p.to_numpy(), w.to_numpy())
    value, grad = loss.value_and_grad(t, p, sample_weight=w)
    assert isinstance(value, float) and isinstance(grad, pd.Series)


def test_mismatched_indexes_are_refused_not_aligned(series):
    t, p = series
    loss = lossreg.get("mse")
    shuffled = t.iloc[::-1]                  # same labels, other order: pandas would align
    with pytest.raises(lossreg.ShapeError, match="different indexes"):
        loss(shuffled, p)
    with pytest.raises(lossreg.ShapeError, match="different indexes"):
        loss(t, p, sample_weight=pd.Series(np.ones(4)))
    assert loss(t.to_numpy(), p) == loss(t, p)   # a plain array next to a Series is fine


def test_dataframes_for_row_losses_keep_index_and_columns():
    rng = np.random.default_rng(0)
    z = pd.DataFrame(rng.normal(size=(5, 3)), index=range(10, 15), columns=["x", "y", "z"])
    labels = pd.Series([0, 2, 1, 1, 0], index=z.index)
    loss = lossreg.get("softmax_cross_entropy", reduction="none")
    values = loss(labels, z)
    assert isinstance(values, pd.Series) and values.index.equals(z.index)
    grad = loss.grad(labels, z)
    assert isinstance(grad, pd.DataFrame)
    assert grad.index.equals(z.index) and list(grad.columns) == ["x", "y", "z"]
    np.testing.assert_array_equal(grad.to_numpy(), loss.grad(labels.to_numpy(), z.to_numpy()))
    other = z.copy()
    other.columns = ["a", "b", "c"]
    with pytest.raises(lossreg.ShapeError, match="columns"):
        lossreg.get("kl_div")(other.abs() / other.abs().sum(axis=1).to_numpy()[:, None],
                              z.abs() / z.abs().sum(axis=1).to_numpy()[:, None])


def test_weighted_sums_wrap_once(series):
    t, p = series
    combo = lossreg.from_config({"terms": [{"name": "mse", "weight": 1.0},
                                           {"name": "mae", "weight": 0.5}],
                                 "reduction": "none"})
    result = combo(t, p)
    assert isinstance(result, pd.Series) and result.index.equals(p.index)
