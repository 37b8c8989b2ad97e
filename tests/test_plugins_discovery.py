"""The example distributions under plugins/ are found through entry points.

A fresh process (not this one, whose default registry may predate an install) lists the
losses with their source distribution and version. The distributions must be installed
(the README's test command installs them, one non-editable); without them these tests
skip and say how to install them.
"""

import json
import pathlib
import re
import subprocess
import sys
import tomllib
from importlib import metadata

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PLUGINS = {  # distribution -> losses it registers
    "lossreg-quantile": ["pinball"],
    "lossreg-logcosh": ["log_cosh"],
    "lossreg-metric": ["center", "contrastive"],
}


def installed_version(dist):
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def require_installed():
    missing = [d for d in PLUGINS if installed_version(d) is None]
    if missing:
        pytest.skip(f"not installed: {', '.join(missing)} (run the README's test command, or "
                    f"pip install ./plugins/<name>)")


def fresh(*args):
    out = subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=300,
                         cwd=ROOT)
    return out


def test_each_plugin_is_a_separate_distribution_with_an_entry_point():
    assert not (ROOT / "plugins" / "__init__.py").exists()
    for dist in PLUGINS:
        folder = ROOT / "plugins" / dist
        project = tomllib.loads((folder / "pyproject.toml").read_text())["project"]
        assert project["name"] == dist
        ((entry, target),) = project["entry-points"]["lossreg"].items()
        package = target.split(".")[0]
        assert (folder / "src" / package / "__init__.py").is_file()
        assert list((folder / "tests").glob("test_*.py")) and (folder / "README.md").is_file()
        assert not (folder / "tests" / "__init__.py").exists()


def test_fresh_process_sees_plugins_with_their_distribution():
    require_installed()
    code = ("import json, lossreg; print(json.dumps({n: lossreg.spec(n).source "
            "for n in lossreg.names()}))")
    out = fresh("-c", code)
    assert out.returncode == 0, out.stderr
    sources = json.loads(out.stdout)
    for dist, losses in PLUGINS.items():
        for loss in losses:
            assert sources[loss].startswith(f"{dist} {installed_version(dist)} (entry point ")
    assert sources["huber"] == "lossreg (built-in)"


def test_lossreg_list_json_shows_plugins_with_their_source():
    require_installed()
    out = fresh("-m", "lossreg", "list", "--json")
    if out.returncode == 2 and "invalid choice" in out.stderr:
        pytest.skip("`lossreg list` is not implemented yet")
    assert out.returncode == 0, out.stderr
    rows = {row["name"]: row for row in json.loads(out.stdout)}
    for dist, losses in PLUGINS.items():
        for loss in losses:
            assert dist in rows[loss]["source"] and installed_version(dist) in rows[loss]["source"]
            assert {"name", "family", "task", "aliases", "source", "summary"} <= set(rows[loss])
    assert rows["pinball"]["aliases"] == ["quantile", "quantile_loss"]


def test_no_plugin_load_errors_in_a_fresh_process():
    require_installed()
    out = fresh("-c", "import lossreg; print([r.to_dict() for r in lossreg.plugin_errors()])")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_readme_test_command_installs_every_plugin_one_non_editable():
    readme = (ROOT / "README.md").read_text()
    command = re.findall(r"^\$ (.+)$", readme, flags=re.M)[1]
    (install,) = [part.split() for part in command.split("&&") if "plugins/" in part]
    assert install[:2] == ["pip", "install"]
    editable = {install[i + 1] for i, tok in enumerate(install[:-1]) if tok == "-e"}
    found = {tok.rstrip("/").split("/")[-1]: tok for tok in install if "plugins/" in tok}
    assert set(found) == set(PLUGINS)
    assert any(tok not in editable for tok in found.values()), "one plugin must be non-editable"
