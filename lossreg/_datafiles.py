"""Arrays from the files ``lossreg eval`` takes: .npy (never pickles) and numeric CSV.

CSV rules, strict so that nothing is dropped or padded silently: values are separated by
commas; blank lines and lines starting with ``#`` are skipped; the first remaining line
is a header only when it does not parse as numbers (a numeric first line is data); every
row has as many values as the first data row (a ragged row is an error naming the file
and line); a file with no data row is an error. One column gives a 1-D array, as does a
single row; otherwise rows x columns.
"""

from __future__ import annotations

import csv
import pathlib

import numpy as np

__all__ = ["DataFileError", "read_csv", "read_npy"]


class DataFileError(ValueError):
    """A data file that cannot be read as an array; the message names the file."""


def _number(cell: str) -> float:
    text = cell.strip()
    if not text:
        raise ValueError("empty")
    return float(text)                 # "nan"/"inf" parse; domain checks come later


def read_csv(path: str | pathlib.Path) -> np.ndarray:
    """A float64 array from a numeric CSV file (see the module doc for the rules)."""
    path = pathlib.Path(path)
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataFileError(f"{path} is not UTF-8 text (byte {raw[exc.start]:#04x} at offset "
                            f"{exc.start})") from None
    rows: list[list[float]] = []
    header: tuple[int, int] | None = None       # (line, columns)
    first = 0                                   # line of the first data row
    for lineno, cells in _lines(text):
        try:
            values = [_number(c) for c in cells]
        except ValueError:
            if not rows and header is None:
                header = (lineno, len(cells))
                continue
            col = next(i for i, c in enumerate(cells) if not _parses(c))
            raise DataFileError(
                f"{path} is not a numeric CSV: line {lineno}, column {col + 1}: "
                f"{cells[col].strip()[:40]!r} is not a number"
                + (" (only the first line may be a header)" if rows or header else "")) from None
        if rows and len(values) != len(rows[0]):
            raise DataFileError(f"{path}: line {lineno} has {_values(len(values))} but line "
                                f"{first} has {len(rows[0])} (ragged rows)")
        if not rows:
            first = lineno
            if header is not None and header[1] != len(values):
                raise DataFileError(f"{path}: the header on line {header[0]} has {header[1]} "
                                    f"columns but line {lineno} has {_values(len(values))}")
        rows.append(values)
    if not rows:
        what = "only a header" if header else "no data"
        raise DataFileError(f"{path} holds {what}: an empty CSV has no array in it")
    arr = np.array(rows, dtype=np.float64)
    if arr.shape[1] == 1:
        return arr[:, 0]
    if arr.shape[0] == 1:
        return arr[0]
    return arr


def _values(n: int) -> str:
    return f"{n} value" if n == 1 else f"{n} values"


def _parses(cell: str) -> bool:
    try:
        _number(cell)
    except ValueError:
        return False
    return True


def _lines(text: str):
    """(line number, cells) for every line that is not blank or a # comment."""
    for lineno, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        yield lineno, next(csv.reader([line]))


def read_npy(path: str | pathlib.Path) -> np.ndarray:
    """An array from a .npy file; pickled object arrays, .npz archives (whatever their
    suffix) and other files are refused with a message naming the file."""
    path = pathlib.Path(path)
    with open(path, "rb") as f:
        magic = f.read(6)
    if magic.startswith(b"PK\x03\x04"):
        try:
            with np.load(path, allow_pickle=False) as archive:
                files = list(archive.files)
        except Exception:  # noqa: BLE001 - a damaged zip: the message says what it is
            files = []
        names = ", ".join(files[:5]) + (", ..." if len(files) > 5 else "")
        held = f" holding {names}" if names else ""
        raise DataFileError(f"{path} is a .npz (zip) archive{held}, not a .npy array; save "
                            f"one array with numpy.save")
    if magic != b"\x93NUMPY":
        raise DataFileError(f"{path} is not a .npy file (no NumPy header); save the array "
                            f"with numpy.save, or use a .csv file")
    try:
        arr = np.load(path, allow_pickle=False)
    except (ValueError, EOFError, OSError) as exc:
        raise DataFileError(f"{path} is not a plain .npy array ({' '.join(str(exc).split())})"
                            ) from None
    return arr
