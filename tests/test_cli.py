"""The `lossreg` command, in-process (main([...])) and as a subprocess."""

import argparse
import dataclasses
import io
import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

import lossreg
from lossreg import cli
from lossreg._progress import Progress, enabled

ROOT = pathlib.Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "robust_regression.toml"
Y_TRUE = np.array([0.0, 1.0, 2.0, 10.0])
Y_PRED = np.array([0.5, 1.0, 3.5, 2.0])


def run(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(err, *fragments):
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    for frag in fragments:
        assert frag in lines[0], lines[0]


@pytest.fixture
def arrays(tmp_path):
    np.save(tmp_path / "t.npy", Y_TRUE)
    np.save(tmp_path / "p.npy", Y_PRED)
    (tmp_path / "t.csv").write_text("y_true\n" + "\n".join(map(str, Y_TRUE)) + "\n")
    (tmp_path / "w.csv").write_text("1,2,0,3\n")
    return tmp_path


# -- list / show / plugins ----------------------------------------------------------------------

def test_list_table_and_json(capsys):
    code, out, _ = run(capsys, "list")
    assert code == 0
    assert out.splitlines()[0].split() == ["name", "family", "task", "aliases", "source"]
    assert {line.split()[0] for line in out.splitlines()[2:]} == set(lossreg.names())
    code, out, _ = run(capsys, "list", "--json")
    rows = json.loads(out)
    assert [r["name"] for r in rows] == lossreg.names()
    for r in rows:
        spec = lossreg.spec(r["name"])
        assert r == {"name": spec.name, "family": spec.family, "task": spec.task,
                     "aliases": list(spec.aliases), "source": spec.source,
                     "summary": spec.summary}
    code, out, _ = run(capsys, "list", "--family", "distance", "--json")
    assert [r["name"] for r in json.loads(out)] == lossreg.names(family="distance")


def test_list_unknown_family(capsys):
    code, out, err = run(capsys, "list", "--family", "distanse")
    assert code == 1 and out == ""
    one_line_error(err, "did you mean 'distance'")


def test_show(capsys):
    code, out, _ = run(capsys, "show", "Smooth-L1")
    spec = lossreg.spec("smooth_l1")
    assert code == 0 and out.startswith("smooth_l1")
    assert spec.formula in out and "beta = 1.0" in out and "y_pred:" in out
    code, out, _ = run(capsys, "show", "huber", "--json")
    assert json.loads(out) == json.loads(json.dumps(lossreg.spec("huber").to_dict()))
    code, out, err = run(capsys, "show", "hubr")
    assert code == 1
    one_line_error(err, "UnknownLossError", "did you mean 'huber'")


def test_plugins(capsys):
    code, out, _ = run(capsys, "plugins", "--json")
    assert code == 0
    assert json.loads(out) == [r.to_dict() for r in lossreg.plugins()]
    code, out, _ = run(capsys, "plugins")
    assert "lossreg.losses.distance" in out and "lossreg (built-in)" in out


def test_plugins_reports_failures(capsys, monkeypatch):
    reg = lossreg.Registry(entry_points=False, plugins=["lossreg_no_such_module_xyz"])
    old = lossreg.set_default_registry(reg)
    try:
        code, out, _ = run(capsys, "plugins")
        assert code == 0 and "lossreg_no_such_module_xyz" in out and "error in" in out
        code, out, _ = run(capsys, "plugins", "--strict", "--json")
        assert code == 1
        failed = [r for r in json.loads(out) if r["error"]]
        assert failed and "ModuleNotFoundError" in failed[0]["error"]
    finally:
        lossreg.set_default_registry(old)


# -- eval ---------------------------------------------------------------------------------------

def test_eval_npy_csv_weights(capsys, arrays):
    huber = lossreg.get("huber", delta=0.5)
    code, out, _ = run(capsys, "eval", "huber", arrays / "t.npy", arrays / "p.npy",
                       "--hyper", "delta=0.5", "--json")
    data = json.loads(out)
    assert code == 0 and data["value"] == huber(Y_TRUE, Y_PRED)
    assert data["loss"] == huber.config() and "grad" not in data
    w = np.array([1.0, 2.0, 0.0, 3.0])
    code, out, _ = run(capsys, "eval", "huber", arrays / "t.csv", arrays / "p.npy", "--hyper",
                       "delta=0.5", "--weights", arrays / "w.csv", "--reduction", "none",
                       "--grad", "--json")
    data = json.loads(out)
    none = lossreg.get("huber", "none", delta=0.5)
    assert data["value"] == none(Y_TRUE, Y_PRED, w).tolist()
    assert data["grad"] == none.grad(Y_TRUE, Y_PRED, w).tolist()
    code, out, _ = run(capsys, "eval", "mse", arrays / "t.npy", arrays / "p.npy")
    assert code == 0 and repr(lossreg.get("mse")(Y_TRUE, Y_PRED)) in out


def test_eval_with_config(capsys, arrays):
    (arrays / "loss.toml").write_text('terms = [{name = "mse", weight = 1.0}, '
                                      '{name = "mae", weight = 0.1}]\n')
    code, out, _ = run(capsys, "eval", "--config", arrays / "loss.toml", arrays / "t.npy",
                       arrays / "p.npy", "--json")
    expected = lossreg.get("mse")(Y_TRUE, Y_PRED) + 0.1 * lossreg.get("mae")(Y_TRUE, Y_PRED)
    assert code == 0 and json.loads(out)["value"] == pytest.approx(expected, rel=1e-15)
    (arrays / "h.json").write_text('{"loss": {"name": "huber"}}')
    code, out, _ = run(capsys, "eval", "--config", arrays / "h.json", arrays / "t.npy",
                       arrays / "p.npy", "--hyper", "delta=0.5", "--json")
    assert json.loads(out)["loss"]["delta"] == 0.5


@pytest.mark.parametrize("argv, fragments", [
    (["eval", "huber", "t.npy"], ["give NAME Y_TRUE Y_PRED"]),
    (["eval", "huber", "t.npy", "missing.npy"], ["file not found"]),
    (["eval", "huber", "t.npy", "p.npy", "--hyper", "detla=1"], ["ConfigError", "'delta'"]),
    (["eval", "huber", "t.npy", "p.npy", "--hyper", "delta"], ["KEY=VALUE"]),
    (["eval", "huber", "t.npy", "p.npy", "--hyper", "delta=-1"], ["HyperparameterError"]),
    (["eval", "bce", "t.npy", "p.npy"], ["DomainError", "y_true"]),
    (["eval", "mse", "t.npy", "short.npy"], ["ShapeError"]),
    (["eval", "mse", "t.npy", "obj.npy"], ["not a plain .npy"]),
    (["eval", "mse", "t.npy", "p.txt.gz"], ["use a .npy or .csv"]),
    (["eval", "mse", "t.npy", "text.csv"], ["not a numeric CSV"]),
    (["eval", "--config", "nope.toml", "t.npy", "p.npy"], ["ConfigError", "not found"]),
])
def test_eval_errors_are_one_line(capsys, arrays, monkeypatch, argv, fragments):
    monkeypatch.chdir(arrays)
    np.save(arrays / "short.npy", np.zeros(3))
    np.save(arrays / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    (arrays / "p.txt.gz").write_text("1")
    (arrays / "text.csv").write_text("a,b\nc,d\n")
    code, out, err = run(capsys, *argv)
    assert code == 1 and out == ""
    one_line_error(err, *fragments)


# -- check / plot / run -------------------------------------------------------------------------

def test_check_passes_and_reports_json(capsys):
    code, out, _ = run(capsys, "check", "mse")
    assert code == 0 and out.startswith("mse: ok")
    code, out, _ = run(capsys, "check", "MSE", "--json")      # kernels already compiled above
    (record,) = json.loads(out)
    assert record["name"] == "mse" and record["ok"] and record["passed"] > 10


def test_check_fails_a_wrong_loss(capsys):
    mse, mae = lossreg.spec("mse"), lossreg.spec("mae")
    wrong = dataclasses.replace(mse, name="wrong_mse", aliases=(), kernels=mae.kernels,
                                sampler=None)
    reg = lossreg.Registry(entry_points=False)
    reg.add(wrong, source="test")
    old = lossreg.set_default_registry(reg)
    try:
        code, out, _ = run(capsys, "check", "wrong_mse", "--json")
    finally:
        lossreg.set_default_registry(old)
    (record,) = json.loads(out)
    assert code == 1 and not record["ok"]
    assert any(f["check"].startswith("gradient") for f in record["failed"])


def test_check_arguments(capsys):
    code, _, err = run(capsys, "check")
    assert code == 1
    one_line_error(err, "--all")
    code, _, err = run(capsys, "check", "nope")
    assert code == 1
    one_line_error(err, "UnknownLossError")


def test_plot(capsys, tmp_path):
    pytest.importorskip("matplotlib")
    code, out, _ = run(capsys, "plot", "huber", "mae", "-o", tmp_path / "sub" / "p.png")
    assert code == 0 and out.strip() == f"wrote {tmp_path / 'sub' / 'p.png'}"
    assert (tmp_path / "sub" / "p.png").read_bytes()[:4] == b"\x89PNG"
    code, _, err = run(capsys, "plot", "huber", "mae", "--hyper", "delta=2", "-o",
                       tmp_path / "q.png")
    assert code == 1
    one_line_error(err, "single loss", "huber:delta=2")


def test_run_example(capsys):
    pytest.importorskip("sklearn")
    code, out, _ = run(capsys, "run", EXAMPLE, "--epochs", "80")
    assert code == 0 and "best test MAE" in out and "smooth_l1" in out
    code, out, _ = run(capsys, "run", EXAMPLE, "--epochs", "80", "--json")
    data = json.loads(out)
    assert data["settings"]["epochs"] == 80
    rows = {r["label"]: r for r in data["rows"]}
    assert rows["huber"]["MAE"] < rows["mse"]["MAE"]


def test_run_writes_a_metrics_plot(capsys, tmp_path):
    pytest.importorskip("sklearn")
    pytest.importorskip("matplotlib")
    example = ROOT / "examples" / "imbalanced_classification.toml"
    code, out, _ = run(capsys, "run", example, "--epochs", "20", "--plot", tmp_path / "m.png")
    assert code == 0 and "wrote" in out and "best test AP" in out
    assert (tmp_path / "m.png").stat().st_size > 1000


def test_run_errors(capsys, tmp_path):
    (tmp_path / "loss.toml").write_text('name = "mse"\n')
    code, _, err = run(capsys, "run", tmp_path / "loss.toml")
    assert code == 1
    one_line_error(err, "no [experiment] table")
    (tmp_path / "e.toml").write_text('[experiment]\ndataset = "diabetes"\nepoch = 3\n'
                                     '[losses.a]\nname = "mse"\n')
    code, _, err = run(capsys, "run", tmp_path / "e.toml")
    assert code == 1
    one_line_error(err, "did you mean 'epochs'")


def test_run_without_sklearn(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    code, _, err = run(capsys, "run", EXAMPLE)
    assert code == 1
    one_line_error(err, "MissingDependencyError", "lossreg[examples]")


# -- parser -------------------------------------------------------------------------------------

def subcommands():
    parser = cli.build_parser()
    (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return list(action.choices)


def test_every_documented_command_exists():
    assert {"list", "show", "plugins", "eval", "check", "plot", "bench", "run", "new-plugin",
            "demo"} <= set(subcommands())


@pytest.mark.parametrize("command", subcommands())
def test_help(capsys, command):
    with pytest.raises(SystemExit) as exc:
        cli.main([command, "--help"])
    assert exc.value.code == 0
    assert f"usage: lossreg {command}" in capsys.readouterr().out


def test_usage_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["frobnicate"])
    assert exc.value.code == 2
    with pytest.raises(SystemExit) as exc:
        cli.main(["eval", "mse", "a", "b", "--reduction", "avg"])
    assert exc.value.code == 2


def test_delegated_command_without_its_module(capsys, monkeypatch):
    monkeypatch.setattr(cli, "DELEGATED", (("bench", "lossreg._no_such_bench", "benchmark"),))
    assert "bench" in subcommands()
    code, _, err = run(capsys, "bench")
    assert code == 1
    one_line_error(err, "unavailable", "lossreg._no_such_bench")


def test_parse_value():
    assert cli.parse_value("0.5") == 0.5 and cli.parse_value("[1, 2]") == [1, 2]
    assert cli.parse_value("None") is None and cli.parse_value("True") is True
    assert cli.parse_value("mean") == "mean"


# -- progress -----------------------------------------------------------------------------------

def test_progress_bar_only_on_a_terminal(monkeypatch):
    stream = io.StringIO()
    assert not enabled(stream)                   # not a TTY
    with Progress(3, "work", stream=stream) as bar:
        bar.update("a")
    assert stream.getvalue() == ""
    with Progress(2, "work", stream=stream, disable=False) as bar:
        bar.update("a")
        bar.update("b")
    assert "work [" in stream.getvalue() and "2/2" in stream.getvalue()

    class TTY(io.StringIO):
        def isatty(self):
            return True
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("LOSSREG_NO_PROGRESS", raising=False)
    assert enabled(TTY())
    monkeypatch.setenv("CI", "true")
    assert not enabled(TTY())


# -- subprocess ---------------------------------------------------------------------------------

def console_script():
    path = pathlib.Path(sys.executable).with_name("lossreg")
    return [str(path)] if path.exists() else [sys.executable, "-m", "lossreg"]


def sub(*argv, script=False):
    cmd = (console_script() if script else [sys.executable, "-m", "lossreg"]) + list(argv)
    env = dict(os.environ, CI="1")
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180, env=env)


def test_subprocess_console_script_list_json():
    out = sub("list", "--json", script=True)
    assert out.returncode == 0, out.stderr
    assert {r["name"] for r in json.loads(out.stdout)} == set(lossreg.names())


def test_subprocess_errors_have_no_traceback(tmp_path):
    out = sub("show", "hubr")
    assert out.returncode == 1 and out.stdout == ""
    one_line_error(out.stderr, "did you mean 'huber'")
    np.save(tmp_path / "t.npy", Y_TRUE)
    out = sub("eval", "huber", str(tmp_path / "t.npy"), str(tmp_path / "missing.npy"))
    assert out.returncode == 1
    one_line_error(out.stderr, "file not found")


def test_subprocess_eval_and_run_example(tmp_path):
    pytest.importorskip("sklearn")
    np.save(tmp_path / "t.npy", Y_TRUE)
    np.save(tmp_path / "p.npy", Y_PRED)
    out = sub("eval", "huber", str(tmp_path / "t.npy"), str(tmp_path / "p.npy"), "--hyper",
              "delta=0.5", "--json", script=True)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["value"] == lossreg.get("huber", delta=0.5)(Y_TRUE, Y_PRED)
    out = sub("run", str(ROOT / "examples" / "imbalanced_classification.toml"), script=True)
    assert out.returncode == 0, out.stderr
    assert "best test AP" in out.stdout and "focal" in out.stdout
    assert out.stderr == ""                      # no progress bar when not a terminal
