"""``lossreg.scaffold``: the generated distribution is complete and passes its own tests.

The fast tests register the generated module in a fresh Registry in-process, and run the
generated test file in a subprocess where a temporary ``*.dist-info`` built from the
generated pyproject.toml stands in for an install (importlib.metadata finds its entry
point; nothing is installed). The slow test really pip-installs the distribution.
"""

import argparse
import importlib
import os
import pathlib
import subprocess
import sys
import tomllib

import pytest

import lossreg
from lossreg import scaffold


def fake_install(dist_root: pathlib.Path, site: pathlib.Path) -> pathlib.Path:
    """A dist-info for ``dist_root`` under ``site`` (from its pyproject); returns src/."""
    project = tomllib.loads((dist_root / "pyproject.toml").read_text())["project"]
    info = site / f"{project['name'].replace('-', '_')}-{project['version']}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {project['name']}\n"
                                   f"Version: {project['version']}\n")
    eps = project["entry-points"]["lossreg"]
    (info / "entry_points.txt").write_text(
        "[lossreg]\n" + "".join(f"{k} = {v}\n" for k, v in eps.items()))
    return dist_root / "src"


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    return scaffold.new_plugin("lorentz-demo", tmp_path_factory.mktemp("scaffold"))


def test_writes_a_complete_distribution(generated):
    assert generated.name == "lossreg-lorentz-demo"
    files = {str(p.relative_to(generated)) for p in generated.rglob("*") if p.is_file()}
    assert files == {"pyproject.toml", "README.md", ".gitignore",
                     "src/lossreg_lorentz_demo/__init__.py",
                     "src/lossreg_lorentz_demo/losses.py", "tests/test_lorentz_demo.py"}
    project = tomllib.loads((generated / "pyproject.toml").read_text())["project"]
    assert project["name"] == "lossreg-lorentz-demo"
    assert project["entry-points"]["lossreg"] == {"lorentz_demo": "lossreg_lorentz_demo.losses"}
    assert any(d.startswith("lossreg>=") for d in project["dependencies"])
    assert "__" not in (generated / "src/lossreg_lorentz_demo/losses.py").read_text().replace(
        "__future__", "").replace("__init__", "")


def test_generated_module_registers_and_has_complete_metadata(generated, monkeypatch):
    monkeypatch.syspath_prepend(str(generated / "src"))
    module = importlib.import_module("lossreg_lorentz_demo.losses")
    try:
        reg = lossreg.Registry(entry_points=False, plugins=[module])
        assert reg.errors() == []
        spec = reg.spec("lorentz_demo")
        lossreg.testing.check_metadata(spec)
        loss = reg.get("lorentz_demo", c=2.0)
        assert loss([0.0, 0.0], [2.0, -2.0]) == pytest.approx(4.0 * 0.5 * __import__("math").log(2.0))
    finally:
        for name in ("lossreg_lorentz_demo.losses", "lossreg_lorentz_demo"):
            sys.modules.pop(name, None)


def test_generated_tests_pass_when_installed(generated, tmp_path):
    src = fake_install(generated, tmp_path / "site")
    env = dict(os.environ)
    env.pop("LOSSREG_DISABLE_PLUGINS", None)
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path / "site"), str(src),
                                         *filter(None, [env.get("PYTHONPATH")])])
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          "tests"], cwd=generated, capture_output=True, text=True, env=env,
                         timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert " passed" in out.stdout and "failed" not in out.stdout


def test_names_are_derived_and_checked():
    assert scaffold.plugin_names("lossreg-Cauchy") == {
        "dist": "lossreg-cauchy", "package": "lossreg_cauchy", "loss": "cauchy", "entry": "cauchy"}
    for bad in ("9lives", "has space!", "", "-x"):
        with pytest.raises(lossreg.PluginError, match="must start with a letter"):
            scaffold.plugin_names(bad)
    with pytest.raises(lossreg.PluginError, match="loss name 'Bad'"):
        scaffold.plugin_names("ok", loss_name="Bad")


def test_refuses_taken_loss_names_and_existing_folders(tmp_path):
    with pytest.raises(lossreg.PluginError, match="'huber' is taken by 'huber' from lossreg"):
        scaffold.new_plugin("huber", tmp_path)
    with pytest.raises(lossreg.PluginError, match="'l1' is taken by 'mae'"):
        scaffold.new_plugin("mine", tmp_path, loss_name="l1")
    scaffold.new_plugin("twice", tmp_path)
    with pytest.raises(FileExistsError, match="--force"):
        scaffold.new_plugin("twice", tmp_path)
    assert scaffold.new_plugin("twice", tmp_path, force=True).is_dir()


def test_command_line_entry(tmp_path, capsys):
    parser = scaffold.add_arguments(argparse.ArgumentParser(prog="lossreg new-plugin"))
    args = parser.parse_args(["my-loss", "-o", str(tmp_path)])
    assert scaffold.run(args) == 0
    out = capsys.readouterr().out
    assert f"created {tmp_path / 'lossreg-my-loss'}" in out and "pytest" in out
    assert scaffold.run(args) == 1
    assert "exists and is not empty" in capsys.readouterr().err


@pytest.mark.slow
def test_pip_installed_distribution_passes_its_tests(generated, tmp_path):
    """Build and install the generated distribution with pip (into a --target folder)."""
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--quiet",
                    "--target", str(site), str(generated)], check=True, timeout=600)
    assert list(site.glob("lossreg_lorentz_demo-0.1.0.dist-info/entry_points.txt"))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(site), *filter(None, [os.environ.get("PYTHONPATH")])]))
    env.pop("LOSSREG_DISABLE_PLUGINS", None)
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          str(generated / "tests")], cwd=tmp_path, capture_output=True,
                         text=True, env=env, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
