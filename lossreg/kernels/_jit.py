"""Numba options shared by every lossreg kernel: lazy compile, opt-in on-disk cache.

``LOSSREG_CACHE=1`` turns on Numba's on-disk cache (in ``NUMBA_CACHE_DIR`` or next to the
sources); 0/off/false/no turn it off (``lossreg._env``); any other value is taken as the
cache directory.
The environment is read when a kernel module is first imported, never at ``import lossreg``.
"""

from __future__ import annotations

import os
import sys

from .._env import switch


def cache_setting(environ=os.environ) -> bool | str:
    """False, True, or a directory path, from ``LOSSREG_CACHE``."""
    value = environ.get("LOSSREG_CACHE", "").strip()
    on = switch(value)                  # the parser every lossreg switch shares
    return value if on is None else on


def _configure() -> bool:
    setting = cache_setting()
    if isinstance(setting, str):
        if "numba" in sys.modules:
            import numba.core.config as config
            config.CACHE_DIR = setting
        else:
            os.environ.setdefault("NUMBA_CACHE_DIR", setting)
        return True
    return setting


CACHE = _configure()

import numba  # noqa: E402  (after NUMBA_CACHE_DIR is set)


def njit(*args, **options):
    """``numba.njit`` with lossreg's defaults: no fastmath, cache when enabled."""
    options.setdefault("cache", CACHE)
    if options.get("fastmath"):
        raise ValueError("lossreg kernels must not use fastmath: it breaks NaN checks")
    return numba.njit(*args, **options)


def serial_twin(kernel):
    """A serial (parallel=False) compile of a parallel kernel's Python source."""
    py_func = getattr(kernel, "py_func", None)
    if py_func is None:
        return kernel
    targetoptions = dict(getattr(kernel, "targetoptions", {}))
    if not targetoptions.get("parallel"):
        return kernel
    targetoptions.pop("parallel", None)
    targetoptions.pop("nopython", None)
    targetoptions.pop("boundscheck", None)
    return numba.njit(**targetoptions)(py_func)
