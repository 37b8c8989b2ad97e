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
