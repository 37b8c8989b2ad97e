"""lossreg.bench: the quick run works end to end, and what it compares against is right.

No timing is asserted here: the benchmark prints PASS/FAIL, the tests only check that it
measures the right things (comparison implementations agree with lossreg).
"""

import json

import numpy as np
import pytest

import lossreg
from lossreg import bench, peers

from .conftest import run_python


def test_lossreg_bench_quick_runs(tmp_path, capsys):
    from lossreg.cli import main

    out_json = tmp_path / "r.json"
    code = main(["bench", "--quick", "--no-torch", "--no-sklearn", "--no-progress",
                 "--sizes", "10,5000", "--json", str(out_json), "--plot", ""])
    assert code == 0
    text = capsys.readouterr().out
    assert "x numpy" in text and "per-call time at N=10" in text
    assert "PASS" in text or "FAIL" in text
    data = json.loads(out_json.read_text())
    assert {r["loss"] for r in data["rows"]} == {"mse", "huber"}
    assert {r["n"] for r in data["rows"]} == {10, 5000}
    for row in data["rows"]:
        for op in bench.OPS:
            assert row["lossreg"][op] > 0 and row["ceiling"][op] > 0
            assert row["numpy"][op] > 0
    assert data["overhead"]["bare_njit"] > 0
    assert any(t["target"].startswith("overhead") for t in data["targets"])


def test_plot_is_written(tmp_path):
    pytest.importorskip("matplotlib")
    row = {"loss": "mse", "n": 10, "dtype": "float64", "layout": "elementwise",
           "lossreg": {op: 1e-6 for op in bench.OPS}, "ceiling": {op: 5e-7 for op in bench.OPS},
           "numpy": {}, "torch": {"value_and_grad": 3e-6}, "sklearn": {}}
    path = tmp_path / "p.png"
    assert bench.plot({"rows": [row, {**row, "n": 1000}]}, path)
    assert path.stat().st_size > 1000


def test_targets_pass_and_fail_on_the_numbers():
    def row(name, ours, ceiling, torch=None, unvalidated=None):
        return {"loss": name, "n": 10_000_000, "dtype": "float64", "layout": "elementwise",
                "lossreg": {"value_and_grad": ours,
                            "value_and_grad_unvalidated": unvalidated or ours},
                "ceiling": {"value_and_grad": ceiling}, "numpy": {},
                "torch": {"value_and_grad": torch} if torch else {}, "sklearn": {}}

    good = {"rows": [row("mse", 1.0, 0.95, torch=2.5), row("huber", 1.0, 0.92, torch=3.0)]}
    status = {t: ok for t, ok, _ in bench.targets(good)}
    assert all(ok for t, ok in status.items() if ok is not None)
    assert status[next(t for t in status if "sklearn" in t)] is None  # not measured
    bad = {"rows": [row("mse", 1.0, 0.5, torch=1.5, unvalidated=0.5), row("huber", 1.0, 0.95)]}
    status = {t: ok for t, ok, _ in bench.targets(bad)}
    assert status[next(t for t in status if "ceiling" in t)] is False
    assert status[next(t for t in status if "torch" in t)] is False
    assert status[next(t for t in status if "validated" in t)] is False


@pytest.mark.parametrize("name", bench.builtin_names())
def test_numpy_comparison_computes_the_same_loss(name):
    t, p = bench.make_inputs(name, 40, "float64", seed=2)
    loss = lossreg.get(name)
    impl = bench.numpy_impl(name, t, p, loss.hyperparameters)
    assert impl["value"]() == pytest.approx(loss(t, p), rel=1e-9, abs=1e-12)
    if "grad" in impl:
        np.testing.assert_allclose(impl["grad"](), loss.grad(t, p), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("name", bench.builtin_names())
def test_torch_comparison_computes_the_same_loss(name):
    pytest.importorskip("torch")
    t, p = bench.make_inputs(name, 40, "float64", seed=3)
    loss = lossreg.get(name)
    impl = bench.torch_impl(name, t, p, loss.hyperparameters, 1)
    if impl is None:
        pytest.skip(f"no PyTorch counterpart for {name}")
    assert impl["value"]() == pytest.approx(loss(t, p), rel=1e-7, abs=1e-10)
    v, g = impl["value_and_grad"]()
    np.testing.assert_allclose(g.numpy(), loss.grad(t, p), rtol=1e-7, atol=1e-10)


@pytest.mark.parametrize("name", bench.builtin_names())
def test_torch_bridge_row_computes_the_same_loss(name):
    pytest.importorskip("torch")
    t, p = bench.make_inputs(name, 40, "float64", seed=5)
    loss = lossreg.get(name)
    v, g = bench.torch_bridge_impl(name, t, p, loss.hyperparameters, 1)()
    assert v == pytest.approx(loss(t, p), rel=1e-12)
    np.testing.assert_allclose(g.numpy(), loss.grad(t, p), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("name", bench.builtin_names())
def test_sklearn_comparison_computes_the_same_loss(name):
    pytest.importorskip("sklearn")
    t, p = bench.make_inputs(name, 40, "float64", seed=4)
    loss = lossreg.get(name)
    impl = bench.sklearn_impl(name, t, p, loss.hyperparameters, 1)
    if impl is None:
        pytest.skip(f"no scikit-learn counterpart for {name}")
    scale = peers.peer(name).sklearn_scale   # HalfSquaredError = 0.5 * r**2
    assert impl["value"]() == pytest.approx(scale * loss(t, p), rel=1e-7)
    v, g = impl["value_and_grad"]()
    # sklearn gives per-sample gradients of the sum; lossreg those of the mean
    np.testing.assert_allclose(g, scale * loss.grad(t, p) * len(g), rtol=1e-7, atol=1e-10)


def test_peer_table_names_builtin_losses_and_imports_no_peer_library():
    assert set(peers.PEERS) <= set(bench.builtin_names())
    code = ("import sys, lossreg.peers; "
            "print(sorted(m for m in ('torch', 'sklearn') if m in sys.modules))")
    assert run_python(code).strip() == "[]"


def test_progress_bar_writes_to_stderr(capsys):
    bar = bench.Progress(2)
    bar.step("one")
    bar.step("two")
    err = capsys.readouterr().err
    assert "2/2 two" in err and "#" in err


def test_bytes_moved_and_ratios():
    t = np.zeros(10)
    p = np.zeros(10, np.float32)
    assert bench.bytes_moved("value", t, p) == 120
    assert bench.bytes_moved("grad", t, p) == 160
    row = {"lossreg": {"value": 2.0, "grad": 1.0, "value_and_grad": 1.0},
           "ceiling": {"value": 1.0, "grad": 1.0, "value_and_grad": 0.5},
           "numpy": {"value": 4.0}, "torch": {}, "sklearn": {}}
    r = bench.ratios(row)
    assert r["value"]["ceiling"] == 0.5 and r["value"]["numpy"] == 2.0
    assert r["grad"]["torch"] is None
