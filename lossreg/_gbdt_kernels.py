"""Numba kernels of the boosting objectives.

An objective call is one fused pass from the booster's margin and labels to the
weighted, floored gradient and Hessian, written in the margin's dtype (float32 for
XGBoost): no float64 copies of the inputs, no intermediate arrays, no second pass for the
link or the floor, and bad input only flagged (the caller then takes the loss's own
checked path for the typed error):

* ``compile_objective``: any element-wise loss from its element function, under the
  identity or the sigmoid link (float64 arithmetic, the element function's own);
* ``softmax_objective``: softmax_cross_entropy on class labels (float64 arithmetic);
* ``logistic32_objective``: binary_cross_entropy_with_logits on float32 margins, in
  float32 arithmetic (a vectorizable expf: the float64 exp costs 3.4 ns per element on
  the AVX2 development machine, NumPy's SIMD float32 exp 1.3 ns, this one under 1 ns).

Each is serial and ``nogil`` over a range of chunks, run on lossreg's worker threads
(``kernels.workers.run_chunks``) from ``SERIAL_BELOW`` elements. ``sigmoid``,
``sigmoid_chain`` and ``floor_hessian`` serve the checked path (any loss the fused
passes do not take). Imported by ``lossreg._gbdt`` on first use only.
"""

from __future__ import annotations

import numpy as np
from numba import types
from numba.extending import intrinsic

from .kernels import CHUNK, njit, vmath
from .kernels.elementwise import BLOCK
from .kernels.workers import default_workers, run_chunks

#: Fewer elements than this run on the calling thread alone: the crossover measured for
#: the loss kernels of bce and focal (``kernels.elementwise.SERIAL_BELOW``); on the shared
#: development machine (load average ~8 on 2 cores) a second thread never paid off at
#: any size, so no better value could be measured for the objectives themselves.
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
# Each chunk flags in counts[c] whether it holds a term a checked call would refuse (a
# label, a loss input or a weight outside its domain; a boolean OR, which vectorizes,
# where an int64 count made the float32 logistic loop 2x slower); the caller then takes
# the loss's own checked path, which raises the typed error. Blocks of BLOCK elements
# read weights from a block of ones when unweighted (an unconditional load keeps the
# loop vectorizable, as in lossreg.kernels.elementwise's "blocks" style).
_OBJECTIVE = """
def KERNEL(c0, c1, t, z, w, g, h, floor, counts, a_t, b_t, nan_t, a_p, b_p, nan_p{hp}):
    n = z.shape[0]
    weighted = w.shape[0] > 0
    ones = np.ones(BLOCK, dtype=np.float64)
    for c in range(c0, c1):
        lo = c * CHUNK
        hi = min(lo + CHUNK, n)
        nb = False
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
                nb = nb | (not ok)
                l, d, dd = elem(x, y{hp_call})
{chain}
                hh = floor if dd < floor else dd
                gb[j] = 0.0 if wk == 0.0 else wk * d
                hb[j] = 0.0 if wk == 0.0 else wk * hh
            b0 = b1
        counts[c] = 1 if nb else 0
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

    from .kernels._cache import attach
    from .kernels.elementwise import _inlined, _n_hyperparameters

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


# -- fused softmax objective ------------------------------------------------------------

#: Logits per block of rows of the softmax objective (a class-major float64 scratch of
#: this many values, and as many for the Hessian, stays in L1/L2).
SOFTMAX_BLOCK = 2048


@njit(nogil=True, error_model="numpy")
def _softmax_range(c0, c1, rows_per, labels, z, w, g, h, floor, hscale, ls, cw, ignore,
                   has_ignore, counts):
    """softmax_cross_entropy's gradient and floored, scaled Hessian diagonal on integer
    labels, blocks c0 <= c < c1 of ``rows_per`` rows, as ``lossreg.losses.rows``'s
    label kernels compute them (S s_j - (1-ls) w_y [j = y] - ls/C w_j, S s_j (1 - s_j),
    S = (1-ls) w_y + ls/C sum_j w_j), times the row's weight, then the Hessian scaled by
    ``hscale`` and raised to floor * weight. Each block is stored class-major in float64
    scratch so every step is a loop over the block's rows (vectorized). counts[c]: the
    block's non-finite logits, labels that are neither whole numbers in [0, C) nor
    ignore_index, and weights outside [0, max]."""
    n, n_classes = z.shape
    weighted = w.shape[0] > 0
    e = np.empty(rows_per * n_classes)
    hb = np.empty(rows_per * n_classes)
    m = np.empty(rows_per)
    se = np.empty(rows_per)
    sck = np.empty(rows_per)
    invk = np.empty(rows_per)
    massk = np.empty(rows_per)
    ck = np.empty(rows_per)
    fk = np.empty(rows_per)
    lok = np.empty(rows_per)
    yk = np.empty(rows_per, dtype=np.int64)
    smooth = ls
    if ls != 0.0 and cw.shape[0] > 0:
        s = 0.0
        for j in range(n_classes):
            s += cw[j]
        smooth = ls / n_classes * s
    elif ls == 0.0:
        smooth = 0.0
    for c in range(c0, c1):
        r0 = c * rows_per
        r1 = min(r0 + rows_per, n)
        rows = r1 - r0
        zb = z[r0:r1]
        for k in range(rows):
            zk = zb[k]
            for j in range(n_classes):
                e[j * rows + k] = np.float64(zk[j])
        bad = False
        for f in range(rows * n_classes):
            bad = bad | (abs(e[f]) > 1.7976931348623157e308) | (e[f] != e[f])
        for k in range(rows):
            m[k] = e[k]
        for j in range(1, n_classes):
            ej = e[j * rows:(j + 1) * rows]
            for k in range(rows):
                m[k] = max(m[k], ej[k])
        for k in range(rows):
            se[k] = 0.0
        for j in range(n_classes):
            ej = e[j * rows:(j + 1) * rows]
            for k in range(rows):
                ej[k] = vmath.exp(ej[k] - m[k])
            for k in range(rows):
                se[k] += ej[k]
        for k in range(rows):
            i = r0 + k
            x = np.float64(labels[i])
            ignored = has_ignore and x == ignore
            valid = (x >= 0.0) & (x < n_classes) & (x == np.floor(x))
            bad = bad | (not (valid or ignored))
            y = np.int64(x) if valid and not ignored else -1
            wy = 0.0
            if y >= 0:
                wy = cw[y] if cw.shape[0] > 0 else 1.0
            wk = w[i] if weighted else 1.0
            bad = bad | (not ((wk >= 0.0) & (wk <= 1.7976931348623157e308)))
            cc = (1.0 - ls) * wy
            yk[k] = y
            ck[k] = cc
            invk[k] = 1.0 / se[k]
            massk[k] = cc + smooth
            sck[k] = invk[k] * massk[k]
            fk[k] = wk if y >= 0 else 0.0        # ignored rows: gradient and Hessian 0
            lok[k] = floor * wk
        counts[c] = 1 if bad else 0
        for j in range(n_classes):
            ej = e[j * rows:(j + 1) * rows]
            hj = hb[j * rows:(j + 1) * rows]
            smooth_j = ls / n_classes * (cw[j] if cw.shape[0] > 0 else 1.0)
            for k in range(rows):
                q = ej[k] * invk[k]
                v = (massk[k] * (q * (1.0 - q))) * fk[k] * hscale
                hj[k] = lok[k] if v < lok[k] else v
                gk = sck[k] * ej[k] - smooth_j
                ej[k] = (gk - ck[k] if j == yk[k] else gk) * fk[k]
        gb = g[r0:r1]
        hbo = h[r0:r1]
        for k in range(rows):
            gr = gb[k]
            hr = hbo[k]
            for j in range(n_classes):
                gr[j] = e[j * rows + k]
                hr[j] = hb[j * rows + k]


def softmax_objective(labels, z, w, g, h, floor: float, hscale: float, args: tuple,
                      workers: int) -> bool:
    """The fused softmax objective over (n, C) margins (``_softmax_range``), on up to
    ``workers`` threads from SERIAL_BELOW logits; False when some input is outside the
    loss's domains (the caller takes the checked path for the error)."""
    n, n_classes = z.shape
    ls, cw, ignore, has_ignore = args
    rows_per = max(1, SOFTMAX_BLOCK // n_classes)
    nc = (n + rows_per - 1) // rows_per or 1
    counts = np.zeros(nc, dtype=np.int64)
    run_chunks(_softmax_range, nc, 1 if z.size < SERIAL_BELOW else workers, rows_per,
               labels, z, w, g, h, float(floor), float(hscale), float(ls), cw,
               float(ignore), bool(has_ignore), counts)
    return not counts.any()


# -- the logistic objective in float32 ---------------------------------------------------

@intrinsic
def _pow2_of_rounded(typingctx, t):
    """2**n as a float32, for t = v + 1.5 * 2**23 with n = round(v) in [-126, 127]: the
    exponent field is built from t's low bits in int32 lanes (a bitcast, a subtraction
    and a shift, all of which vectorize on AVX2, unlike a float -> int conversion)."""
    if t != types.float32:
        return None

    def codegen(context, builder, signature, args):
        i32 = context.get_value_type(types.int32)
        i = builder.bitcast(args[0], i32)
        i = builder.sub(i, i32(0x4B400000 - 127))       # bits of 1.5 * 2**23, minus the bias
        i = builder.shl(i, i32(23))
        return builder.bitcast(i, context.get_value_type(types.float32))

    return types.float32(types.float32), codegen


_F = np.float32
_LOG2E = _F(1.44269504088896341)
_MAGIC = _F(12582912.0)                  # 1.5 * 2**23: v + _MAGIC - _MAGIC rounds v
_LN2_HI = _F(0.693359375)                # Cephes' split of ln 2 (exact products)
_LN2_LO = _F(-2.12194440e-4)
_E0, _E1, _E2 = _F(1.9875691500e-4), _F(1.3981999507e-3), _F(8.3334519073e-3)
_E3, _E4, _E5 = _F(4.1665795894e-2), _F(1.6666665459e-1), _F(5.0000001201e-1)
_ONE, _ZERO = _F(1.0), _F(0.0)
_EXP_LOW = _F(-87.33654)                 # below, e**x is under float32's normal range: 0
_MAX32 = _F(np.finfo(np.float32).max)


@njit(inline="always", error_model="numpy")
def _exp_nonpositive32(x):
    """e**x for float32 x <= 0 (Cephes' expf: within 1.4 ulp, measured), 0 below -87.34."""
    xc = max(x, _EXP_LOW)
    t = xc * _LOG2E + _MAGIC
    k = t - _MAGIC
    r = (xc - k * _LN2_HI) - k * _LN2_LO
    p = _E0
    p = p * r + _E1
    p = p * r + _E2
    p = p * r + _E3
    p = p * r + _E4
    p = p * r + _E5
    v = ((p * r) * r + r + _ONE) * _pow2_of_rounded(t)
    return v if x >= _EXP_LOW else _ZERO


@njit(nogil=True, error_model="numpy")
def _logistic32_range(c0, c1, t, z, w, g, h, floor, a, b, counts):
    """binary_cross_entropy_with_logits (scalar weights a of the positive, b of the
    negative term) on float32 margins, labels and weights, in float32 arithmetic: with
    p = sigmoid(z), q = sigmoid(-z) (both from exp(-|z|), no 1 - p),
    g = b (1 - y) p - a y q and h = (a y + b (1 - y)) p q, then weighted and floored as
    the other objective kernels. counts[c]: labels outside [0, 1], non-finite margins and
    weights outside [0, float32 max] in chunk c."""
    n = z.shape[0]
    weighted = w.shape[0] > 0
    ones = np.ones(BLOCK, dtype=np.float32)
    af = np.float32(a)
    bf = np.float32(b)
    fl = np.float32(floor)
    for c in range(c0, c1):
        lo = c * CHUNK
        hi = min(lo + CHUNK, n)
        nb = False
        b0 = lo
        while b0 < hi:
            b1 = min(b0 + BLOCK, hi)
            tb = t[b0:b1]
            zb = z[b0:b1]
            gb = g[b0:b1]
            hb = h[b0:b1]
            wb = w[b0:b1] if weighted else ones[:b1 - b0]
            for j in range(b1 - b0):
                y = tb[j]
                x = zb[j]
                wk = wb[j]
                ok = (y >= _ZERO) & (y <= _ONE) & (abs(x) <= _MAX32) & \
                    (wk >= _ZERO) & (wk <= _MAX32)
                nb = nb | (not ok)
                u = _exp_nonpositive32(-abs(x))
                big = _ONE / (_ONE + u)
                small = u * big
                p = big if x >= _ZERO else small
                q = small if x >= _ZERO else big
                ny = _ONE - y
                d = bf * ny * p - af * y * q
                dd = (af * y + bf * ny) * (big * small)
                hh = fl if dd < fl else dd
                gb[j] = _ZERO if wk == _ZERO else wk * d
                hb[j] = _ZERO if wk == _ZERO else wk * hh
            b0 = b1
        counts[c] = 1 if nb else 0


def logistic32_objective(t, z, w, g, h, floor: float, a: float, b: float,
                         workers: int) -> bool:
    """The float32 logistic objective over flat float32 arrays (``_logistic32_range``;
    ``w`` float32 or empty); False when some term is outside the loss's domains."""
    n = z.shape[0]
    nc = _chunks(n) or 1
    counts = np.empty(nc, dtype=np.int64)
    run_chunks(_logistic32_range, nc, 1 if n < SERIAL_BELOW else workers, t, z, w, g, h,
               float(floor), float(a), float(b), counts)
    return not counts.any()
