"""A cheaper copy of inlined IR while lossreg's own kernels compile (same machine code).

Numba's ``InlineWorker.inline_ir`` (``inline="always"``: the vmath functions, the loss
element functions in the generated loops) deep-copies the callee's IR twice per call
site, one ``copy.deepcopy`` per block with a fresh memo, so every block copies the whole
scope (all the callee's variables) again: for the vmath-heavy kernels that copying is a
large part of a cold compile. ``faster_inline_copy()`` swaps in a version of
``inline_ir`` rebuilt from Numba's own source with one memo shared by the blocks of one
copy (the scope and each variable copied once per copy; a function has one scope). The
generated code is the same; only the compile is cheaper.

The swap lasts only while a lossreg dispatcher compiles (``_jit.LossregDispatcher``),
under Numba's global compiler lock, so a compile of the user's own functions sees it only
when it is part of a lossreg kernel's compile (a plugin's element function, say).
When Numba's source is not the text expected here (another Numba version) or cannot be
read, nothing is patched and Numba's own ``inline_ir`` runs. ``ENABLED = False`` turns
it off (tests compare the two).
"""

from __future__ import annotations

import contextlib
import inspect
import textwrap
from typing import Callable, Iterator

from numba.core.compiler_lock import global_compiler_lock

_OLD = """\
        for block_label, block in the_ir.blocks.items():
            new_block = copy.deepcopy(the_ir.blocks[block_label])
            kernel_copy.blocks[block_label] = new_block"""
_NEW = """\
        memo = {}
        for block_label, block in the_ir.blocks.items():
            new_block = copy.deepcopy(the_ir.blocks[block_label], memo)
            kernel_copy.blocks[block_label] = new_block"""

ENABLED = True


class _Swap:
    """Numba's ``inline_ir``, its faster rebuild (None: not available) and the nesting
    depth of lossreg compiles (the outermost one swaps and restores)."""

    def __init__(self):
        self.built = False
        self.original: Callable | None = None
        self.fast: Callable | None = None
        self.depth = 0

    def build(self) -> Callable | None:
        if not self.built:
            self.built = True
            self.original, self.fast = _rebuild()
        return self.fast


def _rebuild() -> tuple[Callable | None, Callable | None]:
    """(Numba's inline_ir, the one-memo version), or (None, None) when Numba's source is
    not the expected text."""
    try:
        from numba.core import inline_closurecall as icc
        original = icc.InlineWorker.__dict__["inline_ir"]
        source = textwrap.dedent(inspect.getsource(original))
    except (ImportError, AttributeError, KeyError, OSError, TypeError):
        return None, None
    if source.count(_OLD) != 1 or not source.startswith("def inline_ir("):
        return None, None
    namespace: dict = {}
    try:
        exec(compile(source.replace(_OLD, _NEW), icc.__file__, "exec"),
             icc.__dict__, namespace)
    except SyntaxError:
        return None, None
    fast = namespace.get("inline_ir")
    if not callable(fast):
        return None, None
    fast.__qualname__ = original.__qualname__
    fast.__doc__ = original.__doc__
    return original, fast


SWAP = _Swap()


def available() -> bool:
    """True when this Numba's ``inline_ir`` is the text the faster copy rebuilds."""
    return SWAP.build() is not None


def active() -> bool:
    """True while the faster copy is in use (inside a lossreg compile)."""
    from numba.core import inline_closurecall as icc
    return SWAP.fast is not None and icc.InlineWorker.__dict__.get("inline_ir") is SWAP.fast


@contextlib.contextmanager
def faster_inline_copy() -> Iterator[None]:
    """Numba inlines with the one-memo IR copy inside this block (under the global compiler
    lock; nested blocks share the outermost swap). A no-op when not ``available()`` or
    not ``ENABLED``."""
    if not ENABLED or SWAP.build() is None:
        yield
        return
    from numba.core import inline_closurecall as icc
    with global_compiler_lock:
        if SWAP.depth == 0:
            if icc.InlineWorker.__dict__.get("inline_ir") is not SWAP.original:
                yield                  # someone else replaced it: leave theirs alone
                return
            icc.InlineWorker.inline_ir = SWAP.fast
        SWAP.depth += 1
        try:
            yield
        finally:
            SWAP.depth -= 1
            if SWAP.depth == 0:
                icc.InlineWorker.inline_ir = SWAP.original
