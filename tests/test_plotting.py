"""lossreg.plotting: slices derived from metadata, slopes that match values, PNG output."""

import math
import sys

import numpy as np
import pytest

import lossreg
from lossreg.kernels import elementwise_kernels, njit
from lossreg.plotting import MissingDependencyError, display_name, loss_curves, plot_losses
from lossreg.spec import NONNEGATIVE, UNIT, Domain, Hyperparameter, LossSpec


# -- plugin-style specs that no built-in table knows about -----------------------------

@njit
def _logistic_elem(t, p, a):
    # a * log(1 + exp(-z)) for y=1 and a * log(1 + exp(z)) for y=0, z = logit
    z = np.float64(p)
    y = np.float64(t)
    sp_pos = max(z, 0.0) + math.log1p(math.exp(-abs(z)))   # log(1 + e^z)
    sig = 1.0 / (1.0 + math.exp(-z))
    return a * (sp_pos - y * z), a * (sig - y)


def _logistic_reference(y_true, y_pred, a=1.0):
    z = np.asarray(y_pred, np.float64)
    return a * (np.logaddexp(0.0, z) - np.asarray(y_true, np.float64) * z)


@njit
def _sqprob_elem(t, p):
    d = np.float64(p) - np.float64(t)
    return d * d, 2.0 * d


@njit
def _row_ce_forward(t, p, out):
    for i in range(t.shape[0]):
        s = 0.0
        for j in range(t.shape[1]):
            if t[i, j] > 0.0:
                s -= t[i, j] * math.log(p[i, j])
        out[i] = s


@njit
def _row_ce_gradient(t, p, out):
    for i in range(t.shape[0]):
        for j in range(t.shape[1]):
            out[i, j] = -t[i, j] / p[i, j]


def _row_ce_reference(y_true, y_pred):
    t, p = np.asarray(y_true, np.float64), np.asarray(y_pred, np.float64)
    return -np.sum(np.where(t > 0, t * np.log(p), 0.0), axis=-1)


def plugin_specs():
    return [
        LossSpec(name="logit_demo", family="demo", task="binary",
                 reference=_logistic_reference, **elementwise_kernels(_logistic_elem),
                 hyperparameters={"a": Hyperparameter(float, 1.0, NONNEGATIVE)},
                 domains={"y_true": Domain(UNIT)}),
        LossSpec(name="brier_demo", family="demo", task="binary",
                 reference=lambda t, p: (np.asarray(p) - np.asarray(t)) ** 2,
                 **elementwise_kernels(_sqprob_elem),
                 domains={"y_true": Domain(UNIT), "y_pred": Domain(UNIT)}),
        LossSpec(name="row_ce_demo", family="demo", task="distribution", layout="rows",
                 reference=_row_ce_reference, forward=_row_ce_forward,
                 gradient=_row_ce_gradient,
                 domains={"y_true": Domain(UNIT, row_sum=1.0),
                          "y_pred": Domain(UNIT, row_sum=1.0)}),
    ]


@pytest.fixture
def demo_registry():
    reg = lossreg.Registry(entry_points=False)
    for spec in plugin_specs():
        reg.add(spec, source="test")
    return reg


def _assert_slope_matches(curve):
    """The gradient panel is the derivative of the value panel along x.

    Integrating the gradient (trapezoids) must give back the value's change; kinks
    (MAE at 0, Huber at +-delta) only cost O(dx) there, unlike finite differences.
    """
    ok = np.isfinite(curve.value) & np.isfinite(curve.grad)
    assert ok.mean() > 0.95
    x, v, g = curve.x[ok], curve.value[ok], curve.grad[ok]
    integral = np.concatenate([[0.0], np.cumsum(0.5 * (g[1:] + g[:-1]) * np.diff(x))])
    err = np.abs(integral - (v - v[0])).max()
    assert err <= 5e-3 * max(np.ptp(v), 1e-12), (curve.label, err, np.ptp(v))


# -- slices -------------------------------------------------------------------------------

def test_regression_slice_is_the_residual():
    (curve,) = loss_curves(lossreg.get("huber", delta=0.5), points=101)
    assert curve.slice == "" and "residual" in curve.xlabel
    assert curve.x[0] == -3.0 and curve.x[-1] == 3.0
    a = np.abs(curve.x)
    expected = np.where(a <= 0.5, 0.5 * a * a, 0.5 * (a - 0.25))
    np.testing.assert_allclose(curve.value, expected, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(curve.grad, np.clip(curve.x, -0.5, 0.5), atol=1e-15)
    assert curve.loss == "huber(delta=0.5)"


@pytest.mark.parametrize("name", lossreg.names())
def test_every_registered_loss_has_curves_whose_slope_is_the_gradient(name):
    curves = loss_curves(name, points=801)
    assert curves
    for curve in curves:
        assert curve.x.shape == curve.value.shape == curve.grad.shape
        assert np.isfinite(curve.value).mean() > 0.95
        _assert_slope_matches(curve)


def test_batch_level_loss_is_plotted_point_by_point():
    # rmse supports only reduction="mean": one point is a batch of one, so rmse = |r|
    (curve,) = loss_curves("rmse", points=11)
    np.testing.assert_allclose(curve.value, np.abs(curve.x), atol=1e-15)


def test_logit_loss_gets_one_slice_per_label(demo_registry):
    curves = loss_curves("logit_demo", registry=demo_registry, points=201)
    assert [c.slice for c in curves] == ["y_true = 1", "y_true = 0"]
    assert curves[0].x[0] == -6.0 and curves[0].x[-1] == 6.0 and "logit" in curves[0].xlabel
    z = curves[0].x
    np.testing.assert_allclose(curves[0].value, np.logaddexp(0, -z), rtol=1e-12)
    np.testing.assert_allclose(curves[1].grad, 1 / (1 + np.exp(-z)), rtol=1e-12)
    for c in curves:
        _assert_slope_matches(c)


def test_probability_loss_stays_inside_its_domain(demo_registry):
    curves = loss_curves("brier_demo", registry=demo_registry, points=51)
    assert [c.slice for c in curves] == ["y_true = 1", "y_true = 0"]
    for c in curves:
        assert 0.0 < c.x.min() and c.x.max() < 1.0 and "y_pred" in c.xlabel
    np.testing.assert_allclose(curves[1].value, curves[1].x ** 2, rtol=1e-12)


def test_row_loss_slice_is_a_two_class_row(demo_registry):
    curves = loss_curves("row_ce_demo", registry=demo_registry, points=201)
    assert [c.slice for c in curves] == ["y_true = (0, 1)", "y_true = (0.5, 0.5)"]
    q = curves[0].x
    np.testing.assert_allclose(curves[0].value, -np.log(q), rtol=1e-12)
    # derivative along the row (1 - q, q): g1 - g0
    np.testing.assert_allclose(curves[0].grad, -1.0 / q, rtol=1e-12)
    np.testing.assert_allclose(curves[1].grad, -0.5 / q + 0.5 / (1 - q), rtol=1e-12)
    for c in curves:
        _assert_slope_matches(c)


def test_x_range_and_bad_arguments():
    (curve,) = loss_curves("mse", x_range=(-1, 2), points=4)
    np.testing.assert_allclose(curve.x, [-1, 0, 1, 2])
    with pytest.raises(ValueError, match="x_range"):
        loss_curves("mse", x_range=(2, 1))
    with pytest.raises(ValueError, match="points"):
        loss_curves("mse", points=1)
    with pytest.raises(lossreg.UnknownLossError):
        loss_curves("hubr")
    with pytest.raises(TypeError):
        loss_curves(3.0)


def test_display_name_lists_only_changed_hyperparameters():
    assert display_name(lossreg.get("huber")) == "huber"
    assert display_name(lossreg.get("smooth_l1", beta=0.25)) == "smooth_l1(beta=0.25)"


# -- files ------------------------------------------------------------------------------

def test_plot_losses_writes_a_png(tmp_path, demo_registry):
    pytest.importorskip("matplotlib")
    out = plot_losses(["mse", lossreg.get("huber", delta=0.5)], tmp_path / "sub" / "a.png",
                      title="two losses")
    assert out == tmp_path / "sub" / "a.png"
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    svg = plot_losses("row_ce_demo", tmp_path / "b.svg", registry=demo_registry)
    text = svg.read_text()
    assert text.lstrip().startswith("<?xml") and "row_ce_demo" in text


def test_plot_losses_does_not_touch_the_pyplot_backend(tmp_path):
    matplotlib = pytest.importorskip("matplotlib")
    before = matplotlib.rcParams["backend"]
    plot_losses(["mae"], tmp_path / "c.png")
    assert matplotlib.rcParams["backend"] == before
    assert "matplotlib.pyplot" not in sys.modules or before == matplotlib.rcParams["backend"]


def test_missing_matplotlib_names_the_plot_extra(tmp_path, monkeypatch):
    for mod in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, mod)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(MissingDependencyError, match=r"lossreg\[plot\]") as info:
        plot_losses(["mse"], tmp_path / "d.png")
    assert isinstance(info.value, lossreg.LossError) and isinstance(info.value, ImportError)
    assert not (tmp_path / "d.png").exists()


def test_empty_list_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="at least one"):
        plot_losses([], tmp_path / "e.png")


def _png_size(path):
    import struct

    return struct.unpack(">II", path.read_bytes()[16:24])


def test_losses_on_different_axes_get_their_own_rows(tmp_path, demo_registry):
    pytest.importorskip("matplotlib")
    one = plot_losses(["mse", "mae"], tmp_path / "one.png", dpi=50, registry=demo_registry)
    three = plot_losses(["mse", "brier_demo", "logit_demo", "huber"], tmp_path / "three.png",
                        dpi=50, registry=demo_registry)
    (w1, h1), (w3, h3) = _png_size(one), _png_size(three)
    assert w1 == w3 == 500 and h1 == 200 and h3 == 600   # residual, probability, logit rows
