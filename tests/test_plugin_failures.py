"""Plugins that misbehave at import, at registration or at run time are contained.

* Any exception from a plugin's import or hook is recorded, SystemExit and other
  BaseExceptions included; KeyboardInterrupt alone goes through.
* A plugin that looks losses up while it is being registered (``lossreg.names()`` in its
  hook: each lookup built another nested default registry) gets a PluginError naming it
  and is recorded as failed.
* A plugin kernel that raises when it runs surfaces as a PluginError naming the loss and
  its source, the original exception as ``__cause__``.
"""

import os
import subprocess
import sys
import textwrap
import types

import numpy as np
import pytest

import lossreg
from lossreg import PluginError
from lossreg import registry as registry_module
from lossreg.kernels.protocol import Kernels, Outcome


def plugin_module(name: str, hook=None, **attrs) -> types.ModuleType:
    module = types.ModuleType(name)
    if hook is not None:
        module.register_losses = lossreg.hookimpl(hook)
    for key, value in attrs.items():
        setattr(module, key, value)
    return module


def write_module(tmp_path, monkeypatch, name: str, source: str) -> str:
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, name, raising=False)
    return name


class Custom(BaseException):
    """A BaseException that is neither Exception nor KeyboardInterrupt."""


# -- item 4: SystemExit and other BaseExceptions ------------------------------------------

@pytest.mark.parametrize("raised", ["SystemExit(3)", "GeneratorExit()", "Custom('odd')"])
def test_base_exception_at_import_is_recorded(tmp_path, monkeypatch, raised):
    name = write_module(tmp_path, monkeypatch, "lossreg_test_exits_at_import", f"""
        class Custom(BaseException):
            pass
        raise {raised}
    """)
    reg = lossreg.Registry(entry_points=False, plugins=[name])
    (err,) = reg.errors()
    assert err.name == name and err.status == "failed"
    assert raised.split("(")[0] in err.error
    assert reg.get("huber")([0.0], [1.0]) == 0.5


def test_system_exit_in_the_hook_is_recorded():
    def hook(register):
        raise SystemExit("plugin gave up")

    reg = lossreg.Registry(entry_points=False, plugins=[plugin_module("exits_in_hook", hook)])
    (err,) = reg.errors()
    assert "SystemExit: plugin gave up" in err.error and err.status == "failed"
    assert "mse" in reg


def test_system_exit_in_a_strict_registration_is_a_plugin_error(registry):
    def hook(register):
        raise SystemExit(2)

    with pytest.raises(PluginError, match="SystemExit") as info:
        registry.register_plugin(plugin_module("exits_strict", hook))
    assert isinstance(info.value.__cause__, SystemExit)


def test_keyboard_interrupt_still_stops_the_load():
    def hook(register):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        lossreg.Registry(entry_points=False, plugins=[plugin_module("interrupted", hook)])


def test_cli_list_survives_a_plugin_raising_system_exit(tmp_path):
    """An entry point that calls sys.exit() at import: `lossreg list` still lists the
    losses and exits 0, `lossreg plugins` shows the failure."""
    (tmp_path / "lossreg_fixture_exit.py").write_text("import sys\nsys.exit(3)\n")
    info = tmp_path / "lossreg_fixture_exit-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: lossreg-fixture-exit\n"
                                   "Version: 1.0\n")
    (info / "entry_points.txt").write_text("[lossreg]\nexits = lossreg_fixture_exit\n")
    env = {k: v for k, v in os.environ.items()
           if k not in ("LOSSREG_DISABLE_PLUGINS", "LOSSREG_BLOCK_PLUGINS")}
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), *filter(None, [env.get("PYTHONPATH")])])
    for command, expected in (("list", "huber"), ("plugins", "SystemExit")):
        out = subprocess.run([sys.executable, "-m", "lossreg", command], capture_output=True,
                             text=True, env=env, timeout=120)
        assert out.returncode == 0, (command, out.returncode, out.stderr[-2000:])
        assert expected in out.stdout, (command, out.stdout[-2000:])


# -- item 15: lookups while registering -----------------------------------------------------

def test_lookup_in_the_hook_is_a_plugin_error_naming_the_plugin():
    def hook(register):
        lossreg.names()

    reg = lossreg.Registry(entry_points=False, plugins=[plugin_module("looks_up", hook)])
    (err,) = reg.errors()
    assert err.name == "looks_up" and err.status == "failed"
    assert "PluginError" in err.error and "'looks_up'" in err.error
    assert "lossreg.get/names/spec" in err.error
    assert "huber" in reg


def test_a_swallowed_refusal_still_fails_the_plugin():
    def hook(register):
        try:
            lossreg.get("mse")
        except Exception:  # noqa: BLE001 - what a careless plugin does
            pass

    reg = lossreg.Registry(entry_points=False, plugins=[plugin_module("swallows", hook)])
    (err,) = reg.errors()
    assert err.status == "failed" and "'swallows'" in err.error


def test_lookup_at_import_is_refused(tmp_path, monkeypatch):
    name = write_module(tmp_path, monkeypatch, "lossreg_test_lookup_at_import", """
        import lossreg
        REFERENCE = lossreg.spec("mse")

        @lossreg.hookimpl
        def register_losses(register):
            pass
    """)
    reg = lossreg.Registry(entry_points=False, plugins=[name])
    (err,) = reg.errors()
    assert err.name == name and "PluginError" in err.error
    assert "while being registered" in err.error


def test_building_a_registry_in_the_hook_is_refused():
    def hook(register):
        lossreg.Registry(entry_points=False)

    reg = lossreg.Registry(entry_points=False, plugins=[plugin_module("builds", hook)])
    (err,) = reg.errors()
    assert "lossreg.Registry()" in err.error


def test_no_nested_default_registry_is_built(monkeypatch):
    """The lookup used to build the default registry from inside the plugin's hook (and,
    for an entry point, again and again: 123 nested builds)."""
    monkeypatch.setattr(registry_module._Default, "registry", None)
    built = []
    original = lossreg.Registry.__init__

    def counting(self, *args, **kwargs):
        built.append(kwargs)
        original(self, *args, **kwargs)

    monkeypatch.setattr(lossreg.Registry, "__init__", counting)

    def hook(register):
        lossreg.names()

    lossreg.Registry(entry_points=False, plugins=[plugin_module("nested", hook)])
    assert len(built) == 1
    assert registry_module._Default.registry is None


def test_lookups_work_again_after_a_refusal():
    def hook(register):
        lossreg.names()

    lossreg.Registry(entry_points=False, plugins=[plugin_module("again", hook)])
    assert "huber" in lossreg.names()


# -- item 16: a plugin kernel raising at run time ------------------------------------------

class RaisingKernels(Kernels):
    """Python-level kernels that raise what they are given (no compile needed)."""

    layout = "elementwise"
    has_hessian = False
    checks = ("y_true", "y_pred")
    serial_below = 1 << 30

    def __init__(self, exc):
        self.exc = exc

    def run(self, job) -> Outcome:
        raise self.exc


def raising_spec(exc, name="raises_at_run"):
    return lossreg.LossSpec(name=name, family="test", task="regression",
                            kernels=RaisingKernels(exc),
                            reference=lambda t, p: np.zeros(np.shape(p)))


@pytest.mark.parametrize("exc", [ValueError("kernel blew up"), ZeroDivisionError("x / 0"),
                                 IndexError("out of range")])
def test_plugin_kernel_exception_becomes_a_plugin_error(exc):
    class Plugin:
        @lossreg.hookimpl
        def register_losses(self, register):
            register(raising_spec(exc))

    reg = lossreg.Registry(entry_points=False, plugins=[Plugin()])
    with pytest.raises(PluginError) as info:
        reg.get("raises_at_run")([0.0, 1.0], [1.0, 1.0])
    err = info.value
    assert err.__cause__ is exc
    source = reg.spec("raises_at_run").source
    assert err.source == source
    assert "'raises_at_run'" in str(err) and source in str(err)
    assert type(exc).__name__ in str(err) and str(exc) in str(err)


def test_njit_plugin_kernel_raising_becomes_a_plugin_error(registry):
    @lossreg.kernels.njit
    def forward(y_true, y_pred, out):
        for i in range(y_pred.shape[0]):
            if y_pred[i] > 1.0:
                raise ValueError("y_pred above 1 is not supported by this kernel")
            out[i] = y_pred[i] - y_true[i]

    spec = lossreg.LossSpec(name="njit_raises", family="test", task="regression",
                            forward=forward, gradient=forward,
                            reference=lambda t, p: np.asarray(p) - np.asarray(t))
    registry.add(spec, source="lossreg-test-plugin 1.0")
    loss = registry.get("njit_raises", reduction="sum")
    assert loss([0.0, 0.0], [0.5, 0.5]) == 1.0
    with pytest.raises(PluginError, match=r"'njit_raises'.*lossreg-test-plugin 1\.0.*"
                                          r"ValueError: y_pred above 1") as info:
        loss([0.0, 0.0], [0.5, 2.0])
    assert isinstance(info.value.__cause__, ValueError)


def test_lossreg_errors_from_a_plugin_kernel_pass_through(registry):
    domain = lossreg.DomainError("bad", argument="y_pred", constraint="c", index=0)
    registry.add(raising_spec(domain, "raises_domain"), source="lossreg-test-plugin 1.0")
    with pytest.raises(lossreg.DomainError) as info:
        registry.get("raises_domain")([0.0], [1.0])
    assert info.value is domain
