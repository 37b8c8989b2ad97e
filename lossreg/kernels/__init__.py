"""Numba kernel helpers for lossreg and its plugins.

``njit`` applies lossreg's options (on-disk cache when enabled, never fastmath);
``protocol`` defines the one kernel protocol (``Kernels.run(job)``);
``elementwise_kernels(elem)`` builds the kernels of an element-wise loss from one scalar
function, ``row_kernels(impl)`` those of a loss on rows; ``reduce`` holds the
deterministic chunked reductions and domain scans; ``vmath`` has exp/log/log1p/power that
LLVM can vectorize (within an ulp).
"""

from ._jit import CACHE, njit, serial_twin
from .elementwise import ElementwiseKernels, FusedKernels, elementwise_kernels
from .protocol import Job, Kernels, LabelKernels, Outcome, PairKernels, RowKernels
from .reduce import CHUNK


def row_kernels(impl, *, labels=None, hessian=True, checks_pred=False,
                serial_below=1024) -> RowKernels:
    """The ``Kernels`` of a loss on rows from its implementation function (see
    ``protocol.RowKernels``); ``labels`` (a ``LabelKernels``) adds integer class labels."""
    return RowKernels(impl, labels=labels, hessian=hessian, checks_pred=checks_pred,
                      serial_below=serial_below)


__all__ = ["CACHE", "CHUNK", "ElementwiseKernels", "FusedKernels", "Job", "Kernels",
           "LabelKernels", "Outcome", "PairKernels", "RowKernels", "elementwise_kernels",
           "njit", "row_kernels", "serial_twin"]
