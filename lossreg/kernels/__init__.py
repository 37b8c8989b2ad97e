"""Numba kernel helpers for lossreg and its plugins.

``njit`` applies lossreg's options (opt-in on-disk cache, never fastmath);
``elementwise_kernels(elem)`` builds every kernel of an element-wise loss from one
scalar function; ``reduce`` holds the deterministic chunked reductions and domain scans;
``vmath`` has exp/log/log1p/power that LLVM can vectorize (within an ulp).
"""

from ._jit import CACHE, njit, serial_twin
from .elementwise import FusedKernels, elementwise_kernels
from .reduce import CHUNK

__all__ = ["CACHE", "CHUNK", "FusedKernels", "elementwise_kernels", "njit", "serial_twin"]
