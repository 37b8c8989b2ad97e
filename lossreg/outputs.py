"""The one rule for caller-supplied output buffers (``out=``, the ``(g_buf, h_buf)`` pair).

The kernels write the gradient (and Hessian diagonal) while they still read ``y_true``,
``y_pred`` and ``sample_weight``, and a weighted sum writes its first term's gradient
before the next term reads the inputs. An ``out=`` buffer whose memory overlaps an input
(``out=y_pred``, ``out=buf[1:]`` with ``y_pred=buf[:3]``, a view of the weights) or the
other output buffer would therefore corrupt the result. The rule, applied by
``BaseLoss`` to every method that takes ``out=`` (and so to every bridge that passes it):

* when a buffer *may* share memory with an input (``np.may_share_memory``: compares
  address ranges, O(1); skipped for two distinct arrays that each own their data), the
  work goes into a fresh buffer of the same shape and dtype, which is then copied into
  the caller's buffer, and the caller's buffer is returned as always;
* otherwise the buffer is written in place and nothing is allocated;
* a gradient and a Hessian buffer that overlap each other (``np.shares_memory``, exact)
  cannot both hold their results: ``DomainError`` (argument ``out``).

Copying rather than refusing keeps ``out=y_pred`` (a natural in-place update) working at
the price of one temporary; a false positive of the address-range test (interleaved
views that do not really overlap) costs only that copy. Buffers are validated exactly as
before (shape, dtype, writeable) because the stand-in has the caller's shape and dtype.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .errors import DomainError


_overlap = np.may_share_memory
_ndarray = np.ndarray


def _memory(x: Any) -> Any:
    """``x`` itself when it is an array; an array viewing its memory when it exposes one
    (array interface, buffer); None when it owns no memory an output could overlap
    (lists, scalars, None)."""
    if x is None or isinstance(x, _ndarray):
        return x
    if hasattr(x, "__array_interface__") or hasattr(x, "__array_struct__") \
            or isinstance(x, memoryview):
        try:
            return np.asarray(x)
        except Exception:
            return None
    return None


def _stand_in(buf: Any, others: tuple) -> Any:
    if not isinstance(buf, _ndarray) or not buf.flags.writeable:
        return buf                      # the plan refuses it with its usual error
    owner = buf.base is None
    for other in others:
        if other is None:
            continue
        if type(other) is not _ndarray:
            other = _memory(other)
            if other is None:
                continue
        # two distinct arrays that each own their data cannot overlap (the common case,
        # decided without the address-range test)
        if owner and other.base is None and other is not buf:
            continue
        if _overlap(buf, other):
            return np.empty(buf.shape, dtype=buf.dtype)
    return buf


def stand_ins(out: Any, hess_out: Any, inputs: tuple) -> tuple:
    """For each caller buffer, ``out`` and ``hess_out`` (None allowed): itself, or a fresh
    array of its shape and dtype when it may share memory with any of ``inputs``;
    DomainError when the two buffers overlap each other. Anything that is not a writeable array is passed through (the plan
    refuses it with its usual error)."""
    if hess_out is None:
        return _stand_in(out, inputs), None
    if out is None:
        return None, _stand_in(hess_out, inputs)
    if isinstance(out, _ndarray) and isinstance(hess_out, _ndarray) and (
            out is hess_out or not (out.base is None and hess_out.base is None))\
            and np.shares_memory(out, hess_out):      # exact: interleaved views are fine
        raise DomainError("out: the gradient and Hessian buffers overlap; both results "
                          "cannot be delivered (pass two separate arrays)", argument="out",
                          constraint="gradient and Hessian buffers do not overlap")
    return _stand_in(out, inputs), _stand_in(hess_out, inputs)


def deliver(result: Any, caller: Any, stand_in: Any) -> Any:
    """The result for a caller's buffer: copied into it when a stand-in was used."""
    if result is None or stand_in is caller:
        return result
    np.copyto(caller, result)
    return caller
