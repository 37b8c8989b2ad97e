"""The library-independent core of lossreg's gradient-boosting objectives.

A booster (XGBoost, LightGBM, CatBoost) holds a raw *margin* per sample (per sample and
class for a multiclass model) and asks, every round, for the gradient and the Hessian
diagonal of each sample's loss with respect to that margin. ``Objective`` turns a
registered loss with a Hessian into exactly that; ``lossreg.xgboost`` and
``lossreg.lightgbm`` only translate their library's calling conventions to it.

* **Per-sample derivatives.** The loss is built once with ``reduction="none"``: the
  gradient and Hessian of the *unreduced* loss. Element-wise losses and
  softmax_cross_entropy take one fused objective pass (``_gbdt_kernels``: link,
  derivatives, weights and floor from the booster's float32 margin to float32
  gradients); any other input goes through the loss's checked ``grad_hess``.
* **Link.** Which losses take the margin directly and which go through a link is read
  from the spec, never from a table of names:

  ============================  =========================================================
  link                          losses
  ============================  =========================================================
  ``identity``                  element-wise losses whose ``y_pred`` is any real: mse,
                                mae, huber, smooth_l1, pinball, log_cosh, and the logit
                                losses binary_cross_entropy_with_logits, sigmoid_focal
  ``sigmoid``                   element-wise losses on probabilities (``y_pred`` in
                                [0, 1]): binary_cross_entropy, focal. The loss sees
                                p = sigmoid(margin); by the chain rule
                                g_z = g_p s', h_z = h_p s'^2 + g_p s'' with
                                s' = s (1 - s), s'' = s' (1 - 2 s)
  ``softmax``                   row losses on logits with class labels
                                (softmax_cross_entropy): the margin matrix (n, C) *is*
                                the loss's input; the softmax is inside the loss
  ============================  =========================================================

  Anything else (rmse, which is not a sum over samples; row losses on probabilities such
  as cross_entropy or kl_div; losses without a Hessian) is refused at construction with
  a ``LossError`` naming the loss. Prefer the logit losses to their probability twins:
  they are exact for any margin, while the sigmoid link inherits the probability
  losses' bounds (p (1 - p) >= 1e-12, logs clamped at -100), so their gradient fades
  for |margin| > ~27.
* **Hessian floor.** Exact Hessians may be 0 (mae, pinball, huber beyond delta) or
  negative (focal's non-convex regions, on the margin too). Boosters divide by the
  summed Hessian of a leaf, so each sample's Hessian is raised to at least
  ``hessian_floor`` (default ``DEFAULT_HESSIAN_FLOOR`` = 1e-6) before its weight:
  h_i <- w_i max(h_i, floor). 1e-6 is a guard, not a model change: smooth losses keep
  their exact curvature wherever it is informative (the logistic Hessian p (1 - p)
  falls below 1e-6 only for |margin| > 13.8, where XGBoost's own guard is 1e-16), and no
  leaf's Newton step -G / (H + lambda) meets a zero or negative H. For losses whose
  curvature is 0 almost everywhere (mae, pinball) a zero curvature carries no
  information and 1e-6 makes every sample nearly weightless for ``min_child_weight``
  (XGBoost's default 1): pass ``hessian_floor=1.0``, the constant Hessian XGBoost's
  ``reg:absoluteerror``/``reg:quantileerror`` and LightGBM's ``l1``/``quantile`` use.
* **Weights** come from the booster's data object and go through lossreg's own
  weighting (``sample_weight=``), once; the floor is scaled by the same weight.
* **Multiclass.** Margins arrive as (n, C) rows (``rows_from_class_major`` converts a
  flat class-major buffer); ``multiclass_hessian_scale`` multiplies the Hessian
  diagonal to follow a library's documented convention (XGBoost's softprob uses
  2 p (1 - p), LightGBM's C / (C - 1) p (1 - p)); the adapters set it and say so.
  label_smoothing, class_weight and ignore_index carry through (ignored rows have
  gradient 0 and the floored Hessian).

Bad input (an unknown name, a loss without Hessian, a multiclass loss given one margin
per sample, labels out of range, a mismatched number of classes) is a typed lossreg
error naming the loss, raised at construction or at the first call, before any tree.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from .errors import HyperparameterError, LossError, ShapeError
from .loss import Loss
from .registry import BUILTIN_SOURCE

#: Default per-sample Hessian floor (see the module docstring for the choice).
DEFAULT_HESSIAN_FLOOR = 1e-6

LINKS = ("identity", "sigmoid", "softmax")
_NO_WEIGHTS = np.empty(0, dtype=np.float64)
_NO_WEIGHTS32 = np.empty(0, dtype=np.float32)
_MAX_F64 = float(np.finfo(np.float64).max)


def _link_for(spec) -> str:
    """The link between the booster's margin and the loss's ``y_pred``, or LossError."""
    dom = spec.domain("y_pred").interval
    reals = dom.low == -math.inf and dom.high == math.inf
    unit = dom.low == 0.0 and dom.high == 1.0
    if spec.layout == "elementwise":
        if reals:
            return "identity"
        if unit:
            return "sigmoid"
        raise LossError(f"loss {spec.name!r} cannot be a boosting objective: its y_pred "
                        f"lies in {dom}, which no link from a real margin fits (element-wise "
                        f"losses on reals take the margin, losses on [0, 1] take "
                        f"sigmoid(margin))")
    if reals and spec.task == "multiclass" and spec.takes_labels:
        return "softmax"
    raise LossError(f"loss {spec.name!r} cannot be a boosting objective: a row loss must take "
                    f"logits (n, C) and integer class labels (as softmax_cross_entropy does); "
                    f"{spec.name!r} takes y_pred in {dom} (task {spec.task!r})")


def _none_loss(loss: Any, hyper: dict, n_threads: int | None, need_hessian: bool = True) -> Loss:
    """The loss as a ``reduction="none"`` Loss, or a typed error naming it."""
    if isinstance(loss, Loss):
        if hyper:
            raise HyperparameterError(f"objective {loss.name!r}: give hyperparameters either "
                                      f"in the Loss or as keywords, not both "
                                      f"(got {sorted(hyper)})")
        spec, hyper = loss.spec, loss.hyperparameters
    elif isinstance(loss, str):
        from . import spec as lookup
        spec = lookup(loss)                       # UnknownLossError with suggestions
    else:
        raise LossError(f"a boosting objective needs a loss name or a lossreg.Loss, got "
                        f"{type(loss).__name__}")
    if need_hessian and not spec.has_hessian:
        raise LossError(f"loss {spec.name!r} (from {spec.source}) has no Hessian, so it cannot "
                        f"be a boosting objective: boosters need per-sample second derivatives")
    if "none" not in spec.reductions:
        raise LossError(f"loss {spec.name!r} cannot be a boosting objective: it is not a sum "
                        f"of per-sample terms (it supports only reduction "
                        f"{' or '.join(map(repr, spec.reductions))})")
    _link_for(spec)
    return Loss(spec, reduction="none", n_threads=n_threads, **hyper)


def _fused_element(loss: Loss, link: str):
    """``(kernel, plan)`` of the fused objective pass for an element-wise loss whose
    kernels come from one element function (``lossreg.kernels.elementwise``), or None:
    row losses, label sets, per-class hyperparameters and anything a plan checks
    beyond its kernels' own domain count take the loss's checked path."""
    from .kernels import ElementwiseKernels

    plan = loss._plan
    if link not in ("identity", "sigmoid") or plan.needs_scan or loss.spec.outer is not None:
        return None
    kernels, args = plan.kernels, plan.args
    for _ in range(8):                                # composites of composites, bounded
        if isinstance(kernels, ElementwiseKernels):
            break
        pick = getattr(kernels, "for_args", None)   # composites naming their kernel set
        if pick is not None:
            kernels = pick(args)                      # (a per-class twin is refused below)
        elif hasattr(kernels, "default") and hasattr(kernels, "alternative") and args:
            kernels = kernels.alternative if args[-1] else kernels.default      # FormKernels
        elif hasattr(kernels, "scalar") and hasattr(kernels, "positional"):      # pos_weight
            if kernels.positional(args):
                return None
            kernels = kernels.scalar
        else:
            return None
    else:
        return None
    if kernels.arity != 3 or kernels.label_sets is not None or kernels.tiled is not None:
        return None
    from ._gbdt_kernels import objective_kernel
    return objective_kernel(kernels.elem, link), plan


def _fused_buffers(weight: Any, samples: tuple, z: np.ndarray, out):
    """The fused passes' float64 weights (empty: none) of shape ``samples`` and their
    output pair (``out`` when it fits the margin ``z``, else new arrays); (None, None)
    when the weights do not fit (the checked path answers the call)."""
    w = _NO_WEIGHTS
    if weight is not None:
        w = np.ascontiguousarray(weight, dtype=np.float64).reshape(-1)
        if w.size and w.shape != samples:
            return None, None
    if out is None or any(b.shape != z.shape or b.dtype != z.dtype
                          or not b.flags.c_contiguous for b in out):
        out = (np.empty_like(z), np.empty_like(z))
    return w, out


def check_floor(hessian_floor: Any) -> float:
    """``hessian_floor`` as a finite float >= 0, or HyperparameterError."""
    ok = isinstance(hessian_floor, (int, float, np.floating, np.integer)) \
        and not isinstance(hessian_floor, (bool, np.bool_))
    if not ok or not math.isfinite(float(hessian_floor)) or float(hessian_floor) < 0:
        raise HyperparameterError(f"hessian_floor must be a finite float >= 0, got "
                                  f"{hessian_floor!r}")
    return float(hessian_floor)


def rows_from_class_major(flat: np.ndarray, n_samples: int) -> np.ndarray:
    """A flat class-major margin buffer (all samples of class 0, then class 1, ...; the
    layout of LightGBM's internal scores and of lightgbm < 4's Python API) as (n, C) rows
    (a transposed view, no copy)."""
    flat = np.asarray(flat).reshape(-1)
    if n_samples <= 0 or flat.size % n_samples:
        raise ShapeError(f"a margin buffer of {flat.size} values does not hold whole rows "
                         f"for {n_samples} samples")
    return flat.reshape(flat.size // n_samples, n_samples).T


def class_major_from_rows(rows: np.ndarray) -> np.ndarray:
    """(n, C) rows as the flat class-major buffer (the inverse of
    ``rows_from_class_major``); a copy."""
    return np.ascontiguousarray(np.asarray(rows).T).reshape(-1)


def _prefixed(exc: LossError, name: str) -> LossError:
    """``exc`` (same type, same attributes) with the objective's name in its message."""
    cls = type(exc)
    new = cls.__new__(cls)          # not cls(...): DomainError's __init__ takes keywords
    new.__dict__.update(exc.__dict__)
    new.args = (f"objective {name!r}: {exc}",) + tuple(exc.args[1:])
    return new


class _Adapter:
    """The loss, its link and the input checks shared by objectives and metrics."""

    def __init__(self, name_or_loss: Any, need_hessian: bool, n_threads: int | None,
                 hyperparameters: dict):
        self.loss = _none_loss(name_or_loss, hyperparameters, n_threads, need_hessian)
        self.spec = self.loss.spec
        self.name = self.spec.name
        self.link = _link_for(self.spec)
        cw = self.loss.hyperparameters.get("class_weight")
        self.n_classes = None if cw is None else int(len(cw))
        self._mean = None

    @property
    def multiclass(self) -> bool:
        return self.link == "softmax"

    # -- inputs ------------------------------------------------------------------------
    def _inputs(self, labels: Any, margin: Any, weight: Any):
        """Float64 C-contiguous margin of the loss's layout, labels, weights (None when
        absent or empty); ShapeError naming the objective when they do not fit."""
        z = np.asarray(margin)
        # float32 margins (XGBoost's) stay float32 unless a link follows: lossreg's kernels
        # compute in float64 either way and the boosters keep float32 gradients; the
        # sigmoid needs float64 (1 - p would lose its digits in float32)
        dtype = np.float32 if z.dtype == np.float32 and self.link != "sigmoid" else np.float64
        z = np.ascontiguousarray(z, dtype=dtype)
        y = np.asarray(labels)
        if self.multiclass:
            if z.ndim != 2 or z.shape[1] < 2:
                raise ShapeError(f"objective {self.name!r} is multiclass and needs a margin "
                                 f"matrix (n_samples, n_classes) with n_classes >= 2, got shape "
                                 f"{z.shape}: train a multiclass model (XGBoost, LightGBM: "
                                 f"num_class=C; CatBoost: a multiclass target)")
            if self.n_classes is not None and z.shape[1] != self.n_classes:
                raise ShapeError(f"objective {self.name!r}: class_weight has {self.n_classes} "
                                 f"entries but the booster holds {z.shape[1]} margins per "
                                 f"sample; the numbers of classes must match")
            if y.ndim != 1 and y.shape != z.shape and y.size == z.shape[0]:
                y = y.reshape(-1)
            if y.ndim == 0 or y.shape[0] != z.shape[0]:
                raise ShapeError(f"objective {self.name!r}: labels of shape {y.shape} for "
                                 f"{z.shape[0]} margin rows")
        else:
            if z.ndim == 2 and z.shape[1] == 1:
                z = z.reshape(-1)
            if z.ndim != 1:
                raise ShapeError(f"objective {self.name!r} is an element-wise (binary or "
                                 f"regression) loss with one margin per sample, but the booster "
                                 f"holds margins of shape {z.shape} (a multiclass model?); use "
                                 f"'softmax_cross_entropy' for multiclass")
            if y.dtype.kind in "fiub":
                y = np.ascontiguousarray(y, dtype=dtype).reshape(-1)
            if y.shape != z.shape:
                raise ShapeError(f"objective {self.name!r}: labels have shape {y.shape} but "
                                 f"the margin has shape {z.shape}")
        w = None
        if weight is not None:
            w = np.ascontiguousarray(weight, dtype=np.float64).reshape(-1)
            if w.size == 0:
                w = None
        return y, z, w

    def value(self, labels: Any, margin: Any, weight: Any = None) -> float:
        """The loss's own weighted mean over the samples at this margin (through the
        link): what the ``metric`` adapters report."""
        y, z, w = self._inputs(labels, margin, weight)
        if self._mean is None:
            self._mean = Loss(self.spec, reduction="mean", n_threads=self.loss.n_threads,
                              **self.loss.hyperparameters)
        try:
            if self.link == "sigmoid":
                from ._gbdt_kernels import sigmoid
                z = sigmoid(z)
            return float(self._mean(y, z, w))
        except LossError as exc:
            raise _prefixed(exc, self.name) from None

    def per_sample(self, labels: Any, margin: Any, weight: Any = None) -> np.ndarray:
        """Each sample's (weighted) loss at ``link(margin)``: shape (n,)."""
        y, z, w = self._inputs(labels, margin, weight)
        try:
            if self.link == "sigmoid":
                from ._gbdt_kernels import sigmoid
                z = sigmoid(z)
            return self.loss(y, z, w)
        except LossError as exc:
            raise _prefixed(exc, self.name) from None

    def _header(self) -> list[str]:
        hp = ", ".join(f"{k}={v.tolist() if isinstance(v, np.ndarray) else v!r}"
                       for k, v in self.loss.hyperparameters.items())
        link = {
            "identity": "identity: the loss takes the margin itself",
            "sigmoid": "sigmoid: the loss takes p = sigmoid(margin); chain rule "
                       "g = g_p s', h = h_p s'^2 + g_p s''",
            "softmax": "softmax inside the loss: margin rows (n, C) are its logits",
        }[self.link]
        return [f"lossreg {type(self).__name__.lower()} {self.name!r}"
                + (f" ({hp})" if hp else ""), f"  link: {link}"]


class Metric(_Adapter):
    """A registered loss as an evaluation metric on margins: ``value(labels, margin,
    weight)`` is the loss's weighted mean at ``link(margin)`` (lower is better). Needs no
    Hessian."""

    def __init__(self, name_or_loss: Any, *, n_threads: int | None = None,
                 **hyperparameters: Any):
        super().__init__(name_or_loss, False, n_threads, hyperparameters)

    def describe(self) -> str:
        return "\n".join(self._header() + ["  value: the loss's weighted mean (lower is "
                                            "better), on raw margins"])

    def __repr__(self) -> str:
        return f"Metric({self.name!r}, link={self.link!r})"


class Objective(_Adapter):
    """A registered loss as a boosting objective: per-sample gradient and floored Hessian
    of the loss with respect to the booster's margin (see the module docstring).

    ``Objective(name_or_loss, hessian_floor=1e-6, **hyperparameters)``; ``name_or_loss``
    is a registered name (or alias) or a ``lossreg.Loss`` (whose hyperparameters are used;
    its reduction is ignored). ``multiclass_hessian_scale`` (a float, or a function of the
    number of classes) is set by the library adapters: their documented multiclass
    Hessian convention, described by ``multiclass_hessian_note``.
    """

    def __init__(self, name_or_loss: Any, *, hessian_floor: float = DEFAULT_HESSIAN_FLOOR,
                 multiclass_hessian_scale: float | Callable[[int], float] = 1.0,
                 multiclass_hessian_note: str = "", n_threads: int | None = None,
                 **hyperparameters: Any):
        super().__init__(name_or_loss, True, n_threads, hyperparameters)
        self.hessian_floor = check_floor(hessian_floor)
        if not callable(multiclass_hessian_scale):
            scale = float(multiclass_hessian_scale)
            if not (math.isfinite(scale) and scale > 0):
                raise HyperparameterError(f"multiclass_hessian_scale must be a finite float "
                                          f"> 0, got {multiclass_hessian_scale!r}")
        self.multiclass_hessian_scale = multiclass_hessian_scale
        self.multiclass_hessian_note = multiclass_hessian_note
        self._out: tuple[np.ndarray, np.ndarray] | None = None
        self._fused = _fused_element(self.loss, self.link)
        # lossreg's own softmax_cross_entropy has a fused objective pass (a plugin's row
        # loss on logits takes its own kernels)
        self._fused_rows = self.multiclass and self.name == "softmax_cross_entropy" \
            and self.spec.source == BUILTIN_SOURCE
        # and its logistic objective on float32 margins (XGBoost's) computes in float32
        # (``_gbdt_kernels.logistic32_objective``), with scalar weights only
        self._logistic32 = self._fused is not None and self.spec.source == BUILTIN_SOURCE \
            and self.name == "binary_cross_entropy_with_logits" \
            and len(self.loss._plan.args) == 2 \
            and self.loss._plan.bounds == (0.0, 1.0, False, -_MAX_F64, _MAX_F64, False)

    def _scale(self, n_classes: int) -> float:
        if not self.multiclass:
            return 1.0
        s = self.multiclass_hessian_scale
        return float(s(n_classes) if callable(s) else s)

    def buffers(self, margin: Any) -> tuple[np.ndarray, np.ndarray]:
        """A pair of output buffers for ``grad_hess(..., out=)`` at this margin, kept and
        reused while shape and dtype stay the same (the boosters copy what an objective
        returns, so an adapter need not allocate every round)."""
        margin = np.asarray(margin)
        shape = margin.shape if self.multiclass else (margin.size,)
        dtype = np.float32 if margin.dtype == np.float32 and (
            self.link != "sigmoid" or self._fused is not None) else np.float64
        out = self._out
        if out is None or out[0].shape != shape or out[0].dtype != dtype:
            out = self._out = (np.empty(shape, dtype), np.empty(shape, dtype))
        return out

    # -- the objective -------------------------------------------------------------------
    def grad_hess(self, labels: Any, margin: Any, weight: Any = None,
                  out: tuple[np.ndarray, np.ndarray] | None = None, floored: bool = True):
        """``(gradient, Hessian)`` of each sample's (weighted) loss with respect to the
        margin, shaped like the margin ((n,) or (n, C)); float32 for a float32 margin
        (computed in float64, rounded once; float64 when a sigmoid link has no fused
        pass), else float64. The Hessian is floored and, for multiclass, scaled
        (see the module docstring); ``floored=False`` returns the loss's own Hessian
        diagonal (an adapter building a full multiclass Hessian floors it itself).
        ``out``: a pair of C-contiguous buffers of the margin's shape and that dtype to
        write into (ignored when they do not fit).

        Element-wise losses take one fused pass (``_gbdt_kernels.compile_objective``:
        link, derivatives, weight and floor, read from and written in the margin's
        dtype); any input it does not take, and any term outside the loss's domains,
        goes through the loss's own checked path (which raises the typed error)."""
        if floored and self._fused is not None:
            done = self._fused_grad_hess(labels, margin, weight, out)
            if done is not None:
                return done
        if floored and self._fused_rows:
            done = self._fused_softmax(labels, margin, weight, out)
            if done is not None:
                return done
        y, z, w = self._inputs(labels, margin, weight)
        if out is not None and any(b.shape != z.shape or b.dtype != z.dtype for b in out):
            out = None
        try:
            if self.link == "sigmoid":
                from ._gbdt_kernels import sigmoid, sigmoid_chain
                p = sigmoid(z)
                g, h = self.loss.grad_hess(y, p, w, out=out)
                sigmoid_chain(z, g, h)
            else:
                g, h = self.loss.grad_hess(y, z, w, out=out)
        except LossError as exc:
            raise _prefixed(exc, self.name) from None
        if not floored:
            return g, h
        from ._gbdt_kernels import floor_hessian
        scale = self._scale(z.shape[1] if z.ndim == 2 else 1)
        floor_hessian(h.reshape(h.shape[0], -1), _NO_WEIGHTS if w is None else w,
                      self.hessian_floor, scale)
        return g, h

    def _fused_grad_hess(self, labels: Any, margin: Any, weight: Any, out):
        """The fused pass of an element-wise loss, or None (the checked path decides)."""
        z = margin if type(margin) is np.ndarray else np.asarray(margin)
        if z.dtype != np.float32 and z.dtype != np.float64:
            return None
        if z.ndim == 2 and z.shape[1] == 1:
            z = z.reshape(-1)
        if z.ndim != 1 or not z.flags.c_contiguous:
            return None
        y = np.asarray(labels)
        if y.dtype.kind not in "fiub":
            return None
        y = np.ascontiguousarray(y, dtype=z.dtype).reshape(-1)
        if y.shape != z.shape:
            return None
        w, out = _fused_buffers(weight, z.shape, z, out)
        if w is None:
            return None
        kernel, plan = self._fused
        if self._logistic32 and z.dtype == np.float32:
            from ._gbdt_kernels import logistic32_objective
            # float32 weights (XGBoost's own); one beyond float32's range is refused here
            if w.size:
                with np.errstate(over="ignore"):
                    w = w.astype(np.float32)
            else:
                w = _NO_WEIGHTS32
            done = logistic32_objective(y, z, w, out[0], out[1], self.hessian_floor,
                                        *plan.args, plan.workers)
        else:
            from numba.core.errors import NumbaError

            from ._gbdt_kernels import run_objective
            try:
                done = run_objective(kernel, plan.workers, y, z, w, out[0], out[1],
                                     self.hessian_floor, plan.bounds, plan.args)
            except NumbaError:       # a plugin's element function the fused pass cannot
                self._fused = None   # inline: its own kernels (PluginError if they fail)
                return None
        return out if done else None

    def _fused_softmax(self, labels: Any, margin: Any, weight: Any, out):
        """softmax_cross_entropy on integer labels in one fused pass, or None (the
        checked path decides)."""
        z = margin if type(margin) is np.ndarray else np.asarray(margin)
        if (z.dtype != np.float32 and z.dtype != np.float64) or z.ndim != 2 \
                or z.shape[1] < 2 or not z.flags.c_contiguous:
            return None
        plan = self.loss._plan
        cw = plan.args[1]
        if cw.shape[0] and cw.shape[0] != z.shape[1]:
            return None
        y = np.asarray(labels)
        if y.ndim != 1 and y.size == z.shape[0]:
            y = y.reshape(-1)
        if y.shape != (z.shape[0],) or y.dtype.kind not in "fiub":
            return None
        if y.dtype != np.float32 and y.dtype != np.float64:
            y = y.astype(np.float64)
        y = np.ascontiguousarray(y)
        w, out = _fused_buffers(weight, y.shape, z, out)
        if w is None:
            return None
        from ._gbdt_kernels import softmax_objective
        if not softmax_objective(y, z, w, out[0], out[1], self.hessian_floor,
                                 self._scale(z.shape[1]), plan.args, plan.workers):
            return None
        return out

    # -- reporting ---------------------------------------------------------------------
    def describe(self) -> str:
        """What this objective computes: loss, link, Hessian floor and scale, weights."""
        lines = self._header() + [
            f"  hessian_floor: {self.hessian_floor:g} (per sample, before its weight: "
            f"h_i = w_i max(h_i, floor))"]
        if self.multiclass:
            note = self.multiclass_hessian_note or f"{self.multiclass_hessian_scale:g}"
            lines.append(f"  multiclass Hessian scale: {note}")
        lines.append("  weights: the booster's sample weights, applied once (by lossreg)")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (f"Objective({self.name!r}, hessian_floor={self.hessian_floor:g}, "
                f"link={self.link!r})")
