"""Loss metadata: LossSpec, Hyperparameter, Interval and Domain.

A ``LossSpec`` is the single table row that drives registration, lookup, validation,
docs, the CLI, the conformance tests and the benchmarks. Nothing here imports numba.
"""

from __future__ import annotations

import math
import numbers
import re
from dataclasses import InitVar, dataclass, field, replace
from typing import Any, Callable, Mapping

import numpy as np

from ._limits import short_repr
from .errors import HyperparameterError, PluginError

FAMILIES_HINT = ("distance", "probabilistic", "glm", "margin")
TASKS = ("regression", "binary", "multiclass", "distribution", "embedding", "other")
LAYOUTS = ("elementwise", "rows")
REDUCTIONS = ("mean", "sum", "none")
ARGUMENTS = ("y_true", "y_pred")
NONZERO_ROWS = ("self", "either", "both")   # Domain.nonzero_rows: whose rows must be non-zero
_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")


def _fmt(x: float) -> str:
    if x == math.inf:
        return "inf"
    if x == -math.inf:
        return "-inf"
    return repr(int(x)) if float(x).is_integer() and abs(x) < 1e15 else repr(float(x))


@dataclass(frozen=True)
class Interval:
    """A real interval; each end open or closed. ``Interval(0, 1)`` is [0, 1].

    Infinite ends are open by default, so the default ``Interval()`` is the finite reals.
    Close an infinite end (``closed_high=True`` with ``high=inf``) to admit infinities.
    """

    low: float = -math.inf
    high: float = math.inf
    closed_low: bool | None = None
    closed_high: bool | None = None

    def __post_init__(self) -> None:
        low, high = float(self.low), float(self.high)
        if math.isnan(low) or math.isnan(high) or low > high:
            raise ValueError(f"invalid interval bounds {self.low!r}, {self.high!r}")
        object.__setattr__(self, "low", low)
        object.__setattr__(self, "high", high)
        if self.closed_low is None:
            object.__setattr__(self, "closed_low", math.isfinite(low))
        if self.closed_high is None:
            object.__setattr__(self, "closed_high", math.isfinite(high))

    def __contains__(self, x: float) -> bool:
        x = float(x)
        if math.isnan(x):
            return False
        above = x > self.low or (self.closed_low and x == self.low)
        below = x < self.high or (self.closed_high and x == self.high)
        return bool(above and below)

    def __str__(self) -> str:
        left = "[" if self.closed_low else "("
        right = "]" if self.closed_high else ")"
        return f"{left}{_fmt(self.low)}, {_fmt(self.high)}{right}"

    def closed_bounds(self) -> tuple[float, float]:
        """Bounds ``(a, b)`` such that x is inside iff ``a <= x <= b`` (in float64).

        Open ends are nudged one ulp inwards, which is exact for float32 and float64
        inputs compared in float64; NaN fails both comparisons.
        """
        a = self.low if self.closed_low else float(np.nextafter(self.low, math.inf))
        b = self.high if self.closed_high else float(np.nextafter(self.high, -math.inf))
        return a, b

    def to_dict(self) -> dict:
        return {"low": _fmt(self.low) if not math.isfinite(self.low) else self.low,
                "high": _fmt(self.high) if not math.isfinite(self.high) else self.high,
                "closed_low": self.closed_low, "closed_high": self.closed_high,
                "text": str(self)}


REALS = Interval()
UNIT = Interval(0.0, 1.0)
NONNEGATIVE = Interval(0.0, math.inf)
POSITIVE = Interval(0.0, math.inf, closed_low=False)


@dataclass(frozen=True)
class Domain:
    """What one input argument may contain.

    ``interval`` bounds every element (open infinite ends mean no inf allowed);
    ``allow_nan`` admits NaN; ``integer`` asks for whole-number class labels;
    ``row_sum`` asks each row to sum to that value within ``row_sum_tol``;
    ``label_sets`` (finite sets of values, e.g. ``((-1, 1), (0, 1))``) asks every element
    to lie in one of the sets, the same set for the whole array (hinge's labels: -1/1 or
    0/1, never -1 and 0 together);
    ``nonzero_rows`` (losses on rows only) asks every row to hold a non-zero value, so a
    rule of the whole row holds (a non-zero norm, a non-zero denominator): ``"self"``,
    some element of this argument's row is non-zero (a non-zero L2 norm: cosine);
    ``"either"``, the row or the same row of the other argument has a non-zero element
    (the pair of rows is not all zero: Dice's sum t + sum p); ``"both"``, at some
    position this argument and the other are both non-zero (their float64 product: the
    row's sum t_j p_j is positive). A joint rule (``"either"``, ``"both"``) sits on the
    argument its error names. Checked with the other rules, whatever a row's weight.
    """

    interval: Interval = REALS
    allow_nan: bool = False
    integer: bool = False
    row_sum: float | None = None
    row_sum_tol: float = 1e-6
    doc: str = ""
    label_sets: tuple[tuple[float, ...], ...] | None = None
    nonzero_rows: str | None = None

    def __post_init__(self) -> None:
        if self.nonzero_rows is not None and self.nonzero_rows not in NONZERO_ROWS:
            raise ValueError(f"nonzero_rows must be None or one of {NONZERO_ROWS}, got "
                             f"{self.nonzero_rows!r}")
        if self.label_sets is not None:
            sets = tuple(tuple(float(v) for v in s) for s in self.label_sets)
            if not sets or not all(sets) or any(v != v for s in sets for v in s):
                raise ValueError(f"label_sets must be non-empty sets of numbers, got "
                                 f"{self.label_sets!r}")
            object.__setattr__(self, "label_sets", sets)

    def label_sets_text(self) -> str:
        """``{-1, 1} or {0, 1}``: the label sets as text ("" without them)."""
        if self.label_sets is None:
            return ""
        return " or ".join("{" + ", ".join(_fmt(v) for v in s) + "}"
                           for s in self.label_sets)

    def describe(self) -> str:
        parts = [f"in {self.interval}"]
        if self.label_sets is not None:
            parts.append(f"labels in {self.label_sets_text()} (one set throughout)")
        if self.integer:
            parts.append("integer")
        if self.row_sum is not None:
            parts.append(f"rows sum to {_fmt(self.row_sum)} (±{self.row_sum_tol:g})")
        if self.nonzero_rows is not None:
            parts.append(_NONZERO_TEXT[self.nonzero_rows])
        parts.append("NaN allowed" if self.allow_nan else "no NaN")
        return ", ".join(parts)

    def to_dict(self) -> dict:
        return {"interval": self.interval.to_dict(), "allow_nan": self.allow_nan,
                "integer": self.integer, "row_sum": self.row_sum,
                "row_sum_tol": self.row_sum_tol, "doc": self.doc,
                "label_sets": (None if self.label_sets is None
                               else [list(v) for v in self.label_sets]),
                "nonzero_rows": self.nonzero_rows, "text": self.describe()}


_NONZERO_TEXT = {"self": "rows not all zero",
                 "either": "rows not all zero where the other argument's row is",
                 "both": "rows non-zero at a position where the other argument's row is"}


FINITE = Domain()
PROBABILITY = Domain(UNIT)


class Hyperparameter:
    """A loss hyperparameter: type, default, valid interval and a doc line.

    Both ``Hyperparameter(float, 0.5, Interval(0, 1))`` and
    ``Hyperparameter("q", float, 0.5, Interval(0, 1), "quantile")`` are accepted; the
    name is filled in from the key of ``LossSpec.hyperparameters`` when omitted.
    ``type`` is ``float``, ``int``, ``bool``, ``"array"`` (a 1-D float sequence whose
    entries lie in ``interval``) or ``"float_or_array"`` (either: a float, or such a
    sequence, e.g. a weight per class broadcast over the last axis). A default of None (or ``nullable=True``) admits None.
    """

    __slots__ = ("name", "type", "default", "interval", "doc", "nullable")

    def __init__(self, *args: Any, name: str | None = None, type: Any = None,
                 default: Any = None, interval: Interval | None = None, doc: str = "",
                 nullable: bool | None = None):
        args = list(args)
        if args and isinstance(args[0], str) and args[0] not in _ARRAY_TYPES:
            name = args.pop(0)
        fields = ["type", "default", "interval", "doc"]
        given = dict(type=type, default=default, interval=interval, doc=doc)
        for key, value in zip(fields, args):
            given[key] = value
        if len(args) > len(fields):
            raise TypeError("Hyperparameter takes at most (name, type, default, interval, doc)")
        self.name = name
        self.type = given["type"] if given["type"] is not None else float
        if self.type not in (float, int, bool, *_ARRAY_TYPES):
            raise TypeError(f"unsupported hyperparameter type {self.type!r}")
        self.default = given["default"]
        self.interval = given["interval"]
        self.doc = given["doc"] or ""
        self.nullable = (self.default is None) if nullable is None else bool(nullable)

    def __repr__(self) -> str:
        return (f"Hyperparameter(name={self.name!r}, type={self.type_name}, "
                f"default={self.default!r}, interval={self.interval}, doc={self.doc!r})")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Hyperparameter) and all(
            getattr(self, k) == getattr(other, k) for k in self.__slots__)

    __hash__ = None  # mutable-ish; specs compare by value

    @property
    def type_name(self) -> str:
        return self.type if isinstance(self.type, str) else self.type.__name__

    def with_name(self, name: str) -> "Hyperparameter":
        return Hyperparameter(name, self.type, self.default, self.interval, self.doc,
                              nullable=self.nullable)

    def constraint(self) -> str:
        text = "a bool" if self.type is bool else "an int" if self.type is int else \
            "a 1-D array" if self.type == "array" else \
            "a float or 1-D array" if self.type == "float_or_array" else "a float"
        if self.interval is not None:
            text = f"in {self.interval}" if self.type is float else f"{text} in {self.interval}"
            if self.type == "float_or_array":
                text = f"a float or 1-D array, entries in {self.interval}"
        if self.nullable:
            text += " or None"
        return text

    def validate(self, value: Any, loss: str = "") -> Any:
        """Return ``value`` coerced to this type, or raise HyperparameterError."""
        where = f" (loss {loss!r})" if loss else ""
        original = value

        def fail(why: str) -> HyperparameterError:
            return HyperparameterError(
                f"{self.name} must be {self.constraint()}, got {short_repr(original)}{why}"
                f"{where}")

        if value is None:
            if self.nullable:
                return None
            raise fail("")
        if self.type == "float_or_array" and np.ndim(value) == 0:
            try:
                return Hyperparameter(self.name, float, None, self.interval).validate(value)
            except HyperparameterError:
                raise fail("") from None
        if self.type in _ARRAY_TYPES:
            try:
                arr = np.asarray(value, dtype=np.float64)
            except (TypeError, ValueError, OverflowError):
                raise fail("") from None
            if arr.ndim != 1 or arr.size == 0:
                raise fail(" (expected a non-empty 1-D sequence)")
            bad = [i for i, v in enumerate(arr) if not math.isfinite(v)
                   or (self.interval is not None and v not in self.interval)]
            if bad:
                raise fail(f" (entry {bad[0]} is {arr[bad[0]]!r})")
            arr = arr.copy()
            arr.flags.writeable = False
            return arr
        if isinstance(value, (bool, np.bool_)):
            if self.type is bool:
                return bool(value)
            raise fail(" (a bool, not a number)")
        if self.type is bool:
            raise fail("")
        if self.type is int:
            if not isinstance(value, numbers.Integral):
                if isinstance(value, numbers.Real) and float(value).is_integer():
                    value = int(value)
                else:
                    raise fail("")
            value = int(value)
            if not -2**63 <= value < 2**63:  # kernels take int64
                raise fail(" (does not fit in 64 bits)")
        else:
            if not isinstance(value, numbers.Real):
                raise fail("")
            try:
                value = float(value)
            except OverflowError:  # e.g. 10**400: an int beyond float64
                raise fail(" (too large for a float64)") from None
            if math.isnan(value):
                raise fail("")
        if self.interval is not None and value not in self.interval:
            raise fail("")
        return value

    def to_dict(self) -> dict:
        default = self.default.tolist() if isinstance(self.default, np.ndarray) else self.default
        return {"name": self.name, "type": self.type_name, "default": default,
                "interval": None if self.interval is None else self.interval.to_dict(),
                "nullable": self.nullable, "doc": self.doc}


_ARRAY_TYPES = ("array", "float_or_array")
Kernel = Callable[..., Any]


@dataclass
class LossSpec:
    """Everything lossreg knows about one loss: metadata plus one ``kernels`` object.

    ``kernels`` implements the kernel protocol (``lossreg.kernels.protocol``): built by
    ``lossreg.kernels.elementwise_kernels(elem)`` for element-wise losses or
    ``row_kernels(impl)`` for losses on rows. A plugin may instead give the plain pair
    ``forward(y_true, y_pred, out, *hp)`` (per-element or per-row values) and
    ``gradient(y_true, y_pred, out, *hp)`` (per-element d l_i / d y_pred), optionally with
    ``hessian(y_true, y_pred, out, *hp)`` (per-element second derivatives): they are
    adapted into the same protocol (``PairKernels``, with ``layout``). Inputs arrive as
    C-contiguous 1-D arrays (layout "elementwise") or 2-D arrays (layout "rows") of the
    working dtype (``serial_below``: fewer elements run serially). ``hp`` are the hyperparameters in declaration order (or whatever
    ``kernel_args(hyperparameters)`` returns).

    ``reference(y_true, y_pred, **hp)`` is a plain NumPy float64 implementation of the
    per-element (per-row) values; ``reference_hessian`` (optional) of the per-element
    second derivatives d2 l_i / d y_pred^2 (for rows, the diagonal of each row's Hessian,
    shaped like y_pred). Tests and ``lossreg.testing`` compare kernels to them.
    ``outer`` optionally maps the weighted mean m to the loss value: ``(f, df, c)`` with
    ``c(m) = f''(m) / f'(m)`` (the curvature ratio: for RMSE's square root -1/(2m), which
    unlike f'' = -m^(-3/2)/4 neither overflows nor underflows), or ``(f, df)`` alone: no
    Hessian; such losses support only the "mean" reduction. ``homogeneity`` (optional, an
    int k, with ``outer``): value(s y_true, s y_pred) = s^k value(y_true, y_pred) for
    s > 0; when the mean m leaves [2^-500, 2^500] (squares overflowing or underflowing),
    the plan recomputes on inputs scaled by a power of two and scales back (RMSE: 1).
    ``check_args(kernel_args, y_pred_shape)`` optionally raises
    ShapeError when hyperparameters do not fit the data (a class_weight of the wrong
    length); it runs on every call, ``validate=False`` included, before any kernel.
    ``domains_for(hyperparameters)`` (optional) returns domains that replace entries of
    ``domains`` for those resolved hyperparameters (kl_div's log_pred: y_pred holds
    log-probabilities); ``domains`` themselves describe the defaults.
    ``neutral`` (optional): a ``(y_true, y_pred)`` element pair inside the domains where
    the loss and its derivatives are finite, put in place of the inputs of terms whose
    sample weight is exactly 0 (every element of such a row); by default a point inside
    each domain interval (uniform rows where the domain fixes the row sum; see
    ``lossreg._zero_weights``). Give it when the loss is singular there.
    """

    name: str
    family: str
    task: str
    forward: InitVar[Kernel | None] = None
    gradient: InitVar[Kernel | None] = None
    reference: Callable[..., Any] | None = None
    summary: str = ""
    formula: str = ""
    aliases: tuple[str, ...] = ()
    hyperparameters: Mapping[str, Hyperparameter] = field(default_factory=dict)
    domains: Mapping[str, Domain] = field(default_factory=dict)
    properties: frozenset[str] | tuple[str, ...] = frozenset()
    layout: str = "elementwise"
    reductions: tuple[str, ...] = REDUCTIONS
    kernel_args: Callable[[Mapping[str, Any]], tuple] | None = None
    kernels: Any = None
    reference_hessian: Callable[..., Any] | None = None
    outer: tuple[Callable[[float], float], ...] | None = None
    homogeneity: int | None = None
    sampler: Callable[..., tuple] | None = None
    check_args: Callable[[tuple, tuple], None] | None = None
    notes: str = ""
    source: str = "unknown"
    domains_for: Callable[[Mapping[str, Any]], Mapping[str, Domain]] | None = None
    hessian: InitVar[Kernel | None] = None
    serial_below: InitVar[int | None] = None
    neutral: tuple[float, float] | None = None

    def __post_init__(self, forward, gradient, hessian, serial_below) -> None:
        self.aliases = tuple(self.aliases)
        self.properties = frozenset(self.properties)
        self.reductions = tuple(self.reductions)
        self.hyperparameters = {k: (h if h.name == k else h.with_name(k))
                                for k, h in dict(self.hyperparameters).items()}
        self.domains = dict(self.domains)
        if self.kernels is None and forward is not None and gradient is not None:
            from .kernels.protocol import PairKernels

            self.kernels = PairKernels(forward, gradient, hessian, layout=self.layout)
            if serial_below is not None:
                self.kernels.serial_below = int(serial_below)
        elif self.kernels is not None and getattr(self.kernels, "layout", None) in LAYOUTS:
            self.layout = self.kernels.layout

    @property
    def has_hessian(self) -> bool:
        """True when the kernels give second derivatives (``Loss.hessian`` works)."""
        outer_ok = self.outer is None or len(self.outer) >= 3
        return bool(getattr(self.kernels, "has_hessian", False)) and outer_ok

    @property
    def takes_labels(self) -> bool:
        """True for a row loss whose y_true may be integer class labels."""
        return getattr(self.kernels, "labels", None) is not None

    # -- helpers used by the dispatcher and the tests -------------------------------
    def domain(self, argument: str) -> Domain:
        return self.domains.get(argument, FINITE)

    def configured(self, hyper: Mapping[str, Any]) -> "LossSpec":
        """This spec with the domains that resolved hyperparameters ``hyper`` ask for
        (``domains_for``); the spec itself when they change nothing."""
        if self.domains_for is None:
            return self
        changed = dict(self.domains_for(hyper))
        if all(self.domains.get(k) == v for k, v in changed.items()):
            return self
        return replace(self, domains={**self.domains, **changed})

    def defaults(self) -> dict[str, Any]:
        return {k: h.default for k, h in self.hyperparameters.items()}

    def resolve(self, given: Mapping[str, Any]) -> dict[str, Any]:
        """Validated hyperparameters: defaults overlaid with ``given``."""
        from ._suggest import did_you_mean

        for key in given:
            if key not in self.hyperparameters:
                known = ", ".join(self.hyperparameters) or "none"
                raise HyperparameterError(
                    f"unknown hyperparameter {key!r} for loss {self.name!r}"
                    f"{did_you_mean(key, self.hyperparameters)} (it takes: {known})")
        return {k: h.validate(given.get(k, h.default), self.name)
                for k, h in self.hyperparameters.items()}

    def args_for(self, hyper: Mapping[str, Any]) -> tuple:
        """Positional kernel arguments for resolved hyperparameters."""
        if self.kernel_args is not None:
            return tuple(self.kernel_args(hyper))
        args = []
        for key, h in self.hyperparameters.items():
            value = hyper[key]
            if value is None:
                raise HyperparameterError(
                    f"loss {self.name!r} gives no kernel_args to map {key}=None to a kernel argument")
            args.append(float(value) if h.type is float else value)
        return tuple(args)

    def sample(self, rng: np.random.Generator, n: int = 64, dtype=np.float64,
               **hyper: Any) -> tuple[np.ndarray, np.ndarray]:
        """Valid random inputs ``(y_true, y_pred)`` for tests and benchmarks."""
        if self.sampler is not None:
            y_true, y_pred = self.sampler(rng, n, **hyper)
        else:
            y_true = _draw(rng, self.domain("y_true"), n)
            y_pred = _draw(rng, self.domain("y_pred"), n)
        y_true = np.asarray(y_true)
        if y_true.dtype.kind == "f":
            y_true = y_true.astype(dtype)
        y_pred = np.asarray(y_pred).astype(dtype)
        if self.layout == "rows" and self.sampler is None:
            _nonzero_filled(self, y_true, y_pred)
        return y_true, y_pred

    def validate(self) -> None:
        """Raise PluginError when the spec is unusable (checked at registration)."""
        problems = []
        if not isinstance(self.name, str) or not _NAME_RE.match(self.name):
            problems.append(f"name {self.name!r} must match {_NAME_RE.pattern}")
        for alias in self.aliases:
            if not isinstance(alias, str) or not alias.strip():
                problems.append(f"alias {alias!r} must be a non-empty string")
        if not isinstance(self.family, str) or not self.family:
            problems.append("family must be a non-empty string")
        if self.task not in TASKS:
            problems.append(f"task {self.task!r} must be one of {TASKS}")
        if self.layout not in LAYOUTS:
            problems.append(f"layout {self.layout!r} must be one of {LAYOUTS}")
        if not callable(self.reference):
            problems.append("reference must be callable")
        if self.domains_for is not None and not callable(self.domains_for):
            problems.append("domains_for must be callable")
        if self.reference_hessian is not None and not callable(self.reference_hessian):
            problems.append("reference_hessian must be callable")
        if self.kernels is None:
            problems.append("kernels (or the plain forward and gradient pair) must be given")
        elif not callable(getattr(self.kernels, "run", None)) or \
                getattr(self.kernels, "layout", None) != self.layout:
            problems.append("kernels must implement lossreg.kernels.Kernels (a run(job) "
                            f"method) with layout {self.layout!r}")
        if self.neutral is not None and not (
                isinstance(self.neutral, tuple) and len(self.neutral) == 2
                and all(isinstance(x, (int, float)) and not isinstance(x, bool)
                        and math.isfinite(x) for x in self.neutral)):
            problems.append(f"neutral must be a (y_true, y_pred) pair of finite numbers, "
                            f"got {self.neutral!r}")
        if self.outer is not None and (len(self.outer) not in (2, 3)
                                       or not all(map(callable, self.outer))):
            problems.append("outer must be (f, df) or (f, df, f''/f'), all callable")
        if not set(self.reductions) <= set(REDUCTIONS) or not self.reductions:
            problems.append(f"reductions {self.reductions!r} must be a subset of {REDUCTIONS}")
        for arg, dom in self.domains.items():
            if arg not in ARGUMENTS:
                problems.append(f"domain for unknown argument {arg!r} (use {ARGUMENTS})")
            elif not isinstance(dom, Domain):
                problems.append(f"domains[{arg!r}] must be a lossreg.Domain")
            elif dom.nonzero_rows is not None and self.layout != "rows":
                problems.append(f"domains[{arg!r}].nonzero_rows is a rule of rows: it needs "
                                f"layout 'rows'")
            elif dom.nonzero_rows in ("either", "both") and self.takes_labels:
                problems.append(f"domains[{arg!r}].nonzero_rows={dom.nonzero_rows!r} reads "
                                f"y_true's rows, but this loss also takes class labels")
        for key, h in self.hyperparameters.items():
            if not isinstance(h, Hyperparameter):
                problems.append(f"hyperparameters[{key!r}] must be a lossreg.Hyperparameter")
                continue
            try:
                h.validate(h.default, self.name)
            except HyperparameterError as exc:
                problems.append(f"default of {key!r} is invalid: {exc}")
            if key in ("reduction", "name", "n_threads", "validate", "weight"):
                problems.append(f"hyperparameter name {key!r} is reserved")
        if problems:
            raise PluginError(f"invalid LossSpec {self.name!r}: " + "; ".join(problems),
                              source=self.source)

    def to_dict(self) -> dict:
        """JSON-serialisable metadata (kernels and reference are named, not included)."""
        return {
            "name": self.name, "aliases": list(self.aliases), "family": self.family,
            "task": self.task, "summary": self.summary, "formula": self.formula,
            "hyperparameters": {k: h.to_dict() for k, h in self.hyperparameters.items()},
            "domains": {a: self.domain(a).to_dict() for a in ARGUMENTS},
            "properties": sorted(self.properties), "layout": self.layout,
            "reductions": list(self.reductions), "notes": self.notes,
            "reference": _qualname(self.reference),
            "reference_hessian": (None if self.reference_hessian is None
                                  else _qualname(self.reference_hessian)),
            "kernels": (self.kernels.describe() if hasattr(self.kernels, "describe")
                        else repr(self.kernels)),
            "has_hessian": self.has_hessian,
            "label_targets": self.takes_labels,
            "source": self.source,
        }


def _qualname(obj: Any) -> str:
    py = getattr(obj, "py_func", obj)
    return f"{getattr(py, '__module__', '?')}.{getattr(py, '__qualname__', repr(py))}"


def nonzero_point(domain: Domain) -> float:
    """A non-zero value inside ``domain.interval`` (1, -1, or an end), for rows that
    must not be all zero; 0.0 when the interval holds no other value."""
    iv = domain.interval
    for x in (1.0, -1.0, iv.low, iv.high, iv.low + (iv.high - iv.low) / 2):
        if math.isfinite(x) and x != 0.0 and x in iv:
            return float(x)
    return 0.0


def _nonzero_filled(spec: "LossSpec", t: np.ndarray, p: np.ndarray) -> None:
    """Drawn rows that break a ``nonzero_rows`` rule (an all-zero draw, e.g. of whole
    numbers) get a non-zero last element, in place, so sampled inputs are valid."""
    for arr, argument in ((t, "y_true"), (p, "y_pred")):
        if arr.dtype.kind != "f" or arr.ndim == 0:
            continue
        rows = arr.reshape(-1, arr.shape[-1])
        if any(spec.domain(a).nonzero_rows is not None for a in ARGUMENTS):
            rows[~np.any(rows != 0, axis=1), -1] = nonzero_point(spec.domain(argument))


def _draw(rng: np.random.Generator, domain: Domain, n: int) -> np.ndarray:
    lo, hi = domain.interval.low, domain.interval.high
    if domain.integer:
        lo = 0 if not math.isfinite(lo) else lo
        hi = lo + 5 if not math.isfinite(hi) else hi
        return rng.integers(int(math.ceil(lo)), int(math.floor(hi)) + 1, size=n).astype(np.float64)
    if math.isfinite(lo) and math.isfinite(hi):
        span = hi - lo
        return lo + span * (0.02 + 0.96 * rng.random(n))
    if math.isfinite(lo):
        return lo + 0.01 + rng.exponential(2.0, n)
    if math.isfinite(hi):
        return hi - 0.01 - rng.exponential(2.0, n)
    return rng.normal(0.0, 2.0, n)
