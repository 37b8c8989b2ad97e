"""lossreg.torch: every registered loss inside PyTorch autograd.

References are PyTorch itself: ``torch.autograd.gradcheck``/``gradgradcheck`` (finite
differences of our forward against our backward), the torch counterparts of the built-in
losses in ``lossreg.peers`` (values, gradients and Hessians by autograd), and
``nn.HuberLoss`` for a training run.
"""

from __future__ import annotations

import numpy as np
import pytest

import lossreg
from lossreg.errors import DomainError, DTypeError, HyperparameterError, LossError
from lossreg.peers import PEERS

from .conftest import ALL_NAMES

torch = pytest.importorskip("torch")
lt = pytest.importorskip("lossreg.torch")

SEED = 1234


def sample(name, n=6, dtype=np.float64, seed=SEED):
    spec = lossreg.spec(name)
    t, p = spec.sample(np.random.default_rng(seed), n=n, dtype=dtype)
    tt = torch.from_numpy(np.ascontiguousarray(t))
    return spec, tt, torch.tensor(p, requires_grad=True)


def close(ours, ref, tol=1e-10) -> bool:
    """max|ours - ref| <= tol * max|ref| (the inf-norm relative error of the agreement tests)."""
    scale = max(float(ref.detach().abs().max()), 1e-300)
    return float((ours.detach() - ref.detach()).abs().max()) <= tol * scale


def elementwise_with_hessian(name) -> bool:
    s = lossreg.spec(name)
    return s.layout == "elementwise" and s.outer is None and s.has_hessian


SECOND_ORDER = [n for n in ALL_NAMES if elementwise_with_hessian(n)]
NOT_SECOND_ORDER = [n for n in ALL_NAMES if not elementwise_with_hessian(n)]


# -- first order: gradcheck for every registered loss --------------------------------------------

@pytest.mark.parametrize("name", ALL_NAMES)
def test_gradcheck_every_registered_loss(name):
    spec, t, p = sample(name)
    for reduction in spec.reductions:
        f = lt.function(name, reduction=reduction)
        assert torch.autograd.gradcheck(lambda x: f(t, x), (p,)), (name, reduction)


@pytest.mark.parametrize("name", ALL_NAMES)
def test_gradcheck_with_sample_weight(name):
    spec, t, p = sample(name)
    n_terms = p.shape[0]
    w = torch.from_numpy(np.random.default_rng(7).uniform(0.5, 2.0, n_terms))
    f = lt.function(name)
    assert torch.autograd.gradcheck(lambda x: f(t, x, w), (p,))


def test_gradcheck_softmax_with_int64_labels():
    spec = lossreg.spec("softmax_cross_entropy")
    rng = np.random.default_rng(3)
    labels = torch.from_numpy(rng.integers(0, 4, 5)).to(torch.int64)
    z = torch.tensor(rng.normal(size=(5, 4)), requires_grad=True)
    for reduction in spec.reductions:
        f = lt.function("softmax", reduction=reduction, label_smoothing=0.1)
        assert torch.autograd.gradcheck(lambda x: f(labels, x), (z,))
    value = lt.function("softmax")(labels, z)
    value.backward()
    ref = z.detach().clone().requires_grad_(True)
    torch.nn.functional.cross_entropy(ref, labels).backward()
    assert torch.allclose(value, torch.nn.functional.cross_entropy(ref, labels), rtol=1e-12)
    assert torch.allclose(z.grad, ref.grad, rtol=1e-10, atol=1e-15)


# -- against the torch counterparts ----------------------------------------------------------------

@pytest.mark.parametrize("name", [n for n in ALL_NAMES if n in PEERS])
def test_values_and_none_backward_match_torch(name):
    """Value, and the backward of reduction='none' with a random grad_output per term."""
    spec, t, p = sample(name, n=7)
    peer = PEERS[name].torch
    for reduction in spec.reductions:
        ours = lt.function(name, reduction=reduction)(t, p)
        x = p.detach().clone().requires_grad_(True)
        ref = peer(t, x, reduction)
        assert ours.shape == ref.shape and ours.dtype == ref.dtype
        assert close(ours, ref), (name, reduction)
        go = torch.from_numpy(np.random.default_rng(1).normal(size=tuple(ref.shape)))
        (g_ours,) = torch.autograd.grad(ours, p, go)
        (g_ref,) = torch.autograd.grad(ref, x, go)
        assert close(g_ours, g_ref), (name, reduction)


@pytest.mark.parametrize("name", ["mse", "huber", "binary_cross_entropy_with_logits",
                                  "softmax_cross_entropy"])
def test_sample_weight_tensor_matches_weighted_torch(name):
    spec, t, p = sample(name, n=9)
    w = torch.from_numpy(np.random.default_rng(2).uniform(0.0, 3.0, p.shape[0]))
    x = p.detach().clone().requires_grad_(True)
    terms = PEERS[name].torch(t, x, "none")
    for reduction, ref in (("mean", (w * terms).sum() / w.sum()), ("sum", (w * terms).sum())):
        ours = lt.function(name, reduction=reduction)(t, p, w)
        assert close(ours, ref)
        (g1,) = torch.autograd.grad(ours, p)
        (g2,) = torch.autograd.grad(ref, x, retain_graph=True)
        assert close(g1, g2)


def test_float32_and_non_contiguous_inputs():
    rng = np.random.default_rng(5)
    base = torch.from_numpy(rng.normal(size=(4, 6)).astype(np.float32))
    target = torch.from_numpy(rng.normal(size=(6, 4)).astype(np.float32)).T   # non-contiguous
    pred = base.clone().requires_grad_(True)
    value = lt.Loss("huber", delta=0.5)(target, pred)
    value.backward()
    ref_pred = base.clone().requires_grad_(True)
    ref = torch.nn.functional.huber_loss(ref_pred, target.contiguous(), delta=0.5)
    ref.backward()
    assert value.dtype == torch.float32 and pred.grad.dtype == torch.float32
    assert torch.allclose(value, ref, rtol=1e-5) and torch.allclose(pred.grad, ref_pred.grad,
                                                                    rtol=1e-5, atol=1e-7)
    strided = torch.from_numpy(rng.normal(size=(6, 4)).astype(np.float32)).T.requires_grad_(True)
    assert not strided.is_contiguous() and not target.is_contiguous()
    lt.Loss("mse")(target, strided).backward()
    assert torch.allclose(strided.grad, 2 * (strided - target).detach() / 24, rtol=1e-6)


def test_conversion_shares_memory():
    x = torch.arange(6, dtype=torch.float64).reshape(2, 3)
    assert np.shares_memory(lt._prediction(x), x.numpy())
    assert np.shares_memory(lt._as_numpy(x, "y_true", torch.float64), x.numpy())


def test_retain_graph_backward_twice_accumulates():
    spec, t, p = sample("huber", n=5)
    value = lt.function("huber")(t, p)
    value.backward(retain_graph=True)
    g1 = p.grad.clone()
    value.backward(retain_graph=True)
    value.backward()
    assert torch.allclose(p.grad, 3 * g1, rtol=1e-14)


def test_in_place_change_before_backward_is_refused():
    spec, t, p = sample("mse", n=4)
    t = t.clone()
    value = lt.function("mse")(t, p)
    t += 1.0                                       # the saved gradient no longer fits
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        value.backward()


def test_mlp_training_follows_nn_huber_loss():
    """200 SGD steps, float64, same seed: per-step values within 1e-6 relative."""
    def train(criterion):
        torch.manual_seed(0)
        X = torch.randn(64, 5, dtype=torch.float64)
        y = X @ torch.randn(5, 1, dtype=torch.float64) + 0.3 * torch.randn(64, 1, dtype=torch.float64)
        y[::7] += 5.0                                                      # a few outliers
        model = torch.nn.Sequential(torch.nn.Linear(5, 16), torch.nn.Tanh(),
                                    torch.nn.Linear(16, 1)).double()
        opt = torch.optim.SGD(model.parameters(), lr=0.05)
        values = []
        for _ in range(200):
            opt.zero_grad()
            loss = criterion(model(X), y)
            loss.backward()
            opt.step()
            values.append(loss.item())
        return np.array(values)

    ours_module = lt.Loss("huber", delta=0.5)
    ours = train(lambda pred, target: ours_module(target, pred))
    ref = train(torch.nn.HuberLoss(delta=0.5))
    assert ours[-1] < 0.8 * ours[0]                                        # it trained
    np.testing.assert_allclose(ours, ref, rtol=1e-6, atol=0)


# -- second order ------------------------------------------------------------------------------

@pytest.mark.parametrize("name", SECOND_ORDER)
def test_gradgradcheck_elementwise(name):
    spec, t, p = sample(name, n=5)
    for reduction in spec.reductions:
        f = lt.function(name, reduction=reduction)
        assert torch.autograd.gradgradcheck(lambda x: f(t, x), (p,)), (name, reduction)


@pytest.mark.parametrize("name", [n for n in SECOND_ORDER if n in PEERS])
def test_functional_hessian_matches_torch(name):
    spec, t, p = sample(name, n=5)
    f = lt.function(name)
    ours = torch.autograd.functional.hessian(lambda x: f(t, x), p.detach())
    ref = torch.autograd.functional.hessian(lambda x: PEERS[name].torch(t, x, "mean"), p.detach())
    assert close(ours, ref, 1e-9)
    assert torch.count_nonzero(ours - torch.diag(torch.diagonal(ours))) == 0


@pytest.mark.parametrize("name", NOT_SECOND_ORDER)
def test_double_backward_without_a_diagonal_hessian_is_a_clear_error(name):
    spec, t, p = sample(name)
    value = lt.function(name)(t, p)
    (g,) = torch.autograd.grad(value, p, create_graph=True)   # first order still works
    assert g.requires_grad
    with pytest.raises(LossError, match="cannot differentiate the gradient") as info:
        torch.autograd.grad(g.sum(), p)
    assert "\n" not in str(info.value)


def test_third_derivative_is_refused():
    spec, t, p = sample("mse", n=3)
    (g,) = torch.autograd.grad(lt.function("mse")(t, p), p, create_graph=True)
    (h,) = torch.autograd.grad(g.sum(), p, create_graph=True)
    with pytest.raises(RuntimeError):
        torch.autograd.grad(h.sum(), p)


# -- bad input -------------------------------------------------------------------------------

def one_line(exc_info):
    assert "\n" not in str(exc_info.value)
    return str(exc_info.value)


def test_bad_inputs_get_one_line_typed_errors():
    f = lt.function("mse")
    p = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    t = torch.zeros(3, dtype=torch.float64)
    with pytest.raises(DTypeError) as e:
        f(p, t.clone().requires_grad_(True))
    assert "(y_true, y_pred)" in one_line(e)
    with pytest.raises(DTypeError) as e:
        f(t.float(), p)
    assert "mixed dtypes" in one_line(e)
    with pytest.raises(DTypeError) as e:
        f(t.half(), p.detach().half())
    assert "float32 or float64" in one_line(e)
    with pytest.raises(DTypeError) as e:
        f(t, torch.zeros(3, dtype=torch.float64, device="meta"))
    assert "run on the CPU" in one_line(e)
    with pytest.raises(DTypeError) as e:
        f(t, p, torch.ones(3, dtype=torch.float64, requires_grad=True))
    assert "sample_weight" in one_line(e)
    with pytest.raises(DTypeError):
        f(t, [0.0, 1.0, 2.0])
    with pytest.raises(DomainError) as e:
        lt.function("bce")(t, torch.full((3,), 1.5, dtype=torch.float64, requires_grad=True))
    assert "y_pred must be in [0, 1]" in one_line(e)
    with pytest.raises(HyperparameterError):
        lt.function(lossreg.get("mse"), delta=1.0)
    with pytest.raises(HyperparameterError):
        lt.Loss(lossreg.get("mse"), reduction="sum")


def test_module_config_and_loss_objects():
    m = lt.Loss({"name": "huber", "delta": 0.5, "reduction": "sum"})
    assert m.reduction == "sum" and "delta=0.5" in repr(m)
    assert lt.Loss(lossreg.get("mae", reduction="none")).reduction == "none"
    ws = lt.Loss({"terms": [{"name": "mse", "weight": 1.0}, {"name": "mae", "weight": 0.1}]})
    t = torch.tensor([0.0, 1.0, 2.0], dtype=torch.float64)
    p = torch.tensor([0.5, 1.0, 3.5], dtype=torch.float64, requires_grad=True)
    value = ws(t, p)
    ref = torch.nn.functional.mse_loss(p, t) + 0.1 * torch.nn.functional.l1_loss(p, t)
    assert torch.allclose(value, ref, rtol=1e-12)
    h = torch.autograd.functional.hessian(lambda x: ws(t, x), p.detach())
    assert torch.allclose(torch.diagonal(h), torch.full((3,), 2.0 / 3.0, dtype=torch.float64))


def test_torch_compile_graph_breaks_and_fullgraph_fails():
    """The loss call is torch.compiler.disable'd: a graph break, eager lossreg kernels;
    values and gradients as without compile; fullgraph=True raises Unsupported."""
    criterion = lt.Loss("huber", delta=0.5)
    lin = torch.nn.Linear(3, 1).double()
    X = torch.randn(8, 3, dtype=torch.float64)
    y = torch.randn(8, 1, dtype=torch.float64)

    def step(X, y):
        return criterion(y, lin(X) * 2.0) * 3.0

    torch._dynamo.reset()
    try:
        value = torch.compile(step, backend="eager")(X, y)
        (g_compiled,) = torch.autograd.grad(value, lin.weight)
        ref = step(X, y)
        (g_ref,) = torch.autograd.grad(ref, lin.weight)
        assert torch.allclose(value, ref, rtol=1e-14) and torch.allclose(g_compiled, g_ref, rtol=1e-14)
        explain = torch._dynamo.explain(step)(X, y)
        assert explain.graph_break_count >= 1
        assert any("torch.compiler.disable" in r.reason for r in explain.break_reasons)
        torch._dynamo.reset()
        with pytest.raises(torch._dynamo.exc.Unsupported, match="torch.compiler.disable"):
            torch.compile(step, backend="eager", fullgraph=True)(X, y)
    finally:
        torch._dynamo.reset()


def test_plugin_specs_with_and_without_a_hessian_kernel():
    from .test_hessian import _plain_spec, _quartic_hessian

    t = torch.zeros(4, dtype=torch.float64)
    p = torch.tensor([0.5, -1.0, 2.0, 0.1], dtype=torch.float64, requires_grad=True)
    plain = lt.function(lossreg.Loss(_plain_spec("quartic_plain")))
    assert torch.autograd.gradcheck(lambda x: plain(t, x), (p,))
    (g,) = torch.autograd.grad(plain(t, p), p, create_graph=True)
    with pytest.raises(LossError, match="'quartic_plain'.*no Hessian"):
        torch.autograd.grad(g.sum(), p)
    full = lt.function(lossreg.Loss(_plain_spec("quartic", hessian=_quartic_hessian)))
    assert torch.autograd.gradgradcheck(lambda x: full(t, x), (p,))
    h = torch.autograd.functional.hessian(lambda x: full(t, x), p.detach())
    assert torch.allclose(h, torch.diag(12 * p.detach() ** 2 / 4), rtol=1e-14)
