"""The per-block work of ``lossreg.dask``, in NumPy only (no dask import here).

Each dask task runs ``run_block`` on one block of rows (element-wise losses: a piece of
the flattened inputs) that starts on a multiple of ``kernels.reduce.CHUNK`` terms. It
goes through the same steps as ``Plan.execute`` in memory (``dispatch.prepare``, label
checks, ``dispatch.check_domains``, the kernels via ``Plan._run``) and returns a
``BlockResult``: the float64 chunk totals of sum_i w_i l_i (``Job.partials``) and of the
weights, the derivative blocks, and the first error as a ``Failure`` carrying global
indices. ``finish`` combines the chunk totals of all blocks with ``reduce.total``
(exactly rounded, so order-free): the same number as one in-memory call.

Weights of a "mean" summing outside [2**-64, 2**64] are scaled by a power of two as in
memory (``dispatch._rescaled``): ``finish_weights`` derives the scaled sum from the weight
pass, the blocks scale theirs (``_shifted``); a pass with no weight pass first raises
the ``RESCALE`` DomainError, which ``lossreg.dask`` answers (compute=True) by
recomputing with one.

Errors are not raised inside a block that reports a value: ``finish`` picks the one the
in-memory call would raise (the earliest check, then the smallest global index).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from . import errors as E
from .dispatch import (_MAX_F64, _MIN_POSITIVE, Batch, _as_labels, check_domains,
                       label_weights, prepare)
from .kernels import reduce as R
from .kernels.protocol import Job
from ._zero_weights import cleared, neutralized

_EMPTY_F64 = np.empty(0, dtype=np.float64)

# Check stages, in the order of one in-memory call (``Plan.run``/``execute``); the
# global checks on the weight sums sit between them (``finish``).
PREPARE, LABELS, DOMAINS, KERNEL = 0, 1, 2, 3

# The constraint of the DomainError ``finish`` raises when a "mean" needs its weights
# rescaled (``dispatch._rescaled``) but the blocks already ran with the original ones (a
# pass without a weight pass first): ``lossreg.dask`` with ``compute=True`` catches it and
# recomputes with a weight pass first (``_Graph(rescale=True)``).
RESCALE = "sum in [2**-64, 2**64] (or a weight pass first)"
_WIDE = 2.0 ** 1000        # a block whose largest weight is above this also sums its
#   weights scaled by a power of two (their chunk totals could overflow to inf)
_NORMAL = 2.0 ** -1022     # the smallest normal float64


class Failure(NamedTuple):
    """A typed error found in a block, with global indices; picklable (a tuple)."""

    stage: int
    sub: int
    index: int
    cls: str
    message: str
    argument: str
    constraint: str

    def key(self) -> tuple:
        return self.stage, self.sub, self.index

    def error(self) -> E.LossError:
        return getattr(E, self.cls)(self.message, argument=self.argument,
                                    constraint=self.constraint, index=self.index)


@dataclass(frozen=True)
class BlockJob:
    """What every block computes: ``loss`` (pickled by reference: its name and config),
    the reduction, whether the value, gradient and Hessian diagonal are wanted, whether to
    validate, Numba threads per task, and ``weights_only`` (the weight-sum pass)."""

    loss: Any
    reduction: str
    value: bool = False
    grad: bool = False
    hess: bool = False
    validate: bool = True
    threads: int = 1
    weights_only: bool = False


@dataclass
class BlockResult:
    n_terms: int
    partials: np.ndarray | None = None       # chunk totals of sum w_i l_i
    wparts: np.ndarray | None = None         # chunk totals of the sample weights
    dparts: np.ndarray | None = None         # chunk totals of the "mean" row weights (labels)
    values: np.ndarray | None = None         # reduction="none"
    grad: np.ndarray | None = None
    hess: np.ndarray | None = None
    failure: Failure | None = None
    row0: int = 0                            # the block's first term
    zeros: bool = False                      # some weight in the block is exactly 0
    wmax: float | None = None                # largest weight (the weight pass)
    wscaled: np.ndarray | None = None        # chunk totals of the weights times 2**-wexp,
    wexp: int = 0                            # when wmax > _WIDE (wparts may be inf)

    def checked(self) -> "BlockResult":
        """Raise the block's own error (a derivative block has nothing else to give)."""
        if self.failure is not None:
            raise self.failure.error()
        return self


def _sub(exc: E.DomainError) -> int:
    """Order of the sub-checks inside one stage (``check_domains``: y_true before y_pred;
    per argument the interval, then whole numbers, then row sums, then non-zero rows)."""
    arg = {"y_true": 0, "sample_weight": 1, "y_pred": 2}.get(exc.argument, 3)
    c = exc.constraint or ""
    kind = (1 if c.startswith("integer") else 2 if c.startswith("rows sum")
            else 3 if c.startswith("a non-zero") else 0)
    return 4 * arg + kind


def _failure(stage: int, exc: E.DomainError, row0: int, n_cols: int, rows: bool) -> Failure:
    """``exc`` (indices local to the block) with global indices in message and ``index``.

    Indices into y_true/y_pred are flat: the block's first flat index is row0 * n_cols
    for row losses; indices of labels and weights count rows."""
    local = exc.index
    per_row = rows and (exc.argument == "sample_weight" or exc.constraint.startswith("label")
                        or exc.constraint.startswith("integer class"))
    offset = row0 if per_row else row0 * n_cols
    message = str(exc)
    index = None
    if local is not None:
        index = local + offset
        message = message.replace(f"at index {local} (", f"at index {index} (", 1)
        if exc.constraint.startswith("rows sum"):
            r = local // n_cols
            message = message.replace(f"at row {r} (", f"at row {r + row0} (", 1)
    return Failure(stage, _sub(exc), -1 if index is None else index, type(exc).__name__,
                   message, exc.argument, exc.constraint)


def run_block(job: BlockJob, t: np.ndarray, p: np.ndarray, w: np.ndarray | None, row0: int,
              summary: dict | None = None) -> BlockResult:
    """One block: rows (or flat elements) ``row0 ..`` of the (aligned) inputs.

    ``summary``: the result of the weight pass (``finish_weights``) or of the value pass
    of a loss with ``outer`` (``finish``), when the derivatives need a global number.
    """
    from .plan import Plan

    loss = job.loss
    spec = loss._plan.spec      # the domains of these hyperparameters (spec.configured)
    rows = spec.layout == "rows"
    plan = Plan(spec, loss._args, job.reduction, job.threads)
    n_cols = p.shape[1] if rows else 1
    n_terms = p.shape[0]
    res = BlockResult(n_terms)
    scan = plan.scan_workers_for(p.size)
    checked = summary is not None and "zero_rows" in summary   # by a first pass
    try:
        if job.weights_only:
            batch = _weights_batch(spec, t, p, w, n_terms, scan)
        else:      # the weights apart: checked here, summed once by chunks below
            batch = prepare(spec, t, p, None, "sum", plan.scan_workers_for)
            if w is not None and checked:
                batch.w = np.ascontiguousarray(w, dtype=np.float64).reshape(-1)
                batch.zeros = row0 in summary["zero_rows"]
                if summary.get("shift") is not None:
                    batch.w = _shifted(batch.w, summary["shift"])
            elif w is not None:
                batch.w, batch.zeros = _checked_weights(w, scan)
    except E.DomainError as exc:
        res.failure = _failure(PREPARE, exc, row0, n_cols, rows)
        return res
    if w is not None and not checked:
        res.wparts = R.partial_sums(batch.w, _EMPTY_F64, scan)
        res.zeros = bool(batch.zeros)
        if job.weights_only and batch.w.size:
            res.wmax = float(batch.w.max())
            if res.wmax > _WIDE:
                res.wexp = math.frexp(res.wmax)[1]
                res.wscaled = R.partial_sums(np.ldexp(batch.w, -res.wexp), _EMPTY_F64, scan)
    res.row0 = row0
    args = plan.label_args if batch.labels else plan.args
    if batch.labels:
        try:
            label_weights(spec, args, batch, "sum", job.validate, scan)
        except E.DomainError as exc:
            res.failure = _failure(LABELS, exc, row0, n_cols, rows)
            return res
        lt = spec.kernels.labels
        if job.reduction == "mean" and lt.mean_weights is not None and not checked:
            d = np.empty(n_terms, dtype=np.float64)
            if lt.mean_weights(batch.t, n_cols, d, False, *args) is not False:
                res.dparts = R.partial_sums(d, batch.w, scan)
    if job.weights_only:
        return res
    if job.validate and (plan.needs_scan or batch.zeros):
        try:
            check_domains(spec, batch, scan, every=batch.zeros)
        except E.DomainError as exc:
            res.failure = _failure(DOMAINS, exc, row0, n_cols, rows)
            return res
    zero = None
    if batch.zeros:       # as Plan.execute: stand-ins at weight 0, the layout unchanged
        batch, zero = neutralized(spec, batch)
    return _kernels(job, plan, batch, args, res, summary, row0, zero)


def _kernels(job: BlockJob, plan, batch: Batch, args: tuple, res: BlockResult,
             summary: dict | None, row0: int, zero: np.ndarray | None) -> BlockResult:
    """The loss's kernels on a checked batch (``Plan.execute``'s job, with chunk totals);
    ``zero``: the terms of weight 0, which hold stand-ins (``Plan.execute``)."""
    spec = job.loss.spec
    p = batch.p
    n_terms = batch.n_terms
    rows = spec.layout == "rows"
    n_cols = p.shape[1] if rows else 1
    scan = plan.scan_workers_for(p.size)
    workers = plan.workers_for(p.size)
    g = np.empty(batch.p.shape, batch.dtype) if job.grad else None
    h = np.empty(batch.p.shape, batch.dtype) if job.hess else None
    if spec.outer is not None and summary is not None and "m" in summary:   # RMSE's grad
        u = g if g is not None else np.empty(batch.p.shape, batch.dtype)
        run = Job(batch.t, batch.p, batch.w, args, plan.bounds, False, None, u, h,
                  summary["scale"], False, workers > 1, workers, batch.labels, scan)
        plan._run(run, batch)
        d1 = u.dtype.type(spec.outer[1](summary["m"]))
        if h is not None:
            h += (u.dtype.type(spec.outer[2](summary["m"])) * u) * u
            h *= d1
        u *= d1
        if zero is not None:
            cleared(zero, g, h)
        res.grad, res.hess = g, h
        return res
    values = None
    if job.reduction == "none" and job.value:
        values = np.empty(n_terms, dtype=batch.dtype)
    summed = job.value and job.reduction != "none"
    partials = np.empty(R.n_chunks(n_terms), np.float64) if summed else None
    scale = 1.0 if summary is None else summary["scale"]
    run = Job(batch.t, batch.p, batch.w, args, plan.bounds, summed, values, g, h,
              scale, job.validate and zero is None, workers > 1, workers, batch.labels,
              scan, partials)
    try:
        plan._run(run, batch)
    except E.DomainError as exc:     # label sets checked by the kernels: a DOMAINS check
        stage = DOMAINS if (exc.constraint or "").startswith("labels in") else KERNEL
        res.failure = _failure(stage, exc, row0, n_cols, rows)
        return res
    if zero is not None:
        cleared(zero, values, g, h)
    res.partials, res.values, res.grad, res.hess = partials, values, g, h
    return res


def _checked_weights(w: np.ndarray, scan: int) -> tuple[np.ndarray, bool]:
    """A block's weights as contiguous float64, checked as ``dispatch._weights`` does
    (same error), and whether one is exactly 0; not summed (``run_block`` sums them by
    chunks, which is all ``finish_weights`` needs)."""
    wv = np.ascontiguousarray(w, dtype=np.float64).reshape(-1)
    i = R.first_outside_index(wv, _MIN_POSITIVE, _MAX_F64, False, scan)
    zeros = i >= 0 and wv[i] == 0.0
    if zeros:
        i = R.first_outside_index(wv, 0.0, _MAX_F64, False, scan)
    if i >= 0:
        raise E.DomainError(f"sample_weight must be finite and >= 0; first violation at "
                            f"index {i} ({wv[i]!r})", argument="sample_weight",
                            constraint="finite and >= 0", index=i)
    return wv, zeros


def _shifted(w: np.ndarray, e: int) -> np.ndarray:
    """The block's weights times 2**-e, as ``dispatch._rescaled`` scales all weights in
    memory (a copy). ``finish_weights`` formed the scaled weight sum from the weight
    pass's chunk totals, which is exact when no weight turns subnormal here; one that
    would (weights spanning more than 2**1022) is refused (DomainError, local index)."""
    scaled = np.ldexp(w, -e)
    if e > 0:
        lost = np.flatnonzero((scaled < _NORMAL) & (w != 0.0))
        if lost.size:
            i = int(lost[0])
            raise E.DomainError(
                f"sample_weight spans more than 2**1022 (times 2**{-e}, which lossreg "
                f"applies in memory to weights summing outside [2**-64, 2**64], a weight "
                f"turns subnormal and lossreg.dask cannot reproduce that sum): compute in "
                f"memory, or drop such weights; first violation at index {i} "
                f"({w[i].item()!r})",
                argument="sample_weight", constraint="max(w) / min(w > 0) < 2**1022",
                index=i)
    return scaled


def _weights_batch(spec, t, p, w, n_terms: int, scan: int) -> Batch:
    """The weight pass's ``Batch``: weights (and class labels) converted and checked as
    ``dispatch.prepare`` does, without touching y_pred (``p`` is a stand-in)."""
    labels = t is not None and spec.layout == "rows" and t.ndim == 1
    tl = _as_labels(t) if labels else _EMPTY_F64
    wv, zeros = (_EMPTY_F64, False) if w is None else _checked_weights(w, scan)
    return Batch(tl, p, wv, p.shape, (n_terms,), n_terms, float(n_terms), p.dtype,
                 labels=labels, zeros=zeros)


def block_summary(result: BlockResult) -> BlockResult:
    """The block's chunk totals and error without its arrays: what the final task needs,
    so the arrays are released as soon as they are written (out of core)."""
    return BlockResult(result.n_terms, result.partials, result.wparts, result.dparts,
                       failure=result.failure, row0=result.row0, zeros=result.zeros)


def block_grad(result: BlockResult, shape: tuple) -> np.ndarray:
    return result.checked().grad.reshape(shape)


def block_hess(result: BlockResult, shape: tuple) -> np.ndarray:
    return result.checked().hess.reshape(shape)


def block_values(result: BlockResult, shape: tuple) -> np.ndarray:
    return result.checked().values.reshape(shape)


# -- combining the blocks ------------------------------------------------------------------

def _joined(results: list[BlockResult], attr: str, n_terms: int, what: str) -> np.ndarray:
    """The chunk totals of all blocks, in order; LossError unless there is exactly one per
    chunk of the whole input (a lost or duplicated block must never change a sum)."""
    parts = [getattr(r, attr) for r in results]
    if any(x is None for x in parts):
        raise E.LossError(f"lossreg.dask: a block returned no {what}")
    joined = np.concatenate(parts) if parts else _EMPTY_F64
    held = sum(r.n_terms for r in results)
    wrong = [i for i, (r, x) in enumerate(zip(results, parts))
             if x.shape[0] != _expected_totals(r, attr)]
    if held != n_terms or wrong:
        raise E.LossError(f"lossreg.dask: the blocks hold {held} of {n_terms} terms"
                          + (f" and block {wrong[0]} has {parts[wrong[0]].shape[0]} chunk "
                             f"totals of {what}, expected {_expected_totals(results[wrong[0]], attr)}"
                             if wrong else "") + ": a block was lost or repeated")
    return joined


def _expected_totals(r: BlockResult, attr: str) -> int:
    """Chunk totals a block must return: one per chunk of its terms."""
    return R.n_chunks(r.n_terms) if r.n_terms else 0


def _first_failure(results: list[BlockResult], stages: tuple[int, ...]) -> None:
    found = [r.failure for r in results if r.failure is not None and r.failure.stage in stages]
    if found:
        raise min(found, key=Failure.key).error()


def finish_weights(results: list[BlockResult], n_terms: int, reduction: str,
                   weighted: bool) -> dict:
    """The global "mean" denominator from the blocks' weight totals, with the errors of
    the weight checks in the in-memory order: ``{"ws": W, "scale": 1 / W, "zero_rows",
    "shift"}``. A sum W outside [2**-64, 2**64] is handled as ``dispatch.prepare`` does:
    the weights times 2**-e, e = frexp(max(w))[1] (``shift``: e, else None), and W the
    sum of those (``_rescaled_sum``); the blocks then scale theirs (``_shifted``)."""
    _first_failure(results, (PREPARE,))
    ws = float(n_terms)
    shift = None
    if weighted:
        ws = R.total(_joined(results, "wparts", n_terms, "sample_weight totals"))
        if reduction == "mean":
            if ws > 0 and not 2.0 ** -64 <= ws <= 2.0 ** 64:
                shift, ws = _rescaled_sum(results, ws)
            if ws <= 0.0:
                raise E.DomainError("sample_weight sums to 0: the weighted mean is undefined",
                                    argument="sample_weight",
                                    constraint="sum(sample_weight) > 0")
    _first_failure(results, (LABELS,))
    if reduction == "mean" and any(r.dparts is not None for r in results):
        if shift is not None:
            raise E.DomainError(
                "sample_weight sums outside [2**-64, 2**64] together with the loss's own "
                "row weights in the mean (class weights): in memory lossreg rescales the "
                "sample weights by a power of two, which lossreg.dask does not do here; "
                "scale them by a power of two first (exact)", argument="sample_weight",
                constraint="sum in [2**-64, 2**64] with class-weighted labels")
        ws = R.total(_joined(results, "dparts", n_terms, "row weight totals"))
        if not ws > 0.0:
            raise E.DomainError("the rows' weights in the mean (class weights of the labels, "
                                "times sample_weight; ignored rows count 0) sum to 0: the "
                                "weighted mean is undefined", argument="y_true",
                                constraint="some non-ignored row with positive weight")
    return {"ws": ws, "scale": 1.0 / ws if reduction == "mean" else 1.0,
            "zero_rows": frozenset(r.row0 for r in results if r.zeros), "shift": shift}


def _rescaled_sum(results: list[BlockResult], ws: float) -> tuple[int, float]:
    """``(e, sum of w * 2**-e)``, e = frexp(max(w))[1], from the weight pass's chunk
    totals, bit-identical to ``dispatch._rescaled``'s sum when no scaled weight is
    subnormal (``_shifted`` refuses the others): then every w_i * 2**-e is exact, and so
    is every chunk's float64 running sum times 2**-e (the same roundings at any scale
    while the numbers stay normal; a sum of exact subnormals is exact). Blocks whose
    weights exceed 2**1000 give their totals already scaled (``wscaled``), as the plain
    ones may have overflowed.

    Blocks of a pass that gave no maximum (the value pass: no weight pass first) raise
    the ``RESCALE`` DomainError."""
    if any(r.wmax is None for r in results):
        raise E.DomainError(
            f"sample_weight sums to {ws!r}, outside [2**-64, 2**64]: in memory lossreg "
            f"rescales such weights by a power of two (exact), which needs their sum "
            f"before the loss pass; lossreg.dask does that for gradients and Hessians "
            f"and, with compute=True, for the value too (one more pass over the inputs), "
            f"but not for this lazy result: pass compute=True, or scale the weights by a "
            f"power of two first (exact)", argument="sample_weight", constraint=RESCALE)
    e = math.frexp(max(r.wmax for r in results))[1]
    parts = [np.ldexp(r.wparts, -e) if r.wscaled is None else np.ldexp(r.wscaled, r.wexp - e)
             for r in results]
    return e, R.total(np.concatenate(parts))


def finish(results: list[BlockResult], n_terms: int, reduction: str, weighted: bool,
           job: BlockJob, weights: dict | None = None) -> dict:
    """The reduced value from all blocks (``job``: theirs; ``weights``: a
    ``finish_weights`` result already computed by a weight pass). ``{"value", "ws", "scale", "m"}``; raises the error that
    the in-memory call would raise."""
    summary = weights if weights is not None else finish_weights(results, n_terms, reduction,
                                                                 weighted)
    _first_failure(results, (PREPARE, LABELS, DOMAINS, KERNEL))
    total = R.total(_joined(results, "partials", n_terms, "loss totals"))
    summary = dict(summary)
    outer = job.loss.spec.outer
    if outer is not None:
        m = total / summary["ws"]
        if m != 0.0 and not 2.0 ** -500 <= m <= 2.0 ** 500 \
                and job.loss.spec.homogeneity is not None:
            raise E.LossError(f"loss {job.loss.name!r}: the weighted mean {m!r} is outside "
                              f"[2**-500, 2**500], where lossreg in memory recomputes on "
                              f"inputs rescaled by a power of two, which lossreg.dask does "
                              f"not; scale y_true and y_pred by a power of two first (exact)")
        summary["m"] = m
        summary["value"] = float(outer[0](m))
    elif reduction == "mean":
        summary["value"] = total * summary["scale"]
    else:
        summary["value"] = total
    return summary


def value_of(summary: dict) -> np.ndarray:
    """The 0-d float64 array a lazy value holds."""
    return np.asarray(summary["value"], dtype=np.float64)
