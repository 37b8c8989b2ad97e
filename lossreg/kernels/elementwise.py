"""Kernel factory for element-wise losses: one scalar function, every fused kernel.

A loss module writes one scalar function ``elem(t, p, *hp) -> (loss, dloss/dp)`` in
float64 and decorates it with ``lossreg.kernels.njit``. ``elementwise_kernels(elem)``
then builds, once per loss (not per call), module-level style kernels that

* fill per-element values or derivatives (the plain ``forward``/``gradient`` pair every
  spec must have), and
* fuse value, gradient, weights, reduction and the domain checks into one pass over the
  data (``FusedKernels``), with a serial twin of each for small inputs.

The kernels are generated from source text (numbagg style) and compiled with the
element function as a global, so Numba's on-disk cache can store them: the generated
code is attributed to the element function's own file, whose modification time then
invalidates the cache when the loss changes.

Two styles (``elementwise_kernels(elem, style=...)``): "quads" (the default, for cheap
arithmetic that is bandwidth-bound) specialises each fused kernel, as source rather than
a runtime branch, for weighted or unweighted input and for checked or unchecked domains;
"blocks" (for losses calling ``lossreg.kernels.vmath``) maps blocks with a loop LLVM's
loop vectorizer handles and takes weighting and checking as runtime flags, because its
chunk function is expensive to compile. Variants are built lazily the first time they
are asked for: a call compiles only the loop it runs. The domain
check is folded into the main loop branch-free (an integer count of violations next to
the float accumulators; the data are read once); only a chunk that contains a violation
is rescanned to find its first bad index.

Reductions are deterministic: chunks of ``CHUNK`` elements, four float64 accumulators
per chunk in a fixed interleave, chunk totals summed exactly by the dispatcher.
"""

from __future__ import annotations

import hashlib
import inspect
from typing import Any, Callable

import numpy as np
import numba
from numba import prange

from numba.core import config as numba_config
from numba.core.compiler_lock import global_compiler_lock
from numba.core.registry import CPUDispatcher

from ._jit import CACHE, njit
from .reduce import CHUNK

KINDS = ("sum", "none", "grad", "value_grad")

# Shared signature of every fused kernel:
#   (t, p, w, out, scale, partials, bad, a_t, b_t, nan_t, a_p, b_p, nan_p, check, *hp)
# t, p: 1-D contiguous inputs of the working dtype; w: weights or an empty array;
# out: values ("none") or gradient ("grad", "value_grad") or an empty array ("sum");
# partials[c]: chunk sums of w*l; bad[c, 0|1]: first index in chunk c where y_true|y_pred
# leaves [a, b] (NaN allowed when nan_*), or -1. ``w`` and ``check`` are part of the
# signature for every variant; a variant built unweighted / unchecked ignores them.
_CHUNKED = """
def {name}(t, p, w, out, scale, partials, bad, a_t, b_t, nan_t, a_p, b_p, nan_p, check, *hp):
    n = t.shape[0]
    for c in prange(partials.shape[0]):
        lo = c * CHUNK
        hi = min(lo + CHUNK, n)
{loop}
        partials[c] = (s0 + s1) + (s2 + s3)
        bad[c, 0] = -1
        bad[c, 1] = -1
{locate}
"""

_OK_T = "(((x >= a_t) & (x <= b_t)) | (nan_t & (x != x)))"
_OK_P = "(((y >= a_p) & (y <= b_p)) | (nan_p & (y != y)))"

def _loop(kind: str, weighted: bool, check: bool, indent: str) -> str:
    """Source of one chunk's loop over [lo, hi): quads of elements, then a scalar tail.

    Element i adds into float64 lane (i - lo) % 4 (the tail into lane 0), in index order,
    so a chunk's sum never depends on the thread count. The four lanes of a quad are
    isomorphic and independent, which lets LLVM's SLP vectorizer turn a quad into vector
    instructions without reassociating anything (no fastmath). When checked, each quad
    also counts its domain violations branch-free, so the data are read once; only a
    chunk with violations is rescanned for its first bad index.
    """
    summed = kind in ("sum", "value_grad")

    def element(i: str, k: int) -> list[str]:
        lines = [f"l{k}, d{k} = elem(u{k}, v{k}, *hp)"]
        wf = ""
        if weighted:
            lines.append(f"w{k} = np.float64(w[{i}])")
            wf = f"w{k} * "
        if summed:
            lines.append(f"s{k} += {wf}l{k}")
        if kind == "none":
            lines.append(f"out[{i}] = {wf}l{k}")
        if kind in ("grad", "value_grad"):
            lines.append(f"out[{i}] = scale * {wf}d{k}")
        return lines

    def loads(i: str, k: int) -> list[str]:
        return [f"u{k} = t[{i}]", f"v{k} = p[{i}]"]

    def checks(k: int) -> str:
        ok = f"({_OK_T.replace('x', f'x{k}')} & {_OK_P.replace('y', f'y{k}')})"
        return f"(0.0 if {ok} else 1.0)" if summed else f"(not {ok})"

    # Violation counters (measured at 1e7 float64, 2 threads): a kind that sums keeps
    # one float64 counter per lane, which SLP packs next to the value lanes; a kind
    # that does not sum is loop-vectorized whole, which wants a single integer counter.
    body = ["s0 = 0.0", "s1 = 0.0", "s2 = 0.0", "s3 = 0.0"]
    if check:
        body += (["nb0 = 0.0", "nb1 = 0.0", "nb2 = 0.0", "nb3 = 0.0"] if summed
                 else ["nb = 0"])
    body += ["i = lo", "while i + 4 <= hi:"]
    index = ["i", "i + 1", "i + 2", "i + 3"]
    for k in range(4):
        body += ["    " + line for line in loads(index[k], k)]
    if check:
        for k in range(4):
            body += [f"    x{k} = np.float64(u{k})", f"    y{k} = np.float64(v{k})"]
        if summed:
            body += [f"    nb{k} += {checks(k)}" for k in range(4)]
        else:
            body.append("    nb += " + " + ".join(checks(k) for k in range(4)))
    for k in range(4):
        body += ["    " + line for line in element(index[k], k)]
    body += ["    i += 4", "while i < hi:"]
    body += ["    " + line for line in loads("i", 0)]
    if check:
        body += ["    x0 = np.float64(u0)", "    y0 = np.float64(v0)",
                 f"    {'nb0' if summed else 'nb'} += {checks(0)}"]
    body += ["    " + line for line in element("i", 0)]
    body += ["    i += 1"]
    if check and summed:
        body.append("nb = (nb0 + nb1) + (nb2 + nb3)")
    return "\n".join(indent + line for line in body)


def _locate(check: bool, target_t: str, target_p: str, indent: str) -> str:
    """Rescan [lo, hi) for the first bad index of each argument, only if nb > 0."""
    if not check:
        return ""
    lines = ["if nb > 0:",
             "    for i in range(lo, hi):",
             "        x = np.float64(t[i])",
             f"        if not {_OK_T}:",
             f"            {target_t} = i",
             "            break",
             "    for i in range(lo, hi):",
             "        y = np.float64(p[i])",
             f"        if not {_OK_P}:",
             f"            {target_p} = i",
             "            break"]
    return "\n".join(indent + line for line in lines)


BLOCK = 2048   # elements per scratch block of the "blocks" style (16 KiB of float64: L1)


def _blocked_loop(kind: str, indent: str, n_hp: int) -> str:
    """Source of one chunk's loop in the "blocks" style: map, then sum.

    For losses built on transcendental functions (``lossreg.kernels.vmath``), whose
    polynomials the SLP vectorizer does not pack across quads but the loop vectorizer
    does. Each block of BLOCK elements is first mapped by a loop with no float reduction
    (so LLVM vectorizes it without fastmath): per-element weighted losses go to an
    L1-resident scratch block, derivatives to ``out``, and domain violations to an
    integer count. The scratch block is then summed in the same four-lane order as the
    "quads" style (element i into lane (i - lo) % 4, the chunk's tail into lane 0), so
    both styles give bit-identical sums (an absent weight is 1.0: x * 1.0 == x exactly).

    Weighting and checking are runtime choices here, not separate compiles (a
    vmath-heavy chunk takes seconds to compile): unweighted input reads weights from a
    block of ones (an unconditional load keeps the loop vectorizable; a conditional one
    made it 1.8x slower), and the domain count is always taken (cheap next to the
    rest) but only read by a checked call.
    """
    summed = kind in ("sum", "value_grad")
    body = ["weighted = w.shape[0] > 0",
            "ones = np.ones(BLOCK, dtype=np.float64)",
            "s0 = 0.0", "s1 = 0.0", "s2 = 0.0", "s3 = 0.0", "nb = 0"]
    if summed:
        body.append("buf = np.empty(BLOCK, dtype=np.float64)")
    # 0-based loops over slices: Numba's negative-index wraparound then folds away, which
    # the loop vectorizer needs (an index it cannot prove non-negative blocks it).
    body += ["b0 = lo", "while b0 < hi:", "    b1 = min(b0 + BLOCK, hi)",
             "    tb = t[b0:b1]", "    pb = p[b0:b1]",
             "    wb = w[b0:b1] if weighted else ones[:b1 - b0]"]
    if kind != "sum":
        body.append("    ob = out[b0:b1]")
    body += ["    for j in range(b1 - b0):", "        u = tb[j]", "        v = pb[j]"]
    # the domain count runs whether or not the call checks (a branch on the runtime flag
    # kept the "sum" loop from vectorizing: 2.9x slower on float32); only a checked call
    # looks at it
    inner = ["x = np.float64(u)", "y = np.float64(v)",
             f"nb += 0 if ({_OK_T} & {_OK_P}) else 1"]
    # hyperparameters spelled out: Numba cannot inline a call with *args
    inner.append("lk, dk = elem(u, v" + "".join(f", hp[{k}]" for k in range(n_hp)) + ")")
    inner.append("wk = np.float64(wb[j])")
    if summed:
        inner.append("buf[j] = wk * lk")
    if kind == "none":
        inner.append("ob[j] = wk * lk")
    if kind in ("grad", "value_grad"):
        inner.append("ob[j] = scale * wk * dk")
    body += ["        " + line for line in inner]
    if summed:
        body += ["    m = b1 - b0", "    j = 0", "    while j + 4 <= m:",
                 "        s0 += buf[j]", "        s1 += buf[j + 1]",
                 "        s2 += buf[j + 2]", "        s3 += buf[j + 3]",
                 "        j += 4", "    while j < m:", "        s0 += buf[j]",
                 "        j += 1"]
    body.append("    b0 = b1")
    return "\n".join(indent + line for line in body)


STYLES = ("quads", "blocks", "auto")


# The "blocks" style puts one chunk's work in its own (serial) function and the kernel is
# a prange over calls to it: Numba's parfor passes then see a tiny loop body instead of
# the inlined element function and its vmath polynomials, and the serial and parallel
# kernels share the chunk function's compile (measured: focal 5.7 s -> 2 s cold).
_CHUNK_FUNCTION = """
def KERNEL(c, t, p, w, out, scale, partials, bad, a_t, b_t, nan_t, a_p, b_p, nan_p, check, hp):
    n = t.shape[0]
    lo = c * CHUNK
    hi = min(lo + CHUNK, n)
{loop}
    partials[c] = (s0 + s1) + (s2 + s3)
    bad[c, 0] = -1
    bad[c, 1] = -1
{locate}
"""

_CHUNK_CALLS = """
def KERNEL(t, p, w, out, scale, partials, bad, a_t, b_t, nan_t, a_p, b_p, nan_p, check, *hp):
    for c in prange(partials.shape[0]):
        chunk(c, t, p, w, out, scale, partials, bad, a_t, b_t, nan_t, a_p, b_p, nan_p,
              check, hp)
"""


def _source(kind: str, weighted: bool, check: bool, style: str = "quads",
            n_hp: int = 0) -> str:
    """The kernel's source ("quads"), or the chunk function's ("blocks")."""
    if style == "blocks":
        return _CHUNK_FUNCTION.format(
            loop=_blocked_loop(kind, " " * 4, n_hp),
            locate=_locate(True, "bad[c, 0]", "bad[c, 1]", " " * 4).replace(
                "if nb > 0:", "if check and nb > 0:", 1))
    return _CHUNKED.format(name="KERNEL", loop=_loop(kind, weighted, check, " " * 8),
                           locate=_locate(check, "bad[c, 0]", "bad[c, 1]", " " * 8))


class _SLPDispatcher(CPUDispatcher):
    """A Numba dispatcher that compiles with LLVM's SLP vectorizer switched on.

    Numba turns the SLP vectorizer off by default (numba#8705), and it is the pass that
    vectorizes the four-lane quads of the fused kernels (a 1.6-2x speed-up of checked
    kernels measured here; loop vectorization cannot help because reordering the float
    sums needs fastmath). The switch is flipped only while this dispatcher compiles,
    under Numba's global compiler lock, so no other function in the process is affected.
    SLP never reassociates floating-point operations: results are bit-identical to a
    scalar compile (tests/test_fastpath.py checks the lane order exactly).
    """

    def compile(self, sig):
        with global_compiler_lock:
            previous = numba_config.SLP_VECTORIZE
            numba_config.SLP_VECTORIZE = 1
            try:
                return super().compile(sig)
            finally:
                numba_config.SLP_VECTORIZE = previous


def _inlined(elem: Callable) -> Callable:
    """A twin of the njit ``elem`` that Numba inlines into its callers (its own options).

    LLVM declines to inline a large element function (a few vmath polynomials), and a
    call in the loop body stops the loop vectorizer; Numba-level inlining always works.
    """
    options = dict(getattr(elem, "targetoptions", None) or {})
    py = getattr(elem, "py_func", None)
    if py is None:
        return elem
    for key in ("nopython", "parallel", "boundscheck", "inline"):
        options.pop(key, None)
    return numba.njit(inline="always", **options)(py)


def _n_hyperparameters(elem: Callable) -> int:
    """How many hyperparameters ``elem(t, p, *hp)`` takes (its positional parameters - 2)."""
    params = inspect.signature(getattr(elem, "py_func", elem)).parameters.values()
    if any(q.kind is q.VAR_POSITIONAL for q in params):
        raise ValueError("an element function for style='blocks' must name its "
                         "hyperparameters (no *args)")
    return len(list(params)) - 2


def _compile(elem: Callable, text: str, label: str, parallel: bool,
             chunk: Callable | None = None) -> Callable:
    """exec the generated source with ``elem`` (and ``chunk``) as globals; jit it
    (compiled lazily)."""
    py = getattr(elem, "py_func", elem)
    digest = hashlib.sha1(text.encode()).hexdigest()[:10]
    name = f"{py.__name__}__{label}__{digest}"
    filename = inspect.getsourcefile(py) or "<lossreg-generated>"
    namespace: dict[str, Any] = {"np": np, "prange": prange, "CHUNK": CHUNK, "BLOCK": BLOCK,
                                 "elem": elem, "chunk": chunk}
    exec(compile(text.replace("KERNEL", name, 1), filename, "exec"), namespace)
    func = namespace[name]
    func.__qualname__ = name
    func.__module__ = py.__module__
    dispatcher = _SLPDispatcher(py_func=func, locals={},
                                targetoptions={"nopython": True, "parallel": parallel,
                                               "error_model": "numpy"})
    if CACHE:
        dispatcher.enable_caching()
    return dispatcher


class FusedKernels:
    """Generated fused kernels of one element-wise loss, built and compiled lazily.

    ``get(kind, serial, weighted, check)`` returns the chunked kernel (shared signature
    above) for that case: specialised for it in the "quads" style, one kernel for every
    weighted/check combination in the "blocks" style. Each variant is generated on first
    request and compiled by Numba on its first call (per dtype signature).
    """

    def __init__(self, elem: Callable, style: str = "quads"):
        if style not in STYLES:
            raise ValueError(f"unknown fused kernel style {style!r}; one of {STYLES}")
        self.elem = elem
        self.style = style
        self._inline_elem: Callable | None = None
        self._kernels: dict[tuple, Callable] = {}

    def style_for(self, dtype=np.float64) -> str:
        """The style used for inputs of ``dtype`` ("auto": quads for float64, blocks for
        float32, whose conversions to float64 the SLP vectorizer handles poorly)."""
        if self.style != "auto":
            return self.style
        return "quads" if np.dtype(dtype) == np.float64 else "blocks"

    def get(self, kind: str, serial: bool, weighted: bool = True, check: bool = True,
            dtype=np.float64) -> Callable:
        style = self.style_for(dtype)
        if style == "blocks":               # runtime flags there: one variant serves all
            weighted = check = True
        key = (kind, bool(serial), bool(weighted), bool(check), style)
        kernel = self._kernels.get(key)
        if kernel is None:
            if kind not in KINDS:
                raise ValueError(f"unknown fused kernel kind {kind!r}; one of {KINDS}")
            label = (f"{kind}{'_serial' if serial else ''}{'_w' if weighted else ''}"
                     f"{'_checked' if check else ''}_{style}")
            if style == "blocks":
                kernel = _compile(self.elem, _CHUNK_CALLS, label, not serial,
                                  chunk=self._chunk(kind, weighted, check))
            else:
                kernel = _compile(self.elem, _source(kind, weighted, check), label,
                                  not serial)
            kernel = self._kernels.setdefault(key, kernel)
        return kernel

    def _chunk(self, kind: str, weighted: bool, check: bool) -> Callable:
        """The "blocks" chunk function for a variant, shared by its serial and parallel
        kernels (compiled once per dtype)."""
        key = ("chunk", kind, weighted, check)
        chunk = self._kernels.get(key)
        if chunk is None:
            if self._inline_elem is None:
                self._inline_elem = _inlined(self.elem)
            label = f"{kind}{'_w' if weighted else ''}{'_checked' if check else ''}_chunk"
            text = _source(kind, weighted, check, "blocks", _n_hyperparameters(self.elem))
            chunk = self._kernels.setdefault(key, _compile(self._inline_elem, text, label,
                                                           False))
        return chunk


def _per_element(elem: Callable, derivative: bool, parallel: bool) -> Callable:
    index = 1 if derivative else 0
    py = getattr(elem, "py_func", elem)
    text = f'''
def KERNEL(y_true, y_pred, out, *hp):
    for i in prange(y_pred.shape[0]):
        out[i] = elem(y_true[i], y_pred[i], *hp)[{index}]
'''
    kind = "gradient" if derivative else "forward"
    name = f"{py.__name__}__{kind}{'' if parallel else '_serial'}"
    namespace: dict[str, Any] = {"prange": prange, "elem": elem}
    exec(compile(text.replace("KERNEL", name, 1), inspect.getsourcefile(py) or "<lossreg>", "exec"),
         namespace)
    func = namespace[name]
    func.__qualname__ = name
    func.__module__ = py.__module__
    return njit(parallel=parallel)(func)


def elementwise_kernels(elem: Callable, style: str = "quads") -> dict[str, Any]:
    """``forward``, ``gradient`` and ``fused`` entries for a LossSpec, from ``elem``.

    Use as ``LossSpec(..., **elementwise_kernels(_huber_elem))``. ``style`` picks how the
    fused kernels vectorize: "quads" (SLP over four independent lanes; best for cheap,
    bandwidth-bound float64 arithmetic such as MSE or Huber), "blocks" (a map loop the
    loop vectorizer handles, then a sum; best when ``elem`` calls
    ``lossreg.kernels.vmath`` exp/log, or has branches) or "auto" (quads for float64,
    blocks for float32). All give bit-identical results.
    """
    return {"forward": _per_element(elem, False, True),
            "gradient": _per_element(elem, True, True),
            "fused": FusedKernels(elem, style)}
