"""Plots of a loss and its gradient along a 1-D slice of its inputs.

A loss of two arrays has no single curve, so lossreg draws it along *slices* derived
from the spec's metadata (``task``, ``layout`` and ``domains``), never from a per-loss
table, so that plugin losses plot as well as the built-ins:

* element-wise, ``y_pred`` unbounded, ``y_true`` unbounded (regression): ``y_true = 0``
  and x is the residual ``r = y_pred - y_true``;
* element-wise, ``y_pred`` unbounded, ``y_true`` bounded (logits): one slice per end of
  the ``y_true`` interval (``y_true = 1`` and ``y_true = 0`` for binary losses), x is
  the logit;
* element-wise, ``y_pred`` bounded (probabilities): the same ``y_true`` slices, x runs
  over the ``y_pred`` interval (a small margin is kept from the ends);
* row losses (``layout="rows"``): a 2-class row. Probability rows are ``(1 - q, q)``
  and logit rows ``(0, z)``; targets are the one-hot row ``(0, 1)`` (or the class label
  1 when rows are not accepted) and, for distribution targets, the uniform row; real
  rows refused at (0, 0) (a zero norm) are sliced along (1, z) instead.

The gradient panel shows the derivative *along the slice*, ``grad(y_pred) . d y_pred/dx``
(for the row ``(1 - q, q)`` that is ``g_1 - g_0``), so it is the slope of the left panel;
its axis names the variable: ``d loss / d r`` for the residual r (equal to ``d loss /
d y_pred`` there), ``d loss / d z`` for a logit z, ``d loss / d q`` along a row.

``loss_curves`` computes the numbers (no matplotlib needed); ``plot_losses`` draws them.
matplotlib is imported lazily, through its object API with the Agg canvas, so plotting
never changes the user's global pyplot backend.
"""

from __future__ import annotations

import math
import pathlib
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import numpy as np

from .errors import (DomainError, LossError, MissingDependencyError, ShapeError,
                     install_hint)
from .loss import Loss
from .spec import LossSpec

#: Half-width of the default x range for residuals and for logits.
RESIDUAL_RANGE = 3.0
LOGIT_RANGE = 6.0
#: Fraction of a bounded interval kept free at each end (log losses blow up there).
MARGIN = 0.02


@dataclass(frozen=True)
class Curve:
    """One loss along one slice: ``value[i]`` and its slope ``grad[i]`` at ``x[i]``."""

    loss: str            # display name, e.g. "huber(delta=0.5)"
    slice: str           # what is held fixed, e.g. "y_true = 1"; "" for a single slice
    xlabel: str
    x: np.ndarray
    value: np.ndarray
    grad: np.ndarray
    variable: str = "x"  # the symbol of x in xlabel: "r", "z", "y_pred" or "q"

    @property
    def grad_label(self) -> str:
        """The gradient axis: ``d loss / d r`` for residuals, and so on."""
        extra = " (= d loss / d y_pred)" if self.variable == "r" else ""
        return f"gradient d loss / d {self.variable}{extra}"

    @property
    def label(self) -> str:
        return f"{self.loss}, {self.slice}" if self.slice else self.loss


@dataclass(frozen=True)
class _Slice:
    label: str
    xlabel: str
    x: np.ndarray
    y_true: np.ndarray
    y_pred: np.ndarray
    direction: np.ndarray | None   # rows: d y_pred / dx per class (or per point and
    #                                class); None: element-wise
    variable: str = "x"            # the symbol of x, for the gradient axis
    fallback: bool = False         # tried only when no earlier slice gave a curve


def _fmt(v: float) -> str:
    return f"{v:g}"


def display_name(loss: Loss) -> str:
    """``name`` or ``name(k=v, ...)`` listing the hyperparameters that differ from defaults."""
    defaults = loss.spec.defaults()
    changed = []
    for key, value in loss.hyperparameters.items():
        default = defaults.get(key)
        same = (np.array_equal(value, default) if isinstance(value, np.ndarray)
                else value == default)
        if not same:
            shown = np.round(value, 4).tolist() if isinstance(value, np.ndarray) else value
            changed.append(f"{key}={shown}")
    return f"{loss.name}({', '.join(changed)})" if changed else loss.name


def _grid(lo: float, hi: float, points: int) -> np.ndarray:
    return np.linspace(lo, hi, points)


def _inner(interval, span_default: float) -> tuple[float, float]:
    """A plotting range inside ``interval``: bounded ends get a margin, open ends a span."""
    lo, hi = interval.low, interval.high
    if math.isfinite(lo) and math.isfinite(hi):
        pad = MARGIN * (hi - lo)
        return lo + pad, hi - pad
    if math.isfinite(lo):
        return lo + MARGIN * span_default, lo + span_default
    if math.isfinite(hi):
        return hi - span_default, hi - MARGIN * span_default
    return -span_default, span_default


def _true_values(spec: LossSpec) -> list[float]:
    """Values of y_true to slice at: both ends of a bounded interval, else one point."""
    iv = spec.domain("y_true").interval
    lo, hi = iv.low, iv.high
    if math.isfinite(lo) and math.isfinite(hi):
        return [hi, lo]
    if 0.0 in iv:
        return [0.0]
    return [lo + 1.0] if math.isfinite(lo) else [hi - 1.0]


def _elementwise_slices(spec: LossSpec, points: int, x_range) -> list[_Slice]:
    dp = spec.domain("y_pred").interval
    t_values = _true_values(spec)
    unbounded_pred = not (math.isfinite(dp.low) or math.isfinite(dp.high))
    t_iv = spec.domain("y_true").interval
    regression = unbounded_pred and not (math.isfinite(t_iv.low) and math.isfinite(t_iv.high))
    slices = []
    half_span = RESIDUAL_RANGE + max(abs(t) for t in t_values)
    for t in t_values:
        if regression:
            lo, hi = x_range or (-RESIDUAL_RANGE, RESIDUAL_RANGE)
            x = _grid(lo, hi, points)
            y_pred = t + x
            xlabel = "residual r = y_pred − y_true"
            variable = "r"
            label = "" if t == 0.0 else f"y_true = {_fmt(t)}"
        else:
            span = LOGIT_RANGE if unbounded_pred else half_span
            lo, hi = x_range or _inner(dp, span)
            x = _grid(lo, hi, points)
            y_pred = x
            logit = unbounded_pred and spec.task != "regression"
            xlabel = "logit z (y_pred)" if logit else "prediction y_pred"
            variable = "z" if logit else "y_pred"
            label = f"y_true = {_fmt(t)}" if len(t_values) > 1 or t != 0.0 else ""
        slices.append(_Slice(label, xlabel, x, np.full_like(x, t), y_pred, None, variable))
    return slices


def _row_slices(spec: LossSpec, points: int, x_range) -> list[_Slice]:
    dp = spec.domain("y_pred")
    dt = spec.domain("y_true")
    bounded = math.isfinite(dp.interval.low) and math.isfinite(dp.interval.high)
    log_rows = dp.interval.high == 0.0 and not math.isfinite(dp.interval.low)
    if log_rows:     # log-probability rows (nll, kl_div with log_pred)
        lo, hi = x_range or _inner(type(dp.interval)(0.0, 1.0), 1.0)
        x = _grid(lo, hi, points)
        y_pred = np.log(np.stack([1.0 - x, x], axis=1))
        direction = np.stack([-1.0 / (1.0 - x), 1.0 / x], axis=1)   # per point
        xlabel = "q: y_pred row (log(1 − q), log q)"
        variable = "q"
    elif dp.row_sum is not None or bounded:
        total = 1.0 if dp.row_sum is None else float(dp.row_sum)
        lo, hi = x_range or _inner(type(dp.interval)(0.0, total), 1.0)
        x = _grid(lo, hi, points)
        y_pred = np.stack([total - x, x], axis=1)
        direction = np.array([-1.0, 1.0])
        xlabel = "q: y_pred row (1 − q, q)"
        variable = "q"
    else:
        lo, hi = x_range or (-LOGIT_RANGE, LOGIT_RANGE)
        x = _grid(lo, hi, points)
        y_pred = np.stack([np.zeros_like(x), x], axis=1)
        direction = np.array([0.0, 1.0])
        xlabel = "logit z of class 1: y_pred row (0, z)"
        variable = "z"
    s = 1.0 if dt.row_sum is None else float(dt.row_sum)
    targets = [("y_true = (0, 1)", np.array([0.0, s]))]
    if dt.row_sum is not None and not dt.integer:
        targets.append((f"y_true = ({_fmt(s / 2)}, {_fmt(s / 2)})", np.array([s / 2, s / 2])))
    slices = [_Slice(label, xlabel, x, np.tile(row, (points, 1)), y_pred, direction, variable)
              for label, row in targets]
    # Integer class labels (n,) instead of target rows: tried when rows are refused.
    slices.append(_Slice("y_true = class 1", xlabel, x, np.ones(points), y_pred, direction,
                         variable))
    if not (bounded or log_rows or dp.row_sum is not None):
        # real rows refused at (0, 0) (cosine similarity: a zero norm): the row (1, z)
        slices.append(_Slice("y_true = (0, 1)", "z: y_pred row (1, z)", x,
                             np.tile(targets[0][1], (points, 1)),
                             np.stack([np.ones_like(x), x], axis=1), direction, "z",
                             fallback=True))
    return slices


def _evaluate(loss: Loss, sl: _Slice) -> tuple[np.ndarray, np.ndarray]:
    spec = loss.spec
    hyper = loss.hyperparameters
    if "none" in spec.reductions:
        per = Loss(spec, reduction="none", **hyper)
        value = np.asarray(per(sl.y_true, sl.y_pred), dtype=np.float64)
        grad = np.asarray(per.grad(sl.y_true, sl.y_pred), dtype=np.float64)
    else:  # batch-level losses (RMSE): evaluate each point as a batch of one
        one = Loss(spec, reduction=spec.reductions[0], **hyper)
        value = np.empty(sl.x.shape[0])
        grad = np.empty(sl.y_pred.shape)
        for i in range(sl.x.shape[0]):
            t, p = sl.y_true[i:i + 1], sl.y_pred[i:i + 1]
            value[i] = one(t, p)
            grad[i] = np.asarray(one.grad(t, p)).reshape(grad[i].shape)
    if sl.direction is not None:
        grad = np.sum(grad * sl.direction, axis=-1)
    value = value.reshape(-1)
    grad = grad.reshape(-1)
    value = np.where(np.isfinite(value), value, np.nan)
    grad = np.where(np.isfinite(grad), grad, np.nan)
    return value, grad


def _as_loss(item: Any, registry) -> Loss:
    if isinstance(item, Loss):
        return item
    if isinstance(item, LossSpec):
        return Loss(item)
    if isinstance(item, str):
        import lossreg

        return lossreg.get(item, registry=registry)
    raise TypeError(f"expected a lossreg.Loss, a LossSpec or a loss name, got {type(item).__name__}")


def loss_curves(loss: Loss | LossSpec | str, *, points: int = 401,
                x_range: tuple[float, float] | None = None, registry=None) -> list[Curve]:
    """Value and slope of ``loss`` along its automatic slices (see the module doc).

    ``x_range`` overrides the x interval (residual, logit or probability, as labelled).
    Slices whose inputs the loss rejects (a ``DomainError`` or ``ShapeError``) are
    skipped; for row losses the label form is tried only when target rows are refused.
    Raises LossError when no slice fits the loss's domains.
    """
    loss = _as_loss(loss, registry)
    if points < 2:
        raise ValueError(f"points must be at least 2, got {points}")
    if x_range is not None:
        lo, hi = map(float, x_range)
        if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
            raise ValueError(f"x_range must be two finite numbers low < high, got {x_range!r}")
        x_range = (lo, hi)
    rows = loss.spec.layout == "rows"
    candidates = (_row_slices if rows else _elementwise_slices)(loss.spec, points, x_range)
    name = display_name(loss)
    curves: list[Curve] = []
    problems: list[str] = []
    for sl in candidates:
        if rows and sl.y_true.ndim == 1 and curves:
            break  # target rows worked: the label form would only repeat (0, 1)
        if sl.fallback and curves:
            continue
        try:
            value, grad = _evaluate(loss, sl)
        except (DomainError, ShapeError) as exc:
            problems.append(f"{sl.label or 'default slice'}: {exc}")
            continue
        curves.append(Curve(name, sl.label, sl.xlabel, sl.x, value, grad, sl.variable))
    if not curves:
        raise LossError(f"cannot plot {name!r}: no automatic slice fits its domains "
                        f"({'; '.join(problems)})")
    if len(curves) == 1 and not rows:
        c = curves[0]
        curves[0] = Curve(c.loss, "", c.xlabel, c.x, c.value, c.grad, c.variable)
    return curves


def _matplotlib():
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise MissingDependencyError(
            "plotting needs matplotlib, which is not installed; install the plot extra: "
            + install_hint("plot")) from exc
    return Figure, FigureCanvasAgg


_STYLES = ("-", "--", ":", "-.")


def plot_losses(losses: Sequence[Loss | LossSpec | str] | Loss | str, path: str | pathlib.Path,
                *, title: str | None = None, points: int = 401,
                x_range: tuple[float, float] | None = None, registry=None,
                dpi: int = 110) -> pathlib.Path:
    """Draw each loss (left) and its gradient (right) along its slices; save to ``path``.

    ``losses`` are Loss objects (their hyperparameters are used), specs or names
    (defaults). The file format follows the suffix of ``path`` (png, svg, pdf, ...); a
    path without a suffix gets ``.png``; an existing directory (or a path ending in a
    separator) receives ``<names>.png`` inside it; missing folders are created. Returns
    the path written. Raises ``MissingDependencyError`` (a LossError and ImportError)
    without matplotlib.
    """
    if isinstance(losses, (str, Loss, LossSpec)):
        losses = [losses]
    losses = list(losses)
    if not losses:
        raise ValueError("plot_losses needs at least one loss")
    Figure, FigureCanvasAgg = _matplotlib()
    all_curves = [loss_curves(item, points=points, x_range=x_range, registry=registry)
                  for item in losses]

    # One row of (loss, gradient) panels per kind of x axis, so that losses on residuals,
    # logits and probabilities never share an axis that means different things.
    colors = {id(curves): f"C{i % 10}" for i, curves in enumerate(all_curves)}
    groups: dict[str, list] = {}
    for curves in all_curves:
        groups.setdefault(curves[0].xlabel, []).append(curves)
    fig = Figure(figsize=(10, 4 * len(groups)), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(groups), 2, squeeze=False)
    for (xlabel, members), (ax_value, ax_grad) in zip(groups.items(), axes):
        for curves in members:
            for style, c in zip(_STYLES * 4, curves):
                kw = dict(color=colors[id(curves)], linestyle=style, label=c.label)
                ax_value.plot(c.x, c.value, **kw)
                ax_grad.plot(c.x, c.grad, **kw)
        for ax, ylabel in ((ax_value, "loss"), (ax_grad, members[0][0].grad_label)):
            ax.set_xlabel(xlabel)
            ax.set_ylabel(ylabel)
            ax.grid(True, alpha=0.3)
            ax.axhline(0.0, color="0.5", linewidth=0.6)
        ax_value.set_title("loss")
        ax_grad.set_title("gradient")
        _clip_outliers(ax_grad, [c.grad for curves in members for c in curves])
        ax_value.legend(fontsize="small")
    if title is None:
        title = " vs ".join(curves[0].loss for curves in all_curves)
    if title:
        fig.suptitle(title)
    path = output_path(path, "_".join(curves[0].loss.split("(")[0] for curves in all_curves))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    return path


def output_path(path: str | pathlib.Path, stem: str, suffix: str = ".png") -> pathlib.Path:
    """Where an image asked for as ``path`` goes: ``path/<stem><suffix>`` when ``path`` is
    a directory (existing, or written with a trailing separator), ``path`` plus ``suffix``
    when it has none (matplotlib would add it silently), else ``path`` itself."""
    text = str(path)
    path = pathlib.Path(path)
    if path.is_dir() or text.endswith(("/", "\\")):
        return path / f"{stem}{suffix}"
    if not path.suffix:
        return path.with_name(path.name + suffix)
    return path


def _clip_outliers(ax, arrays: Iterable[np.ndarray]) -> None:
    """Keep steep ends (log losses near p = 0 or 1) from flattening the gradient panel."""
    data = np.concatenate([a[np.isfinite(a)] for a in arrays] or [np.zeros(1)])
    if data.size == 0:
        return
    lo, hi = np.percentile(data, [2.0, 98.0])
    full_lo, full_hi = float(data.min()), float(data.max())
    span = max(hi - lo, 1e-12)
    if full_hi - full_lo > 4.0 * span:
        ax.set_ylim(lo - 0.5 * span, hi + 0.5 * span)


def plot_metrics(result: Any, path: str | pathlib.Path, *,
                 metrics: Sequence[str] | None = None, dpi: int = 110) -> pathlib.Path:
    """Bar chart of an experiment's test metrics, one group of bars per metric and one bar
    per loss (``lossreg.experiments.Result``; ``lossreg run CONFIG --plot PATH``). ``path``
    is read as by :func:`output_path` (a directory gets ``metrics.png``).

    ``metrics`` defaults to the threshold-free and headline ones the experiment computed
    (binary: AP, ROC-AUC, F1; regression: every metric). Returns the path written;
    ``MissingDependencyError`` without matplotlib.
    """
    Figure, FigureCanvasAgg = _matplotlib()
    names = list(metrics) if metrics is not None else (
        [m for m in ("AP", "ROC-AUC", "F1") if m in result.metrics] or list(result.metrics))
    rows = result.rows
    fig = Figure(figsize=(max(5.0, 1.2 + 1.6 * len(names)), 3.6))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    width = 0.8 / max(1, len(rows))
    for i, row in enumerate(rows):
        xs = [j + (i - (len(rows) - 1) / 2) * width for j in range(len(names))]
        ax.bar(xs, [row[m] for m in names], width, label=row["label"], color=f"C{i % 10}")
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(names)
    s = result.experiment.settings
    ax.set_title(s.get("title") or f"{s['task']} on {s['dataset']}", fontsize=10)
    ax.set_ylabel("test set")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.grid(axis="y", alpha=0.3)
    out = output_path(path, "metrics")
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=dpi, bbox_inches="tight")
    return out
