"""Plugin isolation through real entry points.

tests/plugin_fixtures holds five tiny distributions (``*.dist-info`` with METADATA and
entry_points.txt): a good plugin, one raising at import, one registering an invalid spec,
one clashing with built-in names, and one whose kernel does not compile. Each test runs a
subprocess with that folder on PYTHONPATH, so importlib.metadata finds the entry points
there and nothing is installed into the environment.
"""

import json
import os
import pathlib
import subprocess
import sys

import pytest

FIXTURES = pathlib.Path(__file__).resolve().parent / "plugin_fixtures"

PROBE = r'''
import json, os, sys
import lossreg
from lossreg.registry import Registry

def describe(reg):
    out = {"names": reg.names(), "records": [r.to_dict() for r in reg.records],
           "errors": [r.to_dict() for r in reg.errors()], "sources": {}}
    for name in reg.names():
        out["sources"][name] = reg.spec(name).source
    return out

result = {}
mode = sys.argv[1]
if mode == "default":
    result["default"] = describe(lossreg.default_registry())
    # lookups of other losses keep working, plugin losses included
    result["huber"] = lossreg.get("huber")([0.0], [1.0])
    result["l1_is"] = lossreg.spec("l1").name
    result["quartic"] = lossreg.get("fixture_quartic", scale=2.0)([0.0, 0.0], [1.0, 2.0])
    try:
        lossreg.get("fixture_nocompile")([0.0], [1.0])
    except lossreg.PluginError as exc:
        result["nocompile_error"] = str(exc)
    result["mse_after_failure"] = lossreg.get("mse")([0.0], [3.0])
    result["verify"] = [r.to_dict() for r in lossreg.default_registry().verify_kernels()]
    result["errors_after_verify"] = [r.to_dict() for r in lossreg.plugin_errors()]
elif mode == "registries":
    result["off"] = describe(Registry(entry_points=False))
    result["blocked"] = describe(Registry(block=["import-error", "lossreg_fixture_clash"]))
    result["blocked_str"] = describe(Registry(block="lossreg-fixture-good"))
else:
    result["default"] = describe(lossreg.default_registry())
print("JSON" + json.dumps(result))
'''


def run_probe(mode, **env):
    environ = {k: v for k, v in os.environ.items()
               if k not in ("LOSSREG_DISABLE_PLUGINS", "LOSSREG_BLOCK_PLUGINS")}
    environ["PYTHONPATH"] = os.pathsep.join(
        [str(FIXTURES), *filter(None, [environ.get("PYTHONPATH")])])
    environ.update(env)
    out = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True,
                         env=environ, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    line = [ln for ln in out.stdout.splitlines() if ln.startswith("JSON")][-1]
    return json.loads(line[4:])


def by_name(records):
    return {r["name"]: r for r in records}


@pytest.fixture(scope="module")
def default_probe():
    return run_probe("default")


def test_good_plugin_loads_with_its_distribution_as_source(default_probe):
    reg = default_probe["default"]
    assert "fixture_quartic" in reg["names"]
    assert reg["sources"]["fixture_quartic"] == \
        "lossreg-fixture-good 1.0 (entry point good = fixture_good)"
    assert default_probe["quartic"] == pytest.approx(2.0 * (1 + 16) / 2)
    assert by_name(reg["records"])["good"]["status"] == "loaded"


def test_import_error_is_recorded_with_source_and_error(default_probe):
    errors = by_name(default_probe["default"]["errors"])
    rec = errors["import-error"]
    assert rec["source"].startswith("lossreg-fixture-import-error 1.0")
    assert "ImportError: fixture_import_error needs a module" in rec["error"]
    assert rec["status"] == "failed" and rec["losses"] == []


def test_invalid_spec_is_recorded_and_its_valid_neighbour_survives(default_probe):
    reg = default_probe["default"]
    rec = by_name(reg["errors"])["invalid"]
    assert "invalid LossSpec 'Not A Name'" in rec["error"] and "task 'astrology'" in rec["error"]
    assert rec["status"] == "partial" and rec["losses"] == ["fixture_valid_neighbour"]
    assert "fixture_valid_neighbour" in reg["names"]


def test_clash_with_builtin_is_recorded_and_builtins_win(default_probe):
    reg = default_probe["default"]
    rec = by_name(reg["errors"])["clash"]
    assert "'huber' from lossreg-fixture-clash 1.0" in rec["error"]
    assert "clashes with 'huber' from lossreg (built-in)" in rec["error"]
    assert "'L1'" in rec["error"] and "clashes with 'mae'" in rec["error"]
    assert reg["sources"]["huber"] == "lossreg (built-in)"
    assert default_probe["huber"] == 0.5 and default_probe["l1_is"] == "mae"
    assert "fixture_other" not in reg["names"]


def test_kernel_that_fails_to_compile_breaks_only_itself(default_probe):
    assert "fixture_nocompile" in default_probe["default"]["names"]
    msg = default_probe["nocompile_error"]
    assert "kernel of loss 'fixture_nocompile'" in msg and "failed to compile" in msg
    assert "lossreg-fixture-nocompile 1.0" in msg
    assert default_probe["mse_after_failure"] == 9.0
    (found,) = default_probe["verify"]
    assert found["losses"] == ["fixture_nocompile"] and found["status"] == "kernel-error"
    assert found["source"].startswith("lossreg-fixture-nocompile 1.0")
    assert "nocompile" in by_name(default_probe["errors_after_verify"])


def test_entry_points_off_by_argument_and_blocked_by_name():
    probe = run_probe("registries")
    off = probe["off"]
    assert not any(n.startswith("fixture_") for n in off["names"]) and "huber" in off["names"]
    assert off["errors"] == []
    blocked = probe["blocked"]
    recs = by_name(blocked["records"])
    assert recs["import-error"]["status"] == "blocked" and recs["clash"]["status"] == "blocked"
    assert {"import-error", "clash"}.isdisjoint(by_name(blocked["errors"]))
    assert "fixture_quartic" in blocked["names"]
    assert "fixture_quartic" not in probe["blocked_str"]["names"]


def test_disable_plugins_environment_variable():
    probe = run_probe("env", LOSSREG_DISABLE_PLUGINS="1")["default"]
    assert all(r["source"] == "lossreg (built-in)" for r in probe["records"])
    assert "huber" in probe["names"] and not any(n.startswith("fixture_") for n in probe["names"])


def test_block_plugins_environment_variable():
    probe = run_probe("env", LOSSREG_BLOCK_PLUGINS="good, lossreg-fixture-nocompile")["default"]
    assert "fixture_quartic" not in probe["names"] and "fixture_nocompile" not in probe["names"]
    status = {r["name"]: r["status"] for r in probe["records"]}
    assert status["good"] == "blocked" and status["nocompile"] == "blocked"
    assert status["invalid"] == "partial"
