"""A per-class ``pos_weight`` for binary_cross_entropy_with_logits, as PyTorch allows.

``torch.nn.BCEWithLogitsLoss(pos_weight=w)`` broadcasts a vector ``w`` of shape (C,)
over the last axis of multi-label logits (..., C): element (i, j) weighs its positive
term by w_j. lossreg's element-wise kernels see the inputs flattened in C order, so the
class of flat index k is k mod C. ``PosWeightKernels`` keeps the loss's scalar kernels
for a scalar (or absent) pos_weight and adds, compiled only when first used, a twin of
the same "blocks" kernels whose positive weight is given per class
(``elementwise_kernels(..., tiled=0)``: each element's weight is read from a tile of
the per-class weights, tile[k] = alpha w_(k mod C), at offset b0 mod C for a block
starting at flat index b0: a contiguous load, so the loop still vectorizes).

Positions matter for that form. Terms of zero sample weight keep their places (the plan
puts stand-ins there, ``lossreg._zero_weights``), and ``lossreg.dask``, whose blocks
start anywhere in the flattened array, refuses it (``positional(args)``).
"""

from __future__ import annotations

import numpy as np

from ..errors import ShapeError
from ..kernels import ElementwiseKernels, Job, Kernels, Outcome
from ..kernels.elementwise import tile_per_class


class PosWeightKernels(Kernels):
    """The kernels of a logit loss ``elem(t, z, a, b)`` (a: weight of the positive
    term, b: of the negative one) whose ``a`` may be given per class: kernel arguments
    ``(a, b)`` run the scalar kernels, ``(tile, b, C)`` the per-class twin."""

    layout = "elementwise"
    fills_partials = True
    checks = ("y_true", "y_pred")

    def __init__(self, scalar: ElementwiseKernels):
        self.scalar = scalar
        self.per_class = ElementwiseKernels(scalar.elem, "blocks", tiled=0,
                                            serial_below=scalar.serial_below)
        self.has_hessian = scalar.has_hessian
        self.serial_below = scalar.serial_below

    def describe(self) -> str:
        return f"{self.scalar.describe()}; vector pos_weight: {self.per_class.describe()}"

    @staticmethod
    def positional(args: tuple) -> bool:
        """True when each element's weight depends on its position (its class)."""
        return len(args) == 3

    def for_args(self, args: tuple) -> ElementwiseKernels:
        """The set that runs every job with these kernel arguments."""
        return self.per_class if len(args) == 3 else self.scalar

    def run(self, job: Job) -> Outcome:
        return self.for_args(job.args).run(job)


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
    return tile_per_class(a * w), b, w.shape[0]


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

