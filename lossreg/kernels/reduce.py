"""Shared kernels: deterministic chunked sums and fused-free domain scans.

Every reduction splits the data into fixed chunks of ``CHUNK`` elements, sums each chunk
in float64 in index order and leaves the chunk totals to be added in order, so the result
is bit-identical whatever the thread count.

Each kernel here is ``Chunked``: compiled once, serial and ``nogil``, over a range of
units (chunks, or rows) and called as ``kernel(workers, n_units, *args)``: the caller's
plan decides how many worker threads may share the range (``workers.run_chunks``).
"""

from __future__ import annotations

import math

import numpy as np

from ._jit import njit
from .workers import run_chunks

CHUNK = 1 << 14


class Chunked:
    """A kernel ``f(u0, u1, *args)`` over units [u0, u1), compiled once (serial, nogil)
    on first use; ``chunked(workers, n_units, *args)`` runs it on up to ``workers``
    threads."""

    def __init__(self, py_func):
        self.kernel = njit(nogil=True)(py_func)
        self.__doc__ = py_func.__doc__

    def __call__(self, workers: int, n_units: int, *args) -> None:
        run_chunks(self.kernel, n_units, workers, *args)


def n_chunks(n: int, chunk: int = CHUNK) -> int:
    return max(1, (n + chunk - 1) // chunk)


def total(partials: np.ndarray) -> float:
    """Exactly rounded, order-independent sum of float64 chunk totals.

    Where plain float addition would overflow to +-inf (or give NaN for inf - inf),
    so does this; ``math.fsum`` alone raises OverflowError/ValueError there instead.
    """
    values = partials.tolist()
    try:
        return math.fsum(values)
    except OverflowError:  # finite terms whose running sum leaves the float64 range
        return math.fsum(math.ldexp(v, -64) for v in values) * 2.0 ** 64
    except ValueError:  # inf + -inf
        return math.nan


@Chunked
def chunk_sums(c0, c1, values, weights, partials):
    """partials[c] = sum over chunk c of values (times weights when given)."""
    n = values.shape[0]
    weighted = weights.shape[0] > 0
    for c in range(c0, c1):
        lo = c * CHUNK
        hi = min(lo + CHUNK, n)
        s = 0.0
        if weighted:
            for i in range(lo, hi):
                s += np.float64(values[i]) * np.float64(weights[i])
        else:
            for i in range(lo, hi):
                s += np.float64(values[i])
        partials[c] = s


@Chunked
def first_outside(c0, c1, x, a, b, allow_nan, bad):
    """bad[c] = first index in chunk c with x outside [a, b] (NaN: unless allowed), or -1.

    Each chunk is first counted branch-free (a loop LLVM vectorizes: 3-4x faster than
    stopping at the first hit), and only a chunk with violations is scanned again.
    """
    n = x.shape[0]
    for c in range(c0, c1):
        lo = c * CHUNK
        hi = min(lo + CHUNK, n)
        xc = x[lo:hi]
        count = 0
        for i in range(xc.shape[0]):
            v = np.float64(xc[i])
            count += 0 if ((v >= a) & (v <= b)) | (allow_nan & (v != v)) else 1
        bad[c] = -1
        if count == 0:
            continue
        for i in range(lo, hi):
            v = np.float64(x[i])
            if not (v >= a and v <= b):
                if allow_nan and v != v:
                    continue
                bad[c] = i
                break


@Chunked
def first_not_integer(c0, c1, x, bad):
    """bad[c] = first index in chunk c whose value is not a whole number, or -1."""
    n = x.shape[0]
    for c in range(c0, c1):
        lo = c * CHUNK
        hi = min(lo + CHUNK, n)
        bad[c] = -1
        for i in range(lo, hi):
            v = np.float64(x[i])
            if v != math.floor(v):
                bad[c] = i
                break


@Chunked
def row_sum_errors(r0, r1, x, target, tol, bad):
    """bad[r] = 1 where row r of the 2-D ``x`` does not sum to target within tol."""
    for r in range(r0, r1):
        s = 0.0
        for j in range(x.shape[1]):
            s += np.float64(x[r, j])
        bad[r] = 1 if abs(s - target) > tol else 0


def first_index(bad: np.ndarray) -> int:
    """Smallest non-negative entry of a per-chunk ``bad`` array, or -1."""
    hits = bad[bad >= 0]
    return int(hits.min()) if hits.size else -1



def weighted_sum(values: np.ndarray, weights: np.ndarray, workers: int) -> float:
    """sum_i values_i (* weights_i), chunked in float64: the same number for any threads."""
    partials = np.empty(n_chunks(values.shape[0]), dtype=np.float64)
    chunk_sums(workers, partials.shape[0], values, weights, partials)
    return total(partials)


def first_outside_index(x: np.ndarray, a: float, b: float, allow_nan: bool,
                        workers: int) -> int:
    """First flat index of the 1-D ``x`` outside [a, b] (NaN unless allowed), or -1."""
    bad = np.empty(n_chunks(x.shape[0]), dtype=np.int64)
    first_outside(workers, bad.shape[0], x, a, b, allow_nan, bad)
    return first_index(bad)
