"""lossreg.kernels._inline_copy: Numba inlines with one deepcopy memo per IR copy only
while lossreg's own dispatchers compile, and the machine code is the same either way."""

import re

import numba
import numpy as np
import pytest
from numba.core import inline_closurecall as icc

from lossreg.kernels import _inline_copy, vmath
from lossreg.kernels._jit import LossregDispatcher, njit, serial_twin


def _kernel(x, out):          # inlines vmath.exp, log1p, power and log (inline="always")
    for i in range(x.shape[0]):
        out[i] = (vmath.log1p(vmath.exp(-x[i])) + vmath.power(x[i] * x[i], 1.5)
                  - vmath.log(x[i] + 2.0))


def _small(x):               # one inlined call site (vmath.log1p)
    return vmath.log1p(x)


def _asm(dispatcher) -> str:
    """The machine code without what names the compile (Numba's per-compile unique ids)."""
    text = re.sub(r"B\d+v\d+", "BvN", dispatcher.inspect_asm(dispatcher.signatures[0]))
    return "\n".join(line for line in text.splitlines() if "missing Environment" not in line)


@pytest.fixture
def spy(monkeypatch):
    """Counts the calls of the faster inline_ir (it stays what a lossreg compile swaps in)."""
    assert _inline_copy.available(), "Numba's InlineWorker.inline_ir is not the text expected"
    calls = []
    fast = _inline_copy.SWAP.fast

    def inline_ir(self, *args, **kwargs):
        calls.append(_inline_copy.active())
        return fast(self, *args, **kwargs)

    monkeypatch.setattr(_inline_copy.SWAP, "fast", inline_ir)
    return calls


def test_active_only_while_a_lossreg_dispatcher_compiles(spy):
    original = _inline_copy.SWAP.original
    assert not _inline_copy.active() and icc.InlineWorker.inline_ir is original
    numba.njit(_small)(0.5)                           # the user's own function: Numba's copy
    assert spy == [] and icc.InlineWorker.inline_ir is original

    kernel = njit(cache=False)(_small)
    assert type(kernel) is LossregDispatcher
    assert kernel(0.5) == np.log1p(0.5)
    assert spy and all(spy)                           # one call per inlined call site
    assert not _inline_copy.active() and icc.InlineWorker.inline_ir is original


def test_serial_twins_are_lossreg_dispatchers_too():
    parallel = njit(parallel=True, cache=False)(_kernel)
    assert type(parallel) is LossregDispatcher and type(serial_twin(parallel)) is LossregDispatcher


def test_restored_when_the_compile_fails(spy):
    def broken(x):
        return vmath.log(x) + undefined_name        # noqa: F821  (a typing error)

    with pytest.raises(numba.core.errors.TypingError):
        njit(cache=False)(broken)(1.0)
    assert not _inline_copy.active()
    assert icc.InlineWorker.inline_ir is _inline_copy.SWAP.original


def test_leaves_another_patch_of_numba_alone(monkeypatch, spy):
    def theirs(self, *args, **kwargs):
        return _inline_copy.SWAP.original(self, *args, **kwargs)

    monkeypatch.setattr(icc.InlineWorker, "inline_ir", theirs)
    njit(cache=False)(_small)(0.5)
    assert spy == [] and icc.InlineWorker.__dict__["inline_ir"] is theirs


def test_not_installed_when_numbas_source_differs(monkeypatch):
    monkeypatch.setattr(_inline_copy, "_OLD", "text this Numba does not have")
    assert _inline_copy._rebuild() == (None, None)


def test_same_machine_code_and_bits_with_and_without_it(monkeypatch):
    x = np.linspace(-3.0, 3.0, 101)
    runs = {}
    for enabled in (True, False):
        monkeypatch.setattr(_inline_copy, "ENABLED", enabled)
        kernel = njit(cache=False)(_kernel)
        out = np.empty_like(x)
        kernel(x, out)
        runs[enabled] = (_asm(kernel), out.tobytes())
    assert runs[True] == runs[False]
