"""lossreg.dask: reduced values bit-identical to in-memory lossreg for any chunking,
scheduler and worker count; errors with global indices; weights, labels, rows.

Most tests use dask's threaded scheduler (in-process, fast). One module-scoped
``distributed.LocalCluster`` with two worker processes on 127.0.0.1 runs the distributed
cases; it inherits the session's kernel cache (tests/conftest.py), so the workers load
the kernels the in-memory references compiled first.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")

import lossreg  # noqa: E402
import lossreg.dask as ld  # noqa: E402
from lossreg import _dask_blocks as B  # noqa: E402
from lossreg.errors import DomainError, DTypeError, LossError, ShapeError  # noqa: E402
from lossreg.kernels.reduce import CHUNK  # noqa: E402

from .conftest import run_python  # noqa: E402

N = 3 * CHUNK + 1234           # four reduction chunks, the last one partial
RNG = np.random.default_rng(17)
T, P, W = RNG.random(N), RNG.random(N) * 0.98 + 0.01, RNG.random(N)


def chunked(x, chunks):
    return da.from_array(x, chunks=chunks)


@pytest.fixture(autouse=True)
def threaded():
    with dask.config.set(scheduler="threads", num_workers=2):
        yield


# -- bit-identity ---------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["mse", "huber", "rmse", "binary_cross_entropy"])
def test_value_is_bit_identical_for_any_chunking(name):
    loss = lossreg.get(name)
    ref, ref_w = loss(T, P), loss(T, P, W)
    for chunks in (1000, 7777, CHUNK, N):
        t, p = chunked(T, chunks), chunked(P, chunks + 3)      # unequal chunks: aligned
        v = ld.evaluate(loss, t, p)
        assert v.shape == () and v.dtype == np.float64       # lazy 0-d
        assert v.compute() == ref
        assert ld.evaluate(loss, t, p, chunked(W, 5000), compute=True) == ref_w
    assert ld.evaluate(name, T, P, compute=True, block_size=1) == ref   # NumPy inputs too


@pytest.mark.parametrize("scheduler, workers", [("sync", 1), ("threads", 1), ("threads", 4)])
def test_same_bits_on_every_scheduler_and_thread_count(scheduler, workers):
    loss = lossreg.get("huber", delta=0.3)
    t, p = chunked(T, 6000), chunked(P, 9000)
    with dask.config.set(scheduler=scheduler, num_workers=workers):
        v, g = ld.value_and_grad(loss, t, p, W, compute=True)
    rv, rg = loss.value_and_grad(T, P, W)
    assert v == rv and np.array_equal(g, rg)


def test_gradients_are_dask_arrays_with_the_input_chunks_and_dtype():
    x = RNG.normal(size=(40, 30, 50)).astype(np.float32)
    y = RNG.normal(size=(40, 30, 50)).astype(np.float32)
    loss = lossreg.get("huber", reduction="sum")
    t, p = chunked(x, (7, 30, 50)), chunked(y, (40, 13, 17))
    g = ld.grad(loss, t, p)
    assert isinstance(g, da.Array) and g.chunks == p.chunks and g.dtype == np.float32
    rv, rg = loss.value_and_grad(x, y)
    v, g2 = ld.value_and_grad(loss, t, p, compute=True)
    assert v == rv and np.array_equal(g.compute(), rg) and np.array_equal(g2, rg)
    gh = ld.grad_hess(loss, t, p, compute=True)
    assert all(np.array_equal(a, b) for a, b in zip(gh, loss.grad_hess(x, y)))
    none = lossreg.get("huber", reduction="none")
    values = ld.evaluate(none, t, p)
    assert values.shape == x.shape and np.array_equal(values.compute(), none(x, y))


def test_weighted_mean_gradient_uses_the_global_weight_sum():
    loss = lossreg.get("binary_cross_entropy_with_logits", pos_weight=2.0)
    t, p, w = chunked(T, 4000), chunked(P * 6 - 3, 10000), chunked(W, 7000)
    g = ld.grad(loss, t, p, w)
    assert np.array_equal(g.compute(), loss.grad(T, P * 6 - 3, W))
    assert np.array_equal(ld.hessian(loss, t, p, w, compute=True), loss.hessian(T, P * 6 - 3, W))


@pytest.mark.parametrize("hyper", [{}, {"class_weight": [1.0, 0.5, 2.0, 0.0, 1.5],
                                        "ignore_index": 1, "label_smoothing": 0.1}])
def test_row_losses_with_labels_chunked_along_rows(hyper):
    n, c = 2 * CHUNK + 77, 5
    z, labels, w = RNG.normal(size=(n, c)), RNG.integers(0, c, n), RNG.random(n)
    for reduction in ("mean", "sum", "none"):
        loss = lossreg.get("softmax_cross_entropy", reduction=reduction, **hyper)
        zd = chunked(z, (5000, 2))                     # split columns too: realigned to rows
        v, g = ld.value_and_grad(loss, chunked(labels, 9000), zd, chunked(w, 3000),
                                 compute=True)
        rv, rg = loss.value_and_grad(labels, z, w)
        assert np.array_equal(v, rv) and np.array_equal(g, rg), reduction
        assert ld.grad(loss, labels, zd).chunks == zd.chunks


def test_distribution_rows():
    n, c = CHUNK + 999, 4
    q, p = RNG.dirichlet(np.ones(c), n), RNG.dirichlet(np.ones(c), n)
    for name in ("kl_div", "js_div", "cross_entropy"):
        loss = lossreg.get(name)
        h = ld.hessian(loss, chunked(q, (4000, c)), chunked(p, (7000, c)), compute=True)
        assert ld.evaluate(loss, chunked(q, (4000, c)), p, compute=True) == loss(q, p)
        assert np.array_equal(h, loss.hessian(q, p))


@pytest.mark.parametrize("name", ["binary_cross_entropy", "rmse", "softmax_cross_entropy"])
def test_zero_weights_bit_identical_for_any_chunking(name):
    """Terms of weight 0 add exactly 0 (an infinite loss there too) and keep their place
    in the reduction chunks, so values and derivatives equal the in-memory ones bit for
    bit whatever the chunking; their derivatives are +0.0."""
    w = W.copy()
    w[::3] = 0.0
    w[CHUNK - 5: CHUNK + 900] = 0.0             # a run of zeros across a chunk boundary
    if name == "softmax_cross_entropy":
        n = w.shape[0] // 4
        t, p, w = RNG.integers(0, 4, n), RNG.normal(size=(n, 4)), w[:n]
        p[3] = [1e300, -1e300, 0.0, 0.0]        # a zero-weight row, finite but extreme
        chunks = [((n // 3, 4), n // 5), ((CHUNK + 7, 2), 999)]
    else:
        t, p = T.copy(), P.copy()
        t[3], p[3] = 1.0, 0.0                   # infinite bce loss at a zero weight
        chunks = [(10000, 7000), (CHUNK + 1, 3333), (N, N)]
    loss = lossreg.get(name)
    rv, (rg, rh) = loss(t, p, w), loss.grad_hess(t, p, w)
    assert np.isfinite(rv) and not np.signbit(rg[3]).any() and np.all(rg[3] == 0)
    for pc, wc in chunks:
        tc = pc if t.ndim == p.ndim else (pc[0] if isinstance(pc, tuple) else pc)
        args = (loss, chunked(t, tc), chunked(p, pc), chunked(w, wc))
        v, g = ld.value_and_grad(*args, compute=True)
        assert v == rv and np.array_equal(g, rg) and not np.signbit(g[3]).any()
        assert np.array_equal(ld.hessian(*args, compute=True), rh)
    none = lossreg.get(name, reduction="none") if name != "rmse" else None
    if none is not None:
        got = ld.evaluate(none, chunked(t, 5000), p, w, compute=True)
        assert np.array_equal(got, none(t, p, w)) and not np.signbit(got[3])


@pytest.mark.parametrize("scale", [1e300, 1.5e308, 1e-300, 5e-324])
def test_weight_sums_outside_the_range_rescaled_as_in_memory(scale):
    """A weighted mean whose weights sum outside [2**-64, 2**64]: in memory the weights
    are multiplied by 2**-e (e = frexp(max w)), exactly; lossreg.dask does the same and
    gives the same bits for any chunking: gradients from the weight pass, a value (and
    RMSE's derivatives) with compute=True by recomputing with a weight pass first (a
    lazy value refuses)."""
    w = W * scale if scale > 1e-320 else np.floor(W * 5) * scale     # subnormal weights
    w[::7] = 0.0
    n, c = N // 4, 4
    rng = np.random.default_rng(64)           # not the shared RNG: later tests use it
    labels, z, wr = rng.integers(0, c, n), rng.normal(size=(n, c)), w[:n]
    cases = [("mse", T, P, w, 7000, 5000), ("rmse", T, P, w, CHUNK + 3, 9000),
             ("softmax_cross_entropy", labels, z, wr, 4000, (3000, 2))]
    for name, t, p, wt, tc, pc in cases:
        loss = lossreg.get(name)
        rv, (rg, rh) = loss(t, p, wt), loss.grad_hess(t, p, wt)
        args = (loss, chunked(t, tc), chunked(p, pc), chunked(wt, 6000))
        assert ld.evaluate(*args, compute=True) == rv, name
        v, g = ld.value_and_grad(*args, compute=True)
        assert v == rv and np.array_equal(g, rg), name
        lazy = name != "rmse"       # RMSE's derivatives need a value pass first
        g, h = ld.grad_hess(*args, compute=not lazy)
        assert np.array_equal(dask.compute(g)[0], rg) and np.array_equal(
            dask.compute(h)[0], rh), name
        with pytest.raises(DomainError, match="compute=True") as info:
            ld.evaluate(*args).compute()
        assert info.value.constraint == B.RESCALE


def test_weights_spanning_more_than_2_1022_refused_with_the_index():
    """Rescaled by 2**-1024, a weight 1e-30 would turn subnormal in memory: lossreg.dask
    cannot reproduce that sum, so it refuses (DomainError with the global index)."""
    w = W * 1.5e308
    w[40000] = 1e-30
    with pytest.raises(DomainError) as info:
        ld.grad("mse", T, chunked(P, 7000), chunked(w, 5000), compute=True)
    assert info.value.index == 40000 and info.value.argument == "sample_weight"


def test_empty_inputs_as_in_memory():
    with pytest.raises(ShapeError, match="empty input"):
        ld.evaluate("mse", T[:0], P[:0])
    assert ld.evaluate("mse", T[:0], P[:0], reduction="sum", compute=True) == 0.0


# -- errors: typed, global indices ----------------------------------------------------------

def _error(call):
    with pytest.raises(LossError) as info:
        call()
    e = info.value
    return type(e), str(e), getattr(e, "index", None)


def test_domain_errors_name_the_global_first_index():
    loss = lossreg.get("binary_cross_entropy")
    p = P.copy()
    p[[40000, 45000]] = 1.5
    t = T.copy()
    t[47000] = np.nan
    for tt, pp in ((T, p), (t, p)):
        ref = _error(lambda: loss(tt, pp, W))
        got = _error(lambda: ld.evaluate(loss, chunked(tt, 5000), chunked(pp, 3000), W,
                                         compute=True))
        assert got == ref and ref[2] in (40000, 47000)
    w = W.copy()
    w[33333] = -1.0
    ref = _error(lambda: loss.grad(t, p, w))
    assert _error(lambda: ld.grad(loss, t, p, chunked(w, 4000), compute=True)) == ref
    assert ref[2] == 33333


def test_gradient_blocks_raise_with_global_indices():
    p = P.copy()
    p[41000] = -0.5
    with pytest.raises(DomainError, match="at index 41000 ") as info:
        ld.grad("binary_cross_entropy", T, chunked(p, 8000)).compute()
    assert info.value.index == 41000


def test_label_and_row_errors():
    n, c = 2 * CHUNK, 3
    z, labels = RNG.normal(size=(n, c)), RNG.integers(0, c, n)
    labels[30001] = 7
    loss = lossreg.get("softmax_cross_entropy")
    assert _error(lambda: ld.evaluate(loss, chunked(labels, 5000), z, compute=True)) \
        == _error(lambda: loss(labels, z))
    q = RNG.dirichlet(np.ones(c), n)
    q[20000, 0] += 0.5
    kl = lossreg.get("kl_div")
    ref = _error(lambda: kl(q, q))
    assert _error(lambda: ld.evaluate(kl, chunked(q, (3000, c)), q, compute=True)) == ref
    assert ref[2] == 20000 * c and "row 20000 " in ref[1]


def test_hyperparameters_and_shapes_checked_before_any_task_runs():
    def boom(x):
        raise AssertionError("a task ran")

    t = chunked(T, 5000).map_blocks(boom, dtype=float)
    with pytest.raises(lossreg.HyperparameterError):
        ld.evaluate("huber", t, t, delta=-1.0)
    with pytest.raises(ShapeError, match="class_weight"):
        ld.grad("softmax", np.zeros(4, int), np.zeros((4, 3)), class_weight=[1.0, 2.0])
    with pytest.raises(ShapeError):
        ld.evaluate("mse", t, t[:-1])
    with pytest.raises(ShapeError, match="sample_weight"):
        ld.evaluate("mse", t, t, t[:-1])
    ld.evaluate("mse", t, t)                          # builds lazily without running


def test_bad_input():
    x = chunked(P, 1000)
    with pytest.raises(ShapeError, match="compute_chunk_sizes"):
        ld.evaluate("mse", x[x > 0.5], x[x > 0.5])
    with pytest.raises(DTypeError, match="real numeric"):
        ld.evaluate("mse", x, chunked(P.astype(object), 1000))
    with pytest.raises(LossError, match="one registered loss"):
        ld.evaluate(lossreg.from_config({"terms": [{"name": "mse"}, {"name": "mae"}]}), x, x)
    with pytest.raises(LossError, match="block_size"):
        ld.evaluate("mse", x, x, block_size=0)


def test_ordinary_loss_refuses_dask_arrays_instead_of_computing_them():
    def boom(b):
        raise AssertionError("computed")

    x = chunked(P, 1000).map_blocks(boom, dtype=float)
    with pytest.raises(DTypeError, match="lossreg.dask"):
        lossreg.get("mse")(P, x)
    with pytest.raises(DTypeError, match="lossreg.dask"):
        lossreg.get("mse").grad(P, P, x)


def test_a_lost_block_raises_instead_of_shrinking_the_sum():
    loss = lossreg.get("mse")
    job = B.BlockJob(loss, "mean", value=True)
    blocks = [B.run_block(job, T[i:i + CHUNK], P[i:i + CHUNK], None, i)
              for i in range(0, N, CHUNK)]
    summary = B.finish(blocks, N, "mean", False, job)
    assert summary["value"] == loss(T, P)
    with pytest.raises(LossError, match="lost or repeated"):
        B.finish(blocks[:-1], N, "mean", False, job)


def test_without_dask_a_one_line_error_names_the_extra():
    out = run_python("import sys; sys.modules['dask'] = None\n"
                     "import lossreg\n"
                     "try:\n"
                     "    import lossreg.dask\n"
                     "except ImportError as e:\n"
                     "    print(type(e).__name__, '|', e)\n")
    assert out.startswith("MissingDependencyError | ") and 'lossreg[dask]' in out


# -- a real distributed cluster -------------------------------------------------------------

@pytest.fixture(scope="module")
def client():
    distributed = pytest.importorskip("distributed")
    # compile the kernels in this process first: the workers load them from the cache
    lossreg.get("binary_cross_entropy").value_and_grad(T, P, W)
    lossreg.get("softmax_cross_entropy").value_and_grad(np.zeros(4, int), np.zeros((4, 3)))
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       host="127.0.0.1", dashboard_address=None,
                                       death_timeout=60)
    c = distributed.Client(cluster, timeout=60)
    try:
        yield c
    finally:
        c.close(timeout=30)
        cluster.close(timeout=30)


def test_local_cluster_processes_bit_identical(client):
    loss = lossreg.get("binary_cross_entropy")
    ref_v, ref_g = loss.value_and_grad(T, P, W)
    t, p, w = chunked(T, 4000), chunked(P, 7000), chunked(W, 6000)
    v, g = client.compute(list(ld.value_and_grad(loss, t, p, w)), sync=True)
    assert float(v) == ref_v and np.array_equal(g, ref_g)
    n, c = CHUNK + 5, 3
    z, labels = RNG.normal(size=(n, c)), RNG.integers(0, c, n)
    sce = lossreg.get("softmax_cross_entropy")
    assert client.compute(ld.evaluate(sce, chunked(labels, 3000), z), sync=True) \
        == sce(labels, z)
    huge = W * 1e300                         # sum(w) > 2**64: rescaled, a second graph
    with dask.config.set(scheduler="dask.distributed"):
        assert ld.evaluate(loss, t, p, chunked(huge, 6000), compute=True) == loss(T, P, huge)


def test_local_cluster_reports_global_indices(client):
    p = P.copy()
    p[44444] = 2.0
    with pytest.raises(DomainError) as info:
        client.compute(ld.evaluate("binary_cross_entropy", T, chunked(p, 5000)), sync=True)
    assert info.value.index == 44444 and "index 44444 " in str(info.value)


def test_a_worker_that_dies_mid_computation_is_retried(client, tmp_path):
    marker = str(tmp_path / "died-once")

    def die_once(x, block_info=None):
        if block_info[0]["chunk-location"][0] == 2 and not os.path.exists(marker):
            open(marker, "w").close()
            os._exit(1)
        return x

    p = chunked(P, 8000).map_blocks(die_once, dtype=float)
    loss = lossreg.get("mse")
    assert client.compute(ld.evaluate(loss, T, p), sync=True) == loss(T, P)
    assert os.path.exists(marker)


@pytest.mark.slow
def test_two_billion_elements_under_four_gb(tmp_path):
    """The docs' figure (benchmarks/dask_memory.py at full size takes minutes)."""
    import json
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = tmp_path / "mem.json"
    subprocess.run([sys.executable, os.path.join(root, "benchmarks", "dask_memory.py"),
                    "--elements", "2e9", "-o", str(out)], check=True, timeout=3600)
    for row in json.loads(out.read_text())["results"]:
        assert row["peak_rss_mb"] < 4000, row
