"""Interval, Domain and Hyperparameter semantics."""

import math

import numpy as np
import pytest

from lossreg import Hyperparameter, HyperparameterError, Interval


def test_interval_ends():
    closed = Interval(0, 1)
    assert 0 in closed and 1 in closed and str(closed) == "[0, 1]"
    half = Interval(0, 1, closed_low=False)
    assert 0 not in half and 1e-300 in half and str(half) == "(0, 1]"
    reals = Interval()
    assert math.inf not in reals and math.nan not in reals and str(reals) == "(-inf, inf)"
    with pytest.raises(ValueError):
        Interval(2, 1)


def test_closed_bounds_are_exact_for_float32():
    a, b = Interval(0, 1, closed_low=False, closed_high=False).closed_bounds()
    tiny32 = np.float64(np.nextafter(np.float32(0), np.float32(1)))
    assert a <= tiny32 and a > 0 and b < 1


def test_hyperparameter_both_call_forms():
    a = Hyperparameter(float, 0.5, Interval(0, 1))
    b = Hyperparameter("q", float, 0.5, Interval(0, 1), "quantile")
    assert a.name is None and b.name == "q" and b.doc == "quantile"
    assert a.validate(1) == 1.0 and isinstance(a.validate(1), float)


def test_hyperparameter_type_rules():
    h = Hyperparameter("k", int, 3, Interval(1, 10))
    assert h.validate(4.0) == 4
    with pytest.raises(HyperparameterError):
        h.validate(4.5)
    with pytest.raises(HyperparameterError):
        h.validate(True)
    opt = Hyperparameter("alpha", float, None, Interval(0, 1))
    assert opt.validate(None) is None


def test_array_hyperparameter():
    h = Hyperparameter("class_weight", "array", None, Interval(0, math.inf))
    arr = h.validate([1, 2.5])
    assert arr.dtype == np.float64 and not arr.flags.writeable
    with pytest.raises(HyperparameterError, match="entry 1"):
        h.validate([1, -2])


def test_domain_nonzero_rows_serializes_and_is_checked_at_registration():
    import json
    from dataclasses import replace

    import lossreg
    from lossreg import Domain, PluginError

    d = Domain(Interval(0, 1), nonzero_rows="either")
    assert d.to_dict()["nonzero_rows"] == "either" and "rows not all zero" in d.describe()
    assert Domain().to_dict()["nonzero_rows"] is None
    json.dumps(lossreg.spec("cosine").to_dict())
    assert lossreg.spec("cosine").to_dict()["domains"]["y_pred"]["nonzero_rows"] == "self"
    with pytest.raises(ValueError, match="nonzero_rows"):
        Domain(nonzero_rows="some")
    mse = lossreg.spec("mse")                                   # element-wise: no rows
    with pytest.raises(PluginError, match="needs layout 'rows'"):
        replace(mse, domains={"y_pred": Domain(nonzero_rows="self")}).validate()
    ce = lossreg.spec("softmax_cross_entropy")                  # takes labels: no y_true rows
    assert ce.takes_labels
    with pytest.raises(PluginError, match="class labels"):
        replace(ce, domains={"y_pred": Domain(nonzero_rows="both")}).validate()
    replace(ce, domains={"y_pred": Domain(nonzero_rows="self")}).validate()
