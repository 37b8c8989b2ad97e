"""lossreg.kernels.vmath: vectorizable exp/log/log1p within one ulp, special values exact,
and the "blocks" fused-kernel style bit-identical to the "quads" style."""

from __future__ import annotations

import numpy as np
import pytest

from lossreg.kernels import elementwise_kernels, njit, vmath
from lossreg.kernels.elementwise import HESSES, KINDS, SUMMED
from lossreg.kernels.reduce import n_chunks

pytestmark = pytest.mark.skipif(np.finfo(np.longdouble).eps >= np.finfo(np.float64).eps,
                                reason="needs an extended-precision long double reference")


@njit(error_model="numpy")
def _exp_all(x, out):
    for i in range(x.shape[0]):
        out[i] = vmath.exp(x[i])


@njit(error_model="numpy")
def _log_all(x, out):
    for i in range(x.shape[0]):
        out[i] = vmath.log(x[i])


@njit(error_model="numpy")
def _log1p_all(x, out):
    for i in range(x.shape[0]):
        out[i] = vmath.log1p(x[i])


FUNCS = {"exp": (_exp_all, np.exp), "log": (_log_all, np.log), "log1p": (_log1p_all, np.log1p)}


def _inputs(name: str) -> np.ndarray:
    rng = np.random.default_rng(7)
    n = 200_000
    if name == "exp":
        parts = [rng.uniform(-745.5, 709.9, n), rng.normal(0, 1, n), rng.normal(0, 1e-9, n),
                 rng.uniform(-745.2, -708.0, n)]          # subnormal results
    elif name == "log":
        parts = [np.exp(rng.uniform(-744, 709, n)), rng.uniform(0.5, 2.0, n),
                 1.0 + rng.normal(0, 1e-9, n), rng.uniform(0, 2.2e-308, n)]  # subnormals
    else:
        parts = [rng.uniform(-1, 1, n), rng.normal(0, 1e-9, n),
                 np.exp(rng.uniform(-700, 709, n)), -np.exp(rng.uniform(-700, 0, n))]
    return np.concatenate(parts)


def _ulp_error(got: np.ndarray, exact: np.ndarray) -> float:
    with np.errstate(over="ignore"):
        nearest = exact.astype(np.float64)
    keep = np.isfinite(nearest) & (nearest != 0)
    spacing = np.spacing(np.abs(nearest[keep])).astype(np.longdouble)
    return float(np.max(np.abs(got[keep].astype(np.longdouble) - exact[keep]) / spacing))


@pytest.mark.parametrize("name", sorted(FUNCS))
def test_within_one_and_a_half_ulp_of_long_double(name):
    kernel, ref = FUNCS[name]
    x = _inputs(name)
    out = np.empty_like(x)
    kernel(x, out)
    with np.errstate(over="ignore"):
        exact = ref(x.astype(np.longdouble))
    # fdlibm's exp and log are below 1 ulp; log1p via the corrected log(1 + x) below 1.5
    assert _ulp_error(out, exact) < (1.5 if name == "log1p" else 1.0)


@pytest.mark.parametrize("name", sorted(FUNCS))
def test_special_values_match_numpy(name):
    kernel, ref = FUNCS[name]
    x = np.array([0.0, -0.0, 1.0, -1.0, -1e-300, 5e-324, 2.2e-308, 1e308, np.inf, -np.inf,
                  np.nan, 709.78, 709.79, -745.13, -745.14, 746.0, -746.0, 1e-20, -1e-20])
    out = np.empty_like(x)
    kernel(x, out)
    with np.errstate(all="ignore"):
        expected = ref(x)
    np.testing.assert_array_max_ulp(out[np.isfinite(expected)],
                                    expected[np.isfinite(expected)], maxulp=1)
    inf_or_nan = ~np.isfinite(expected)
    assert np.array_equal(out[inf_or_nan], expected[inf_or_nan], equal_nan=True)


def test_loops_calling_vmath_are_vectorized():
    """The reason vmath exists: a loop over it compiles to packed vector divisions."""
    import numba

    x = np.linspace(0.1, 3.0, 64)
    out = np.empty_like(x)
    for cached, _ in FUNCS.values():
        # an uncached compile of the same source: code loaded from the on-disk kernel
        # cache (the test session shares one) cannot be inspected
        kernel = numba.njit(cache=False, **{k: v for k, v in cached.targetoptions.items()
                                            if k in ("error_model",)})(cached.py_func)
        kernel(x, out)
        asm = kernel.inspect_asm(kernel.signatures[0])
        assert "vdivpd" in asm or "divpd" in asm, kernel


@njit(error_model="numpy")
def _softplus_elem(t, p, a):
    z = np.float64(p)
    e = vmath.log1p(vmath.exp(-abs(z)))
    s = 1.0 / (1.0 + vmath.exp(-z))
    return a * (max(z, 0.0) + e - np.float64(t) * z), a * (s - t), a * s * (1.0 - s)


_STYLES = {}


def _fused(style):
    """One FusedKernels per style for the whole module: each variant compiles once."""
    if style not in _STYLES:
        _STYLES[style] = elementwise_kernels(_softplus_elem, style=style)
    return _STYLES[style]


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("check", [False, True])
@pytest.mark.parametrize("kind", KINDS)
def test_blocks_style_is_bit_identical_to_quads(kind, weighted, check):
    quads, blocks = _fused("quads"), _fused("blocks")
    rng = np.random.default_rng(3)
    n = 3 * 16384 + 2048 + 7          # several chunks, a partial block and a tail
    t = rng.random(n).round()
    p = rng.normal(0, 4, n)
    p[[5, n - 2]] = np.nan            # checked variants must locate these
    w = rng.random(n) if weighted else np.empty(0)
    results = []
    for fused in (quads, blocks):
        out = np.empty(0 if kind == "sum" else n)
        hout = np.empty(n if kind in HESSES else 0)
        partials = np.empty(n_chunks(n))
        bad = np.empty((n_chunks(n), 2), dtype=np.int64)
        fused.get(kind, weighted)(0, n_chunks(n),
            t, p, w, out, hout, 0.25, partials, bad, 0.0, 1.0, False, -np.inf, np.inf, False,
            check, 1.5)
        results.append((out, hout, partials, bad if check else None))
    (o1, h1, s1, b1), (o2, h2, s2, b2) = results
    assert np.array_equal(o1, o2, equal_nan=True)
    assert np.array_equal(h1, h2, equal_nan=True)
    if kind in SUMMED:
        assert np.array_equal(s1, s2, equal_nan=True)
    if check:
        assert np.array_equal(b1, b2)
        assert b2[0, 1] == 5 and b2[-1, 1] == n - 2


@pytest.mark.parametrize("style", ["quads", "blocks"])
@pytest.mark.parametrize("kind", ["sum", "grad"])
def test_allowed_nan_is_counted_but_never_reported(style, kind):
    """The branch-free count tests the intervals alone, so an allowed NaN is counted; the
    rescan must still report only the real violations (first bad index per argument)."""
    fused = _fused(style)
    n = 16384 + 101
    t = np.full(n, 0.5)
    p = np.zeros(n)
    t[[3, n - 5]] = np.nan            # allowed for y_true
    t[n - 9] = 2.0                    # outside [0, 1]: reported
    p[n - 7] = np.nan                 # not allowed for y_pred: reported
    bad = np.empty((n_chunks(n), 2), dtype=np.int64)
    out = np.empty(0 if kind == "sum" else n)
    for tt, pp, expected in ((t, p, [[-1, -1], [n - 9, n - 7]]),
                             (np.where(t == 2.0, 0.5, t), np.zeros(n), [[-1, -1], [-1, -1]])):
        fused.get(kind, False)(0, n_chunks(n), tt, pp, np.empty(0), out, np.empty(0), 1.0,
                               np.empty(n_chunks(n)), bad, 0.0, 1.0, True, -np.inf, np.inf,
                               False, True, 1.5)
        assert bad.tolist() == expected


def test_unknown_style_is_refused():
    with pytest.raises(ValueError, match="style"):
        elementwise_kernels(_softplus_elem, style="fast")


def test_auto_style_picks_by_dtype_and_float32_results_match():
    """"auto" = quads for float64, blocks for float32; both styles agree on float32 too."""
    auto = elementwise_kernels(_softplus_elem, style="auto")
    assert auto.style_for(np.float64) == "quads" and auto.style_for(np.float32) == "blocks"
    rng = np.random.default_rng(5)
    n = 16384 + 1001
    t = rng.random(n).round().astype(np.float32)
    p = rng.normal(0, 4, n).astype(np.float32)
    w = rng.random(n)
    outs = []
    for fused in (_fused("quads"), _fused("blocks")):
        out = np.empty(n, np.float32)
        partials = np.empty(n_chunks(n))
        bad = np.empty((n_chunks(n), 2), dtype=np.int64)
        fused.get("value_grad", True, np.float32)(0, n_chunks(n),
            t, p, w, out, np.empty(0), 0.5, partials, bad, 0.0, 1.0, False, -np.inf, np.inf,
            False, True, 1.5)
        outs.append((out, partials))
    assert np.array_equal(outs[0][0], outs[1][0]) and np.array_equal(outs[0][1], outs[1][1])
