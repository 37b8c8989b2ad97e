"""The cheap input check of a Loss's plan (lossreg/plan.py) and the fused kernels'
determinism.

Plain contiguous float inputs skip ``dispatch.prepare`` but run the same plan: same bits
as the general path, same errors.
"""

import functools
import math
import operator
import subprocess
import sys

import numpy as np
import pytest

import lossreg
from lossreg.errors import DomainError, DTypeError, LossError, ShapeError
from lossreg.dispatch import prepare
from lossreg.kernels.reduce import CHUNK

from .conftest import ALL_NAMES

FAST = [n for n in ALL_NAMES
        if lossreg.get(n, reduction=lossreg.spec(n).reductions[0])._plan.plain_inputs]


def _general(loss, t, p, want_value, want_grad, out=None, want_hess=False):
    """The same plan, with the inputs converted by dispatch.prepare (the general path)."""
    plan = loss._plan
    batch = prepare(loss.spec, t, p, None, loss.reduction, plan.scan_workers_for)
    return plan.execute(batch, want_value, want_grad, want_hess, out, None, True)


def _same(a, b):
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        assert isinstance(a, np.ndarray) and isinstance(b, np.ndarray)
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(a, b)
    else:
        assert type(a) is type(b)
        assert a == b or (math.isnan(a) and math.isnan(b)), (a, b)


def test_distance_losses_have_a_fast_path():
    for name in ("mse", "rmse", "mae", "huber", "smooth_l1"):
        assert name in FAST


@pytest.mark.parametrize("name", FAST)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_fast_path_is_bit_identical_to_the_general_path(name, dtype):
    spec = lossreg.spec(name)
    rng = np.random.default_rng(11)
    for n in (1, 7, 64, min(spec.kernels.serial_below, CHUNK) - 1, CHUNK + 5):
        t, p = spec.sample(rng, n, dtype)
        for shape in ((n,), (1, n)):
            ts, ps = t.reshape(shape), p.reshape(shape)
            for reduction in spec.reductions:
                loss = lossreg.get(name, reduction=reduction)
                assert loss._plan._plain_batch(ts, ps) is not None, (n, shape)
                _same(loss(ts, ps), _general(loss, ts, ps, True, False)[0])
                _same(loss.grad(ts, ps), _general(loss, ts, ps, False, True)[1])
                v, g = loss.value_and_grad(ts, ps)
                v2, g2, _ = _general(loss, ts, ps, True, True)
                _same(v, v2)
                _same(g, g2)
                out = np.empty_like(ps)
                v3, g3 = loss.value_and_grad(ts, ps, out=out)
                assert g3 is out
                _same(v3, v2)
                _same(g3, g2)
                if spec.has_hessian:
                    g4, h4 = loss.grad_hess(ts, ps)
                    _, g5, h5 = _general(loss, ts, ps, False, True, want_hess=True)
                    _same(g4, g5)
                    _same(h4, h5)


def test_fast_path_declines_what_it_does_not_handle():
    loss = lossreg.get("mse")
    plan = loss._plan
    t = np.linspace(0, 1, 10)
    p = np.linspace(1, 0, 10)
    assert plan._plain_batch(t, p) is not None
    declined = [
        (list(t), p),                                   # not an ndarray
        (t, p.astype(np.float32)),                      # mixed dtypes
        (t.astype(np.float16), p.astype(np.float16)),   # float16
        (t.astype(np.int64), p.astype(np.int64)),       # integers
        (t[::2], p[::2]),                               # non-contiguous
        (t[:0], p[:0]),                                 # empty
        (t[:3], p),                                     # shape mismatch
        (t.astype(">f8"), p.astype(">f8")),             # non-native byte order
    ]
    for a, b in declined:
        assert plan._plain_batch(a, b) is None
    # and the general path still answers those calls
    assert loss(list(t), p) == pytest.approx(float(np.mean((p - t) ** 2)))
    assert loss(t[::2], p[::2]) == pytest.approx(float(np.mean((p[::2] - t[::2]) ** 2)))


def test_rows_losses_and_weighted_sums_take_the_general_path():
    for name in ALL_NAMES:
        if lossreg.spec(name).layout == "rows":
            assert not lossreg.get(name, reduction=lossreg.spec(name).reductions[0])._plan.plain_inputs
    combo = lossreg.from_config({"terms": [{"name": "mse", "weight": 1.0},
                                           {"name": "mae", "weight": 0.5}]})
    t, p = np.zeros(5), np.arange(5.0)
    assert combo(t, p) == pytest.approx(np.mean(p ** 2) + 0.5 * np.mean(p))


@pytest.mark.parametrize("entry", ["call", "grad", "value_and_grad"])
def test_errors_are_unchanged_on_small_inputs(entry):
    loss = lossreg.get("huber", delta=0.5)
    call = {"call": lambda t, p, **k: loss(t, p, **k),
            "grad": lambda t, p, **k: loss.grad(t, p, **k),
            "value_and_grad": lambda t, p, **k: loss.value_and_grad(t, p, **k)}[entry]
    t = np.zeros(9)
    p = np.ones(9)
    for argument, index, bad in (("y_pred", 3, math.nan), ("y_true", 5, math.inf),
                                 ("y_pred", 8, -math.inf), ("y_true", 0, math.nan)):
        bt, bp = t.copy(), p.copy()
        (bp if argument == "y_pred" else bt)[index] = bad
        with pytest.raises(DomainError) as info:
            call(bt, bp)
        assert info.value.argument == argument and info.value.index == index
        # validate=False skips the check on the fast path too: no error
        call(bt, bp, validate=False)
    with pytest.raises(ShapeError):
        call(np.zeros(3), np.zeros(4))
    if entry != "call":
        with pytest.raises(DTypeError):
            call(t, p, out=np.empty(9, np.float32))
        with pytest.raises(ShapeError):
            call(t, p, out=np.empty(8))


def test_first_violation_wins_in_each_argument():
    loss = lossreg.get("mse")
    t = np.zeros(20)
    p = np.zeros(20)
    p[[4, 11]] = math.nan
    t[[7, 2]] = math.inf
    with pytest.raises(DomainError) as info:
        loss.value_and_grad(t, p)
    assert (info.value.argument, info.value.index) == ("y_true", 2)


def _lane_sum(values: np.ndarray) -> float:
    """The documented order: per chunk, element i into lane (i - lo) % 4, the tail of the
    chunk into lane 0, sequential adds; chunk = (s0 + s1) + (s2 + s3); exact total."""
    partials = []
    for lo in range(0, values.shape[0], CHUNK):
        chunk = values[lo:lo + CHUNK]
        quads = chunk.shape[0] // 4 * 4
        lanes = [functools.reduce(operator.add, chunk[k:quads:4].tolist(), 0.0)
                 for k in range(4)]
        lanes[0] = functools.reduce(operator.add, chunk[quads:].tolist(), lanes[0])
        partials.append((lanes[0] + lanes[1]) + (lanes[2] + lanes[3]))
    return math.fsum(partials)


@pytest.mark.parametrize("n", [13, 1000, 2 * CHUNK + 7])
def test_vectorized_kernels_keep_the_exact_summation_order(n):
    rng = np.random.default_rng(5)
    t = rng.standard_normal(n)
    p = rng.standard_normal(n)
    r = p - t
    loss = lossreg.get("mse", reduction="sum")
    assert loss(t, p) == _lane_sum(r * r)
    k = np.clip(r, -0.5, 0.5)
    huber = lossreg.get("huber", delta=0.5, reduction="sum")
    assert huber.value_and_grad(t, p)[0] == _lane_sum(k * (r - 0.5 * k))
    w = rng.random(n)
    assert loss(t, p, sample_weight=w) == _lane_sum(w * (r * r))


def test_n_threads_is_bit_identical_and_honoured():
    import numba
    from numba import prange

    rng = np.random.default_rng(9)
    n = 3 * CHUNK + 5
    t, p, w = rng.standard_normal(n), rng.standard_normal(n), rng.random(n)
    limit = numba.config.NUMBA_NUM_THREADS
    for name in ("mse", "huber", "mae"):
        got = {k: lossreg.get(name, n_threads=k).value_and_grad(t, p, sample_weight=w)
               for k in sorted({1, limit})}
        first = got[1]
        for v, g in got.values():
            assert v == first[0]
            np.testing.assert_array_equal(g, first[1])

    @lossreg.kernels.njit(parallel=True, cache=False)   # a closure: nothing to cache
    def probe(y_true, y_pred, out):
        k = numba.get_num_threads()
        for i in prange(y_pred.shape[0]):
            out[i] = k

    spec = lossreg.LossSpec(name="thread_probe", family="test", task="regression",
                            forward=probe, gradient=probe,
                            reference=lambda a, b: np.zeros(np.shape(b)), serial_below=0)
    x = np.zeros(1000)
    assert lossreg.Loss(spec, "none", n_threads=limit)(x, x).max() == limit
    assert not spec.kernels._serial
    lossreg.Loss(spec, "none", n_threads=1)(x, x)   # one thread: the serial twin runs
    assert spec.kernels._serial
    assert numba.get_num_threads() == limit  # never changed outside a parallel launch


_THREADS = """
import numpy as np, lossreg
rng = np.random.default_rng(3)
n = 4 * 16384 + 3
t = rng.standard_normal(n); p = rng.standard_normal(n); w = rng.random(n)
loss = lossreg.get("huber")
print(float(loss(t, p)).hex(), float(loss.value_and_grad(t, p, sample_weight=w)[0]).hex())
"""


def test_four_threads_give_the_same_bits_as_one():
    outs = []
    for k in (1, 4):
        env = {"NUMBA_NUM_THREADS": str(k), "PATH": "/usr/bin:/bin"}
        import os
        env = {**os.environ, **env}
        proc = subprocess.run([sys.executable, "-c", _THREADS], capture_output=True, text=True,
                              env=env, timeout=300)
        assert proc.returncode == 0, proc.stderr
        outs.append(proc.stdout.split())
    assert outs[0] == outs[1]


# -- row losses: the cheap input check (Plan._plain_rows) and the fused domain count --------

ROWS = [n for n in ALL_NAMES if lossreg.spec(n).layout == "rows"
        and lossreg.get(n, reduction=lossreg.spec(n).reductions[0])._plan.row_rules is not None]


def _row_inputs(name, rows=5, labels=False):
    spec = lossreg.spec(name)
    t, p = spec.sample(np.random.default_rng(3), rows, np.float64)
    if labels:
        t = np.argmax(t, axis=-1).astype(np.int64)
    return np.ascontiguousarray(t), np.ascontiguousarray(p)


def _forms(name):
    return (False, True) if lossreg.spec(name).takes_labels else (False,)


def test_row_losses_have_a_fast_path():
    for name in ("kl_div", "js_div", "cross_entropy", "softmax_cross_entropy", "nll"):
        assert name in ROWS


@pytest.mark.parametrize("name", ROWS)
def test_row_fast_path_is_bit_identical_to_the_general_path(name):
    """Same bits as dispatch.prepare's batch through the same plan (float64: the
    kernels every row test compiles anyway)."""
    spec = lossreg.spec(name)
    for labels in _forms(name):
        t, p = _row_inputs(name, 7, labels)
        for reduction in spec.reductions:
            loss = lossreg.get(name, reduction=reduction)
            assert loss._plan._plain_rows(t, p) is not None
            _same(loss(t, p), _general(loss, t, p, True, False)[0])
            v, g = loss.value_and_grad(t, p)
            v2, g2, _ = _general(loss, t, p, True, True)
            _same(v, v2)
            _same(g, g2)
            out = np.empty_like(p)
            assert loss.grad(t, p, out=out) is out
            _same(out, g2)


def test_row_fast_path_declines_what_it_does_not_handle():
    loss = lossreg.get("softmax_cross_entropy")
    plan = loss._plan
    t, p = _row_inputs("softmax_cross_entropy", 6)
    y = np.argmax(t, axis=-1).astype(np.int64)
    assert plan._plain_rows(t, p) is not None and plan._plain_rows(y, p) is not None
    for a, b in [(t.tolist(), p), (t, p.astype(np.float32)), (t.astype(np.float32), p),
                 (t[:, ::2], p[:, ::2]), (t[::2], p[::2].copy()), (t[0], p[0]),
                 (y.astype(np.int32), p), (y.astype(float), p), (y[:3], p),
                 (t[:0], p[:0]), (t.astype(">f8"), p.astype(">f8"))]:
        assert plan._plain_rows(a, b) is None
    assert lossreg.get("kl_div")._plan._plain_rows(y, p) is None    # takes no labels
    # and the general path still answers those calls, with the same value
    assert loss(y.astype(float), p) == loss(y, p)
    assert loss(t.tolist(), p) == loss(t, p)


def _error(call, *args):
    with pytest.raises(LossError) as info:
        call(*args)
    e = info.value
    return type(e), e.argument, e.index, str(e)


@pytest.mark.parametrize("name", ROWS)
def test_row_fast_path_raises_what_the_scans_raise(name):
    """Every bad value or row, in y_true or y_pred, reports the same typed error with
    the same index as dispatch.check_domains' scans (the slow path: a weighted call)."""
    spec = lossreg.spec(name)
    for labels in _forms(name):
        t, p = _row_inputs(name, 6, labels)
        loss = lossreg.get(name)
        ones = np.ones(p.shape[0])
        cases = []
        for argument, arr in (("y_pred", p),) + (() if labels else (("y_true", t),)):
            for index, bad in ((7, math.nan), (13, math.inf), (0, -math.inf), (20, 2.0),
                               (5, -0.5)):
                cases.append((argument, index, bad))
        for argument, index, bad in cases:
            bt, bp = t.copy(), p.copy()
            (bp if argument == "y_pred" else bt).reshape(-1)[index] = bad
            slow = None
            try:
                loss.value_and_grad(bt, bp, sample_weight=ones)
            except LossError as exc:
                slow = (type(exc), exc.argument, exc.index, str(exc))
            for call in (loss, loss.value_and_grad, loss.grad):
                if slow is None:          # allowed there (logits: any finite value, ...)
                    call(bt, bp)
                else:
                    assert _error(call, bt, bp) == slow, (argument, index, bad)
            call(bt, bp, validate=False) if slow is None else loss(bt, bp, validate=False)
        # a row off its sum (distributions): the same row error
        if spec.domain("y_pred").row_sum is not None:
            bp = p.copy()
            bp[3] *= 0.5
            bt = t.copy()
            bt[4] *= 0.5
            slow = _error(lambda a, b: loss(a, b, sample_weight=ones), t, bp)
            assert _error(loss, t, bp) == slow and slow[1] == "y_pred"
            slow = _error(lambda a, b: loss(a, b, sample_weight=ones), bt, bp)
            assert _error(loss.value_and_grad, bt, bp) == slow and slow[1] == "y_true"
        # an all-zero row where a domain asks for non-zero rows (cosine): the same error
        if not labels:
            _zero_rows_agree(loss, t, p)


def _zero_rows_agree(loss, t, p):
    """Rows zeroed in y_pred, y_true, or both, raise (or pass) on the fast path as on
    the scans of a weighted call."""
    assert loss._plan.row_rules is not None
    ones = np.ones(p.shape[0])
    for rows in (((), (3,)), ((4,), (2,)), ((1,), (1,)), ((), ())):
        bt, bp = t.copy(), p.copy()
        bt[list(rows[0])] = 0.0
        bp[list(rows[1])] = 0.0
        try:
            loss(bt, bp, sample_weight=ones)
        except LossError:
            slow = _error(lambda a, b: loss(a, b, sample_weight=ones), bt, bp)
            for call in (loss, loss.grad):
                assert _error(call, bt, bp) == slow, rows
        else:
            loss(bt, bp)


@pytest.mark.parametrize("name,hyper", [("dice", {"eps": 0.0}),
                                        ("tversky", {"alpha": 0.0, "beta": 0.0, "eps": 0.0})])
def test_row_fast_path_counts_joint_row_rules(name, hyper):
    """Domain.nonzero_rows rules on the pair of rows (Dice's "either", Tversky's "both")
    are counted by the fast path and located by the scans: the same error."""
    loss = lossreg.get(name, **hyper)
    assert loss._plan.spec.domain("y_pred").nonzero_rows is not None
    t, p = _row_inputs(name, 6)
    _zero_rows_agree(loss, t, p)


def test_small_sums_in_python_give_the_kernel_bits():
    from lossreg.kernels import reduce as R

    rng = np.random.default_rng(8)
    for dtype in (np.float64, np.float32):
        for n in (1, 2, 7, R.TINY_SUM - 1, R.TINY_SUM, R.TINY_SUM + 9):
            v = (rng.standard_normal(n) * 10.0 ** rng.integers(-8, 9, n)).astype(dtype)
            w = rng.random(n)
            for weights in (np.empty(0), w):
                _same(R.one_chunk_sum(v, weights), R.weighted_sum(v, weights, 1))
            v[n // 2] = math.inf
            _same(R.one_chunk_sum(v, np.empty(0)), R.weighted_sum(v, np.empty(0), 1))
            v[0] = -math.inf
            _same(R.one_chunk_sum(v, np.empty(0)), R.weighted_sum(v, np.empty(0), 1))


def test_row_fast_path_counts_only_the_rules_it_knows():
    """A domain rule the counting pass does not know (whole numbers, label sets) leaves
    every call to dispatch.check_domains' scans."""
    from lossreg.plan import _row_rules
    from lossreg.spec import Domain, Interval

    kernels = lossreg.get("kl_div")._plan.kernels
    plain = Domain(Interval(0.0, 1.0), row_sum=1.0)
    assert _row_rules(kernels, plain, plain) is not None
    for odd in (Domain(Interval(0.0, 1.0), integer=True),
                Domain(Interval(0.0, 1.0), label_sets=((0.0, 1.0),))):
        assert _row_rules(kernels, odd, plain) is None
        assert _row_rules(kernels, plain, odd) is None
    nonzero = Domain(Interval(0.0, 1.0), row_sum=1.0, nonzero_rows="either")
    assert _row_rules(kernels, plain, nonzero)[0][-1] == 2.0          # counted
    # every Domain field is a rule the counting pass counts, makes it step aside, or
    # no rule at all: a new field must be added to plan._row_rules (and this list)
    from dataclasses import fields

    counted = {"interval", "allow_nan", "row_sum", "row_sum_tol", "nonzero_rows"}
    aside, no_rule = {"integer", "label_sets"}, {"doc"}
    assert {f.name for f in fields(Domain)} == counted | aside | no_rule


LABEL_ROWS = [n for n in ROWS if lossreg.spec(n).takes_labels]


@pytest.mark.parametrize("name", LABEL_ROWS)
def test_small_row_calls_check_labels_as_the_general_path(name):
    """A small plain call on labels (Plan._small_rows; the label count fused in the
    kernels where they count labels) raises what a weighted call (the general path:
    dispatch.label_weights first) raises: a bad label before a bad y_pred value, and
    before a "mean" whose class weights sum to 0."""
    t, p = _row_inputs(name, 6, labels=True)
    hyper = ({"ignore_index": 2} if "ignore_index" in lossreg.spec(name).hyperparameters
             else {})
    loss = lossreg.get(name, **hyper)
    ones = np.ones(p.shape[0])
    bad_p = p.copy()
    bad_p[4, 1] = math.nan
    for i, label in ((3, p.shape[1]), (0, -1), (5, 99)):
        y = t.copy()
        y[i] = label
        for q in (p, bad_p):
            slow = _error(lambda a, b: loss.value_and_grad(a, b, sample_weight=ones), y, q)
            assert slow[1] == "y_true" and slow[2] == i
            for call in (loss, loss.grad, loss.value_and_grad):
                assert _error(call, y, q) == slow
        loss(y, p, validate=False)                      # NaN rows, no error
    if hyper:                                           # ignored labels are fine
        y = t.copy()
        y[1] = 2
        _same(loss(y, p), loss(y, p, sample_weight=ones))
    if "class_weight" in lossreg.spec(name).hyperparameters and name != "multi_margin":
        zero = lossreg.get(name, class_weight=[0.0] * p.shape[1])
        y = t.copy()
        y[2] = -7
        assert _error(zero, y, p) == _error(
            lambda a, b: zero(a, b, sample_weight=ones), y, p)
        assert _error(zero, t, p)[3] == _error(
            lambda a, b: zero(a, b, sample_weight=ones), t, p)[3]
