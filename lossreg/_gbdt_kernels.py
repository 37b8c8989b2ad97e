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


# -- fused element-wise objectives ---------------------------------------------------------

_MAX_WEIGHT = float(np.finfo(np.float64).max)

# One pass from the booster's margin and labels (float32 from XGBoost, or float64) to
# the weighted, floored gradient and Hessian in the booster's dtype: no float64 copies of
# the inputs, no intermediate arrays, no second pass for the link or the floor. The
# arithmetic is float64 throughout (the element function's own), rounded once on store.
# Each chunk counts the terms a checked call would refuse (a label, a loss input or a
# weight outside its domain) into counts[c]; the caller then takes the loss's own
# checked path, which raises the typed error. Blocks of BLOCK elements read weights from
# a block of ones when unweighted (an unconditional load keeps the loop vectorizable,
# as in lossreg.kernels.elementwise's "blocks" style).
_OBJECTIVE = """
def KERNEL(c0, c1, t, z, w, g, h, floor, counts, a_t, b_t, nan_t, a_p, b_p, nan_p{hp}):
    n = z.shape[0]
    weighted = w.shape[0] > 0
    ones = np.ones(BLOCK, dtype=np.float64)
    for c in range(c0, c1):
        lo = c * CHUNK
        hi = min(lo + CHUNK, n)
        nb = 0
        b0 = lo
        while b0 < hi:
            b1 = min(b0 + BLOCK, hi)
            tb = t[b0:b1]
            zb = z[b0:b1]
            gb = g[b0:b1]
            hb = h[b0:b1]
            wb = w[b0:b1] if weighted else ones[:b1 - b0]
            for j in range(b1 - b0):
                x = np.float64(tb[j])
                v = np.float64(zb[j])
{link}
                wk = np.float64(wb[j])
                ok = (((x >= a_t) & (x <= b_t)) | (nan_t & (x != x))) & \\
                    (((y >= a_p) & (y <= b_p)) | (nan_p & (y != y))) & \\
                    ((wk >= 0.0) & (wk <= MAX_WEIGHT))
                nb += 0 if ok else 1
                l, d, dd = elem(x, y{hp_call})
{chain}
                hh = floor if dd < floor else dd
                gb[j] = 0.0 if wk == 0.0 else wk * d
                hb[j] = 0.0 if wk == 0.0 else wk * hh
            b0 = b1
        counts[c] = nb
"""

_IDENTITY = "                y = v"
_SIGMOID = """                u = vmath.exp(-abs(v))
                big = 1.0 / (1.0 + u)
                small = u * big
                y = big if v >= 0.0 else small"""
# derivatives in p = sigmoid(v) -> in v: g s', h s'^2 + g s'' (s' = s (1 - s),
# s'' = s' (1 - 2 s)), as sigmoid_chain
_CHAIN = """                d1 = big * small
                d2 = d1 * (small - big) if v >= 0.0 else d1 * (big - small)
                dd = dd * (d1 * d1) + d * d2
                d = d * d1"""


def _objective_source(link: str, n_hp: int) -> str:
    hp = "".join(f", hp{k}" for k in range(n_hp))
    return _OBJECTIVE.format(hp=hp, hp_call=hp,
                             link=_SIGMOID if link == "sigmoid" else _IDENTITY,
                             chain=_CHAIN if link == "sigmoid" else "")


def compile_objective(elem, link: str):
    """The fused objective kernel of the element function ``elem`` (``(l, dl, d2l)``)
    under ``link`` ("identity" or "sigmoid"): ``kernel(c0, c1, t, z, w, g, h, floor,
    counts, a_t, b_t, nan_t, a_p, b_p, nan_p, *hp)`` over chunks [c0, c1). Generated
    from source with ``elem`` inlined (so the loop vectorizes) and kept in lossreg's
    on-disk kernel cache, like the loss's own fused kernels."""
    import hashlib
    import inspect

    from numba.core.registry import CPUDispatcher

    from .kernels import vmath
    from .kernels._cache import attach
    from .kernels.elementwise import BLOCK, _inlined, _n_hyperparameters

    py = getattr(elem, "py_func", elem)
    text = _objective_source(link, _n_hyperparameters(elem))
    name = f"{py.__name__}__objective_{link}__{hashlib.sha1(text.encode()).hexdigest()[:10]}"
    namespace = {"np": np, "CHUNK": CHUNK, "BLOCK": BLOCK, "elem": _inlined(elem),
                 "vmath": vmath, "MAX_WEIGHT": _MAX_WEIGHT}
    exec(compile(text.replace("KERNEL", name, 1), inspect.getsourcefile(py)
                 or "<lossreg-generated>", "exec"), namespace)
    func = namespace[name]
    func.__qualname__ = name
    func.__module__ = py.__module__
    return attach(CPUDispatcher(py_func=func, locals={},
                                targetoptions={"nopython": True, "nogil": True,
                                               "error_model": "numpy"}))


def run_objective(kernel, workers: int, t, z, w, g, h, floor: float, bounds: tuple,
                  args: tuple) -> bool:
    """Run a ``compile_objective`` kernel over flat arrays, on up to ``workers`` threads
    from SERIAL_BELOW elements; False when some term is outside the loss's domains
    (nothing is raised: the caller takes the checked path for the error)."""
    n = z.shape[0]
    nc = _chunks(n) or 1
    counts = np.empty(nc, dtype=np.int64)
    run_chunks(kernel, nc, 1 if n < SERIAL_BELOW else workers, t, z, w, g, h,
               float(floor), counts, *bounds, *args)
    return not counts.any()


#: (element function, link) -> compiled objective kernel, shared by every objective of
#: a loss (a test may clear it).
OBJECTIVE_KERNELS: dict = {}


def objective_kernel(elem, link: str):
    """``compile_objective(elem, link)``, built once per process (compiled on first
    call, or loaded from the kernel cache)."""
    key = (getattr(elem, "py_func", elem), link)
    kernel = OBJECTIVE_KERNELS.get(key)
    if kernel is None:
        kernel = OBJECTIVE_KERNELS[key] = compile_objective(elem, link)
    return kernel
