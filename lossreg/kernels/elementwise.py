"""Kernel factory for element-wise losses: one scalar function, every fused kernel.

A loss module writes one scalar function ``elem(t, p, *hp) -> (l, dl/dp, d2l/dp2)`` in
float64 and decorates it with ``lossreg.kernels.njit``. ``elementwise_kernels(elem)``
then builds, once per loss (not per call), an ``ElementwiseKernels`` object: the loss's
one entry point of the kernel protocol (``lossreg.kernels.protocol``). Its generated
kernels fuse value, gradient, Hessian diagonal, weights, reduction and the domain checks
into one pass over the data. Each is compiled once, serial and ``nogil``, over a range of
chunks; large inputs run chunk ranges on worker threads (``workers.py``). An element
function returning only ``(l, dl/dp)`` (the wave-1 form) still works: the loss then has
no Hessian.

The kernels are generated from source text (numbagg style) and compiled with the
element function as a global, so Numba's on-disk cache can store them: the generated
code is attributed to the element function's own file, whose modification time then
invalidates the cache when the loss changes.

Two styles (``elementwise_kernels(elem, style=...)``): "quads" (the default, for cheap
arithmetic that is bandwidth-bound) specialises each fused kernel, as source rather than
a runtime branch, for weighted or unweighted input; "blocks" (for losses calling
``lossreg.kernels.vmath``) maps blocks with a loop LLVM's loop vectorizer handles and
takes weighting as a runtime flag, because its chunk function is expensive to compile.
Checking is a runtime flag in both styles: the domain count is always taken, folded
into the main loop branch-free (the data are read once), and only a checked call reads
it and rescans a chunk that contains a violation for its first bad index. Variants are
built lazily the first time they are asked for: a call compiles only the loop it runs.
Kinds: "sum" (value), "none" (per-element values), "grad", "value_grad" (sum and
gradient), "grad_hess" (gradient and Hessian diagonal; also serves the Hessian alone) and
"value_grad_hess". A kind that does not sum never computes the loss (for a loss of logs
and exps that halves a gradient's cost). Per loss and dtype that is at most 6 kinds x 2
(weighted, quads only) = 12 compiled kernels, each built on first use; the public
methods use 5 of them (wave 1: 4 kinds x serial/parallel x weighted x checked = 32, plus
the per-element forward/gradient pair).

Reductions are deterministic: chunks of ``CHUNK`` elements, four float64 accumulators
per chunk in a fixed interleave, chunk totals summed exactly by the dispatcher.
"""

from __future__ import annotations

import hashlib
import inspect
from typing import Any, Callable

import numpy as np
import numba

from numba.core import config as numba_config
from numba.core.compiler_lock import global_compiler_lock

from ._cache import attach
from ._jit import LossregDispatcher
from .protocol import Job, Kernels, Outcome, _qualname, clean
from .reduce import CHUNK, first_index, total
from .workers import run_chunks

_EMPTY_F64 = np.empty(0, dtype=np.float64)

KINDS = ("sum", "none", "grad", "value_grad", "grad_hess", "value_grad_hess")
SUMMED = ("sum", "value_grad", "value_grad_hess")     # kinds that reduce the values
GRADS = ("grad", "value_grad", "grad_hess", "value_grad_hess")
HESSES = ("grad_hess", "value_grad_hess")

# Shared signature of every fused kernel, whichever its style (the loop over one chunk):
#   (c0, c1, t, p, w, out, hout, scale, partials, bad, a_t, b_t, nan_t, a_p, b_p, nan_p,
#    check, *hp), handling chunks c0 <= c < c1 (``workers.run_chunks`` shares them out);
# t, p: 1-D contiguous inputs of the working dtype; w: weights or an empty array;
# out: values ("none") or gradient (GRADS) or an empty array ("sum"); hout: the Hessian
# diagonal (HESSES) or an empty array;
# partials[c]: chunk sums of w*l; bad[c, 0|1]: first index in chunk c where y_true|y_pred
# leaves [a, b] (NaN allowed when nan_*), or -1 (only filled when ``check``); kernels
# built with ``label_sets`` also fill bad[c, 2], a bitmask of the sets holding all of
# chunk c's y_true (always counted, only read by a checked call). Returns the number
# of elements outside the closed domain intervals, NaN included even where allowed (a
# float), so a call that finds none reads no ``bad[:, :2]``. ``w`` is part of the signature for every variant; a variant built
# unweighted ignores it.
_KERNEL = """
def KERNEL(c0, c1, t, p, w, out, hout, scale, partials, bad, a_t, b_t, nan_t, a_p, b_p, nan_p,
           check, *hp):
    n = t.shape[0]
    violations = 0.0
    for c in range(c0, c1):
        lo = c * CHUNK
        hi = min(lo + CHUNK, n)
{loop}
        partials[c] = (s0 + s1) + (s2 + s3)
        bad[c, 0] = -1
        bad[c, 1] = -1
        violations += nb
{locate}
    return violations
"""

_OK_T = "(((x >= a_t) & (x <= b_t)) | (nan_t & (x != x)))"
_OK_P = "(((y >= a_p) & (y <= b_p)) | (nan_p & (y != y)))"
# What the branch-free counts test: both values inside their closed intervals (a NaN
# never is). An allowed NaN is counted too: the count only decides whether a checked
# call rescans a chunk, and the rescan (``_locate``, with _OK_T/_OK_P) tells an allowed
# NaN from a violation. Without the NaN terms the fused kernels run 1.6-2x faster at
# 1e5 (mse/huber/pinball/contrastive float64 "quads", mse float32 "blocks"; measured).
_IN = "((x >= a_t) & (x <= b_t) & (y >= a_p) & (y <= b_p))"

def _element_lines(kind: str, i: str, k, wf: str, arity: int, call: str,
                   acc: str, out: str = "out", hout: str = "hout") -> list[str]:
    """Lines computing element ``k`` (at index ``i``): the element function, then the
    sum (``acc``: "s0 +=" or "buf[j] =") and the stores the kind needs. ``wf``: the
    weight factor prefix ("" unweighted); ``call``: how elem is called."""
    targets = f"l{k}, d{k}, h{k}" if arity == 3 else f"l{k}, d{k}"
    lines = [f"{targets} = {call}"]
    if kind in SUMMED:
        lines.append(f"{acc} {wf}l{k}")
    if kind == "none":
        lines.append(f"{out}[{i}] = {wf}l{k}")
    if kind in GRADS:
        lines.append(f"{out}[{i}] = scale * {wf}d{k}")
    if kind in HESSES:
        lines.append(f"{hout}[{i}] = scale * {wf}h{k}")
    return lines


def _loop(kind: str, weighted: bool, arity: int, indent: str,
          label_sets: tuple | None = None) -> str:
    """Source of one chunk's loop over [lo, hi): quads of elements, then a scalar tail.

    Element i adds into float64 lane (i - lo) % 4 (the tail into lane 0), in index order,
    so a chunk's sum never depends on the thread count. The four lanes of a quad are
    isomorphic and independent, which lets LLVM's SLP vectorizer turn a quad into vector
    instructions without reassociating anything (no fastmath). Each quad also counts its
    domain violations branch-free, so the data are read once; only a checked call with
    violations rescans a chunk for its first bad index. With ``label_sets`` each quad
    also counts, branch-free, the labels outside each set (``_misses``).
    """
    summed = kind in SUMMED
    sets = label_sets or ()

    def element(i: str, k: int) -> list[str]:
        lines = []
        wf = ""
        if weighted:
            lines.append(f"w{k} = np.float64(w[{i}])")
            wf = f"w{k} * "
        return lines + _element_lines(kind, i, k, wf, arity, f"elem(u{k}, v{k}, *hp)",
                                      f"s{k} +=")

    def loads(i: str, k: int) -> list[str]:
        return [f"u{k} = t[{i}]", f"v{k} = p[{i}]", f"x{k} = np.float64(u{k})",
                f"y{k} = np.float64(v{k})"]

    def checks(k: int) -> str:
        ok = _IN.replace("x", f"x{k}").replace("y", f"y{k}")
        return f"(0.0 if {ok} else 1.0)" if summed else f"(not {ok})"

    # Violation counters (measured at 1e7 float64, 2 threads): a kind that sums keeps
    # one float64 counter per lane, which SLP packs next to the value lanes; a kind
    # that does not sum is loop-vectorized whole, which wants a single integer counter.
    body = ["s0 = 0.0", "s1 = 0.0", "s2 = 0.0", "s3 = 0.0"]
    body += (["nb0 = 0.0", "nb1 = 0.0", "nb2 = 0.0", "nb3 = 0.0"] if summed else ["nb = 0"])
    index = ["i", "i + 1", "i + 2", "i + 3"]
    quad = []
    for k in range(4):
        quad += loads(index[k], k)
    if summed:
        quad += [f"nb{k} += {checks(k)}" for k in range(4)]
    else:
        quad.append("nb += " + " + ".join(checks(k) for k in range(4)))
    for k in range(4):
        quad += element(index[k], k)
    quad.append("i += 4")
    groups = _set_groups(sets)
    if groups:
        body += [f"ls{g}_{k} = 0" for g in range(len(groups)) for k in range(4)]
        quad[-1:-1] = [f"ls{g}_{k} += {_misses(f'x{k}', group)}"
                       for g, group in enumerate(groups) for k in range(4)]
    body += ["i = lo", "while i + 4 <= hi:"] + ["    " + line for line in quad]
    body += ["while i < hi:"]
    body += ["    " + line for line in loads("i", 0)]
    body += [f"    {'nb0' if summed else 'nb'} += {checks(0)}"]
    body += [f"    ls{g}_0 += {_misses('x0', group)}" for g, group in enumerate(groups)]
    body += ["    " + line for line in element("i", 0)]
    body += ["    i += 1"]
    if summed:
        body.append("nb = (nb0 + nb1) + (nb2 + nb3)")
    if groups:
        body += [f"ls{g} = (ls{g}_0 + ls{g}_1) + (ls{g}_2 + ls{g}_3)"
                 for g in range(len(groups))]
        body.append(_held(groups))
    return "\n".join(indent + line for line in body)


# Label-set misses: one int64 counter per lane for up to 4 sets, each set's count of
# labels outside it in a field of _FIELD bits (a chunk's count never reaches 2**_FIELD).
# Measured on hinge's value_and_grad at 1e7: 1.2x the kernel without label sets (2
# threads; 1.25x float32), against 1.4x for a separate pass over each chunk's labels
# first (its reads from memory are not overlapped with the loss's work; one thread),
# 1.7x for a float64 counter per set and lane, and 7x for blocks of quads behind a
# counting loop (that nesting defeats the SLP vectorizer).
_FIELD = 16
_PER_COUNTER = 4
assert CHUNK < 1 << _FIELD


def _set_groups(sets: tuple) -> list[tuple]:
    """The label sets in groups of ``_PER_COUNTER`` (one counter per group and lane)."""
    return [sets[g:g + _PER_COUNTER] for g in range(0, len(sets), _PER_COUNTER)]


def _misses(x: str, group: tuple) -> str:
    """Source of the misses of ``x`` in a group of sets: set j adds 1 << (_FIELD * j)."""
    return " + ".join(f"(0 if {_member(x, members)} else {1 << (_FIELD * j)})"
                      for j, members in enumerate(group))


def _held(groups: list[tuple]) -> str:
    """bad[c, 2] = the bitmask of the label sets with no miss in the chunk (bit
    _PER_COUNTER g + j: set j of group g, whose count is field j of ls{g})."""
    mask = (1 << _FIELD) - 1
    terms = [f"({1 << (_PER_COUNTER * g + j)} if ((ls{g} >> {_FIELD * j}) & {mask}) == 0 "
             f"else 0)" for g, group in enumerate(groups) for j in range(len(group))]
    return "bad[c, 2] = " + " | ".join(terms)


def _member(x: str, members: tuple) -> str:
    """Source of "``x`` is one of ``members``" (branch-free: no short-circuit)."""
    return "(" + " | ".join(f"({x} == {_literal(a)})" for a in members) + ")"


def _literal(v: float) -> str:
    return repr(float(v)) if np.isfinite(v) else ("np.inf" if v > 0 else "-np.inf")


def _locate(target_t: str, target_p: str, indent: str) -> str:
    """Rescan [lo, hi) for the first bad index of each argument: checked calls only, and
    only where the branch-free count found a violation."""
    lines = ["if check and nb > 0:",
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


# Serial below this many elements (measured crossover of the worker threads, 2 cores:
# focal ~2^15, bce ~2^16; mse ~2^18, where a thread's wake-up costs more than half the
# work).
SERIAL_BELOW = 1 << 16
CHEAP_SERIAL_BELOW = 1 << 18

BLOCK = 2048   # elements per scratch block of the "blocks" style (16 KiB of float64: L1)


def tile_per_class(values: np.ndarray) -> np.ndarray:
    """The tile of per-class ``values`` (C of them) that kernels built with ``tiled``
    read: tile[k] = values[k mod C] for k < C + BLOCK, so that any block of at most
    BLOCK elements finds its values contiguous from offset b0 mod C."""
    values = np.asarray(values, dtype=np.float64)
    n = values.shape[0]
    reps = (BLOCK + n) // n + 1
    return np.ascontiguousarray(np.tile(values, reps)[:n + BLOCK])


def _blocked_loop(kind: str, indent: str, n_hp: int, arity: int,
                  label_sets: tuple | None = None, tiled: int | None = None) -> str:
    """Source of one chunk's loop in the "blocks" style: map, then sum.

    For losses built on transcendental functions (``lossreg.kernels.vmath``), whose
    polynomials the SLP vectorizer does not pack across quads but the loop vectorizer
    does. Each block of BLOCK elements is first mapped by a loop with no float reduction
    (so LLVM vectorizes it without fastmath): per-element weighted losses go to an
    L1-resident scratch block, derivatives to ``out`` (and ``hout``), and domain
    violations to an integer count. The scratch block is then summed in the same
    four-lane order as the "quads" style (element i into lane (i - lo) % 4, the chunk's
    tail into lane 0), so both styles give bit-identical sums (an absent weight is 1.0:
    x * 1.0 == x exactly).

    Weighting is a runtime choice here, not a separate compile (a vmath-heavy chunk
    takes seconds to compile): unweighted input reads weights from a block of ones (an
    unconditional load keeps the loop vectorizable; a conditional one made it 1.8x
    slower), and the domain count is always taken (cheap next to the rest) but only
    read by a checked call (so are the label sets' miss counts, with ``label_sets``).

    ``tiled``: hyperparameter ``tiled`` is given per class of the last axis (element k
    in class k mod C): the kernel's hyperparameter arguments are then those of ``elem``
    with that one replaced by a tile of its values (``tile_per_class``) and followed by
    C, and each block reads its values from the tile at offset b0 mod C (a contiguous
    slice: the loop still vectorizes).
    """
    summed = kind in SUMMED
    sets = label_sets or ()
    body = ["weighted = w.shape[0] > 0",
            "ones = np.ones(BLOCK, dtype=np.float64)",
            "s0 = 0.0", "s1 = 0.0", "s2 = 0.0", "s3 = 0.0", "nb = 0"]
    groups = _set_groups(sets)
    body += [f"ls{g} = 0" for g in range(len(groups))]
    if summed:
        body.append("buf = np.empty(BLOCK, dtype=np.float64)")
    # 0-based loops over slices: Numba's negative-index wraparound then folds away, which
    # the loop vectorizer needs (an index it cannot prove non-negative blocks it).
    body += ["b0 = lo", "while b0 < hi:", "    b1 = min(b0 + BLOCK, hi)",
             "    tb = t[b0:b1]", "    pb = p[b0:b1]",
             "    wb = w[b0:b1] if weighted else ones[:b1 - b0]"]
    if tiled is not None:
        body.append(f"    ab = hp[{tiled}][b0 % hp[{n_hp}]:b0 % hp[{n_hp}] + (b1 - b0)]")
    if kind != "sum":
        body.append("    ob = out[b0:b1]")
    if kind in HESSES:
        body.append("    hb = hout[b0:b1]")
    if sets:          # the block's labels counted in a loop of their own (in L1 then)
        body += ["    for j in range(b1 - b0):", "        xj = np.float64(tb[j])"]
        body += [f"        ls{g} += {_misses('xj', group)}" for g, group in enumerate(groups)]
    body += ["    for j in range(b1 - b0):", "        uk = tb[j]", "        vk = pb[j]"]
    # the domain count runs whether or not the call checks (a branch on the runtime flag
    # kept the "sum" loop from vectorizing: 2.9x slower on float32); only a checked call
    # looks at it
    inner = ["x = np.float64(uk)", "y = np.float64(vk)",
             f"nb += 0 if {_IN} else 1", "wk = np.float64(wb[j])"]
    # hyperparameters spelled out: Numba cannot inline a call with *args
    call = "elem(uk, vk" + "".join(", ab[j]" if k == tiled else f", hp[{k}]"
                                   for k in range(n_hp)) + ")"
    inner += _element_lines(kind, "j", "k", "wk * ", arity, call, "buf[j] =", "ob", "hb")
    body += ["        " + line for line in inner]
    if summed:
        body += ["    m = b1 - b0", "    j = 0", "    while j + 4 <= m:",
                 "        s0 += buf[j]", "        s1 += buf[j + 1]",
                 "        s2 += buf[j + 2]", "        s3 += buf[j + 3]",
                 "        j += 4", "    while j < m:", "        s0 += buf[j]",
                 "        j += 1"]
    body.append("    b0 = b1")
    if groups:
        body.append(_held(groups))
    return "\n".join(indent + line for line in body)


STYLES = ("quads", "blocks", "auto")


def _source(kind: str, weighted: bool, arity: int, style: str = "quads",
            n_hp: int = 0, label_sets: tuple | None = None,
            tiled: int | None = None) -> str:
    """The source of a kernel over chunks [c0, c1) (``workers.run_chunks``); with
    ``label_sets``, each chunk also fills bad[c, 2] (the sets holding all its labels);
    ``tiled``: the "blocks" style's hyperparameter given per class (``_blocked_loop``)."""
    loop = (_blocked_loop(kind, " " * 8, n_hp, arity, label_sets, tiled) if style == "blocks"
            else _loop(kind, weighted, arity, " " * 8, label_sets))
    return _KERNEL.format(loop=loop, locate=_locate("bad[c, 0]", "bad[c, 1]", " " * 8))


class _SLPDispatcher(LossregDispatcher):
    """A Numba dispatcher that compiles with LLVM's SLP vectorizer switched on.

    Numba turns the SLP vectorizer off by default (numba#8705), and it is the pass that
    vectorizes the four-lane quads of the fused kernels (a 1.6-2x speed-up of checked
    kernels measured here; loop vectorization cannot help because reordering the float
    sums needs fastmath). The switch is flipped only while this dispatcher compiles,
    under Numba's global compiler lock, so no other function in the process is affected
    (``LossregDispatcher``: with the faster copy of inlined IR, too).
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


def _compile(elem: Callable, text: str, label: str) -> Callable:
    """exec the generated source with ``elem`` as a global; jit it, serial and nogil
    (``workers.run_chunks`` runs chunk ranges on threads), compiled lazily."""
    py = getattr(elem, "py_func", elem)
    digest = hashlib.sha1(text.encode()).hexdigest()[:10]
    name = f"{py.__name__}__{label}__{digest}"
    filename = inspect.getsourcefile(py) or "<lossreg-generated>"
    namespace: dict[str, Any] = {"np": np, "CHUNK": CHUNK, "BLOCK": BLOCK, "elem": elem}
    exec(compile(text.replace("KERNEL", name, 1), filename, "exec"), namespace)
    func = namespace[name]
    func.__qualname__ = name
    func.__module__ = py.__module__
    dispatcher = _SLPDispatcher(py_func=func, locals={},
                                targetoptions={"nopython": True, "nogil": True,
                                               "error_model": "numpy"})
    return attach(dispatcher)          # lossreg's on-disk kernel cache


def element_arity(elem: Callable) -> int:
    """3 when every ``return`` of ``elem``'s source gives a 3-tuple (l, dl, d2l), else 2.

    Read from the source, not by compiling: a wave-1 element function returns
    ``(l, dl)`` and its loss then simply has no Hessian.
    """
    import ast
    import textwrap

    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(getattr(elem, "py_func", elem))))
    except (OSError, TypeError, SyntaxError):
        return 2
    func = tree.body[0]
    sizes = {len(node.value.elts) if isinstance(node.value, ast.Tuple) else None
             for node in ast.walk(func) if isinstance(node, ast.Return) and node.value}
    return 3 if sizes == {3} else 2


class ElementwiseKernels(Kernels):
    """The protocol object of an element-wise loss: generated fused kernels, built and
    compiled lazily.

    ``get(kind, weighted, dtype)`` returns the chunked kernel (shared signature above)
    for that case: specialised for weighting in the "quads" style, one kernel for both in
    the "blocks" style. Each variant is generated on first request and compiled by Numba
    on its first call (per dtype signature). ``run(job)`` picks them and runs them over
    the chunks, on the worker threads when the plan asks for a parallel run.
    """

    layout = "elementwise"
    checks = ("y_true", "y_pred")
    fills_partials = True

    def __init__(self, elem: Callable, style: str = "quads", *, hessian: bool | None = None,
                 serial_below: int = SERIAL_BELOW, label_sets: tuple | None = None,
                 tiled: int | None = None):
        if style not in STYLES:
            raise ValueError(f"unknown fused kernel style {style!r}; one of {STYLES}")
        if tiled is not None and (style != "blocks" or not 0 <= tiled < _n_hyperparameters(elem)):
            raise ValueError(f"tiled={tiled!r} needs style='blocks' and the index of one "
                             f"of elem's hyperparameters")
        self.label_sets = _label_sets(label_sets)
        self.tiled = tiled
        self.elem = elem
        self.style = style
        self.arity = element_arity(elem)
        self.has_hessian = self.arity == 3 if hessian is None else bool(hessian)
        if self.has_hessian and self.arity != 3:
            raise ValueError("hessian=True needs an element function returning "
                             "(l, dl, d2l)")
        self.serial_below = int(serial_below)
        self._inline_elem: Callable | None = None
        self._kernels: dict[tuple, Callable] = {}     # (kind, weighted, style) -> kernel
        self._by_call: dict[tuple, Callable] = {}     # (kind, weighted, dtype) -> kernel

    def describe(self) -> str:
        per_class = "" if self.tiled is None else \
            f", hyperparameter {self.tiled} per class of the last axis"
        return f"element-wise ({self.style}{per_class}): {_qualname(self.elem)}"

    def fuses_label_sets(self, domain) -> bool:
        """Whether a checked ``run`` checks ``domain.label_sets`` of y_true itself (the
        kernels were built with the same sets), so the dispatcher need not scan them."""
        return self.label_sets is not None and self.label_sets == domain.label_sets

    # ``LossSpec(..., **elementwise_kernels(elem))`` (the wave-1 spelling) still works:
    # unpacked, this object is the single keyword ``kernels=self``.
    def keys(self):
        return ("kernels",)

    def __getitem__(self, key: str):
        if key != "kernels":
            raise KeyError(key)
        return self

    def style_for(self, dtype=np.float64) -> str:
        """The style used for inputs of ``dtype`` ("auto": quads for float64, blocks for
        float32, whose conversions to float64 the SLP vectorizer handles poorly)."""
        if self.style != "auto":
            return self.style
        return "quads" if np.dtype(dtype) == np.float64 else "blocks"

    def get(self, kind: str, weighted: bool = True, dtype=np.float64) -> Callable:
        """The kernel ``(c0, c1, t, p, w, out, hout, scale, partials, bad, a_t, b_t,
        nan_t, a_p, b_p, nan_p, check, *hp)`` of a kind, over chunks [c0, c1)."""
        fast = self._by_call.get((kind, weighted, dtype))
        if fast is not None:
            return fast
        kernel = self._generate(kind, weighted, dtype)
        self._by_call[(kind, weighted, dtype)] = kernel
        return kernel

    def _generate(self, kind: str, weighted: bool, dtype) -> Callable:
        style = self.style_for(dtype)
        if style == "blocks":               # a runtime flag there: one variant serves both
            weighted = True
        key = (kind, bool(weighted), style)
        kernel = self._kernels.get(key)
        if kernel is None:
            if kind not in KINDS:
                raise ValueError(f"unknown fused kernel kind {kind!r}; one of {KINDS}")
            if kind in HESSES and not self.has_hessian:
                raise ValueError("this element function gives no second derivative")
            label = f"{kind}{'_w' if weighted else ''}_{style}"
            if style == "blocks":
                if self._inline_elem is None:
                    self._inline_elem = _inlined(self.elem)
                text = _source(kind, True, self.arity, "blocks", _n_hyperparameters(self.elem),
                               self.label_sets, self.tiled)
                if self.tiled is not None:
                    label = f"{kind}_tile{self.tiled}"
                kernel = _compile(self._inline_elem, text, label)
            else:
                kernel = _compile(self.elem, _source(kind, weighted, self.arity,
                                                     label_sets=self.label_sets), label)
            kernel = self._kernels.setdefault(key, kernel)
        return kernel

    def run(self, job: Job) -> Outcome:
        t, p, w = job.t, job.p, job.w
        weighted, dtype = w.shape[0] > 0, p.dtype
        nc = (p.shape[0] + CHUNK - 1) // CHUNK or 1
        workers = job.workers if job.parallel and nc > 1 else 1
        partials = job.partials if job.partials is not None else np.empty(nc, np.float64)
        sets = self.label_sets is not None
        bad = np.empty((nc, 3 if sets else 2), dtype=np.int64)
        check = job.check
        a_t, b_t, nan_t, a_p, b_p, nan_p = job.bounds
        if job.values is not None:
            run_chunks(self.get("none", weighted, dtype), nc, workers, t, p, w, job.values,
                       _EMPTY_F64, 1.0, partials, bad, a_t, b_t, nan_t, a_p, b_p, nan_p,
                       check, *job.args)
            if check:
                failed = _failed(bad, nc, sets)
                if failed is not None:
                    return failed
                check = False
        if job.grad is not None or job.hess is not None:
            grad = job.grad if job.grad is not None else np.empty_like(p)
            hess = job.hess if job.hess is not None else _EMPTY_F64
            kind = _DERIVATIVE_KINDS[job.summed, job.hess is not None]
            scale = float(job.scale)
        elif job.summed:
            kind, grad, hess, scale = "sum", _EMPTY_F64, _EMPTY_F64, 1.0
        else:
            return Outcome(None)
        kernel = self._by_call.get((kind, weighted, dtype)) or self.get(kind, weighted, dtype)
        if workers == 1:
            violations = kernel(0, nc, t, p, w, grad, hess, scale, partials, bad, a_t, b_t,
                                nan_t, a_p, b_p, nan_p, check, *job.args)
        else:
            run_chunks(kernel, nc, workers, t, p, w, grad, hess, scale, partials, bad, a_t,
                       b_t, nan_t, a_p, b_p, nan_p, check, *job.args)
            violations = 1.0          # not returned by the threads: look at ``bad``
        if check and (violations or sets):
            failed = _failed(bad, nc, sets)
            if failed is not None:
                return failed
        if not job.summed:
            return _NOTHING
        return clean(float(partials[0]) if nc == 1 else total(partials))


FusedKernels = ElementwiseKernels   # the wave-1 name
_NOTHING = Outcome(None)

# (summed, Hessian wanted) -> kind of a call with derivatives: a kind that does not sum
# does not compute the loss at all (dead code to LLVM), which matters for vmath losses
_DERIVATIVE_KINDS = {(False, False): "grad", (True, False): "value_grad",
                     (False, True): "grad_hess", (True, True): "value_grad_hess"}


def _failed(bad: np.ndarray, nc: int, sets: bool) -> Outcome | None:
    """The Outcome of a checked call that found bad input, from the chunks' ``bad``
    (first bad y_true and y_pred index; with ``sets``, also the bitmask of label sets
    holding each chunk), or None. A label-set violation comes first: the dispatcher's
    scan of the label sets used to run before the kernels."""
    if sets and (int(bad[0, 2]) if nc == 1 else int(np.bitwise_and.reduce(bad[:, 2]))) == 0:
        return _LABELS_OUTSIDE
    if nc == 1:
        bt, bp = int(bad[0, 0]), int(bad[0, 1])
    else:
        bt, bp = first_index(bad[:, 0]), first_index(bad[:, 1])
    return None if bt < 0 and bp < 0 else Outcome(None, bt, bp)


_LABELS_OUTSIDE = Outcome(None, sets_t=True)


def _label_sets(label_sets) -> tuple | None:
    """``label_sets`` as a tuple of tuples of floats (as ``spec.Domain`` keeps them)."""
    if label_sets is None:
        return None
    sets = tuple(tuple(float(v) for v in s) for s in label_sets)
    if not sets or not all(sets) or len(sets) > 60 or any(v != v for s in sets for v in s):
        raise ValueError(f"label_sets must be 1 to 60 non-empty sets of numbers, got "
                         f"{label_sets!r}")
    return sets


def elementwise_kernels(elem: Callable, style: str = "quads", *,
                        hessian: bool | None = None, serial_below: int = SERIAL_BELOW,
                        label_sets: tuple | None = None,
                        tiled: int | None = None) -> ElementwiseKernels:
    """The ``Kernels`` of an element-wise loss, from its scalar function ``elem``.

    Use as ``LossSpec(..., kernels=elementwise_kernels(_huber_elem))``. ``elem(t, p, *hp)``
    returns ``(l, dl/dp, d2l/dp2)`` (or ``(l, dl/dp)``: no Hessian). ``style`` picks how
    the fused kernels vectorize: "quads" (SLP over four independent lanes; best for
    cheap, bandwidth-bound float64 arithmetic such as MSE or Huber), "blocks" (a map
    loop the loop vectorizer handles, then a sum; best when ``elem`` calls
    ``lossreg.kernels.vmath`` exp/log, or has branches) or "auto" (quads for float64,
    blocks for float32). All give bit-identical results. ``serial_below``: inputs with
    fewer elements run serially (``SERIAL_BELOW`` suits a loss of a few exps and logs
    per element; bandwidth-bound arithmetic such as MSE pays off only from
    ``CHEAP_SERIAL_BELOW``: handing chunks to a worker thread costs 30-60 us here).
    ``label_sets`` (y_true's ``Domain.label_sets``, e.g. hinge's ``((-1, 1), (0, 1))``):
    checked calls also check that one set holds every label, in the same pass (only
    kernels built with them carry that code); the dispatcher then skips its own scan of
    the label sets, and locates the first offending label only when the kernels report
    one. ``tiled`` (style "blocks"): the index of a hyperparameter of ``elem`` given per
    class of the last axis (element k of the flattened input in class k mod C, C the
    length of the last axis): the kernels then take that hyperparameter as
    ``tile_per_class(values)`` followed by C as an extra last argument (a per-class
    ``pos_weight``, ``lossreg.losses.pos_weight``).
    """
    return ElementwiseKernels(elem, style, hessian=hessian, serial_below=serial_below,
                              label_sets=label_sets, tiled=tiled)
