"""Numba kernels of the boosting objectives: the sigmoid link and the Hessian floor.

Each is one serial ``nogil`` pass over a range of chunks, run on lossreg's worker threads
(``kernels.workers.run_chunks``) like the loss kernels, so an objective call adds no
NumPy temporaries: ``sigmoid`` (margin -> p), ``sigmoid_chain`` (derivatives in p ->
derivatives in the margin, in place) and ``floor_hessian`` (scale, then per-sample floor
times weight, in place). Imported by ``lossreg._gbdt`` on first use only.
"""

from __future__ import annotations

import numpy as np

from .kernels import CHUNK, njit
from .kernels.workers import default_workers, run_chunks

#: Fewer elements than this run on the calling thread alone.
SERIAL_BELOW = 1 << 16


def _workers(n: int) -> int:
    return 1 if n < SERIAL_BELOW else default_workers()


def _chunks(n: int) -> int:
    return (n + CHUNK - 1) // CHUNK


@njit(nogil=True, error_model="numpy")
def _sigmoid_range(c0, c1, z, p):
    n = z.shape[0]
    for i in range(c0 * CHUNK, min(c1 * CHUNK, n)):
        x = z[i]
        u = np.exp(-abs(x))
        big = 1.0 / (1.0 + u)
        p[i] = big if x >= 0.0 else u * big


@njit(nogil=True, error_model="numpy")
def _chain_range(c0, c1, z, g, h):
    n = z.shape[0]
    for i in range(c0 * CHUNK, min(c1 * CHUNK, n)):
        x = z[i]
        u = np.exp(-abs(x))
        big = 1.0 / (1.0 + u)           # sigmoid(|x|)
        small = u * big                 # sigmoid(-|x|) = 1 - sigmoid(|x|), no cancellation
        d1 = big * small                # s' = s (1 - s)
        d2 = d1 * (small - big) if x >= 0.0 else d1 * (big - small)   # s'' = s' (1 - 2 s)
        gp = g[i]
        g[i] = gp * d1
        h[i] = h[i] * (d1 * d1) + gp * d2


@njit(nogil=True, error_model="numpy")
def _floor_range(c0, c1, h, w, floor, scale):
    n, k = h.shape
    r0, r1 = c0 * CHUNK, min(c1 * CHUNK, n)
    if k == 1:                          # one margin per sample: flat loops that vectorize
        flat = h[:, 0]
        if w.shape[0] > 0:
            for i in range(r0, r1):
                lo = floor * w[i]
                v = flat[i] * scale
                flat[i] = lo if v < lo else v       # NaN stays NaN: not hidden
        else:
            for i in range(r0, r1):
                v = flat[i] * scale
                flat[i] = floor if v < floor else v
        return
    weighted = w.shape[0] > 0
    for i in range(r0, r1):
        lo = floor * w[i] if weighted else floor
        for j in range(k):
            v = h[i, j] * scale
            h[i, j] = lo if v < lo else v


def sigmoid(z: np.ndarray) -> np.ndarray:
    """sigmoid(z) for a float64 array (any shape), computed without overflow."""
    flat = z.reshape(-1)
    p = np.empty_like(flat)
    run_chunks(_sigmoid_range, _chunks(flat.size), _workers(flat.size), flat, p)
    return p.reshape(z.shape)


def sigmoid_chain(z: np.ndarray, g: np.ndarray, h: np.ndarray) -> None:
    """In place: derivatives with respect to p = sigmoid(z) become derivatives with
    respect to z (g <- g s', h <- h s'^2 + g s''). float64, C-contiguous, same size."""
    zf, gf, hf = z.reshape(-1), g.reshape(-1), h.reshape(-1)
    run_chunks(_chain_range, _chunks(zf.size), _workers(zf.size), zf, gf, hf)


def floor_hessian(h: np.ndarray, w: np.ndarray, floor: float, scale: float = 1.0) -> None:
    """In place on the (n, k) Hessian rows: h <- max(scale h, floor w_row) (floor alone
    when ``w`` is empty). NaN is kept."""
    n = h.shape[0]
    run_chunks(_floor_range, _chunks(n), _workers(h.size), h, w, float(floor), float(scale))
