"""Losses and options people migrating from torch.nn, keras.losses and scikit-learn look up
(issue 20): hyperparameter variants and origin-specific semantics, on few kernels.

The all-loss parametrizations (conformance, bad input, Hessians, bridges) pick the new
losses up by themselves; agreement sweeps against torch for the probabilistic family live
in test_torch_agreement.py and test_hessian.py. This file checks what those do not: the
variants chosen by a hyperparameter, formulas re-implemented from the origin's docs, and
the errors the origin raises. Inputs are small (serial kernels), float64 unless a test
is about float32, so each test compiles few kernels.
"""

from __future__ import annotations

import numpy as np
import pytest

import lossreg
from lossreg.errors import HyperparameterError

RNG = np.random.default_rng(20)


# -- focal, sigmoid_focal: torchvision's form by default ---------------------------------------

def _torchvision_focal(y, p, alpha, gamma):
    """torchvision.ops.sigmoid_focal_loss's body on probabilities (numpy, from its docs)."""
    with np.errstate(divide="ignore"):
        ce = -(y * np.maximum(np.log(p), -100) + (1 - y) * np.maximum(np.log1p(-p), -100))
    p_t = p * y + (1 - p) * (1 - y)
    a_t = 1.0 if alpha is None else alpha * y + (1 - alpha) * (1 - y)
    return a_t * ce * (1 - p_t) ** gamma


def test_focal_default_is_torchvision_form_for_soft_targets():
    y = RNG.uniform(0, 1, 64)              # soft targets, e.g. after label smoothing
    p = RNG.uniform(0.01, 0.99, 64)
    z = np.log(p / (1 - p))
    for alpha, gamma in ((0.25, 2.0), (None, 1.0), (0.7, 0.0)):
        want = _torchvision_focal(y, p, alpha, gamma)
        got = lossreg.get("focal", alpha=alpha, gamma=gamma, reduction="none")(y, p)
        np.testing.assert_allclose(got, want, rtol=1e-12)
        got = lossreg.get("sigmoid_focal", alpha=alpha, gamma=gamma, reduction="none")(y, z)
        np.testing.assert_allclose(got, want, rtol=1e-9)


def test_focal_split_terms_keeps_the_article_form_and_agrees_on_hard_labels():
    y, p = RNG.uniform(0, 1, 32), RNG.uniform(0.01, 0.99, 32)
    split = lossreg.get("focal", split_terms=True, reduction="none")
    want = -(0.25 * y * (1 - p) ** 2 * np.log(p) + 0.75 * (1 - y) * p ** 2 * np.log1p(-p))
    np.testing.assert_allclose(split(y, p), want, rtol=1e-13)
    default = lossreg.get("focal", reduction="none")
    assert not np.allclose(default(y, p), split(y, p))           # soft targets: differ
    hard = np.round(y)
    np.testing.assert_allclose(default(hard, p), split(hard, p), rtol=1e-13)
    assert lossreg.get("focal").hyperparameters["split_terms"] is False


def test_focal_split_terms_agrees_with_torch_autograd():
    torch = pytest.importorskip("torch")
    from lossreg.peers import PEERS

    y = np.concatenate([RNG.uniform(0, 1, 40), [0.0, 1.0, 0.3]])
    p = np.concatenate([RNG.uniform(0.01, 0.99, 40), [1e-9, 1 - 1e-9, 0.5]])
    for gamma in (0.5, 2.0):
        loss = lossreg.get("focal", gamma=gamma, split_terms=True, reduction="none")
        value, grad = loss.value_and_grad(y, p)
        pt = torch.tensor(p, requires_grad=True)
        ref = PEERS["focal"].torch(torch.from_numpy(y), pt, "none", gamma=gamma,
                                   split_terms=True)
        ref.sum().backward()
        np.testing.assert_allclose(value, ref.detach().numpy(), rtol=1e-10)
        np.testing.assert_allclose(grad, pt.grad.numpy(), rtol=1e-10)


# -- softmax_cross_entropy: ignore_index is for labels only -------------------------------------

def test_softmax_ignore_index_with_probability_rows_raises_like_torch():
    z = RNG.normal(size=(5, 3))
    rows = RNG.dirichlet(np.ones(3), size=5)
    loss = lossreg.get("softmax_cross_entropy", ignore_index=1)
    with pytest.raises(HyperparameterError, match="ignore_index=1 applies to integer class"):
        loss(rows, z)
    with pytest.raises(HyperparameterError, match="ignore_index"):
        loss.grad(rows, z)
    assert np.isfinite(loss(np.array([0, 1, 2, 1, 0]), z))     # labels: fine
    torch = pytest.importorskip("torch")
    with pytest.raises(Exception):
        torch.nn.functional.cross_entropy(torch.tensor(z), torch.tensor(rows), ignore_index=1)


# -- kl_div in log space: torch.nn.KLDivLoss(log_target=..., reduction="batchmean") ------------

@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_kl_div_log_inputs_agree_with_torch_kldivloss(dtype):
    torch = pytest.importorskip("torch")
    t = RNG.dirichlet(np.full(6, 0.5), size=30)
    q = RNG.dirichlet(np.full(6, 0.5), size=30) * 0.99 + 0.01 / 6
    tol = 1e-10 if dtype == np.float64 else 1e-5
    for log_pred, log_target in ((True, False), (True, True), (False, True)):
        tt = (np.log(t) if log_target else t).astype(dtype)
        qq = (np.log(q) if log_pred else q).astype(dtype)
        loss = lossreg.get("kl_div", log_pred=log_pred, log_target=log_target)
        value, grad = loss.value_and_grad(tt, qq)
        hess = loss.hessian(tt, qq)
        x = torch.tensor(qq, dtype=torch.float64, requires_grad=True)
        ref = torch.nn.KLDivLoss(reduction="batchmean", log_target=log_target)(
            x if log_pred else x.log(), torch.tensor(tt, dtype=torch.float64))
        (g,) = torch.autograd.grad(ref, x, create_graph=True)
        h = (torch.autograd.grad(g.sum(), x)[0].numpy() if g.requires_grad
             else np.zeros_like(qq))           # linear in log-probabilities: no graph
        assert value == pytest.approx(ref.item(), rel=tol)
        np.testing.assert_allclose(grad, g.detach().numpy(), rtol=tol,
                                   atol=tol * np.abs(g.detach().numpy()).max())
        np.testing.assert_allclose(hess, h, rtol=tol, atol=tol * np.abs(h).max())


def test_kl_div_log_domains_and_eps():
    t = RNG.dirichlet(np.ones(4), size=3)
    lossreg.get("kl_div", log_target=True)(np.log(t), t)                  # fine
    with pytest.raises(lossreg.DomainError, match="y_pred must be in"):
        lossreg.get("kl_div", log_pred=True)(t, t)                         # not logs
    with pytest.raises(lossreg.DomainError, match="y_true must be in"):
        lossreg.get("kl_div")(np.log(t), t)                                # logs, not asked
    with pytest.raises(HyperparameterError, match="eps"):
        lossreg.get("kl_div", log_pred=True, eps=1e-3)
    log_t = np.log(t)
    log_t[0] = [-np.inf, np.log(1 / 3), np.log(1 / 3), np.log(1 / 3)]   # log 0: a term of 0
    v = lossreg.get("kl_div", log_pred=True, log_target=True, reduction="none")(
        log_t, np.log(np.full((3, 4), 0.25)))
    assert np.all(np.isfinite(v)) and v[0] == pytest.approx(np.log(4 / 3), rel=1e-12)


# -- nll: torch.nn.functional.nll_loss -----------------------------------------------------------

NLL_HYPERS = [{}, {"class_weight": "random"}, {"ignore_index": 2},
              {"class_weight": "random", "ignore_index": 0}]


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_nll_agrees_with_torch_nll_loss(dtype):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    x = np.log(RNG.dirichlet(np.full(5, 0.5), size=40) * 0.999 + 0.0002).astype(dtype)
    x[0, 1] = -1e4                                   # a tiny probability
    y = RNG.integers(0, 5, 40)
    tol = 1e-10 if dtype == np.float64 else 1e-5
    for hyper in NLL_HYPERS:
        hyper = dict(hyper)
        kw = {}
        if hyper.get("class_weight") == "random":
            hyper["class_weight"] = RNG.uniform(0.1, 3.0, 5).tolist()
            kw["weight"] = torch.tensor(hyper["class_weight"], dtype=torch.float64)
        if "ignore_index" in hyper:
            kw["ignore_index"] = hyper["ignore_index"]
        for reduction in ("mean", "sum", "none"):
            loss = lossreg.get("nll_loss", reduction=reduction, **hyper)
            value, grad = loss.value_and_grad(y, x)
            xt = torch.tensor(x, dtype=torch.float64, requires_grad=True)
            ref = F.nll_loss(xt, torch.tensor(y), reduction=reduction, **kw)
            (ref.sum() if reduction == "none" else ref).backward()
            np.testing.assert_allclose(value, ref.detach().numpy(), rtol=tol)
            np.testing.assert_allclose(grad, xt.grad.numpy(), rtol=tol, atol=0)
        assert not np.any(lossreg.get("nll", **hyper).hessian(y, x))   # linear: torch's
        #                                                 double backward has no graph


def test_nll_bad_labels_and_soft_rows():
    x = np.log(np.full((3, 4), 0.25))
    with pytest.raises(lossreg.DomainError, match=r"\[0, 4\)"):
        lossreg.get("nll")(np.array([0, 4, 1]), x)
    with pytest.raises(lossreg.DomainError, match="y_pred"):
        lossreg.get("nll")(np.array([0, 1, 1]), -x)                   # not log-probabilities
    with pytest.raises(HyperparameterError, match="ignore_index"):
        lossreg.get("nll", ignore_index=0)(np.full((3, 4), 0.25), x)
    with pytest.raises(lossreg.ShapeError, match="class_weight"):
        lossreg.get("nll", class_weight=[1.0, 2.0])(np.array([0, 1, 1]), x)
    t = RNG.dirichlet(np.ones(4), size=3)                              # soft rows: CE on logs
    assert lossreg.get("nll")(t, x) == pytest.approx(np.log(4), rel=1e-14)



def test_nll_large_summed_call_sums_in_its_pass_with_the_same_bits():
    """From FUSED_SUM_ROWS rows a summed parallel call adds each reduce chunk in the
    kernels' pass: the same total as the per-row values summed apart, and the domains
    it checks in that pass reported at their first index (y_true before y_pred)."""
    from lossreg.kernels import reduce as R
    from lossreg.losses.nll import FUSED_SUM_ROWS

    n = FUSED_SUM_ROWS + 5
    rng = np.random.default_rng(3)
    x = np.log(rng.dirichlet(np.ones(2), size=n))
    y = rng.integers(0, 2, n)
    w = rng.random(n)
    for t in (y, rng.dirichlet(np.ones(2), size=n)):
        rows = lossreg.get("nll", reduction="none")(t, x)
        for weights in (None, w):
            total = lossreg.get("nll", reduction="sum").value_and_grad(
                t, x, sample_weight=weights)[0]
            assert total == R.weighted_sum(rows, np.empty(0) if weights is None else weights, 1)
        bad = x.copy()
        bad[n - 2, 1] = 0.5
        with pytest.raises(lossreg.DomainError, match="y_pred") as info:
            lossreg.get("nll", reduction="sum")(t, bad)
        assert info.value.index == 2 * n - 3
    soft = rng.dirichlet(np.ones(2), size=n)
    soft[n - 1, 0] = -0.25
    with pytest.raises(lossreg.DomainError, match="y_true") as info:
        lossreg.get("nll", reduction="sum")(soft, bad)
    assert info.value.index == 2 * n - 2

# -- glm: poisson_nll (torch), the deviances (scikit-learn) --------------------------------------

def _counts(n=60):
    y = RNG.poisson(3.0, n).astype(np.float64)
    return y, RNG.gamma(2.0, 1.5, n) + 0.05


def _torch_deviance(y, m, p, torch):
    """scikit-learn's _mean_tweedie_deviance, written in torch (for autograd)."""
    if p == 0:
        return (y - m) ** 2
    if p == 1:
        return 2 * (torch.where(y > 0, y * torch.log(torch.where(y > 0, y, 1.0) / m), 0.0)
                    - y + m)
    if p == 2:
        return 2 * (torch.log(m / y) + y / m - 1)
    return 2 * (torch.clamp(y, min=0) ** (2 - p) / ((1 - p) * (2 - p))
                - y * m ** (1 - p) / (1 - p) + m ** (2 - p) / (2 - p))


DEVIANCES = [("poisson_deviance", {}, 1.0), ("gamma_deviance", {}, 2.0)] + [
    ("tweedie_deviance", {"power": p}, p) for p in (-1.0, 0.0, 1.0, 1.5, 2.0, 3.0)]


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_deviances_agree_with_sklearn_and_autograd(dtype):
    torch = pytest.importorskip("torch")
    metrics = pytest.importorskip("sklearn.metrics")
    y, mu = _counts()
    tol = 1e-10 if dtype == np.float64 else 1e-5
    for name, hyper, p in DEVIANCES:
        yy = y + 0.5 if p >= 2 else (y - 2.0 if p <= 0 else y)     # each power's domain
        yy, m = yy.astype(dtype), mu.astype(dtype)
        want = metrics.mean_tweedie_deviance(yy.astype(np.float64), m.astype(np.float64),
                                             power=p)
        for log_input in (False, True):
            x = np.log(m.astype(np.float64)).astype(dtype) if log_input else m
            loss = lossreg.get(name, log_input=log_input, **hyper)
            value, grad = loss.value_and_grad(yy, x)
            hess = loss.hessian(yy, x)
            if not log_input:
                assert value == pytest.approx(want, rel=tol), (name, p)
            xt = torch.tensor(x, dtype=torch.float64, requires_grad=True)
            ref = _torch_deviance(torch.tensor(yy, dtype=torch.float64),
                                  torch.exp(xt) if log_input else xt, p, torch).mean()
            (g,) = torch.autograd.grad(ref, xt, create_graph=True)
            (h,) = torch.autograd.grad(g.sum(), xt)
            assert value == pytest.approx(ref.item(), rel=tol), (name, p, log_input)
            np.testing.assert_allclose(grad, g.detach().numpy(), rtol=tol,
                                       atol=tol * np.abs(grad).max())
            np.testing.assert_allclose(hess, h.numpy(), rtol=tol, atol=tol * np.abs(hess).max())
    assert lossreg.get("poisson_deviance")(y, mu) == pytest.approx(
        metrics.mean_poisson_deviance(y, mu), rel=1e-12)
    assert lossreg.get("gamma_deviance")(y + 1, mu) == pytest.approx(
        metrics.mean_gamma_deviance(y + 1, mu), rel=1e-12)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_poisson_nll_agrees_with_torch(dtype):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    y, mu = _counts()
    y[:3] = [0.0, 1.0, 40.0]                  # Stirling's term is added only for y > 1
    tol = 1e-10 if dtype == np.float64 else 1e-5
    for log_input in (True, False):
        for full in (False, True):
            for eps in (1e-8, 0.5):
                x = (np.log(mu) if log_input else mu).astype(dtype)
                yy = y.astype(dtype)
                loss = lossreg.get("poisson_nll_loss", log_input=log_input, full=full, eps=eps)
                value, grad = loss.value_and_grad(yy, x)
                hess = loss.hessian(yy, x)
                xt = torch.tensor(x, dtype=torch.float64, requires_grad=True)
                ref = F.poisson_nll_loss(xt, torch.tensor(yy, dtype=torch.float64),
                                         log_input=log_input, full=full, eps=eps)
                (g,) = torch.autograd.grad(ref, xt, create_graph=True)
                (h,) = torch.autograd.grad(g.sum(), xt)
                assert value == pytest.approx(ref.item(), rel=tol)
                np.testing.assert_allclose(grad, g.detach().numpy(), rtol=tol,
                                           atol=tol * np.abs(grad).max())
                np.testing.assert_allclose(hess, h.numpy(), rtol=tol,
                                           atol=tol * np.abs(hess).max())


def test_glm_domains_follow_power_and_link():
    one, zero = np.ones(3), np.zeros(3)
    with pytest.raises(HyperparameterError, match=r"power must be in \(-inf, 0\] or \[1, inf\)"):
        lossreg.get("tweedie_deviance", power=0.5)
    cases = [("gamma_deviance", {}, zero, one, "y_true"),            # y > 0
             ("poisson_deviance", {}, -one, one, "y_true"),          # y >= 0
             ("poisson_deviance", {}, one, zero, "y_pred"),          # mu > 0
             ("tweedie_deviance", {"power": 3.0}, zero, one, "y_true"),
             ("tweedie_deviance", {"power": 1.5}, one, -one, "y_pred"),
             ("poisson_nll", {"log_input": False}, one, -one, "y_pred")]
    for name, hyper, y, x, argument in cases:
        with pytest.raises(lossreg.DomainError) as err:
            lossreg.get(name, **hyper)(y, x)
        assert err.value.argument == argument and err.value.index == 0, (name, hyper)
    # what the domains allow: power < 0 any y; power 0 any mu; the log link any eta
    assert np.isfinite(lossreg.get("tweedie_deviance", power=-1.0)(-one, one))
    assert np.isfinite(lossreg.get("tweedie_deviance", power=0.0)(-one, -one))
    assert np.isfinite(lossreg.get("gamma_deviance", log_input=True)(one, -one))
    assert np.isfinite(lossreg.get("poisson_nll")(zero, -one))


def test_glm_extremes_are_finite():
    y = np.array([0.0, 1e-300, 1.0, 1e6, 1e300])
    for name, hyper, lo in (("poisson_deviance", {}, 0), ("tweedie_deviance", {}, 0),
                            ("gamma_deviance", {}, 1), ("poisson_nll", {}, 0)):
        yy = y[lo:]
        for x in (np.full(yy.size, 1e-8), np.full(yy.size, 3.0)):
            loss = lossreg.get(name, reduction="none", **hyper)
            v, g = loss.value_and_grad(yy, x)
            h = loss.hessian(yy, x)
            assert np.all(np.isfinite(v) | (v == np.inf)) and not np.any(np.isnan(g)), name
            assert not np.any(np.isnan(h)), name


def test_dask_uses_the_domains_and_kernels_of_the_hyperparameters():
    """lossreg.dask checks the configured domains (kl_div log_pred) and runs FormKernels."""
    da = pytest.importorskip("dask.array")
    import lossreg.dask as ld

    for name, hyper in (("kl_div", {"log_pred": True}), ("focal", {"split_terms": True})):
        t, p = lossreg.spec(name).sample(np.random.default_rng(1), 64, **hyper)
        loss = lossreg.get(name, **hyper)
        got = ld.evaluate(loss, da.from_array(t, chunks=(16,) + t.shape[1:]),
                          da.from_array(p, chunks=(16,) + p.shape[1:]), compute=True)
        assert got == loss(t, p)
