"""Numba options shared by every lossreg kernel: lazy compile, on-disk cache by default.

Every dispatcher made here gets lossreg's kernel cache (``_cache.attach``): on by
default in the per-user cache directory, ``LOSSREG_CACHE=DIR`` elsewhere,
``LOSSREG_CACHE=0`` (or off/false/no; ``lossreg._env``) off. See ``lossreg._cachedir``
for the location, key and trust rules. Nothing touches the disk until a kernel first
compiles, and no Numba setting (``NUMBA_CACHE_DIR`` included) is changed.
"""

from __future__ import annotations

import os
from typing import Mapping

import numba

from .. import _cachedir
from .._env import switch
from numba.core.registry import CPUDispatcher

from ._cache import attach
from ._inline_copy import faster_inline_copy


def cache_setting(environ: Mapping[str, str] = os.environ) -> bool | str:
    """False (off), True (the default directory) or a directory, from ``LOSSREG_CACHE``
    (unset: True)."""
    value = environ.get(_cachedir.ENV)
    if value is None:
        return True
    on = switch(value)                  # the parser every lossreg switch shares
    return value.strip() if on is None else on


# Whether the environment asked for the cache when the kernels were first imported
# (the cache itself reads LOSSREG_CACHE when a kernel first compiles).
CACHE = cache_setting() is not False


class LossregDispatcher(CPUDispatcher):
    """Numba's CPU dispatcher for lossreg's own kernels: each compile runs with the faster
    copy of inlined IR (``_inline_copy``; same machine code), which no other function's
    compile sees."""

    def compile(self, sig):
        with faster_inline_copy():
            return super().compile(sig)


def _own(dispatcher):
    """A dispatcher numba.njit made (Numba's own option handling), as a ``LossregDispatcher``
    (a subclass adding no state: the object is the same, only its compile differs)."""
    if type(dispatcher) is CPUDispatcher:
        dispatcher.__class__ = LossregDispatcher
    return dispatcher


def _is_signature(arg) -> bool:
    return isinstance(arg, (str, list, tuple)) or type(arg).__module__.startswith("numba")


def njit(*args, **options):
    """``numba.njit`` with lossreg's defaults: no fastmath, lossreg's kernel cache
    (``cache=False`` opts a function out)."""
    if options.get("fastmath"):
        raise ValueError("lossreg kernels must not use fastmath: it breaks NaN checks")
    cached = options.pop("cache", True)
    sigs = args[0] if args and _is_signature(args[0]) else None

    def decorate(func):
        dispatcher = _own(numba.njit(**options)(func))
        if cached:
            attach(dispatcher)
        else:
            dispatcher._lossreg_uncached = True     # serial_twin honours the opt-out
        for sig in ([sigs] if isinstance(sigs, str) else sigs or ()):
            dispatcher.compile(sig)      # eager signatures: after the cache is attached
        return dispatcher

    if args and not _is_signature(args[0]):
        return decorate(args[0])
    return decorate


def serial_twin(kernel):
    """A serial (parallel=False) compile of a parallel kernel's Python source (cached
    apart from the parallel kernel: its options are part of the cache entry's name;
    not cached when the kernel opted out with ``cache=False``)."""
    py_func = getattr(kernel, "py_func", None)
    if py_func is None:
        return kernel
    targetoptions = dict(getattr(kernel, "targetoptions", {}))
    if not targetoptions.get("parallel"):
        return kernel
    targetoptions.pop("parallel", None)
    targetoptions.pop("nopython", None)
    targetoptions.pop("boundscheck", None)
    twin = _own(numba.njit(**targetoptions)(py_func))
    return twin if getattr(kernel, "_lossreg_uncached", False) else attach(twin)
