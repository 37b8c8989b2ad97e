"""Losses on Dask arrays: out of core and distributed, bit-identical to one machine.

```python
import lossreg.dask as ld
value = ld.evaluate("mse", y_true, y_pred)            # lazy 0-d dask array
value = ld.evaluate(loss, y_true, y_pred, compute=True)   # a float
g = ld.grad("huber", y_true, y_pred, delta=0.5)       # dask array, y_pred's chunks
value, g = ld.value_and_grad(loss, y_true, y_pred, sample_weight=w)
```

A separate entry point rather than dask arrays inside ``Loss.__call__``: the ordinary
call stays free of any dask check or import on its hot path (``import lossreg`` never
imports dask), and a lazy result (a dask array, not a float) is a different contract
that deserves its own name. Passing a dask array to an ordinary loss raises a
``DTypeError`` pointing here (``dispatch.as_real_array``), never a silent compute.

How the reduced value stays bit-identical: in memory, lossreg sums w_i l_i in float64
over fixed chunks of ``kernels.reduce.CHUNK`` (2**14) terms (elements, or rows for row
losses) and adds the chunk totals with an exactly rounded sum (``reduce.total``). Here
the inputs are rechunked so that every block starts on a multiple of that chunk (only
along rows for row losses), each block returns its chunk totals (``Job.partials``) and
the final task adds all of them with the same exactly rounded sum; the "mean" scale
``1 / sum(w)`` is formed the same way, and weights summing outside [2**-64, 2**64] are
scaled by the same power of two as in memory (``_dask_blocks.finish_weights``). Same
chunk totals, same sum, for any dask chunking, worker count, thread count or scheduler.
The per-block work lives in ``lossreg._dask_blocks``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from . import _dask_blocks as B
from ._bridge import require, resolve
from .dispatch import _shape_error, working_dtype
from .errors import DomainError, DTypeError, HyperparameterError, LossError, ShapeError
from .kernels.reduce import CHUNK
from .loss import Loss
from .plan import positional

__all__ = ["evaluate", "grad", "value_and_grad", "hessian", "grad_hess"]

da = require("dask.array", "dask", "lossreg.dask")

DEFAULT_BLOCK = 1 << 22     # terms per block when the inputs are not dask arrays


def evaluate(loss: Any, y_true: Any, y_pred: Any, sample_weight: Any = None, *,
             compute: bool = False, validate: bool | None = None,
             block_size: int | None = None, **hyperparameters: Any):
    """The loss value of dask (or NumPy) inputs.

    ``loss``: a ``lossreg.Loss`` or a name (then ``hyperparameters`` and ``reduction=``
    build it, checked before any task exists). Returns a lazy 0-d float64 dask array for
    "mean"/"sum" (a float with ``compute=True``), a dask array of per-term values for
    "none". ``block_size``: terms per block (rounded up to a multiple of ``CHUNK``;
    default: about the size of y_pred's chunks). The value does not depend on it.
    """
    return _run(loss, y_true, y_pred, sample_weight, hyperparameters, compute, validate,
                block_size, value=True)[0]


def grad(loss: Any, y_true: Any, y_pred: Any, sample_weight: Any = None, *,
         compute: bool = False, validate: bool | None = None, block_size: int | None = None,
         **hyperparameters: Any):
    """d(value)/d(y_pred): a dask array with y_pred's shape, chunks and working dtype."""
    return _run(loss, y_true, y_pred, sample_weight, hyperparameters, compute, validate,
                block_size, grad=True)[1]


def value_and_grad(loss: Any, y_true: Any, y_pred: Any, sample_weight: Any = None, *,
                   compute: bool = False, validate: bool | None = None,
                   block_size: int | None = None, **hyperparameters: Any):
    """``(value, grad)`` from one pass over the inputs (a fused kernel per block)."""
    return _run(loss, y_true, y_pred, sample_weight, hyperparameters, compute, validate,
                block_size, value=True, grad=True)[:2]


def hessian(loss: Any, y_true: Any, y_pred: Any, sample_weight: Any = None, *,
            compute: bool = False, validate: bool | None = None,
            block_size: int | None = None, **hyperparameters: Any):
    """Diagonal of the Hessian (``Loss.hessian``) as a dask array like y_pred."""
    return _run(loss, y_true, y_pred, sample_weight, hyperparameters, compute, validate,
                block_size, hess=True)[2]


def grad_hess(loss: Any, y_true: Any, y_pred: Any, sample_weight: Any = None, *,
              compute: bool = False, validate: bool | None = None,
              block_size: int | None = None, **hyperparameters: Any):
    """``(gradient, Hessian diagonal)`` from one fused pass per block."""
    return _run(loss, y_true, y_pred, sample_weight, hyperparameters, compute, validate,
                block_size, grad=True, hess=True)[1:]


# -- building the graph ---------------------------------------------------------------------

def _loss(loss: Any, hyperparameters: dict) -> Loss:
    reduction = hyperparameters.pop("reduction", None)
    resolved = resolve(loss, reduction, hyperparameters)
    if not isinstance(resolved, Loss) or getattr(resolved, "terms", None) is not None \
            or resolved.spec is None:
        raise LossError(f"lossreg.dask evaluates one registered loss; got "
                        f"{type(resolved).__name__} (evaluate each term and add the values)")
    if not getattr(resolved.spec.kernels, "fills_partials", False):
        raise LossError(f"loss {resolved.name!r} (from {resolved.spec.source}): its kernels "
                        f"({type(resolved.spec.kernels).__name__}) do not report chunk totals "
                        f"(Kernels.fills_partials), which lossreg.dask needs to combine blocks "
                        f"exactly")
    return resolved


def _as_dask(da, x: Any, argument: str):
    """A dask array of a real dtype with known chunk sizes (NumPy inputs are wrapped)."""
    if not isinstance(x, da.Array):
        try:
            x = np.asarray(x)
        except Exception as exc:
            raise DTypeError(f"{argument} cannot be converted to an array: {exc}",
                             argument=argument, constraint="real numeric array") from None
        x = da.from_array(x, chunks=_auto_chunks(x.shape))
    if x.dtype.kind not in "fiub":
        raise DTypeError(f"{argument} must be a real numeric array, got dtype {x.dtype}",
                         argument=argument, constraint="real numeric dtype")
    if any(isinstance(c, float) and math.isnan(c) for dim in x.chunks for c in dim) \
            or any(isinstance(s, float) and math.isnan(s) for s in x.shape):
        raise ShapeError(f"{argument} has unknown chunk sizes (shape {x.shape}); call "
                         f"{argument}.compute_chunk_sizes() first: lossreg.dask needs every "
                         f"block's position to combine the blocks exactly")
    return x


def _auto_chunks(shape: tuple) -> tuple:
    if len(shape) == 0:
        return ()
    inner = int(np.prod(shape[1:], dtype=np.int64)) or 1
    return (max(1, DEFAULT_BLOCK // inner),) + tuple(shape[1:])


def _block_terms(p, n_cols: int, block_size: int | None) -> int:
    """Terms per block: a positive multiple of CHUNK near y_pred's block size."""
    if block_size is None:
        elements = int(np.prod(p.chunksize, dtype=np.int64)) if p.ndim else 1
        terms = max(1, elements // max(n_cols, 1))
    else:
        if isinstance(block_size, bool) or not isinstance(block_size, (int, np.integer)) \
                or block_size < 1:
            raise LossError(f"block_size must be a positive int, got {block_size!r}")
        terms = int(block_size)
    return max(1, round(terms / CHUNK)) * CHUNK


class _Inputs:
    """The aligned inputs: ``t``, ``p``, ``w`` (or None), dask arrays whose blocks are the
    same rows (1-D flattened for element-wise losses; (n, C) and (n,) for row losses)."""

    def __init__(self, da, spec, y_true, y_pred, sample_weight, block_size):
        t = _as_dask(da, y_true, "y_true")
        p = _as_dask(da, y_pred, "y_pred")
        w = None if sample_weight is None else _as_dask(da, sample_weight, "sample_weight")
        self.pred_shape, self.pred_chunks = p.shape, p.chunks
        self.dtype = working_dtype(p)
        self.rows = spec.layout == "rows"
        self.labels = False
        if not self.rows:
            if t.shape != p.shape:
                raise _shape_error(t, p, "they must be equal (no broadcasting)")
            self.value_shape, self.n_cols = p.shape, 1
            t, p = t.reshape(-1), p.reshape(-1)
        else:
            if p.ndim not in (1, 2):
                raise ShapeError(f"y_pred must be 1-D (one row) or 2-D (rows, classes), "
                                 f"got shape {p.shape}")
            self.labels = spec.takes_labels and t.shape == p.shape[:-1]
            if t.shape != p.shape and not self.labels:
                raise _shape_error(t, p, "they must be equal (rows of the same classes)"
                                   + (" or y_true must hold one class label per row"
                                      if spec.takes_labels else ""))
            if p.shape[-1] == 0:
                raise ShapeError(f"y_pred has shape {p.shape}: rows need at least one class")
            self.value_shape, self.n_cols = p.shape[:-1], p.shape[-1]
            p = p.reshape(-1, self.n_cols)
            t = t.reshape(-1) if self.labels else t.reshape(-1, self.n_cols)
        self.n_terms = int(p.shape[0])
        if w is not None:
            if w.shape != tuple(self.value_shape):
                raise ShapeError(f"sample_weight has shape {w.shape} but the loss has "
                                 f"{self.n_terms} terms of shape {tuple(self.value_shape)}; "
                                 f"they must be equal")
            w = w.reshape(-1)
        self.step = _block_terms(p, self.n_cols, block_size)
        rows = {0: self.step}
        self.t = t.rechunk({**rows, 1: -1} if t.ndim == 2 else rows)
        self.p = p.rechunk({**rows, 1: -1} if p.ndim == 2 else rows)
        self.w = None if w is None else w.rechunk(rows)
        self.starts = np.concatenate([[0], np.cumsum(self.p.chunks[0])[:-1]]).astype(int)

    def key(self, x, i: int):
        return (x.name, i, 0) if x.ndim == 2 else (x.name, i)

    def collections(self) -> list:
        return [x for x in (self.t, self.p, self.w) if x is not None]


def _run(loss: Any, y_true, y_pred, sample_weight, hyperparameters: dict, compute: bool,
         validate: bool | None, block_size, value: bool = False, grad: bool = False,
         hess: bool = False):
    loss = _loss(loss, dict(hyperparameters))
    spec, reduction = loss.spec, loss.reduction
    if hess and not spec.has_hessian:
        raise LossError(f"loss {loss.name!r} (from {spec.source}) has no Hessian: its kernels "
                        f"give no second derivatives (spec.has_hessian is False)")
    validate = loss.validate if validate is None else bool(validate)
    inp = _Inputs(da, spec, y_true, y_pred, sample_weight, block_size)
    if spec.check_args is not None:
        spec.check_args(loss._args, inp.pred_shape)
    if positional(spec.kernels, loss._args):
        raise HyperparameterError(
            f"loss {loss.name!r} with these hyperparameters weighs each element by its "
            "position in the last axis (a per-class pos_weight), which lossreg.dask does "
            "not support; use a scalar, or compute in memory")
    if inp.n_terms == 0:
        return _empty(da, loss, inp, value, grad, hess, compute)
    out = _Graph(da, loss, inp, validate).build(value, grad, hess)
    if compute:
        import dask

        try:
            done = dask.compute(*[x for x in out if x is not None])
        except DomainError as exc:
            if exc.constraint != B.RESCALE:
                raise
            # weights summing outside [2**-64, 2**64] met by a pass without a weight
            # pass first (a value, RMSE's first pass): again, weights first (rare)
            out = _Graph(da, loss, inp, validate, rescale=True).build(value, grad, hess)
            done = dask.compute(*[x for x in out if x is not None])
        it = iter(done)
        out = tuple(None if x is None else next(it) for x in out)
        if out[0] is not None and reduction != "none":
            out = (float(out[0]),) + out[1:]
    return out


def _empty(da, loss: Loss, inp: _Inputs, value, grad, hess, compute):
    """Empty inputs: the in-memory answer (ShapeError for "mean"), wrapped."""
    t = np.zeros(inp.t.shape, inp.t.dtype)
    p = np.zeros(inp.p.shape, inp.dtype)
    w = None if inp.w is None else np.zeros(inp.w.shape)
    v, g, h = loss._plan.run(t, p, w, value, grad, hess)
    shape = inp.pred_shape
    g = None if g is None else g.reshape(shape)
    h = None if h is None else h.reshape(shape)
    if compute:
        return v, g, h
    wrap = (lambda a: None if a is None else da.from_array(np.asarray(a)))
    return wrap(v), wrap(g), wrap(h)


class _Graph:
    """The task graph of one call: an optional first pass (the global "mean" denominator,
    or RMSE's mean), one task per block, and the tasks that cut the blocks' results
    into the value and the derivative arrays."""

    def __init__(self, da, loss: Loss, inp: _Inputs, validate: bool, rescale: bool = False):
        from dask.base import tokenize

        self.da, self.loss, self.inp, self.validate = da, loss, inp, validate
        self.reduction = loss.reduction
        self.threads = loss.n_threads or 1
        # ``rescale``: a weighted "mean" always starts with the weight pass (which finds
        # out-of-range weight sums before any loss pass; ``_run`` retries with it)
        self.rescale = rescale and inp.w is not None and self.reduction == "mean"
        self.token = tokenize(loss.spec.name, loss.spec.source, loss.config(),
                              [x.name for x in inp.collections()], validate, self.threads,
                              inp.labels, self.rescale)
        self.nb = len(inp.p.chunks[0])

    def _array(self, graph, name, chunks, dtype, meta_ndim: int):
        return self.da.Array(graph, name, chunks, dtype=dtype,
                             meta=np.empty((0,) * meta_ndim, dtype=dtype))

    def _scalar(self, name: str, task: tuple, deps: list):
        from dask.highlevelgraph import HighLevelGraph

        graph = HighLevelGraph.from_collections(name, {(name,): task}, dependencies=deps)
        return self._array(graph, name, (), np.dtype(object), 0)

    def build(self, value: bool, grad: bool, hess: bool):
        inp, loss, spec, reduction = self.inp, self.loss, self.loss.spec, self.reduction
        weighted = inp.w is not None
        outer = spec.outer
        derivatives = grad or hess
        summary = None            # 0-d object array holding the first pass's summary
        first_value = None
        weights = None            # the weight pass's summary, when there is one
        if self.rescale or (derivatives and outer is None and reduction == "mean"
                            and (weighted or self._label_mean_weights())):
            # the scale 1 / sum(w) must be known before any derivative block: a pass over
            # the weights (and labels) only
            job = B.BlockJob(loss, reduction, validate=self.validate, threads=self.threads,
                             weights_only=True)
            blocks = self._blocks(f"lossreg-weights-{self.token}", job, None, use_p=False,
                                  use_t=inp.labels)
            weights = summary = self._scalar(
                f"lossreg-weight-sum-{self.token}",
                (B.finish_weights, self._keys(blocks), inp.n_terms, reduction, weighted),
                [blocks])
        if derivatives and outer is not None:
            # RMSE: the derivatives need the mean m over everything: a value pass first
            job = B.BlockJob(loss, reduction, value=True, validate=self.validate,
                             threads=self.threads)
            blocks = self._blocks(f"lossreg-rmse-pass-{self.token}", job, weights)
            task = (B.finish, self._keys(blocks), inp.n_terms, reduction, weighted, job)
            if weights is not None:
                task += ((weights.name,),)
            summary = self._scalar(f"lossreg-rmse-summary-{self.token}", task,
                                   [blocks] + ([weights] if weights is not None else []))
            first_value = summary
        elif derivatives and reduction == "mean" and summary is None:
            summary = {"ws": float(inp.n_terms), "scale": 1.0 / float(inp.n_terms)}
        want_value = value and first_value is None
        job = B.BlockJob(loss, reduction, value=want_value, grad=grad, hess=hess,
                         validate=self.validate, threads=self.threads)
        blocks = self._blocks(f"lossreg-blocks-{self.token}-{int(value)}{int(grad)}"
                              f"{int(hess)}", job, summary)
        v = g = h = None
        if value:
            v = self._value(blocks, job, first_value,
                            summary if not isinstance(summary, dict) else None)
        if grad:
            g = self._derivative(blocks, B.block_grad, "grad")
        if hess:
            h = self._derivative(blocks, B.block_hess, "hess")
        return v, g, h

    def _label_mean_weights(self) -> bool:
        """Whether the loss's "mean" over label rows has its own row weights (PyTorch's
        class-weighted mean); asked of the kernels on zero rows."""
        lt = self.loss.spec.kernels.labels
        if not self.inp.labels or lt is None or lt.mean_weights is None:
            return False
        empty = np.empty(0, dtype=np.int64)
        return lt.mean_weights(empty, self.inp.n_cols, np.empty(0), False,
                               *self.loss._args) is not False

    def _blocks(self, name: str, job: B.BlockJob, summary, use_t=True, use_p=True):
        from dask.highlevelgraph import HighLevelGraph

        inp = self.inp
        layer, deps = {}, []
        summary_arg = summary
        if summary is not None and not isinstance(summary, dict):
            summary_arg = (summary.name,)
            deps.append(summary)
        for i in range(self.nb):
            n = int(inp.p.chunks[0][i])
            t = inp.key(inp.t, i) if use_t else None
            if use_p:
                p = inp.key(inp.p, i)
            else:   # the weight pass reads no predictions: a zero-stride stand-in
                p = (_stand_in, n, inp.n_cols if inp.rows else 0, inp.dtype.str)
            w = inp.key(inp.w, i) if inp.w is not None else None
            task = (B.run_block, job, t, p, w, int(inp.starts[i]))
            if summary_arg is not None:
                task += (summary_arg,)
            layer[(name, i)] = task
        used = [x for x, on in ((inp.t, use_t), (inp.p, use_p), (inp.w, True))
                if x is not None and on]
        graph = HighLevelGraph.from_collections(name, layer, dependencies=used + deps)
        return self._array(graph, name, (tuple(1 for _ in range(self.nb)),),
                           np.dtype(object), 1)

    def _keys(self, blocks) -> list:
        return [(blocks.name, i) for i in range(self.nb)]

    def _summaries(self, blocks):
        """One small task per block keeping only its chunk totals and error, so that the
        final task does not hold the blocks' derivative arrays in memory."""
        from dask.highlevelgraph import HighLevelGraph

        name = f"lossreg-totals-{blocks.name}"
        layer = {(name, i): (B.block_summary, (blocks.name, i)) for i in range(self.nb)}
        graph = HighLevelGraph.from_collections(name, layer, dependencies=[blocks])
        return self._array(graph, name, blocks.chunks, np.dtype(object), 1)

    def _value(self, blocks, blocks_job, first_value, weights):
        from dask.highlevelgraph import HighLevelGraph

        inp, da = self.inp, self.da
        if self.reduction == "none":
            name = f"lossreg-values-{blocks.name}"
            layer = {}
            for i in range(self.nb):
                n = int(inp.p.chunks[0][i])
                layer[(name, i)] = (B.block_values, (blocks.name, i), (n,))
            graph = HighLevelGraph.from_collections(name, layer, dependencies=[blocks])
            flat = self._array(graph, name, (inp.p.chunks[0],), inp.dtype, 1)
            return flat.reshape(inp.value_shape) if flat.shape != inp.value_shape else flat
        name = f"lossreg-value-{blocks.name}"
        if first_value is not None:
            task, deps = (B.value_of, (first_value.name,)), [first_value]
        else:
            # blocks that hold derivative arrays hand on only their totals (the arrays
            # are released as soon as they are written); value-only blocks hold none
            small = (self._summaries(blocks) if blocks_job.grad or blocks_job.hess
                     else blocks)
            total = (B.finish, self._keys(small), inp.n_terms, self.reduction,
                     inp.w is not None, blocks_job, None if weights is None else (weights.name,))
            task, deps = (B.value_of, total), [small] + ([weights] if weights is not None
                                                         else [])
        graph = HighLevelGraph.from_collections(name, {(name,): task}, dependencies=deps)
        return self._array(graph, name, (), np.dtype(np.float64), 0)

    def _derivative(self, blocks, cut, what: str):
        from dask.highlevelgraph import HighLevelGraph

        inp = self.inp
        name = f"lossreg-{what}-{blocks.name}"
        layer = {}
        for i in range(self.nb):
            n = int(inp.p.chunks[0][i])
            if inp.rows:
                layer[(name, i, 0)] = (cut, (blocks.name, i), (n, inp.n_cols))
            else:
                layer[(name, i)] = (cut, (blocks.name, i), (n,))
        graph = HighLevelGraph.from_collections(name, layer, dependencies=[blocks])
        chunks = inp.p.chunks
        arr = self._array(graph, name, chunks, inp.dtype, len(chunks))
        if arr.shape != tuple(inp.pred_shape):
            arr = arr.reshape(inp.pred_shape)
        return arr.rechunk(inp.pred_chunks) if arr.chunks != inp.pred_chunks else arr


def _stand_in(n: int, n_cols: int, dtype: str) -> np.ndarray:
    """A zero-stride array of the block's shape (no memory): the weight pass's y_pred,
    whose values are never read."""
    shape = (n, n_cols) if n_cols else (n,)
    return np.broadcast_to(np.zeros((), dtype=np.dtype(dtype)), shape)
