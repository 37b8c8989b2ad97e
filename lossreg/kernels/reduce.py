"""Shared kernels: deterministic chunked sums and fused-free domain scans.

Every reduction splits the data into fixed chunks of ``CHUNK`` elements, sums each chunk
in float64 in index order and leaves the chunk totals to be added in order, so the result
is bit-identical whatever the thread count.

Each kernel here is ``Chunked``: a serial ``nogil`` kernel over a range of units (chunks,
or rows), called as ``kernel(workers, n_units, *args)``; with ``workers > 1`` a
``prange`` driver over the same kernel runs the units on Numba's threads, launched
through ``lossreg._numba_threads.launch`` (fork- and thread-safe whatever the layer).
These passes move data at a fraction of a nanosecond per element, so they need the cheap
launch of Numba's threading layer (about 2 us) rather than lossreg's worker threads
(30-60 us to wake, ``workers.py``), and their small bodies compile in a fraction of a
second.
"""

from __future__ import annotations

import functools
import math
import operator

import numpy as np

from numba import prange

from .._numba_threads import launch
from ._jit import njit

CHUNK = 1 << 14


class Chunked:
    """A kernel ``f(u0, u1, *args)`` over units [u0, u1), compiled on first use: serial
    and ``nogil``, and (for ``workers > 1``) a ``prange`` driver calling it per unit.
    Each unit writes only its own slots, so the result does not depend on the threads."""

    def __init__(self, py_func):
        self.kernel = njit(nogil=True)(py_func)
        self.__doc__ = py_func.__doc__
        name = f"{py_func.__name__}_prange"
        text = (f"def {name}(n_units, *args):\n"
                f"    for u in prange(n_units):\n"
                f"        kernel(u, u + 1, *args)\n")
        namespace = {"prange": prange, "kernel": self.kernel}
        exec(compile(text, __file__, "exec"), namespace)
        driver = namespace[name]
        driver.__module__ = __name__
        driver.__qualname__ = name
        self.parallel = njit(parallel=True)(driver)

    def __call__(self, workers: int, n_units: int, *args) -> None:
        with launch(workers if n_units > 1 else 1) as parallel:
            if parallel:
                self.parallel(n_units, *args)
                return
        self.kernel(0, n_units, *args)


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
    stopping at the first hit), and only a chunk with violations is scanned again. The
    count tests the closed interval alone (a NaN fails it, allowed or not: the rescan
    tells them apart); without a NaN term it runs 2.7x faster (16384 float64 or float32).
    """
    n = x.shape[0]
    for c in range(c0, c1):
        lo = c * CHUNK
        hi = min(lo + CHUNK, n)
        xc = x[lo:hi]
        count = 0
        for i in range(xc.shape[0]):
            v = np.float64(xc[i])
            count += 0 if (v >= a) & (v <= b) else 1
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
def first_outside_sets(c0, c1, x, sets, bad):
    """bad[c, k] = first index in chunk c whose value is not in set k (row k of ``sets``,
    padded with NaN), or -1. One branch-free pass per chunk and set: the smallest index
    of a value outside the set, as an integer min (vectorizable; pairs, hinge's labels,
    compare with two scalars rather than loop over the set's values)."""
    n = x.shape[0]
    for c in range(c0, c1):
        lo = c * CHUNK
        hi = min(lo + CHUNK, n)
        xc = x[lo:hi]
        m = xc.shape[0]
        for k in range(sets.shape[0]):
            s = sets[k]
            first = m
            if s.shape[0] == 2:
                a, b = s[0], s[1]
                for i in range(m):
                    v = np.float64(xc[i])
                    first = min(first, m if (v == a) | (v == b) else i)
            else:
                for i in range(m):
                    v = np.float64(xc[i])
                    hit = False
                    for j in range(s.shape[0]):
                        hit |= v == s[j]
                    first = min(first, m if hit else i)
            bad[c, k] = lo + first if first < m else -1


def first_outside_label_sets(x: np.ndarray, label_sets, workers: int) -> int:
    """First flat index i of the 1-D ``x`` such that x[:i+1] lies in none of the
    ``label_sets`` (each a tuple of values), or -1: the first value outside every set,
    or the first one that contradicts the set the values before it fixed (the later of
    the first misses of each set)."""
    sets = _sets_table(tuple(tuple(s) for s in label_sets))
    bad = np.empty((n_chunks(x.shape[0]), sets.shape[0]), dtype=np.int64)
    first_outside_sets(workers, bad.shape[0], x, sets, bad)
    if (bad < 0).all(axis=0).any():             # one set holds every value (the usual case)
        return -1
    return max(first_index(bad[:, k]) for k in range(sets.shape[0]))


@functools.lru_cache(maxsize=64)
def _sets_table(label_sets: tuple) -> np.ndarray:
    """The label sets as rows of a read-only float64 table, padded with NaN (built once
    per distinct sets: a call on a mini-batch should not pay for it)."""
    width = max(len(s) for s in label_sets)
    sets = np.full((len(label_sets), width), np.nan)
    for k, s in enumerate(label_sets):
        sets[k, :len(s)] = s
    sets.flags.writeable = False
    return sets


ROW_BLOCK = 4096   # rows per unit of row_sum_errors


@Chunked
def row_sum_errors(c0, c1, x, target, tol, bad):
    """bad[r] = 1 where row r of the 2-D ``x`` does not sum to target within tol, for the
    rows of units c0 <= c < c1 (ROW_BLOCK rows each)."""
    n = x.shape[0]
    for c in range(c0, c1):
        for r in range(c * ROW_BLOCK, min((c + 1) * ROW_BLOCK, n)):
            s = 0.0
            for j in range(x.shape[1]):
                s += np.float64(x[r, j])
            bad[r] = 1 if abs(s - target) > tol else 0


NONZERO_KINDS = {"self": 1, "either": 2, "both": 3}   # Domain.nonzero_rows as a kernel code


@njit(inline="always")
def _zero_row(x, other, r, kind):
    """Whether row r breaks the ``nonzero_rows`` rule ``kind`` (1: x's row all zero;
    2: x's and other's rows both all zero; 3: no position with x and other both
    non-zero, their float64 product included)."""
    for j in range(x.shape[1]):
        v = np.float64(x[r, j])
        if kind == 1:
            if v != 0.0:
                return False
        elif kind == 2:
            if v != 0.0 or np.float64(other[r, j]) != 0.0:
                return False
        elif v * np.float64(other[r, j]) != 0.0:
            return False
    return True


@Chunked
def zero_row_errors(c0, c1, x, other, kind, bad):
    """bad[r] = 1 where row r of the 2-D ``x`` breaks the ``nonzero_rows`` rule ``kind``
    (``NONZERO_KINDS``; ``other``: the other argument, same shape), for the rows of
    units c0 <= c < c1 (ROW_BLOCK rows each)."""
    n = x.shape[0]
    for c in range(c0, c1):
        for r in range(c * ROW_BLOCK, min((c + 1) * ROW_BLOCK, n)):
            bad[r] = 1 if _zero_row(x, other, r, kind) else 0


def first_index(bad: np.ndarray) -> int:
    """Smallest non-negative entry of a per-chunk ``bad`` array, or -1."""
    hits = bad[bad >= 0]
    return int(hits.min()) if hits.size else -1



def partial_sums(values: np.ndarray, weights: np.ndarray, workers: int,
                 out: np.ndarray | None = None) -> np.ndarray:
    """The float64 chunk totals of sum_i values_i (* weights_i): ``out`` (when given,
    ``n_chunks(len(values))`` long) or a new array. ``total`` of them is
    ``weighted_sum``; a caller may combine them later (``lossreg.dask`` does)."""
    if out is None:
        out = np.empty(n_chunks(values.shape[0]), dtype=np.float64)
    chunk_sums(workers, out.shape[0], values, weights, out)
    return out


def weighted_sum(values: np.ndarray, weights: np.ndarray, workers: int) -> float:
    """sum_i values_i (* weights_i), chunked in float64: the same number for any threads."""
    return total(partial_sums(values, weights, workers))


TINY_SUM = 32   # values summed in Python below this (a compiled call costs more)


def one_chunk_sum(values: np.ndarray, weights: np.ndarray) -> float:
    """``weighted_sum(values, weights, 1)`` of at most ``CHUNK`` values: the one chunk's
    float64 sum in index order, which is the total. Few values are added in Python:
    float64 additions (and products) in the same order, so the same bits as
    ``chunk_sums`` (Python floats are IEEE doubles; Numba does not contract a * b + c
    without fastmath)."""
    n = values.shape[0]
    if n < TINY_SUM:
        if weights.shape[0]:
            return functools.reduce(operator.add, map(operator.mul, values.tolist(),
                                                      weights.tolist()), 0.0)
        return functools.reduce(operator.add, values.tolist(), 0.0)
    one = np.empty(1, dtype=np.float64)
    chunk_sums.kernel(0, 1, values, weights, one)
    return float(one[0])


def first_outside_index(x: np.ndarray, a: float, b: float, allow_nan: bool,
                        workers: int) -> int:
    """First flat index of the 1-D ``x`` outside [a, b] (NaN unless allowed), or -1."""
    bad = np.empty(n_chunks(x.shape[0]), dtype=np.int64)
    first_outside(workers, bad.shape[0], x, a, b, allow_nan, bad)
    return first_index(bad)


@njit(nogil=True)
def row_violations(t, p, rules):
    """How many rule violations the 2-D ``t`` and ``p`` hold, in one serial pass each
    (the row-loss fast path's domain check; 0: every value and row is fine, else
    ``dispatch.check_domains`` locates the first one with the usual scans).

    ``rules`` (float64, 16 slots): for t then p, (check interval, a, b, allow NaN, check
    row sum, target, tol, nonzero rows) as 0/1 flags, bounds and a ``NONZERO_KINDS``
    code (0: none). The rules are those of ``first_outside`` (a value outside [a, b],
    NaN unless allowed), ``row_sum_errors`` (a float64 row sum in index order off target
    by more than tol) and ``zero_row_errors`` (the same ``_zero_row``), so a 0 here
    means those scans find nothing. The interval count is one branch-free loop over the flat
    array (vectorized); row sums run four rows at a time (four independent chains of
    adds, each in index order: the same sums as one row at a time).
    """
    count = 0
    for k in range(2):
        x = t if k == 0 else p
        other = p if k == 0 else t
        base = 8 * k
        if rules[base] != 0.0:
            a, b = rules[base + 1], rules[base + 2]
            allow_nan = rules[base + 3] != 0.0
            flat = x.reshape(x.size)
            outside = 0
            for i in range(flat.shape[0]):
                v = np.float64(flat[i])
                outside += (v < a) | (v > b) | (v != v)
            if outside and allow_nan:           # NaN counted above: recount allowing it
                outside = 0
                for i in range(flat.shape[0]):
                    v = np.float64(flat[i])
                    outside += (v < a) | (v > b)
            count += outside
        if rules[base + 4] != 0.0:
            target, tol = rules[base + 5], rules[base + 6]
            n, c = x.shape
            quads = n // 4 * 4
            for r in range(0, quads, 4):
                s0 = s1 = s2 = s3 = 0.0
                for j in range(c):
                    s0 += np.float64(x[r, j])
                    s1 += np.float64(x[r + 1, j])
                    s2 += np.float64(x[r + 2, j])
                    s3 += np.float64(x[r + 3, j])
                count += ((1 if abs(s0 - target) > tol else 0)
                          + (1 if abs(s1 - target) > tol else 0)
                          + (1 if abs(s2 - target) > tol else 0)
                          + (1 if abs(s3 - target) > tol else 0))
            for r in range(quads, n):
                s = 0.0
                for j in range(c):
                    s += np.float64(x[r, j])
                count += 1 if abs(s - target) > tol else 0
        kind = int(rules[base + 7])
        if kind != 0:
            for r in range(x.shape[0]):
                count += 1 if _zero_row(x, other, r, kind) else 0
    return count
