"""A per-class ``pos_weight`` for binary_cross_entropy_with_logits, as PyTorch allows.

``torch.nn.BCEWithLogitsLoss(pos_weight=w)`` broadcasts a vector ``w`` of shape (C,)
over the last axis of multi-label logits (..., C): element (i, j) weighs its positive
term by w_j. lossreg's element-wise kernels see the inputs flattened in C order, so the
class of flat index k is k mod C. ``PosWeightKernels`` keeps the loss's scalar kernels
for a scalar (or absent) pos_weight and adds, compiled only when first used, a twin of
the same "blocks" kernels in which the positive weight of each element is read from a
tile of the per-class weights (tile[k] = alpha w_(k mod C), at offset b0 mod C for a
block starting at flat index b0: a contiguous load, so the loop still vectorizes).

Positions matter for that form. Terms of zero sample weight keep their places (the plan
puts stand-ins there, ``lossreg._zero_weights``), and ``lossreg.dask``, whose blocks
start anywhere in the flattened array, refuses it (``positional(args)``).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from ..errors import ShapeError
from ..kernels import ElementwiseKernels, Job, Kernels, Outcome
from ..kernels import elementwise as E

_CALL = "elem(uk, vk, hp[0], hp[1])"
_ANCHOR = "    wb = w[b0:b1] if weighted else ones[:b1 - b0]"


class _ClassPeriodicKernels(ElementwiseKernels):
    """``elem(t, p, a, b)``'s "blocks" kernels with ``a`` per element from a tile:
    kernel arguments ``(tile, b, C)``, ``a`` of flat index k = ``tile[k mod C]``."""

    def __init__(self, elem: Callable, serial_below: int):
        ElementwiseKernels.__init__(self, elem, "blocks", serial_below=serial_below)

    def describe(self) -> str:
        return f"element-wise (blocks, per-class pos_weight): {E._qualname(self.elem)}"

    def _generate(self, kind: str, weighted: bool, dtype):
        key = (kind, True, "periodic")
        kernel = self._kernels.get(key)
        if kernel is None:
            text = E._source(kind, True, self.arity, "blocks", 2)
            if _CALL not in text or text.count(_ANCHOR) != 1:   # the generator changed
                raise AssertionError("pos_weight: unexpected generated kernel source")
            lines = text.split("\n")
            at = [k for k, line in enumerate(lines) if line.endswith(_ANCHOR)][0]
            indent = lines[at][:len(lines[at]) - len(_ANCHOR)]
            lines.insert(at + 1, indent + "    ab = hp[0][b0 % hp[2]:b0 % hp[2] + (b1 - b0)]")
            text = "\n".join(lines).replace(_CALL, "elem(uk, vk, ab[j], hp[1])")
            if self._inline_elem is None:
                self._inline_elem = E._inlined(self.elem)
            kernel = E._compile(self._inline_elem, text, f"{kind}_pos_weight")
            kernel = self._kernels.setdefault(key, kernel)
        return kernel


class PosWeightKernels(Kernels):
    """The kernels of a logit loss ``elem(t, z, a, b)`` (a: weight of the positive
    term, b: of the negative one) whose ``a`` may be given per class: kernel arguments
    ``(a, b)`` run the scalar kernels, ``(tile, b, C)`` the per-class twin."""

    layout = "elementwise"
    fills_partials = True
    checks = ("y_true", "y_pred")

    def __init__(self, scalar: ElementwiseKernels):
        self.scalar = scalar
        self.per_class = _ClassPeriodicKernels(scalar.elem, scalar.serial_below)
        self.has_hessian = scalar.has_hessian
        self.serial_below = scalar.serial_below

    def describe(self) -> str:
        return f"{self.scalar.describe()}; vector pos_weight: {self.per_class.describe()}"

    @staticmethod
    def positional(args: tuple) -> bool:
        """True when each element's weight depends on its position (its class)."""
        return len(args) == 3

    def run(self, job: Job) -> Outcome:
        return (self.per_class if len(job.args) == 3 else self.scalar).run(job)


def pos_weight_args(alpha, pos_weight) -> tuple:
    """Kernel arguments: ``(a, b)`` (a = alpha pos_weight, b = 1 - alpha; alpha None:
    a = pos_weight, b = 1; pos_weight None: 1), or ``(tile, b, C)`` for a vector
    pos_weight of C > 1 entries (one entry is a scalar, as PyTorch broadcasts it)."""
    a = 1.0 if alpha is None else float(alpha)
    b = 1.0 if alpha is None else 1.0 - float(alpha)
    if pos_weight is None:
        return a, b
    w = np.asarray(pos_weight, dtype=np.float64)
    if w.ndim == 0 or w.shape[0] == 1:
        return a * float(w.reshape(-1)[0]), b
    n = w.shape[0]
    reps = (E.BLOCK + n) // n + 1
    tile = np.ascontiguousarray(np.tile(a * w, reps)[:n + E.BLOCK])
    return tile, b, n


def check_pos_weight(args: tuple, pred_shape: tuple) -> None:
    """ShapeError when a per-class pos_weight does not match y_pred's last axis."""
    if len(args) != 3:
        return
    n = args[2]
    if len(pred_shape) == 0 or pred_shape[-1] != n:
        last = pred_shape[-1] if len(pred_shape) else "none, a scalar"
        raise ShapeError(f"pos_weight has {n} entries but y_pred has shape "
                         f"{tuple(pred_shape)} (last axis: {last}); they must be equal "
                         "(pos_weight is broadcast over the last axis, one weight per class)")

