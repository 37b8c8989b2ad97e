"""The `lossreg` command on bad files and first-run papercuts (issue 19): strict CSV, .npz
renamed .npy, empty files, `plot -o DIR`, per-loss plot settings, `bench --check` and
where it writes, the demo's labels."""

import json
import pathlib

import numpy as np
import pytest

import lossreg
from lossreg import cli
from lossreg._datafiles import DataFileError, read_csv


def run(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(err, *fragments):
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    for frag in fragments:
        assert frag in lines[0], lines[0]


# -- CSV and .npy inputs ------------------------------------------------------------------------

def test_a_numeric_first_row_is_data_and_a_ragged_row_is_an_error(tmp_path, capsys):
    (tmp_path / "t.csv").write_text("0\n1\n")
    (tmp_path / "p.csv").write_text("1,2\n0.5\n3.0\n")      # used to drop "1,2" as a header
    code, out, err = run(capsys, "eval", "mse", tmp_path / "t.csv", tmp_path / "p.csv")
    assert code == 1 and out == ""
    one_line_error(err, "y_pred", "p.csv", "line 2 has 1 value but line 1 has 2", "ragged")


@pytest.mark.parametrize("text, expected", [
    ("1\n2\n3\n", [1.0, 2.0, 3.0]),                  # numeric first line: data, not a header
    ("y\n1\n2\n", [1.0, 2.0]),                       # a header is a line that is not numbers
    ("\ufeffy_pred\n1.5\n\n# note\n-2\n", [1.5, -2.0]),   # BOM, blank line, comment
    ("a,b\n1,2\n3,4\n", [[1.0, 2.0], [3.0, 4.0]]),
    ("1,2,0,3\n", [1.0, 2.0, 0.0, 3.0]),            # one row: 1-D
    ('"x, y",z\n1,2\n', [1.0, 2.0]),                 # quoted header cell with a comma
    ("nan\ninf\n", [np.nan, np.inf]),                # parsed; the loss's domain check decides
])
def test_csv_rules(tmp_path, text, expected):
    path = tmp_path / "a.csv"
    path.write_text(text, encoding="utf-8")
    np.testing.assert_array_equal(read_csv(path), np.array(expected))


@pytest.mark.parametrize("text, fragment", [
    ("", "holds no data"),
    ("\n\n# only comments\n", "holds no data"),
    ("y_pred\n", "holds only a header"),
    ("1\n2\nx\n", "line 3, column 1: 'x' is not a number (only the first line may be a header)"),
    ("1,2\n3,\n", "line 2, column 2: '' is not a number"),
    ("a,b\n1\n", "the header on line 1 has 2 columns but line 2 has 1 value"),
    ("1,2\n3,4,5\n", "line 2 has 3 values but line 1 has 2"),
])
def test_csv_errors_name_the_file_and_line(tmp_path, text, fragment):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(DataFileError) as info:
        read_csv(path)
    assert str(path) in str(info.value) and fragment in str(info.value)


def test_empty_and_non_utf8_csv_are_one_line_errors_not_warnings(tmp_path, capsys, recwarn):
    (tmp_path / "t.csv").write_text("1\n")
    (tmp_path / "empty.csv").write_text("")
    code, out, err = run(capsys, "eval", "mse", tmp_path / "t.csv", tmp_path / "empty.csv")
    assert code == 1 and not recwarn.list
    one_line_error(err, "lossreg eval: error: y_pred", "empty.csv", "holds no data")
    (tmp_path / "latin.csv").write_bytes("caf\u00e9\n1\n".encode("latin-1"))
    code, out, err = run(capsys, "eval", "mse", tmp_path / "t.csv", tmp_path / "latin.csv")
    assert code == 1
    one_line_error(err, "latin.csv is not UTF-8 text")


def test_npz_renamed_npy_and_other_non_npy_files(tmp_path, capsys):
    np.save(tmp_path / "t.npy", np.zeros(2))
    np.savez(tmp_path / "arch.npz", y_pred=np.ones(2))
    (tmp_path / "arch.npz").rename(tmp_path / "p.npy")
    code, out, err = run(capsys, "eval", "mse", tmp_path / "t.npy", tmp_path / "p.npy")
    assert code == 1
    one_line_error(err, "y_pred", "p.npy is a .npz (zip) archive holding y_pred",
                   "not a .npy array")
    for name, data in (("empty.npy", b""), ("text.npy", b"1,2\n")):
        (tmp_path / name).write_bytes(data)
        code, out, err = run(capsys, "eval", "mse", tmp_path / "t.npy", tmp_path / name)
        assert code == 1
        one_line_error(err, name, "is not a .npy file")


# -- plot ---------------------------------------------------------------------------------------

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_plot_into_a_directory_or_without_suffix_says_what_it_wrote(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    (tmp_path / "figs").mkdir()
    code, out, _ = run(capsys, "plot", "huber", "mae", "-o", tmp_path / "figs")
    written = tmp_path / "figs" / "huber_mae.png"
    assert code == 0 and out.strip() == f"wrote {written}"
    assert written.read_bytes()[:4] == b"\x89PNG"
    assert not (tmp_path / "figs.png").exists()
    code, out, _ = run(capsys, "plot", "mae", "-o", str(tmp_path / "new") + "/")
    assert out.strip() == f"wrote {tmp_path / 'new' / 'mae.png'}"
    code, out, _ = run(capsys, "plot", "mae", "-o", tmp_path / "noext")
    assert out.strip() == f"wrote {tmp_path / 'noext.png'}"
    assert (tmp_path / "noext.png").exists() and not (tmp_path / "noext").exists()


def test_plot_takes_settings_per_loss(monkeypatch, capsys, tmp_path):
    import lossreg.plotting

    drawn = []
    monkeypatch.setattr(lossreg.plotting, "plot_losses",
                        lambda losses, path, title=None: drawn.append(losses) or path)
    code, out, err = run(capsys, "plot", "huber:delta=2", "smooth_l1:beta=2",
                         "softmax:class_weight=[1,2],label_smoothing=0.1", "mae",
                         "-o", tmp_path / "p.png")
    assert code == 0, err
    assert drawn[0] == [lossreg.get("huber", delta=2.0), lossreg.get("smooth_l1", beta=2.0),
                        lossreg.get("softmax_cross_entropy", class_weight=[1.0, 2.0],
                                    label_smoothing=0.1), lossreg.get("mae")]
    for bad, fragment in (("huber:delta", "K=V pairs"), ("huber:detla=2", "did you mean"),
                          (":delta=2", "expected NAME")):
        code, _, err = run(capsys, "plot", bad, "-o", tmp_path / "p.png")
        assert code == 1
        one_line_error(err, fragment)


def test_readme_plot_example_draws_distinct_curves():
    from lossreg.plotting import loss_curves

    line = next(ln for ln in (ROOT / "README.md").read_text().splitlines()
                if ln.startswith("lossreg plot "))
    names = line.split("#")[0].split()[2:]
    names = names[:names.index("-o")]
    curves = [loss_curves(lossreg.from_config(dict(name=n, **h)))[0]
              for n, h in map(cli.parse_loss_setting, names)]
    assert len(curves) >= 2
    for a in range(len(curves)):
        for b in range(a):
            assert not np.allclose(curves[a].value, curves[b].value), (names[a], names[b])
            assert not np.allclose(curves[a].grad, curves[b].grad), (names[a], names[b])


def test_gradient_axis_names_the_variable():
    from lossreg.plotting import loss_curves

    (mse,) = loss_curves("mse")
    assert mse.variable == "r" and "d loss / d r" in mse.grad_label
    assert "d loss / d y_pred" in mse.grad_label and "dx" not in mse.grad_label
    logit = loss_curves("binary_cross_entropy_with_logits")
    assert {c.grad_label for c in logit} == {"gradient d loss / d z"}
    assert loss_curves("binary_cross_entropy")[0].variable == "y_pred"
    assert loss_curves("kl_div")[0].variable == "q"


# -- bench --------------------------------------------------------------------------------------

QUICK = ["bench", "--quick", "--no-torch", "--no-sklearn", "--no-progress", "--losses", "mse",
         "--sizes", "10", "--budget", "0.002"]


def test_bench_check_fails_on_a_fail_and_writes_only_when_asked(tmp_path, monkeypatch, capsys):
    from lossreg import bench

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(bench, "targets", lambda results: [("always fails", False, "forced"),
                                                           ("not measured", None, "skip")])
    code, out, err = run(capsys, *QUICK)                      # no --check: report only
    assert code == 0 and "FAIL  always fails" in out and "SKIP  not measured" in out
    assert list(tmp_path.iterdir()) == []                     # wrote nothing (no benchmarks/)
    code, out, err = run(capsys, *QUICK, "--check", "-o", "res")
    assert code == 1 and "1 target(s) FAILED" in err
    data = json.loads((tmp_path / "res" / "latest.json").read_text())
    assert data["targets"][0] == {"target": "always fails", "passed": False, "detail": "forced"}
    assert f"wrote {pathlib.Path('res') / 'latest.json'}" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["res"]
    monkeypatch.setattr(bench, "targets", lambda results: [("fine", True, "ok"),
                                                           ("not measured", None, "skip")])
    code, out, err = run(capsys, *QUICK, "--check")
    assert code == 0 and "PASS  fine" in out


def test_benchmarks_run_script_defaults_to_its_results_folder():
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_run", ROOT / "benchmarks" / "run.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    results = str(ROOT / "benchmarks" / "results")
    assert mod.argv_with_default_output(["--quick"]) == ["--quick", "-o", results]
    assert mod.argv_with_default_output(["--json", "x.json"]) == ["--json", "x.json"]
    assert mod.argv_with_default_output(["-o", "d"]) == ["-o", "d"]


# -- missing optional dependencies ----------------------------------------------------------------

CHECKOUT = 'from a checkout: pip install -e ".[{}]"'


def test_missing_dependency_hints_also_give_the_checkout_command(tmp_path, monkeypatch):
    import sys

    from lossreg import experiments, plotting
    from lossreg.errors import ConfigError, MissingDependencyError

    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(MissingDependencyError) as info:
        plotting.plot_losses("mse", tmp_path / "p.png")
    assert 'pip install "lossreg[plot]"' in str(info.value)
    assert CHECKOUT.format("plot") in str(info.value)
    monkeypatch.setitem(sys.modules, "sklearn", None)
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(MissingDependencyError) as info:
        experiments._load_dataset("diabetes")
    assert CHECKOUT.format("examples") in str(info.value)
    (tmp_path / "c.yaml").write_text("name: mse\n")
    monkeypatch.setitem(sys.modules, "yaml", None)
    with pytest.raises(ConfigError) as info:
        lossreg.from_config(tmp_path / "c.yaml")
    assert CHECKOUT.format("yaml") in str(info.value)


# -- demo -----------------------------------------------------------------------------------------

def test_demo_says_what_its_numbers_are_and_lines_them_up(capsys):
    code, out, _ = run(capsys, "demo")
    assert code == 0
    assert "grad = d(mean loss)/d y_pred" in out and "mean of the per-element losses" in out
    lines = out.splitlines()
    header = next(i for i, ln in enumerate(lines) if ln.startswith("loss "))
    rows = lines[header + 2:header + 2 + len(cli.DEMO_LOSSES)]
    # every row's value and grad cells start in the header's columns, grad brackets align
    value_col, grad_col = lines[header].index("value"), lines[header].index("grad")
    for row in rows:
        assert row[value_col - 1] == " " and row[value_col] != " "
        assert row[grad_col] == "[" and row.endswith("]")
    assert len({len(r) for r in rows}) == 1
    y_true = np.array([0.0, 1.0, 2.0, 10.0])
    y_pred = np.array([0.5, 1.0, 3.5, 2.0])
    for row, (name, hyper) in zip(rows, cli.DEMO_LOSSES):
        value, grad = lossreg.get(name, **hyper).value_and_grad(y_true, y_pred)
        assert row.startswith(name)
        assert float(row[value_col:grad_col].split()[0]) == pytest.approx(value, rel=1e-5)
        cells = [float(x) for x in row[grad_col:].strip("[] ").split()]
        np.testing.assert_allclose(cells, grad, rtol=1e-3)
    # the inputs line up with the gradient entries too
    inputs = [ln for ln in lines if ln.lstrip().startswith(("y_true", "y_pred"))]
    assert len({ln.index("[") for ln in inputs}) == 1
