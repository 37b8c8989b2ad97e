"""Each error class, raised before any kernel runs, with a message naming the culprit."""

import numpy as np
import pytest

import lossreg
from lossreg import (DomainError, DTypeError, HyperparameterError, LossError, ShapeError,
                     UnknownLossError)


def test_error_hierarchy():
    assert issubclass(UnknownLossError, KeyError) and issubclass(UnknownLossError, LossError)
    for cls in (HyperparameterError, DomainError, ShapeError, lossreg.ConfigError,
                lossreg.ReductionError):
        assert issubclass(cls, ValueError) and issubclass(cls, LossError)
    assert issubclass(lossreg.PluginError, LossError)


def test_unknown_name_suggests_close_match():
    with pytest.raises(UnknownLossError, match=r"unknown loss 'hubr'; did you mean 'huber'\?"):
        lossreg.get("hubr")


def test_unknown_name_without_close_match():
    with pytest.raises(UnknownLossError, match="lossreg list"):
        lossreg.get("zzzzzzzz")


@pytest.mark.parametrize("name", ["Smooth-L1", "SMOOTH_L1", "smooth l1", "smoothl1"])
def test_names_are_case_and_separator_insensitive(name):
    assert lossreg.get(name).name == "smooth_l1"


def test_aliases():
    assert lossreg.get("l2").name == "rmse"
    assert lossreg.get("L1").name == "mae"


def test_negative_hyperparameter():
    with pytest.raises(HyperparameterError, match=r"delta must be in \(0, inf\), got -1"):
        lossreg.get("huber", delta=-1)


def test_misspelled_hyperparameter_suggests():
    with pytest.raises(HyperparameterError, match="detla.*did you mean 'delta'"):
        lossreg.get("huber", detla=1)


@pytest.mark.parametrize("value", [True, "1.0", [1.0], float("nan"), float("inf"), None])
def test_bad_hyperparameter_values(value):
    with pytest.raises(HyperparameterError, match="delta"):
        lossreg.get("huber", delta=value)


def test_bad_reduction():
    with pytest.raises(lossreg.ReductionError, match="did you mean 'mean'"):
        lossreg.get("mse", reduction="meen")


@pytest.mark.parametrize("reduction", ["none", "sum"])
def test_unsupported_reduction_is_a_reduction_error_listing_the_supported(reduction):
    """A reduction is not a hyperparameter: ReductionError (a ValueError and a
    LossError), not HyperparameterError, saying which reductions rmse supports."""
    with pytest.raises(lossreg.ReductionError,
                       match=rf"^loss 'rmse' supports only reduction 'mean', got '{reduction}'$") \
            as info:
        lossreg.get("rmse", reduction=reduction)
    assert isinstance(info.value, ValueError) and isinstance(info.value, LossError)
    assert not isinstance(info.value, HyperparameterError)
    assert issubclass(lossreg.ReductionError, lossreg.errors.ReductionError)
    assert "ReductionError" in lossreg.__all__


def test_bad_n_threads():
    with pytest.raises(HyperparameterError, match="n_threads"):
        lossreg.get("mse", n_threads=0)


def test_shape_mismatch_names_both_shapes():
    with pytest.raises(ShapeError, match=r"\(3,\).*\(4,\)"):
        lossreg.get("mse")(np.zeros(3), np.zeros(4))


def test_no_broadcasting():
    with pytest.raises(ShapeError):
        lossreg.get("mse")(np.zeros((3, 1)), np.zeros((3, 4)))


def test_nan_in_y_true_is_a_domain_error():
    with pytest.raises(DomainError) as info:
        lossreg.get("mse")([0.0, np.nan, 1.0], [0.0, 0.0, 0.0])
    assert info.value.argument == "y_true" and info.value.index == 1
    assert "finite" in info.value.constraint


def test_inf_in_y_pred_found_in_a_later_chunk():
    p = np.zeros(100_000)
    p[70_000] = np.inf
    p[90_000] = np.nan
    with pytest.raises(DomainError) as info:
        lossreg.get("huber").value_and_grad(np.zeros_like(p), p)
    assert info.value.argument == "y_pred" and info.value.index == 70_000


def test_domain_index_is_flat_c_order_of_original():
    t = np.zeros((3, 4))
    t[2, 1] = np.nan
    with pytest.raises(DomainError) as info:
        lossreg.get("mae")(t.T, np.zeros((4, 3)))  # non-contiguous view
    assert info.value.index == np.ravel_multi_index((1, 2), (4, 3))


def test_validate_false_skips_checks():
    value = lossreg.get("mse")([np.nan], [0.0], validate=False)
    assert np.isnan(value)


@pytest.mark.parametrize("bad", [np.array(["a", "b"]), np.array([1 + 2j, 3j]),
                                 np.array([object(), object()])])
def test_wrong_dtypes(bad):
    with pytest.raises(DTypeError) as info:
        lossreg.get("mse")(bad, [0.0, 1.0])
    assert info.value.argument == "y_true"
    assert isinstance(info.value, DomainError) and isinstance(info.value, TypeError)


def test_empty_inputs():
    with pytest.raises(ShapeError, match="empty"):
        lossreg.get("mse")([], [])
    assert lossreg.get("mse", reduction="sum")([], []) == 0.0
    assert lossreg.get("mse", reduction="none")([], []).shape == (0,)
    assert lossreg.get("mse", reduction="sum").grad([], []).shape == (0,)


@pytest.mark.parametrize("w,match", [([1.0, -1.0], "sample_weight"),
                                     ([1.0, np.nan], "sample_weight"),
                                     ([1.0], r"\(1,\)")])
def test_bad_sample_weight(w, match):
    with pytest.raises((DomainError, ShapeError), match=match):
        lossreg.get("mse")([0.0, 1.0], [1.0, 1.0], sample_weight=w)


def test_all_zero_weights_with_mean():
    with pytest.raises(DomainError) as info:
        lossreg.get("mse")([0.0, 1.0], [1.0, 1.0], sample_weight=[0.0, 0.0])
    assert info.value.argument == "sample_weight"
    assert lossreg.get("mse", reduction="sum")([0.0, 1.0], [1.0, 1.0], sample_weight=[0, 0]) == 0.0


def test_bad_out():
    loss = lossreg.get("mse")
    t, p = np.zeros(4), np.ones(4)
    with pytest.raises(ShapeError):
        loss.value_and_grad(t, p, out=np.empty(5))
    with pytest.raises(DTypeError):
        loss.value_and_grad(t, p, out=np.empty(4, np.float32))
    ro = np.empty(4)
    ro.flags.writeable = False
    with pytest.raises(DomainError, match="read-only"):
        loss.value_and_grad(t, p, out=ro)


def test_non_contiguous_out_is_filled():
    loss = lossreg.get("mse")
    buf = np.zeros(8)
    out = buf[::2]
    value, grad = loss.value_and_grad(np.zeros(4), np.ones(4), out=out)
    assert grad is out
    np.testing.assert_array_equal(buf, [0.5, 0, 0.5, 0, 0.5, 0, 0.5, 0])
