"""Losses survive pickle and copy.deepcopy (multiprocessing, Dask, joblib) and compare
equal afterwards: equality is the same loss (name and source), hyperparameters and
reduction. A registered loss is pickled by reference, never its kernels."""

import copy
import pickle

import numpy as np
import pytest

import lossreg
from lossreg.config import WeightedSum

from .conftest import run_python

LOSSES = {
    "mse": lambda: lossreg.get("mse"),
    "huber_sum": lambda: lossreg.get("huber", delta=0.5, reduction="sum"),
    "softmax_options": lambda: lossreg.get("softmax_cross_entropy", class_weight=[1.0, 2.0, 0.5],
                                           ignore_index=-1, label_smoothing=0.1,
                                           n_threads=1, validate=False),
    "weighted_sum": lambda: lossreg.from_config({"terms": [
        {"name": "mse", "weight": 1.0}, {"name": "huber", "delta": 0.5, "weight": 0.1}]}),
    "weighted_single": lambda: lossreg.from_config({"name": "mae", "weight": 2.0}),
}


@pytest.mark.parametrize("make", LOSSES.values(), ids=LOSSES)
@pytest.mark.parametrize("roundtrip", [lambda x: pickle.loads(pickle.dumps(x)), copy.deepcopy,
                                       copy.copy], ids=["pickle", "deepcopy", "copy"])
def test_roundtrip_is_equal(make, roundtrip):
    loss = make()
    again = roundtrip(loss)
    assert again == loss and loss == again
    assert type(again) is type(loss)
    assert again.config() == loss.config()
    assert getattr(again, "n_threads", None) == getattr(loss, "n_threads", None)
    assert again.validate == loss.validate


def test_roundtrip_evaluates_the_same():
    loss = lossreg.get("huber", delta=0.5)
    again = pickle.loads(pickle.dumps(loss))
    t, p = np.array([0.0, 1.0, 2.0]), np.array([0.5, 3.0, 2.0])
    assert again(t, p) == loss(t, p)
    np.testing.assert_array_equal(again.grad(t, p), loss.grad(t, p))


def test_pickles_by_reference_without_kernels():
    data = pickle.dumps(lossreg.get("focal"))
    assert len(data) < 400
    assert b"numba" not in data and b"kernels" not in data


def test_equality_is_name_source_hyperparameters_and_reduction():
    assert lossreg.get("huber") == lossreg.get("huber")
    assert lossreg.get("huber") == lossreg.Registry(entry_points=False).get("huber")
    assert lossreg.get("huber", delta=2.0) != lossreg.get("huber")
    assert lossreg.get("huber", reduction="sum") != lossreg.get("huber")
    assert lossreg.get("mse") != lossreg.get("mae")
    assert lossreg.get("mse") == lossreg.from_config(lossreg.get("mse").config())
    ws = lossreg.from_config({"terms": [{"name": "mse"}, {"name": "mae", "weight": 0.5}]})
    assert isinstance(ws, WeightedSum) and ws == lossreg.from_config(ws.config())


def test_unpickles_in_a_fresh_process():
    data = pickle.dumps([lossreg.get("huber", delta=0.5, reduction="sum"),
                         LOSSES["weighted_sum"]()])
    out = run_python(f"""
import pickle, lossreg
huber, ws = pickle.loads({data!r})
assert huber == lossreg.get("huber", delta=0.5, reduction="sum")
assert ws == lossreg.from_config({LOSSES["weighted_sum"]().config()!r})
print(huber([0.0], [2.0]))
""")
    assert float(out) == 0.875   # delta (|r| - delta / 2)


def test_a_spec_outside_the_default_registry_is_copied_by_value(registry):
    spec = lossreg.spec("mse")
    import dataclasses

    private = dataclasses.replace(spec, name="private_mse", aliases=())
    registry.add(private, source="a private registry")
    loss = registry.get("private_mse")
    again = copy.deepcopy(loss)
    assert again == loss and again.spec.source == "a private registry"


def test_unpickling_refuses_a_different_source(monkeypatch):
    loss = lossreg.get("huber")
    data = pickle.dumps(loss)
    other = lossreg.Registry(entry_points=False, builtins=False)
    huber = lossreg.spec("huber")
    import dataclasses

    other.add(dataclasses.replace(huber), source="someone else's huber")
    monkeypatch.setattr(lossreg.registry._Default, "registry", other)
    with pytest.raises(lossreg.PluginError, match="someone else's huber"):
        pickle.loads(data)
