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

Reductions are deterministic: chunks of ``CHUNK`` elements, four float64 accumulators
per chunk in a fixed interleave, chunk totals summed exactly by the dispatcher.
"""

from __future__ import annotations

import hashlib
import inspect
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
from numba import prange

from ._jit import njit
from .reduce import CHUNK

KINDS = ("sum", "none", "grad", "value_grad")

# Shared signature of every fused kernel:
#   (t, p, w, out, scale, partials, bad, a_t, b_t, nan_t, a_p, b_p, nan_p, check, *hp)
# t, p: 1-D contiguous inputs of the working dtype; w: weights or an empty array;
# out: values ("none") or gradient ("grad", "value_grad") or an empty array ("sum");
# partials[c]: chunk sums of w*l; bad[c, 0|1]: first index in chunk c where y_true|y_pred
# leaves [a, b] (NaN allowed when nan_*), or -1; check=False skips the scan.
_HEADER = """
def {name}(t, p, w, out, scale, partials, bad, a_t, b_t, nan_t, a_p, b_p, nan_p, check, *hp):
    n = t.shape[0]
    weighted = w.shape[0] > 0
    for c in prange(partials.shape[0]):
        lo = c * CHUNK
        hi = min(lo + CHUNK, n)
        s0 = 0.0
        s1 = 0.0
        s2 = 0.0
        s3 = 0.0
        if weighted:
{weighted}
        else:
{unweighted}
        partials[c] = (s0 + s1) + (s2 + s3)
        bad[c, 0] = -1
        bad[c, 1] = -1
        if check:
            nb = 0
            for i in range(lo, hi):
                x = np.float64(t[i])
                y = np.float64(p[i])
                ok_t = ((x >= a_t) & (x <= b_t)) | (nan_t & (x != x))
                ok_p = ((y >= a_p) & (y <= b_p)) | (nan_p & (y != y))
                nb += not (ok_t & ok_p)
            if nb > 0:
                for i in range(lo, hi):
                    x = np.float64(t[i])
                    if not (((x >= a_t) & (x <= b_t)) | (nan_t & (x != x))):
                        bad[c, 0] = i
                        break
                for i in range(lo, hi):
                    y = np.float64(p[i])
                    if not (((y >= a_p) & (y <= b_p)) | (nan_p & (y != y))):
                        bad[c, 1] = i
                        break
"""

# Per-element statements; {i} is the index expression, {k} the accumulator lane.
_STATEMENTS = {
    "sum": ["s{k} += {w}l{k}"],
    "none": ["out[{i}] = {w}l{k}"],
    "grad": ["out[{i}] = scale * {w}d{k}"],
    "value_grad": ["s{k} += {w}l{k}", "out[{i}] = scale * {w}d{k}"],
}


def _loop(kind: str, weighted: bool, indent: str) -> str:
    """Source of one chunk's loop, unrolled by four with a scalar tail."""

    def element(i: str, k: int) -> list[str]:
        lines = [f"l{k}, d{k} = elem(t[{i}], p[{i}], *hp)"]
        wf = ""
        if weighted:
            lines.append(f"w{k} = np.float64(w[{i}])")
            wf = f"w{k} * "
        lines += [s.format(i=i, k=k, w=wf) for s in _STATEMENTS[kind]]
        return lines

    body = ["i = lo", "while i + 4 <= hi:"]
    for k in range(4):
        body += ["    " + line for line in element(f"i + {k}" if k else "i", k)]
    body += ["    i += 4", "while i < hi:"]
    body += ["    " + line for line in element("i", 0)]
    body += ["    i += 1"]
    return "\n".join(indent + line for line in body)


def _source(name: str, kind: str) -> str:
    pad = " " * 12
    return _HEADER.format(name=name, weighted=_loop(kind, True, pad),
                          unweighted=_loop(kind, False, pad))


def _build(elem: Callable, kind: str, parallel: bool) -> Callable:
    py = getattr(elem, "py_func", elem)
    text = _source("KERNEL", kind)
    digest = hashlib.sha1(text.encode()).hexdigest()[:10]
    name = f"{py.__name__}__{kind}{'' if parallel else '_serial'}__{digest}"
    filename = inspect.getsourcefile(py) or "<lossreg-generated>"
    namespace: dict[str, Any] = {"np": np, "prange": prange, "CHUNK": CHUNK, "elem": elem}
    exec(compile(text.replace("KERNEL", name, 1), filename, "exec"), namespace)
    func = namespace[name]
    func.__qualname__ = name
    func.__module__ = py.__module__
    return njit(parallel=parallel)(func)


@dataclass
class FusedKernels:
    """Generated kernels for one element-wise loss; compiled lazily on first call."""

    elem: Callable
    parallel: dict
    serial: dict

    def get(self, kind: str, serial: bool) -> Callable:
        return (self.serial if serial else self.parallel)[kind]


def _per_element(elem: Callable, derivative: bool, parallel: bool) -> Callable:
    index = 1 if derivative else 0
    py = getattr(elem, "py_func", elem)
    text = f'''
def KERNEL(y_true, y_pred, out, *hp):
    for i in prange(y_pred.shape[0]):
        out[i] = elem(y_true[i], y_pred[i], *hp)[{index}]
'''
    name = f"{py.__name__}__{'gradient' if derivative else 'forward'}{'' if parallel else '_serial'}"
    namespace: dict[str, Any] = {"prange": prange, "elem": elem}
    exec(compile(text.replace("KERNEL", name, 1), inspect.getsourcefile(py) or "<lossreg>", "exec"),
         namespace)
    func = namespace[name]
    func.__qualname__ = name
    func.__module__ = py.__module__
    return njit(parallel=parallel)(func)


def elementwise_kernels(elem: Callable) -> dict[str, Any]:
    """``forward``, ``gradient`` and ``fused`` entries for a LossSpec, from ``elem``.

    Use as ``LossSpec(..., **elementwise_kernels(_huber_elem))``.
    """
    fused = FusedKernels(
        elem=elem,
        parallel={k: _build(elem, k, True) for k in KINDS},
        serial={k: _build(elem, k, False) for k in KINDS},
    )
    return {"forward": _per_element(elem, False, True),
            "gradient": _per_element(elem, True, True),
            "fused": fused}
