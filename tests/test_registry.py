"""The plugin registry: hook registration, isolation of failures, names and aliases."""

import sys
import types

import numpy as np
import pytest
from numba import njit, prange

import lossreg
from lossreg import PluginError


@njit(parallel=True)
def _cube_forward(y_true, y_pred, out, scale):
    for i in prange(y_pred.shape[0]):
        r = y_pred[i] - y_true[i]
        out[i] = scale * abs(r) ** 3


@njit(parallel=True)
def _cube_gradient(y_true, y_pred, out, scale):
    for i in prange(y_pred.shape[0]):
        r = y_pred[i] - y_true[i]
        out[i] = 3.0 * scale * r * abs(r)


def _cube_reference(y_true, y_pred, scale=1.0):
    return scale * np.abs(y_pred - y_true) ** 3


def cube_spec(name="cube", **extra):
    fields = dict(
        name=name, family="distance", task="regression", forward=_cube_forward,
        gradient=_cube_gradient, reference=_cube_reference,
        hyperparameters={"scale": lossreg.Hyperparameter(float, 1.0, lossreg.Interval(0, 10),
                                                         doc="multiplier")},
        summary="Cubed absolute error (test plugin).", formula=r"s |r|^3",
        properties={"convex", "nonnegative"})
    fields.update(extra)
    return lossreg.LossSpec(**fields)


class CubePlugin:
    @lossreg.hookimpl
    def register_losses(self, register):
        register(cube_spec())


def test_plugin_registers_through_the_hook(registry):
    record = registry.register_plugin(CubePlugin(), name="cube-plugin")
    assert record.losses == ("cube",)
    loss = registry.get("cube", scale=2.0)
    assert loss([0.0, 0.0], [1.0, -2.0]) == pytest.approx(2.0 * (1 + 8) / 2)
    assert "cube" in registry.names(family="distance")
    assert registry.spec("cube").source == "plugin cube-plugin"


def test_plugin_loss_passes_the_conformance_kit(registry):
    registry.register_plugin(CubePlugin(), name="cube-plugin")
    report = lossreg.testing.check_loss("cube", registry=registry)
    assert report.ok and len(report.passed) > 20


def test_plugin_kernel_domain_checks_without_fusion(registry):
    registry.register_plugin(CubePlugin(), name="cube-plugin")
    with pytest.raises(lossreg.DomainError) as info:
        registry.get("cube")([0.0, 1.0, 2.0], [0.0, np.inf, 0.0])
    assert info.value.index == 1 and info.value.argument == "y_pred"


def test_builtins_come_through_the_same_hook(registry):
    builtin = [r for r in registry.records if r.source == "lossreg (built-in)"]
    assert builtin and set(registry.names(family="distance")) <= {
        n for r in builtin for n in r.losses}
    assert all(hasattr(sys.modules[r.name], "register_losses") for r in builtin)


def test_name_clash_names_both_sources(registry):
    class Clash:
        @lossreg.hookimpl
        def register_losses(self, register):
            register(cube_spec(name="huber"))

    with pytest.raises(PluginError, match=r"'huber' from plugin clash clashes with 'huber' "
                                          r"from lossreg \(built-in\)"):
        registry.register_plugin(Clash(), name="clash")
    assert registry.spec("huber").source == "lossreg (built-in)"


def test_alias_clash(registry):
    class Clash:
        @lossreg.hookimpl
        def register_losses(self, register):
            register(cube_spec(aliases=("L-2",)))

    with pytest.raises(PluginError, match="clashes with 'rmse'"):
        registry.register_plugin(Clash(), name="clash")
    assert "cube" not in registry


def test_plugin_raising_at_import_is_recorded_not_fatal(monkeypatch):
    broken = "lossreg_test_broken_plugin"
    monkeypatch.delitem(sys.modules, broken, raising=False)
    reg = lossreg.Registry(entry_points=False, plugins=[broken])
    errors = reg.errors()
    assert len(errors) == 1 and errors[0].name == broken
    assert "ModuleNotFoundError" in errors[0].error
    assert reg.get("huber")([0.0], [1.0]) == 0.5


def test_plugin_raising_in_hook_is_recorded(registry):
    module = types.ModuleType("raising_plugin")

    @lossreg.hookimpl
    def register_losses(register):
        register(cube_spec())
        raise RuntimeError("boom")

    module.register_losses = register_losses
    reg = lossreg.Registry(entry_points=False, plugins=[module])
    (err,) = reg.errors()
    assert "RuntimeError: boom" in err.error
    assert "huber" in reg


def test_invalid_spec_is_recorded_and_others_survive():
    class Invalid:
        @lossreg.hookimpl
        def register_losses(self, register):
            register(cube_spec(name="Bad Name!"))
            register(cube_spec(name="good_cube"))

    reg = lossreg.Registry(entry_points=False, plugins=[Invalid()])
    (err,) = reg.errors()
    assert "invalid LossSpec 'Bad Name!'" in err.error
    assert "good_cube" in reg and "huber" in reg


def test_invalid_default_is_rejected(registry):
    bad = cube_spec(hyperparameters={"scale": lossreg.Hyperparameter(float, -1.0,
                                                                     lossreg.Interval(0, 1))})
    with pytest.raises(PluginError, match="default of 'scale'"):
        registry.add(bad)


def test_plugin_without_hook_is_an_error(registry):
    with pytest.raises(PluginError, match="implements no lossreg hook"):
        registry.register_plugin(types.ModuleType("empty"))


def test_default_registry_is_lazy_and_replaceable():
    fresh = lossreg.Registry(entry_points=False, builtins=False)
    fresh.register_plugin(CubePlugin(), name="cube")
    old = lossreg.set_default_registry(fresh)
    try:
        assert lossreg.names() == ["cube"]
        with pytest.raises(lossreg.UnknownLossError):
            lossreg.get("huber")
    finally:
        lossreg.set_default_registry(old)
    assert "huber" in lossreg.names()


def test_import_is_cheap_and_compiles_nothing():
    import subprocess

    code = ("import sys, lossreg; assert 'numba' not in sys.modules, 'numba imported'; "
            "print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_names_filter_and_spec_to_dict_is_json():
    import json

    assert lossreg.names(family="distance") == ["huber", "mae", "mse", "rmse", "smooth_l1"]
    assert lossreg.names(task="regression")
    data = json.loads(json.dumps(lossreg.spec("huber").to_dict()))
    assert data["hyperparameters"]["delta"]["interval"]["text"] == "(0, inf)"
    assert data["domains"]["y_pred"]["interval"]["text"] == "(-inf, inf)"


def test_hook_runs_through_pluggy_for_the_new_plugin_only(registry):
    calls = []
    registry.pm.add_hookcall_monitoring(
        lambda name, impls, kwargs: calls.append((name, [i.plugin_name for i in impls])),
        lambda outcome, name, impls, kwargs: None)
    registry.register_plugin(CubePlugin(), name="cube-plugin")
    assert calls == [("register_losses", ["cube-plugin"])]


def test_registering_does_not_mutate_the_plugins_spec(registry):
    spec = cube_spec()

    class Plugin:
        @lossreg.hookimpl
        def register_losses(self, register):
            register(spec)

    registry.register_plugin(Plugin(), name="cube-plugin")
    assert spec.source == "unknown"
    assert registry.spec("cube").source == "plugin cube-plugin"


def test_blocked_plugin_names_use_pluggys_blocking():
    plugin = types.ModuleType("cube-plugin")
    plugin.register_losses = CubePlugin().register_losses
    reg = lossreg.Registry(entry_points=False, block=["cube-plugin"], plugins=[plugin])
    assert reg.pm.is_blocked("cube-plugin") and not reg.pm.has_plugin("cube-plugin")
    (record,) = [r for r in reg.records if r.name == "cube-plugin"]
    assert record.status == "blocked" and "cube" not in reg and reg.errors() == []
