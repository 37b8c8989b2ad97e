"""lossreg.jax: registered losses under jax.jit / grad / value_and_grad / vmap.

Gradients are compared, in float64 (x64 enabled), with the same losses written in plain
``jax.numpy`` and differentiated by JAX (``JNP`` below, default hyperparameters).
"""

from __future__ import annotations

import numpy as np
import pytest

import lossreg
from lossreg.errors import DomainError, DTypeError, LossError, ShapeError

jax = pytest.importorskip("jax")
lj = pytest.importorskip("lossreg.jax")
jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
from jax.scipy.special import xlogy  # noqa: E402


def _rows_mean(terms):
    return jnp.mean(jnp.sum(terms, axis=-1))


def _focal_terms(y, logp, log1mp, alpha=0.25, gamma=2.0):
    """torchvision's alpha_t (1 - p_t)^gamma BCE (lossreg's default form)."""
    p, q = jnp.exp(logp), jnp.exp(log1mp)
    m = y * q + (1 - y) * p                       # 1 - p_t
    a_t = alpha * y + (1 - alpha) * (1 - y)
    return -a_t * m ** gamma * (y * logp + (1 - y) * log1mp)


def _tweedie(t, m, p=1.5):
    return 2 * (t ** (2 - p) / ((1 - p) * (2 - p)) - t * m ** (1 - p) / (1 - p)
                + m ** (2 - p) / (2 - p))


def _hinge(t, s, power=1):
    return jnp.mean(jnp.maximum(1 - jnp.where(t > 0, 1.0, -1.0) * s, 0) ** power)


def _multi_margin(t, x, margin=1.0):
    """PyTorch's MultiMarginLoss (p = 1) averaged over probability-row targets."""
    c = x.shape[-1]
    z = jnp.maximum(margin - x[..., :, None] + x[..., None, :], 0) * (1 - jnp.eye(c))
    return jnp.mean(jnp.sum(t * z.sum(-1), axis=-1) / c)


JNP = {
    "mse": lambda t, p: jnp.mean((p - t) ** 2),
    "rmse": lambda t, p: jnp.sqrt(jnp.mean((p - t) ** 2)),
    "mae": lambda t, p: jnp.mean(jnp.abs(p - t)),
    "huber": lambda t, p: jnp.mean(jnp.where(jnp.abs(p - t) < 1.0, 0.5 * (p - t) ** 2,
                                             jnp.abs(p - t) - 0.5)),
    "smooth_l1": lambda t, p: jnp.mean(jnp.where(jnp.abs(p - t) < 1.0, 0.5 * (p - t) ** 2,
                                                 jnp.abs(p - t) - 0.5)),
    "binary_cross_entropy": lambda t, p: -jnp.mean(t * jnp.log(p) + (1 - t) * jnp.log1p(-p)),
    "binary_cross_entropy_with_logits": lambda t, z: jnp.mean(
        jnp.maximum(z, 0) - z * t + jnp.log1p(jnp.exp(-jnp.abs(z)))),
    "focal": lambda t, p: jnp.mean(_focal_terms(t, jnp.log(p), jnp.log1p(-p))),
    "sigmoid_focal": lambda t, z: jnp.mean(_focal_terms(t, jax.nn.log_sigmoid(z),
                                                        jax.nn.log_sigmoid(-z))),
    "softmax_cross_entropy": lambda t, z: _rows_mean(-t * jax.nn.log_softmax(z)),
    "cross_entropy": lambda t, q: _rows_mean(-xlogy(t, q)),
    "kl_div": lambda t, q: _rows_mean(xlogy(t, t) - xlogy(t, q)),
    "js_div": lambda t, q: _rows_mean(0.5 * (xlogy(t, t) - xlogy(t, 0.5 * (t + q))
                                             + xlogy(q, q) - xlogy(q, 0.5 * (t + q)))),
    "nll": lambda t, x: _rows_mean(-t * x),
    "poisson_nll": lambda t, x: jnp.mean(jnp.exp(x) - t * x),
    "poisson_deviance": lambda t, m: jnp.mean(2 * (xlogy(t, t) - xlogy(t, m) - t + m)),
    "gamma_deviance": lambda t, m: jnp.mean(2 * (jnp.log(m / t) + t / m - 1)),
    "tweedie_deviance": lambda t, m: jnp.mean(_tweedie(t, m)),
    "cosine_similarity": lambda t, p: -jnp.mean(jnp.sum(t * p, -1) / (
        jnp.linalg.norm(t, axis=-1) * jnp.linalg.norm(p, axis=-1))),
    "dice": lambda t, p: jnp.mean(1 - 2 * jnp.sum(t * p, -1) / (
        jnp.sum(t, -1) + jnp.sum(p, -1) + 1e-7)),
    "tversky": lambda t, p: jnp.mean(1 - jnp.sum(t * p, -1) / (
        jnp.sum(t * p, -1) + 0.5 * jnp.sum(t * (1 - p), -1) + 0.5 * jnp.sum(p * (1 - t), -1)
        + 1e-7)),
    "hinge": _hinge,
    "squared_hinge": lambda t, s: _hinge(t, s, 2),
    "categorical_hinge": lambda t, s: jnp.mean(jnp.maximum(
        jnp.max((1 - t) * s, axis=-1) - jnp.sum(t * s, axis=-1) + 1, 0)),
    "multi_margin": _multi_margin,
}


def sample(name, n=16, dtype=np.float64, seed=11):
    t, p = lossreg.spec(name).sample(np.random.default_rng(seed), n=n, dtype=dtype)
    return jnp.asarray(t), jnp.asarray(p)


def rel(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


def test_every_builtin_loss_has_a_jnp_reference():
    assert lossreg.Registry(entry_points=False).names() == sorted(JNP)


@pytest.mark.parametrize("name", sorted(JNP))
def test_value_and_grad_agree_with_jax_numpy(name):
    t, p = sample(name)
    f = lj.function(name)
    value, grad = jax.value_and_grad(lambda x: f(t, x))(p)
    ref_value, ref_grad = jax.value_and_grad(lambda x: JNP[name](t, x))(p)
    assert value.dtype == jnp.float64 and grad.shape == p.shape
    assert rel(value, ref_value) <= 1e-10
    assert rel(grad, ref_grad) <= 1e-10
    jitted = jax.jit(jax.value_and_grad(lambda x: f(t, x)))(p)
    assert rel(jitted[0], ref_value) <= 1e-10 and rel(jitted[1], ref_grad) <= 1e-10
    assert rel(jax.grad(lambda x: f(t, x))(p), ref_grad) <= 1e-10


def test_softmax_int_labels_sample_weight_and_none():
    rng = np.random.default_rng(0)
    labels = jnp.asarray(rng.integers(0, 4, 8))
    z = jnp.asarray(rng.normal(size=(8, 4)))
    w = jnp.asarray(rng.uniform(0.5, 2.0, 8))

    def ref(x):
        terms = -jnp.take_along_axis(jax.nn.log_softmax(x), labels[:, None], axis=1)[:, 0]
        return jnp.sum(w * terms) / jnp.sum(w)

    f = lj.function("softmax_cross_entropy")
    assert rel(jax.grad(lambda x: f(labels, x, w))(z), jax.grad(ref)(z)) <= 1e-10
    per_row = lj.function("softmax", reduction="none")
    ct = jnp.asarray(rng.normal(size=8))
    _, vjp = jax.vjp(lambda x: per_row(labels, x), z)
    _, ref_vjp = jax.vjp(lambda x: -jnp.take_along_axis(jax.nn.log_softmax(x), labels[:, None],
                                                        axis=1)[:, 0], z)
    assert rel(vjp(ct)[0], ref_vjp(ct)[0]) <= 1e-10


def test_vmap_sequential_and_broadcast():
    rng = np.random.default_rng(1)
    t = jnp.asarray(rng.normal(size=(3, 5)))
    p = jnp.asarray(rng.normal(size=(3, 5)))
    per_batch = jax.vmap(lj.function("huber", delta=0.5))(t, p)      # one mean per member
    expected = [float(lossreg.get("huber", delta=0.5)(np.asarray(t[i]), np.asarray(p[i])))
                for i in range(3)]
    np.testing.assert_allclose(per_batch, expected, rtol=1e-14)
    grads = jax.vmap(jax.grad(lambda a, b: lj.function("mse")(a, b), argnums=1))(t, p)
    np.testing.assert_allclose(grads, 2 * (p - t) / 5, rtol=1e-14)
    none = jax.jit(jax.vmap(lj.function("mae", reduction="none")))(t, p)
    np.testing.assert_allclose(none, np.abs(p - t), rtol=1e-14)


def test_float32_and_configs():
    t, p = sample("huber", dtype=np.float32)
    value, grad = jax.value_and_grad(lambda x: lj.function({"name": "huber", "delta": 0.5})(t, x))(p)
    assert value.dtype == jnp.float32 and grad.dtype == jnp.float32
    ws = lj.function({"terms": [{"name": "mse", "weight": 1.0}, {"name": "mae", "weight": 0.1}]})
    t, p = sample("mse")
    ref = jax.grad(lambda x: JNP["mse"](t, x) + 0.1 * JNP["mae"](t, x))(p)
    assert rel(jax.grad(lambda x: ws(t, x))(p), ref) <= 1e-10


def test_bad_input_raises_typed_errors_eagerly_and_never_nan_under_jit():
    f = lj.function("bce")
    t = jnp.asarray([0.0, 1.0, 1.0])
    bad = jnp.asarray([0.5, 1.5, 0.2])
    with pytest.raises(DomainError, match=r"y_pred must be in \[0, 1\]"):
        f(t, bad)
    with pytest.raises(DomainError):
        jax.grad(lambda x: f(t, x))(bad)
    with pytest.raises(Exception, match="DomainError") as info:
        jax.block_until_ready(jax.jit(lambda x: f(t, x))(bad))
    assert not isinstance(info.value, DomainError)            # JAX's wrapper under jit
    with pytest.raises(DTypeError, match="mixed dtypes"):
        f(t.astype(jnp.float32), bad)
    with pytest.raises(DTypeError, match="float32 or float64"):
        f(t, jnp.asarray([1, 0, 1]))
    with pytest.raises(ShapeError):
        f(t, jnp.asarray([0.5, 0.5]))


SECOND_ORDER = [n for n in sorted(JNP) if lossreg.spec(n).layout == "elementwise"
                and lossreg.spec(n).outer is None]


@pytest.mark.parametrize("name", SECOND_ORDER)
def test_hessian_and_jvp_agree_with_jax_numpy(name):
    t, p = sample(name, n=6)
    f = lj.function(name)
    h = jax.hessian(lambda x: f(t, x))(p)
    ref = jax.hessian(lambda x: JNP[name](t, x))(p)
    assert rel(h, ref) <= 1e-10
    v = jnp.asarray(np.random.default_rng(2).normal(size=p.shape))
    _, tangent = jax.jit(lambda x, d: jax.jvp(lambda q: f(t, q), (x,), (d,)))(p, v)
    _, ref_tangent = jax.jvp(lambda q: JNP[name](t, q), (p,), (v,))
    assert rel(tangent, ref_tangent) <= 1e-10
    per = lj.function(name, reduction="none")
    per_ref = jax.vmap(lambda a, b: JNP[name](a[None], b[None]))       # one element's loss
    assert rel(jax.jacfwd(lambda x: per(t, x))(p), jax.jacfwd(lambda x: per_ref(t, x))(p)) <= 1e-10


@pytest.mark.parametrize("name", [n for n in sorted(JNP) if n not in SECOND_ORDER])
def test_second_derivatives_of_non_diagonal_hessians_are_refused(name):
    t, p = sample(name, n=4)
    f = lj.function(name)
    assert jax.grad(lambda x: f(t, x))(p).shape == p.shape          # first order works
    with pytest.raises(LossError, match="cannot differentiate the gradient") as info:
        jax.hessian(lambda x: f(t, x))(p)
    assert "\n" not in str(info.value)


def test_grad_is_one_fused_pass():
    t, p = sample("huber")
    f = lj.function("huber")
    calls = []
    vg = f.loss.value_and_grad
    f.loss.value_and_grad = lambda *a, **k: calls.append("value_and_grad") or vg(*a, **k)
    jax.value_and_grad(lambda x: f(t, x))(p)
    jax.jit(jax.grad(lambda x: f(t, x)))(p)
    assert calls == ["value_and_grad", "value_and_grad"]


def test_plugin_specs_with_and_without_a_hessian_kernel():
    from .test_hessian import _plain_spec, _quartic_hessian

    t = jnp.zeros(4)
    p = jnp.asarray([0.5, -1.0, 2.0, 0.1])
    plain = lj.function(lossreg.Loss(_plain_spec("quartic_plain")))
    assert rel(jax.grad(lambda x: plain(t, x))(p), p ** 3) <= 1e-14
    with pytest.raises(LossError, match="'quartic_plain'.*no Hessian"):
        jax.hessian(lambda x: plain(t, x))(p)
    full = lj.function(lossreg.Loss(_plain_spec("quartic", hessian=_quartic_hessian)))
    assert rel(jax.hessian(lambda x: full(t, x))(p), jnp.diag(3 * p ** 2)) <= 1e-14



def test_callbacks_hand_lossreg_writable_arrays(monkeypatch):
    """JAX's callback arrays are read-only; the bridge copies them, so its calls run the
    kernels NumPy input runs (no read-only variant of every kernel compiled and cached)."""
    loss = lossreg.get("huber")
    seen = []
    original = type(loss).value_and_grad

    def spy(self, t, p, *args, **kwargs):
        seen.append((t.flags.writeable, p.flags.writeable))
        return original(self, t, p, *args, **kwargs)

    monkeypatch.setattr(type(loss), "value_and_grad", spy)
    t, p = sample("huber")
    assert not np.asarray(p).flags.writeable         # what JAX hands a callback
    value, grad = jax.value_and_grad(lambda x: lj.function(loss)(t, x))(p)
    assert seen == [(True, True)]
    assert rel(grad, loss.grad(np.array(t), np.array(p))) <= 1e-12
