"""The element-wise fast path (``lossreg._elementcall``): the same bits and the same errors
as the general path, for the calls it takes; the rest declined to the general path.

Cheap: mse and huber (kernels the other tests compile anyway), small inputs.
"""

from __future__ import annotations

import copy
import pickle
import threading

import numpy as np
import pytest

import lossreg
from lossreg._elementcall import ElementCall, direct_kernels
from lossreg.errors import DomainError, ShapeError
from lossreg.kernels.reduce import CHUNK

METHODS = ("__call__", "grad", "value_and_grad", "grad_hess", "hessian")


def _both(loss, method, *args):
    """(fast path result, general path result) of one public call."""
    fast = getattr(loss, method)(*args)
    saved, loss._fast = loss._fast, None
    try:
        general = getattr(loss, method)(*args)
    finally:
        loss._fast = saved
    return fast, general


def _same(a, b):
    if isinstance(a, tuple):
        assert isinstance(b, tuple) and len(a) == len(b)
        for x, y in zip(a, b):
            _same(x, y)
    elif isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray) and a.dtype == b.dtype and a.shape == b.shape
        assert a.tobytes() == b.tobytes()
    else:
        assert type(a) is type(b) and (a == b or (a != a and b != b)), (a, b)


@pytest.mark.parametrize("name", ["mse", "huber"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_bit_identical_to_the_general_path(name, dtype):
    spec = lossreg.spec(name)
    rng = np.random.default_rng(5)
    for n, shape in ((7, (7,)), (12, (3, 4)), (CHUNK + 5, (CHUNK + 5,))):
        t, p = spec.sample(rng, n, dtype)
        t, p = t.reshape(shape), p.reshape(shape)
        w = rng.random(shape) + 0.25
        for reduction in ("mean", "sum", "none"):
            loss = lossreg.get(name, reduction=reduction)
            assert loss._fast is not None
            for weights in (None, w):
                for method in METHODS:
                    _same(*_both(loss, method, t, p, weights))


@pytest.mark.parametrize("shape", [(9,), (3, 3)])
def test_out_buffers_are_written_in_place(shape):
    loss = lossreg.get("huber")
    t, p = np.linspace(0, 1, 9).reshape(shape), np.linspace(1, 0, 9).reshape(shape)
    for weights in (None, np.full(shape, 0.5)):
        for method, at in (("grad", None), ("value_and_grad", 1), ("hessian", None)):
            out = np.empty(shape)
            got = getattr(loss, method)(t, p, weights, out=out)
            assert (got if at is None else got[at]) is out
            _same(got, _both(loss, method, t, p, weights)[1])
    buf = p.copy()                                   # out=y_pred: the general path's copy
    expected = loss.grad(t, p)
    assert loss._plan.fast.call(t, buf, None, 1, True, buf) is None
    assert loss.grad(t, buf, out=buf) is buf and buf.tobytes() == expected.tobytes()


def test_it_calls_the_compiled_entry_point_after_the_first_call():
    loss = lossreg.get("mse")
    t, p = np.linspace(0, 1, 9), np.linspace(1, 0, 9)
    first = loss.value_and_grad(t, p)
    slot = loss._plan.fast.f64[2]                            # VALUE_GRAD, float64
    assert slot.probed and slot.first_entry is not None
    _same(loss.value_and_grad(t, p), first)
    ro_t, ro_p = t.copy(), p.copy()
    ro_t.setflags(write=False)
    ro_p.setflags(write=False)
    _same(loss.value_and_grad(ro_t, ro_p), first)            # read-only: the dispatcher


def test_declined_calls_take_the_general_path():
    loss = lossreg.get("mse")
    call = loss._plan.fast.call
    t, p = np.linspace(0, 1, 10), np.linspace(1, 0, 10)
    w = np.ones(10)
    wz = w.copy()
    wz[4] = 0.0
    declined = [(list(t), p, None), (t, p.astype(np.float32), None), (t[::2], p[::2], None),
                (t[:0], p[:0], None), (t[:3], p, None), (t, p, wz), (t, p, list(w)),
                (t, p, w.astype(np.float32)), (t, p, w[:5]), (t, p, np.full(10, 1e300)),
                (t, p, w.reshape(2, 5))]
    for a, b, weights in declined:
        assert call(a, b, weights, 0, True) is None
    assert loss(t, p, wz) == pytest.approx(float(np.sum(wz * (p - t) ** 2) / wz.sum()))


def test_the_same_errors_with_the_same_indices():
    t, p = np.linspace(0, 1, 10), np.linspace(1, 0, 10)
    bad = p.copy()
    bad[3] = np.nan
    for loss in (lossreg.get("mse"), lossreg.get("huber", reduction="none")):
        for weights in (None, np.ones(10)):
            for method in METHODS:
                with pytest.raises(DomainError, match="index 3") as fast:
                    getattr(loss, method)(t, bad, weights)
                assert fast.value.argument == "y_pred" and fast.value.index == 3
    w = np.ones(10)
    w[6] = -1.0
    with pytest.raises(DomainError, match="index 6") as err:
        lossreg.get("mse").grad(t, p, w)
    assert err.value.argument == "sample_weight"
    loss = lossreg.get("binary_cross_entropy_with_logits", pos_weight=[1.0, 2.0, 3.0])
    with pytest.raises(ShapeError, match="pos_weight has 3 entries"):
        loss.grad(np.zeros((2, 4)), np.zeros((2, 4)))


def test_threads_share_a_loss():
    loss = lossreg.get("mse")
    rng = np.random.default_rng(0)
    cases = [(rng.random(n), rng.random(n)) for n in (5, 50, 500)]
    expected = [loss.value_and_grad(t, p) for t, p in cases]
    failures = []

    def work():
        for _ in range(300):
            for (t, p), (v, g) in zip(cases, expected):
                v2, g2 = loss.value_and_grad(t, p)
                if v2 != v or not np.array_equal(g2, g):
                    failures.append((v, v2))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not failures


def test_copies_rebuild_it():
    loss = lossreg.get("huber", delta=0.5)
    t, p = np.linspace(0, 1, 10), np.linspace(1, 0, 10)
    for other in (pickle.loads(pickle.dumps(loss)), copy.deepcopy(loss)):
        assert other._fast is not None
        _same(other.value_and_grad(t, p), loss.value_and_grad(t, p))
    plan = pickle.loads(pickle.dumps(loss._plan))
    assert isinstance(plan.fast, ElementCall) and plan.fast.plan is plan
    assert plan.fast.f64 == [None] * len(plan.fast.f64)     # no entry points pickled
    _same(plan.fast.call(t, p, None, 2, True), loss.value_and_grad(t, p))


def test_it_follows_the_plans_serial_threshold():
    loss = lossreg.get("mse")
    t, p = np.linspace(0, 1, 10), np.linspace(1, 0, 10)
    assert loss._plan.fast.call(t, p, None, 0, True) is not None
    loss._plan.serial_below = 0                 # as lossreg.bench forces a parallel run
    assert loss._plan.fast.call(t, p, None, 0, True) is None


def test_composite_kernels_name_the_set_that_runs():
    focal = lossreg.spec("focal").kernels
    assert direct_kernels(focal, (2.0, 0.25, False)) is focal.default
    assert direct_kernels(focal, (2.0, 0.25, True)) is focal.alternative
    tweedie = lossreg.spec("tweedie_deviance").kernels
    assert direct_kernels(tweedie, (1.5, False)) is tweedie.special[1.5]
    assert direct_kernels(tweedie, (1.5, True)) is tweedie.general
    assert ElementCall.build(lossreg.get("rmse")._plan) is None       # an ``outer`` loss
    assert ElementCall.build(lossreg.get("softmax_cross_entropy")._plan) is None
