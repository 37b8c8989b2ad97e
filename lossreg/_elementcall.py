"""The element-wise fast path: one compiled call per public call, little Python around it.

At small N the per-call cost of an element-wise loss is Python, not arithmetic (profiled
at N = 10: the kernel itself ~0.6 us of ~6 us). ``ElementCall`` serves the common call
(plain C-contiguous float64 or float32 arrays of one shape, optionally float64 weights
all > 0 and an ``out=`` buffer sharing no memory with an input, below the plan's serial
threshold) of a loss whose kernels are stock ``ElementwiseKernels`` (possibly picked by
a composite's ``for_args``), whose domains the kernels check themselves and with no
``outer`` function: it allocates the outputs and calls the generated kernel directly,
with what ``Plan.execute`` and ``ElementwiseKernels.run`` would compute resolved once
per (dtype, operation, weighted) in a ``_Slot``.

The kernel is called through its compiled overload's entry point once the dispatcher
has compiled (or loaded) it for exactly these argument types: that skips Numba's type
dispatch (~0.5 us of 18 arguments). Arrays that Numba would type differently (read-only
or unaligned inputs) go through the dispatcher. Anything unusual returns None and the
caller takes the general path (``Plan.run``), which is also what raises every error:
when a checked call finds a bad value, or a kernel raises, the general path runs the
same call again and raises the same typed error, with the same index. Results are
those of the general path bit for bit: the same kernel, arguments, scale and sums.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from .kernels.elementwise import _DERIVATIVE_KINDS, ElementwiseKernels, _failed
from .kernels.reduce import CHUNK, chunk_sums, first_outside, total
from .dispatch import _MAX_F64, _MIN_POSITIVE
from ._operations import GRAD, GRAD_HESS, HESS, VALUE, VALUE_GRAD  # noqa: F401 (re-exported)

_F64 = np.dtype(np.float64)
_F32 = np.dtype(np.float32)
_I64 = np.dtype(np.int64)
_EMPTY_F64 = np.empty(0, dtype=np.float64)
_SHIFT = CHUNK.bit_length() - 1
assert CHUNK == 1 << _SHIFT
_ndarray = np.ndarray
_empty = np.empty
_run = ElementwiseKernels.run
_first_outside = first_outside.kernel
_chunk_sums = chunk_sums.kernel


def direct_kernels(kernels: Any, args: tuple) -> ElementwiseKernels | None:
    """The ``ElementwiseKernels`` whose stock ``run`` serves every call of ``kernels``
    with these kernel arguments (through ``for_args`` of a composite), or None."""
    for_args = getattr(kernels, "for_args", None)
    if for_args is not None:
        kernels = for_args(args)
    if not isinstance(kernels, ElementwiseKernels) or type(kernels).run is not _run:
        return None
    return kernels


# The public methods' results, by operation code (``_operations``): (value, grad, hess)
_WANTS = ((True, False, False), (False, True, False), (True, True, False),
          (False, True, True), (False, False, True))
_C_CONTIGUOUS, _DIRECT = 0x1, 0x500      # ndarray.flags.num: C-contiguous; aligned | writeable
_WRITEABLE_C = 0x401


def _overlaps(buf: np.ndarray, *inputs) -> bool:
    """Whether an ``out=`` buffer may share memory with an input (``outputs``' rule:
    distinct arrays that each own their data never do; else the address ranges)."""
    owner = buf.base is None
    for x in inputs:
        if x is None or (owner and x.base is None and x is not buf):
            continue
        if np.may_share_memory(buf, x):
            return True
    return False


class _Slot:
    """One (dtype, operation) of a plan: the kernels of its passes ("none": values, then
    derivatives) and, once probed, their compiled entry points for plain inputs."""

    __slots__ = ("first", "second", "first_entry", "second_entry", "probed", "value",
                 "grad", "hess")

    def __init__(self, first, second, wants: tuple):
        self.first, self.second = first, second
        self.first_entry = self.second_entry = None
        self.probed = False
        self.value, self.grad, self.hess = wants


class _Scratch(threading.local):
    """Per thread: the (partials, bad) pair of a one-chunk call, taken while in use (a
    call re-entered from a signal handler finds None and allocates its own)."""

    pair = None


def _entry(dispatcher, args: tuple):
    """The entry point (the compiled wrapper the dispatcher calls after its type
    dispatch) of the overload the dispatcher ran for ``args``, or None."""
    try:
        cres = dispatcher.overloads.get(tuple(dispatcher.typeof_pyval(a) for a in args))
    except Exception:  # noqa: BLE001 - an unusual dispatcher: keep calling it
        return None
    return None if cres is None else cres.entry_point


def _entry_point(dispatcher, args: tuple, hp: tuple):
    """The entry point of the overload the dispatcher ran for ``(*args, *hp)``: its
    star-args arrive as one tuple (the overload's last argument type)."""
    return _entry(dispatcher, (*args, hp))


class ElementCall:
    """A plan's fast path; ``ElementCall.build(plan)`` or None. ``call(y_true, y_pred,
    sample_weight, op, check, buf)`` returns what the public method of ``op`` returns
    (``VALUE``: the value; ``GRAD``: the gradient; ``VALUE_GRAD``: both; ``GRAD_HESS``:
    gradient and Hessian diagonal; ``HESS``: the diagonal), or None: take the general
    path. ``buf``: the method's ``out=`` (gradient, or the Hessian's for ``HESS``),
    written in place when it is a writeable C-contiguous array of y_pred's shape and
    dtype that shares no memory with an input (anything else: the general path)."""

    __slots__ = ("plan", "kernels", "args", "bounds", "mean", "none", "check_args", "sets",
                 "has_hessian", "f64", "f32", "scratch", "weight_entries")

    def __init__(self, plan, kernels: ElementwiseKernels, args: tuple, bounds: tuple,
                 reduction: str, check_args, has_hessian: bool):
        self.plan, self.kernels = plan, kernels      # plan.serial_below: read per call
        self.args, self.bounds = args, bounds
        self.mean, self.none = reduction == "mean", reduction == "none"
        self.check_args = check_args
        self.sets = kernels.label_sets is not None
        self.has_hessian = has_hessian
        self.f64: list = [None] * (2 * len(_WANTS))      # [op], then weighted [5 + op]
        self.f32: list = [None] * (2 * len(_WANTS))
        self.scratch = _Scratch()
        self.weight_entries: tuple = (None, None)   # the weight scan's and sum's, probed

    def __reduce__(self):
        """Rebuilt without its caches (entry points do not pickle) and without reading
        the plan, which unpickling may not have filled in yet."""
        return (ElementCall, (self.plan, self.kernels, self.args, self.bounds,
                              "mean" if self.mean else "none" if self.none else "sum",
                              self.check_args, self.has_hessian))

    @classmethod
    def build(cls, plan) -> "ElementCall | None":
        spec = plan.spec
        if plan.needs_scan or spec.outer is not None or plan.kernels.layout != "elementwise":
            return None
        kernels = direct_kernels(plan.kernels, plan.args)
        if kernels is None:
            return None
        return cls(plan, kernels, plan.args, plan.bounds, plan.reduction, spec.check_args,
                   bool(spec.has_hessian and kernels.has_hessian))

    def _slot(self, dtype, index: int) -> _Slot | None:
        weighted = index >= len(_WANTS)
        value, grad, hess = wants = _WANTS[index % len(_WANTS)]
        if hess and not self.has_hessian:
            return None                          # the general path raises LossError
        get = self.kernels.get
        if self.none:
            first = get("none", weighted, dtype) if value else None
            second = get(_DERIVATIVE_KINDS[False, hess], weighted, dtype) \
                if grad or hess else None
        else:
            first = get(_DERIVATIVE_KINDS[value, hess], weighted, dtype) if grad or hess \
                else get("sum", weighted, dtype)
            second = None
        slot = _Slot(first, second, wants)
        (self.f64 if dtype is _F64 else self.f32)[index] = slot
        return slot

    def call(self, y_true: Any, y_pred: Any, w: Any, op: int, check: bool, buf: Any = None):
        if type(y_pred) is not _ndarray or type(y_true) is not _ndarray:
            return None
        dtype = y_pred.dtype
        index = op if w is None else op + len(_WANTS)
        if dtype is _F64:
            slot = self.f64[index]
        elif dtype is _F32:
            slot = self.f32[index]
        else:
            return None
        if y_true.dtype is not dtype:
            return None
        n = y_pred.size
        if n == 0 or n >= self.plan.serial_below:
            return None
        flags = y_pred.flags.num & y_true.flags.num
        if w is not None:
            if type(w) is not _ndarray or w.dtype is not _F64:
                return None
            flags &= w.flags.num
        if buf is not None:
            if type(buf) is not _ndarray or buf.dtype is not dtype:
                return None
            fb = buf.flags.num
            if fb & _WRITEABLE_C != _WRITEABLE_C or _overlaps(buf, y_true, y_pred, w):
                return None
            flags &= fb
        if not flags & _C_CONTIGUOUS:
            return None
        if y_pred.ndim == 1:
            if y_true.ndim != 1 or y_true.size != n:
                return None
            if w is not None and (w.ndim != 1 or w.size != n):
                return None
            if buf is not None and (buf.ndim != 1 or buf.size != n):
                return None
            shape = n
        else:
            shape = y_pred.shape
            if y_true.shape != shape or (w is not None and w.shape != shape) \
                    or (buf is not None and buf.shape != shape):
                return None
            y_true, y_pred = y_true.reshape(-1), y_pred.reshape(-1)
            if w is not None:
                w = w.reshape(-1)
        if w is None:
            w = _EMPTY_F64
            weight_sum = float(n)
        else:
            weight_sum = self._weights(w, n, flags & _DIRECT == _DIRECT)
            if weight_sum is None:
                return None
        if slot is None:
            slot = self._slot(dtype, index)
            if slot is None:
                return None
        if self.check_args is not None:
            self.check_args(self.args, y_pred.shape if shape is n else shape)
        direct = flags & _DIRECT == _DIRECT
        if n <= CHUNK:
            nc = 1
            scratch = self.scratch
            pair = scratch.pair
            if pair is None:
                pair = (_empty(1, _F64), _empty((1, 3 if self.sets else 2), _I64))
            else:
                scratch.pair = None
            partials, bad = pair
        else:
            nc = (n + CHUNK - 1) >> _SHIFT
            pair = None
            partials = _empty(nc, _F64)
            bad = _empty((nc, 3 if self.sets else 2), _I64)
        a_t, b_t, nan_t, a_p, b_p, nan_p = self.bounds
        hp = self.args
        g = h = None
        gf = hf = _EMPTY_F64
        if slot.grad or slot.hess:
            g = buf if buf is not None and op != HESS else _empty(shape, dtype)
            gf = g if shape is n else g.reshape(-1)
            if slot.hess:
                h = buf if buf is not None and op == HESS else _empty(shape, dtype)
                hf = h if shape is n else h.reshape(-1)
        v = None
        try:
            if self.none:
                if slot.value:
                    v = _empty(shape, dtype)
                    out = v if shape is n else v.reshape(-1)
                    fn = slot.first_entry if direct else None
                    if fn is None:
                        violations = slot.first(0, nc, y_true, y_pred, w, out,
                                                _EMPTY_F64, 1.0, partials, bad, a_t, b_t,
                                                nan_t, a_p, b_p, nan_p, check, *hp)
                    else:
                        violations = fn(0, nc, y_true, y_pred, w, out, _EMPTY_F64,
                                        1.0, partials, bad, a_t, b_t, nan_t, a_p, b_p, nan_p,
                                        check, hp)
                    if check:
                        if (violations or self.sets) \
                                and _failed(bad, nc, self.sets) is not None:
                            return None
                        check = False
                if g is not None:
                    fn = slot.second_entry if direct else None
                    if fn is None:
                        violations = slot.second(0, nc, y_true, y_pred, w, gf, hf,
                                                 1.0, partials, bad, a_t, b_t, nan_t, a_p,
                                                 b_p, nan_p, check, *hp)
                    else:
                        violations = fn(0, nc, y_true, y_pred, w, gf, hf, 1.0,
                                        partials, bad, a_t, b_t, nan_t, a_p, b_p, nan_p,
                                        check, hp)
                scale = kscale = 1.0
            else:
                scale = 1.0 / weight_sum if self.mean else 1.0
                kscale = scale if g is not None else 1.0
                fn = slot.first_entry if direct else None
                if fn is None:
                    violations = slot.first(0, nc, y_true, y_pred, w, gf, hf,
                                            kscale, partials, bad, a_t, b_t, nan_t, a_p, b_p,
                                            nan_p, check, *hp)
                else:
                    violations = fn(0, nc, y_true, y_pred, w, gf, hf, kscale,
                                    partials, bad, a_t, b_t, nan_t, a_p, b_p, nan_p, check,
                                    hp)
        except Exception:  # noqa: BLE001 - the general path raises it, typed
            return None
        if check and (violations or self.sets) and _failed(bad, nc, self.sets) is not None:
            return None
        if direct and not slot.probed:
            self._probe(slot, nc, y_true, y_pred, w, v, gf, hf, kscale, shape is n)
        if not self.none and slot.value:
            s = partials.item(0) if nc == 1 else total(partials)
            v = s * scale if self.mean else s
        if pair is not None:
            self.scratch.pair = pair
        if op == VALUE:
            return v
        if op == GRAD:
            return g
        if op == VALUE_GRAD:
            return v, g
        if op == GRAD_HESS:
            return g, h
        return h

    def _weights(self, w: np.ndarray, n: int, direct: bool) -> float | None:
        """The sum of plain weights (float64, C-contiguous, flat: what
        ``dispatch.prepare`` would use as is), or None unless all are finite and > 0,
        and for "mean" their sum in [2**-64, 2**64] (zeros, errors and rescaling are the
        general path's). The same scan and sum as ``dispatch._weights``: each chunk's
        first value outside [min subnormal, max], then the chunks' float64 sums, summed
        exactly (``reduce.total``); through their entry points once probed (``direct``:
        w writeable and aligned)."""
        nc = (n + CHUNK - 1) >> _SHIFT
        bad = _empty(nc, _I64)
        scan = self.weight_entries[0] if direct else None
        (scan or _first_outside)(0, nc, w, _MIN_POSITIVE, _MAX_F64, False, bad)
        if (bad.item(0) if nc == 1 else int(bad.max())) >= 0:
            return None
        if not self.mean:
            weight_sum = 1.0                     # "sum", "none": the sum is not used
        else:
            partials = _empty(nc, _F64)
            add = self.weight_entries[1] if direct else None
            (add or _chunk_sums)(0, nc, w, _EMPTY_F64, partials)
            weight_sum = partials.item(0) if nc == 1 else total(partials)
            if not 2.0 ** -64 <= weight_sum <= 2.0 ** 64:
                return None
        if direct and scan is None:
            self.weight_entries = (
                _entry(_first_outside, (0, nc, w, _MIN_POSITIVE, _MAX_F64, False, bad)),
                _entry(_chunk_sums, (0, nc, w, _EMPTY_F64, _empty(nc, _F64)))
                if self.mean else None)
        return weight_sum

    def _probe(self, slot: _Slot, nc: int, t, p, w, values, gf, hf, kscale: float,
               flat: bool) -> None:
        """Find the entry points of the overloads the dispatchers just ran (plain
        inputs: writeable, aligned, C-contiguous; the same argument types as every
        later direct call of this slot)."""
        partials = _empty(nc, _F64)
        bad = _empty((nc, 3 if self.sets else 2), _I64)
        rest = (partials, bad, *self.bounds, True)
        if self.none:
            if values is not None:
                values = values if flat else values.reshape(-1)
                slot.first_entry = _entry_point(
                    slot.first, (0, nc, t, p, w, values, _EMPTY_F64, 1.0, *rest),
                    self.args)
            if slot.second is not None:
                slot.second_entry = _entry_point(
                    slot.second, (0, nc, t, p, w, gf, hf, 1.0, *rest), self.args)
        else:
            slot.first_entry = _entry_point(
                slot.first, (0, nc, t, p, w, gf, hf, kscale, *rest), self.args)
        slot.probed = True
