"""The conformance kit catches real mistakes and names them.

Each test feeds ``lossreg.testing.check_loss`` a deliberately wrong spec and asserts that
it fails with a message naming the defect; a correct spec built the same way passes, so
the failures come from the defects and not from the scaffolding. Kernels here are serial
``njit`` functions (cheap to compile).
"""

import math
import sys
import types

import numpy as np
import pytest

import lossreg
from lossreg import testing as T
from lossreg.kernels import njit


# -- kernels: a correct squared error, and variants with one defect each ----------------------

@njit
def _sq_forward(y_true, y_pred, out):
    for i in range(y_pred.shape[0]):
        r = np.float64(y_pred[i]) - np.float64(y_true[i])
        out[i] = r * r


@njit
def _sq_gradient(y_true, y_pred, out):
    for i in range(y_pred.shape[0]):
        out[i] = 2.0 * (np.float64(y_pred[i]) - np.float64(y_true[i]))


@njit
def _sq_gradient_half(y_true, y_pred, out):          # forgot the 2 of d(r^2)/dr
    for i in range(y_pred.shape[0]):
        out[i] = np.float64(y_pred[i]) - np.float64(y_true[i])


@njit
def _sq_forward_mean_inside(y_true, y_pred, out):    # reduces inside the kernel
    n = y_pred.shape[0]
    for i in range(n):
        r = np.float64(y_pred[i]) - np.float64(y_true[i])
        out[i] = r * r / n


@njit
def _sq_forward_float32(y_true, y_pred, out):        # float32 arithmetic on float64 input
    for i in range(y_pred.shape[0]):
        r = np.float32(y_pred[i]) - np.float32(y_true[i])
        out[i] = r * r


class _Opaque:
    pass


_OPAQUE = _Opaque()


@njit
def _does_not_compile(y_true, y_pred, out):
    for i in range(y_pred.shape[0]):
        out[i] = _OPAQUE.value(y_pred[i])


def _sq_reference(y_true, y_pred):
    return (np.asarray(y_pred, np.float64) - np.asarray(y_true, np.float64)) ** 2


def spec(name="kit_sq", **fields):
    base = dict(name=name, family="test", task="regression", forward=_sq_forward,
                gradient=_sq_gradient, reference=_sq_reference, summary="Squared error (kit test).",
                formula="r^2", properties={"convex"})
    base.update(fields)
    return lossreg.LossSpec(**base)


def failure(spec_):
    with pytest.raises(T.ConformanceError) as info:
        T.check_loss(spec_)
    return str(info.value)


# -- a correct spec passes --------------------------------------------------------------------

def test_correct_spec_passes():
    report = T.check_loss(spec())
    assert report.ok and len(report.passed) >= 25
    assert {"metadata", "compile"} <= set(report.passed)
    assert any(p.startswith("domain_coverage") for p in report.passed)
    assert any(p.startswith("reductions") for p in report.passed)


# -- deliberate defects --------------------------------------------------------------------------

def test_gradient_off_by_a_factor():
    msg = failure(spec(gradient=_sq_gradient_half))
    assert "FAIL gradient[float64,mean,defaults]" in msg
    assert "off by a constant factor 0.5" in msg
    assert "forward[" not in msg          # the value is right; only the gradient is named


@njit
def _bce_forward(y_true, y_pred, out):
    for i in range(y_pred.shape[0]):
        t, p = np.float64(y_true[i]), np.float64(y_pred[i])
        out[i] = -(t * math.log(p) + (1.0 - t) * math.log(1.0 - p))


@njit
def _bce_gradient(y_true, y_pred, out):
    for i in range(y_pred.shape[0]):
        t, p = np.float64(y_true[i]), np.float64(y_pred[i])
        out[i] = (p - t) / (p * (1.0 - p))


def _bce_reference(y_true, y_pred):
    return -(y_true * np.log(y_pred) + (1 - y_true) * np.log(1 - y_pred))


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
def test_missing_domain_check():
    # Binary cross-entropy whose y_pred domain omits the [0, 1] its reference needs.
    unit = lossreg.Domain(lossreg.Interval(0, 1))
    bad = spec("kit_bce", forward=_bce_forward, gradient=_bce_gradient,
               reference=_bce_reference, domains={"y_true": unit})
    msg = failure(bad)
    assert "missing domain check" in msg and "y_pred in (-inf, inf)" in msg
    # declaring the constraint removes that complaint
    good = spec("kit_bce", forward=_bce_forward, gradient=_bce_gradient,
                reference=_bce_reference,
                domains={"y_true": unit, "y_pred": lossreg.Domain(lossreg.Interval(0.01, 0.99))})
    report = T.check_loss(good, raise_on_failure=False)
    assert report.ok, str(report)


def test_float32_returned_as_float64(monkeypatch):
    # The plan allocates outputs in y_pred's dtype, so a plugin cannot produce this
    # through plain kernels; simulate a wrapper or plan path that upcasts.
    from lossreg.plan import Plan

    real = Plan.run

    def upcasting(self, *args, **kwargs):
        value, grad, hess = real(self, *args, **kwargs)
        if isinstance(value, np.ndarray):
            value = value.astype(np.float64)
        if grad is not None and kwargs.get("out") is None:
            grad = grad.astype(np.float64)
        if hess is not None and kwargs.get("hess_out") is None:
            hess = hess.astype(np.float64)
        return value, grad, hess

    monkeypatch.setattr(Plan, "run", upcasting)
    msg = failure(spec())
    assert "float32 input returned as float64" in msg
    assert "float64 input returned" not in msg


def test_reduction_inside_the_kernel():
    msg = failure(spec(forward=_sq_forward_mean_inside))
    assert "the kernel seems to average over the batch itself" in msg
    assert "FAIL forward[float64,none,defaults]" in msg


def test_outer_with_every_reduction_is_a_metadata_defect():
    msg = failure(spec(outer=(math.sqrt, lambda m: 0.5 / math.sqrt(m) if m > 0 else 0.0)))
    assert "FAIL metadata" in msg and "reduction" in msg and "('mean',)" in msg


def test_kernel_that_fails_to_compile():
    report = T.check_loss(spec(forward=_does_not_compile), raise_on_failure=False)
    (label, why), = report.failed
    assert label == "compile" and "fails to compile" in why and "kit_sq" in why
    assert report.skipped and all(r == "kernels do not compile" for _, r in report.skipped)


def test_float32_arithmetic_on_float64_input():
    msg = failure(spec(forward=_sq_forward_float32))
    assert "float32 arithmetic on float64 input (precision)" in msg


@njit
def _naive_logcosh_forward(y_true, y_pred, out):
    for i in range(y_pred.shape[0]):
        out[i] = math.log(math.cosh(np.float64(y_pred[i]) - np.float64(y_true[i])))


@njit
def _logcosh_gradient(y_true, y_pred, out):
    for i in range(y_pred.shape[0]):
        out[i] = math.tanh(np.float64(y_pred[i]) - np.float64(y_true[i]))


def test_kernel_overflow_where_the_reference_is_finite():
    def reference(y_true, y_pred):
        r = np.asarray(y_pred, np.float64) - np.asarray(y_true, np.float64)
        return np.logaddexp(r, -r) - math.log(2.0)

    msg = failure(spec("kit_logcosh", reference=reference, forward=_naive_logcosh_forward,
                       gradient=_logcosh_gradient))
    assert "numerical stability" in msg and "overflow" in msg
    assert "FAIL forward" not in msg        # ordinary inputs are fine; only huge ones overflow


def test_metadata_missing_fields_are_listed():
    msg = failure(spec(summary="", formula="", properties=()))
    assert "missing summary, formula, properties" in msg


# -- config round-trip ----------------------------------------------------------------------------

def test_config_round_trip_reported_clearly():
    report = T.check_loss(spec(), raise_on_failure=False)
    config_labels = [lab for lab in report.passed + [s for s, _ in report.skipped]
                     if lab.startswith("config")]
    assert config_labels, "the kit must run (or clearly skip) the config round-trip"
    try:
        import lossreg.config  # noqa: F401
    except ImportError:
        assert all("from_config is unavailable" in why for lab, why in report.skipped
                   if lab.startswith("config"))
    else:
        assert all(lab in report.passed for lab in config_labels), str(report)


def test_config_round_trip_catches_a_lossy_from_config(monkeypatch):
    fake = types.ModuleType("lossreg.config")

    def from_config(cfg, registry=None):   # drops every hyperparameter
        return (registry or lossreg.default_registry()).get(cfg["name"],
                                                            reduction=cfg["reduction"])

    fake.from_config = from_config
    monkeypatch.setitem(sys.modules, "lossreg.config", fake)
    with pytest.raises(T.ConformanceError, match=r"config round-trip: .*'delta': 1\.0.*"
                                                 r"expected .*'delta': 0\.5"):
        T.check_config(lossreg.spec("huber"), {"delta": 0.5})
    T.check_config(lossreg.spec("huber"), {})          # defaults survive a lossy rebuild


def test_config_round_trip_of_an_unregistered_spec(monkeypatch):
    fake = types.ModuleType("lossreg.config")

    def from_config(cfg, registry=None):
        cfg = dict(cfg)
        return (registry or lossreg.default_registry()).get(cfg.pop("name"), **cfg)

    fake.from_config = from_config
    monkeypatch.setitem(sys.modules, "lossreg.config", fake)
    T.check_config(spec(), {})            # resolves through a private registry


# -- the pytest helper ----------------------------------------------------------------------------

def test_parametrize_checks_gives_one_param_per_check():
    params = T.parametrize_checks("huber")
    ids = [p.id for p in params]
    assert ids[:2] == ["huber-metadata", "huber-compile"]
    assert "huber-gradient[float32,sum,delta=0.5]" in ids and len(ids) == len(set(ids))
    params[0].values[0]()                 # metadata passes


def test_parametrize_checks_unknown_name_fails_loudly():
    (param,) = T.parametrize_checks("no_such_loss_xyz")
    with pytest.raises(T.ConformanceError, match="is the plugin installed"):
        param.values[0]()


def test_parametrize_checks_skips_what_cannot_run(monkeypatch):
    monkeypatch.setitem(sys.modules, "lossreg.config", None)   # import fails
    (param,) = [p for p in T.parametrize_checks("mse") if p.id == "mse-config[defaults]"]
    with pytest.raises(pytest.skip.Exception, match="from_config is unavailable"):
        param.values[0]()


# -- Hessians ----------------------------------------------------------------------------------

@njit
def _sq_hessian(y_true, y_pred, out):
    for i in range(y_pred.shape[0]):
        out[i] = 2.0


@njit
def _sq_hessian_double(y_true, y_pred, out):         # d2(r^2) taken as 4
    for i in range(y_pred.shape[0]):
        out[i] = 4.0


def _sq_reference_hessian(y_true, y_pred):
    return np.full(np.shape(y_pred), 2.0)


def test_plain_hessian_kernel_passes_and_is_reported():
    report = T.check_loss(spec(hessian=_sq_hessian, reference_hessian=_sq_reference_hessian))
    assert report.ok
    assert {"hessian[float64,mean,defaults]", "hessian[float32,none,defaults]"} <= set(report.passed)


def test_loss_without_hessian_must_raise():
    report = T.check_loss(spec(), raise_on_failure=False)      # plain pair, no hessian=
    assert report.ok and "hessian[float64,sum,defaults]" in report.passed
    assert "hessian" in T.CHECKS


def test_plain_hessian_off_by_a_factor_two():
    msg = failure(spec(hessian=_sq_hessian_double))
    assert "FAIL hessian[float64,mean,defaults]" in msg
    assert "finite differences of the kernel gradient" in msg
    assert "off by a constant factor 2" in msg
    assert "FAIL gradient" not in msg and "FAIL forward" not in msg


@njit
def _huber_elem_double_curvature(t, p, delta):
    r = np.float64(p) - np.float64(t)
    k = min(max(r, -delta), delta)
    return k * (r - 0.5 * k), k, 2.0 * np.float64(abs(r) <= delta)


@njit
def _huber_elem_wrong_sign(t, p, delta):
    r = np.float64(p) - np.float64(t)
    k = min(max(r, -delta), delta)
    return k * (r - 0.5 * k), k, -np.float64(abs(r) <= delta)


def _huber_with(elem):
    import dataclasses

    from lossreg.kernels import elementwise_kernels

    return dataclasses.replace(lossreg.spec("huber"), kernels=elementwise_kernels(elem))


def _hessian_failure(spec_, reduction):
    with pytest.raises(T.ConformanceError) as info:
        T.check_hessian(spec_, np.float64, reduction)
    return str(info.value)


@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_huber_hessian_off_by_a_factor_two(reduction):
    msg = _hessian_failure(_huber_with(_huber_elem_double_curvature), reduction)
    assert f"huber: hessian[float64, {reduction}]" in msg
    assert "hessian() vs finite differences of the kernel gradient" in msg
    assert "off by a constant factor 2" in msg


@pytest.mark.parametrize("reduction", ["sum"])
def test_huber_hessian_with_the_wrong_sign(reduction):
    msg = _hessian_failure(_huber_with(_huber_elem_wrong_sign), reduction)
    assert "hessian" in msg and "sign flipped" in msg


def test_wrong_reference_hessian_is_named():
    import dataclasses

    def doubled(y_true, y_pred, delta=1.0):
        r = np.abs(np.asarray(y_pred, np.float64) - np.asarray(y_true, np.float64))
        return np.where(r <= delta, 2.0, 0.0)

    bad = dataclasses.replace(lossreg.spec("huber"), reference_hessian=doubled)
    msg = _hessian_failure(bad, "mean")
    assert "hessian() vs spec.reference_hessian" in msg and "factor 0.5" in msg
    # float32 compares to the reference too
    with pytest.raises(T.ConformanceError, match=r"hessian\[float32, none\].*reference_hessian"):
        T.check_hessian(bad, np.float32, "none")


def test_fd_hessian_leaves_out_kinks_only():
    """The stencil of an element next to a kink is not trusted; smooth elements are."""
    loss = lossreg.get("huber", reduction="none")
    t = np.zeros(6)
    p = np.array([0.3, 1.0 + 5e-4, 1.0 - 1e-3, -2.0, 1.0, 0.999])   # kinks at |r| = 1
    fd, smooth, _ = T.fd_hessian(loss, t, p)
    assert smooth.tolist() == [True, False, False, True, False, False]
    np.testing.assert_allclose(fd[smooth], [1.0, 0.0], atol=1e-9)
    loss = lossreg.get("mae", reduction="none")
    fd, smooth, _ = T.fd_hessian(loss, t, np.array([0.0, 1e-4, 3.0, -2.0, 0.5, -1e-3]))
    assert smooth.tolist() == [False, False, True, True, True, False]


def test_rmse_reference_hessian_uses_outer():
    spec_ = lossreg.spec("rmse")
    rng = np.random.default_rng(0)
    t, p = spec_.sample(rng, 7)
    w = rng.random(7)
    for sw in (None, w):
        want = T.reference_hessian_value(spec_, t, p, {}, "mean", sw)
        ww = np.ones(7) if sw is None else w
        r, W = p - t, ww.sum()
        m = np.sum(ww * r * r) / W
        exact = (1 - ww * r * r / (W * m)) * ww / (W * np.sqrt(m))   # d2/dp_i2 sqrt(m)
        np.testing.assert_allclose(want, exact, rtol=1e-12)


class _ScaledHessian:
    """Kernels of a registered loss whose Hessian diagonal is multiplied by ``factor``
    (everything else delegated): a defect in any layout without compiling anything."""

    def __init__(self, inner, factor):
        self.inner, self.factor = inner, factor

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def run(self, job):
        outcome = self.inner.run(job)
        if job.hess is not None:
            job.hess *= job.hess.dtype.type(self.factor)
        return outcome


@pytest.mark.parametrize("name,factor,expect", [
    ("softmax_cross_entropy", 2.0, "off by a constant factor 2"),
    ("kl_div", -1.0, "sign flipped"),
    ("rmse", 2.0, "finite differences of the kernel gradient"),
])
def test_wrong_hessians_of_rows_and_outer_losses_are_caught(name, factor, expect):
    import dataclasses

    base = lossreg.spec(name)
    if not base.has_hessian:
        pytest.skip(f"{name} has no Hessian yet")
    bad = dataclasses.replace(base, kernels=_ScaledHessian(base.kernels, factor))
    msg = _hessian_failure(bad, "mean")
    assert f"{name}: hessian[float64, mean]" in msg and expect in msg
    labelled = T.label_variant(bad)
    if labelled is not None:
        assert expect in _hessian_failure(labelled, "mean")
    report = T.check_loss(bad, raise_on_failure=False)
    assert any(label.startswith("hessian[") for label, _ in report.failed)
    assert not any(label.startswith(("gradient[", "forward[")) for label, _ in report.failed)
