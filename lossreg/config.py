"""Losses as plain data: ``from_config`` (dicts, TOML, JSON, YAML) and weighted sums.

A config is data only. It names registered losses and sets their hyperparameters and
reduction; it never imports a module, resolves a dotted path or calls anything, so a
config file from an untrusted place can at worst raise an error. Strings that look like
code references (``"torch.nn.MSELoss"``, ``"pkg.mod:attr"``, Hydra's ``_target_``) are
refused with ``ConfigError`` rather than looked up.

Shapes accepted by ``from_config``::

    {"name": "huber", "delta": 0.5, "reduction": "sum"}        # one loss (Loss.config())
    {"terms": [{"name": "mse", "weight": 1.0},                   # weighted sum (WeightedSum)
               {"name": "mae", "weight": 0.1}], "reduction": "mean"}
    {"loss": {...}}                                              # either, wrapped (a [loss] table)

Errors: unknown keys and unknown hyperparameters raise ``ConfigError`` with did-you-mean
suggestions; invalid values raise the same ``HyperparameterError`` as ``lossreg.get``;
an unknown loss name raises ``UnknownLossError`` as ``lossreg.get`` does.

TOML has no null: write ``"none"`` for a hyperparameter that accepts None (``alpha =
"none"`` turns focal's alpha weighting off); omit a key to get its default.
"""

from __future__ import annotations

import json
import math
import numbers
import os
import pathlib
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ._limits import check_size, load_yaml, short_repr, too_deep
from ._suggest import did_you_mean
from .errors import ConfigError, HyperparameterError, ReductionError, install_hint
from .loss import BaseLoss, Loss, check_reduction
from .spec import REDUCTIONS

__all__ = ["WeightedSum", "from_config", "load_file", "SUFFIXES"]

#: File suffixes ``from_config(path)`` reads, and the format of each.
SUFFIXES = {".toml": "toml", ".json": "json", ".yaml": "yaml", ".yml": "yaml"}

_LOSS_KEYS = ("name", "reduction", "weight")
_SUM_KEYS = ("terms", "reduction", "weight")
#: Keys of code-instantiating config systems (Hydra) that lossreg will never honour.
_CODE_KEYS = ("_target_", "_partial_", "_args_", "_recursive_", "_convert_", "__class__",
              "class", "callable", "function", "module", "import")
# "pkg.mod.Attr", "pkg.mod:attr", "builtins.eval", "lambda x: ...", "f(x)", "${...}".
_DOTTED = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)+(:[A-Za-z_][\w.]*)?$|^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
_CALLISH = re.compile(r"^\s*lambda\b|\w\s*\(|^\s*__\w+__")


# -- weighted sums -----------------------------------------------------------------------------

class WeightedSum(BaseLoss):
    """``sum_i weight_i * loss_i(y_true, y_pred)``: a loss made of other losses.

    Every term is built with the sum's ``reduction`` and receives the same
    ``sample_weight``, so for element-wise losses under "mean" the value is the weighted
    mean of the combined per-element loss ``sum_i w_i l_i`` (each term divides by the
    same ``sum(sample_weight)``), under "sum" its weighted sum, and under "none" the
    per-element ``sum_i w_i l_i``. A term with its own "mean" denominator (class weights
    of ``softmax_cross_entropy``) keeps it: the sum is exactly ``sum_i w_i * term_i``.
    Gradients and Hessian diagonals add the same way. Terms may be losses on rows and
    losses on elements only when the reduction is not "none" (their per-sample shapes
    differ).

    A sibling of :class:`lossreg.Loss` behind the shared ``BaseLoss`` (and registered as
    a virtual subclass, so ``isinstance(s, lossreg.Loss)`` holds as API.md promises): the
    same methods (call, ``grad``, ``value_and_grad``, ``hessian``, ``grad_hess``, with
    ``out=``), ``config``, ``name``, ``reduction``, ``hyperparameters``, ``==``; no single
    ``spec`` (``spec`` is None); ``terms`` holds ``(weight, Loss)`` pairs.
    """

    spec = None

    def __init__(self, terms: Sequence[tuple[float, BaseLoss]], reduction: str = "mean", *,
                 validate: bool = True):
        reduction = check_reduction(reduction)
        terms = [(_check_weight(w), loss) for w, loss in terms]
        if not terms:
            raise ConfigError("a weighted sum needs at least one term")
        for _, loss in terms:
            if not isinstance(loss, BaseLoss):
                raise ConfigError(f"a weighted-sum term must be a lossreg.Loss, got {loss!r}")
            if loss.reduction != reduction:
                raise ConfigError(f"term {loss.name!r} has reduction {loss.reduction!r} but the "
                                  f"weighted sum has {reduction!r}; all terms share one reduction")
        if reduction == "none" and len({_layout(loss) for _, loss in terms}) > 1:
            raise ConfigError("reduction 'none' cannot add losses on rows to element-wise losses "
                              "(their per-sample values have different shapes)")
        self.terms = tuple(terms)
        self.reduction = reduction
        self.n_threads = None
        self.validate = bool(validate)

    @property
    def name(self) -> str:
        return "weighted_sum"

    @property
    def has_hessian(self) -> bool:
        return all(_has_hessian(loss) for _, loss in self.terms)

    @property
    def label(self) -> str:
        """Human-readable formula, e.g. ``"1*mse + 0.1*huber(delta=0.5)"``."""
        parts = []
        for w, loss in self.terms:
            inner = getattr(loss, "label", None) or _short(loss)
            parts.append(f"{w:g}*{'(' + inner + ')' if isinstance(loss, WeightedSum) else inner}")
        return " + ".join(parts)

    @property
    def hyperparameters(self) -> dict[str, Any]:
        """``{"terms": [{"name", "weight", **hyperparameters}, ...]}`` (copies)."""
        return {"terms": [dict(_term_config(w, loss)) for w, loss in self.terms]}

    def config(self) -> dict[str, Any]:
        """``{"terms": [...], "reduction": r}``; ``from_config`` rebuilds an equal sum."""
        return {"terms": [_term_config(w, loss) for w, loss in self.terms],
                "reduction": self.reduction}

    def _evaluate(self, y_true, y_pred, sample_weight, validate, value, grad, hess,
                  out=None, hess_out=None):
        """Each term evaluated once (value, gradient and Hessian in its own fused pass),
        its derivatives written into the caller's buffers for the first term and into
        one scratch pair for the others, then scaled and added."""
        total = g_sum = h_sum = None
        scratch: tuple = (None, None)
        for i, (w, loss) in enumerate(self.terms):
            g_buf, h_buf = (out, hess_out) if i == 0 else scratch
            v, g, h = loss._evaluate(y_true, y_pred, sample_weight, validate, value, grad,
                                     hess, g_buf, h_buf)
            if value:
                total = w * v if total is None else total + w * v
            for arr in (g, h):
                if arr is not None:
                    arr *= arr.dtype.type(w)
            if i == 0:
                g_sum, h_sum = g, h
                if len(self.terms) > 1:
                    scratch = (None if g is None else np.empty_like(g),
                               None if h is None else np.empty_like(h))
            else:
                if g is not None:
                    g_sum += g
                if h is not None:
                    h_sum += h
        if value and self.reduction != "none":
            total = float(total)
        return total, g_sum, h_sum

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, WeightedSum):
            return NotImplemented if not isinstance(other, BaseLoss) else False
        return (self.reduction == other.reduction and len(self.terms) == len(other.terms)
                and all(w1 == w2 and l1 == l2 for (w1, l1), (w2, l2)
                        in zip(self.terms, other.terms)))

    __hash__ = None

    def __repr__(self) -> str:
        return f"lossreg.from_config({self.config()!r})"


Loss.register(WeightedSum)


def _has_hessian(loss: BaseLoss) -> bool:
    return loss.has_hessian if isinstance(loss, WeightedSum) else loss.spec.has_hessian


def _layout(loss: Loss) -> str:
    if isinstance(loss, WeightedSum):
        layouts = {_layout(t) for _, t in loss.terms}
        return layouts.pop() if len(layouts) == 1 else "mixed"
    return loss.spec.layout


def _short(loss: Loss) -> str:
    hp = ", ".join(f"{k}={v!r}" for k, v in loss.config().items()
                   if k not in ("name", "reduction"))
    return f"{loss.name}({hp})" if hp else loss.name


def _term_config(weight: float, loss: Loss) -> dict[str, Any]:
    cfg = loss.config()
    cfg.pop("reduction", None)
    if "terms" in cfg:
        return {"terms": cfg["terms"], "weight": weight}
    name = cfg.pop("name")
    return {"name": name, "weight": weight, **cfg}


def _check_weight(weight: Any) -> float:
    if isinstance(weight, (bool, np.bool_)) or not isinstance(weight, numbers.Real):
        raise HyperparameterError(f"weight must be a finite number >= 0, got "
                                  f"{short_repr(weight)}")
    value = float(weight)
    if not math.isfinite(value) or value < 0:
        raise HyperparameterError(f"weight must be in [0, inf), got {short_repr(weight)}")
    return value


# -- building losses from mappings ---------------------------------------------------------------

def from_config(config: Mapping[str, Any] | str | os.PathLike, *, registry=None) -> Loss:
    """Build a Loss (or a :class:`WeightedSum`) from a mapping or a config file.

    ``config`` is a mapping (``Loss.config()``, a parsed file, a Hydra/OmegaConf node
    turned into a dict with ``OmegaConf.to_container(cfg, resolve=True)``) or a path to
    a ``.toml``/``.json`` file (standard library) or ``.yaml``/``.yml`` file (needs
    PyYAML: ``pip install "lossreg[yaml]"``). ``from_config(loss.config())`` is equal to
    ``loss`` and gives the same values and gradients.
    """
    if isinstance(config, (str, os.PathLike)):
        config = load_file(config)             # bounded by load_file
    elif isinstance(config, Mapping):
        check_size(config, "config")           # before anything walks it
    if not isinstance(config, Mapping):
        raise ConfigError(f"a loss config must be a mapping (dict or table), got "
                          f"{type(config).__name__}")
    config = _unwrap(config)
    return _build(config, "config", registry, top=True)


def _unwrap(config: Mapping) -> Mapping:
    """Accept ``{"loss": {...}}`` (a ``[loss]`` table, a Hydra ``loss:`` group)."""
    keys = list(config)
    if "experiment" in config and "name" not in config and "terms" not in config:
        raise ConfigError("this is an experiment file ([experiment] and [losses.LABEL] "
                          "tables): run it with `lossreg run` or load it with "
                          "lossreg.experiments.load_experiment")
    if keys == ["loss"] and isinstance(config["loss"], Mapping):
        return config["loss"]
    if "loss" in config and "name" not in config and "terms" not in config:
        others = [k for k in keys if k != "loss"]
        raise ConfigError(f"unexpected key(s) {', '.join(map(repr, others))} next to 'loss'; "
                          f"an experiment file (with [experiment]) is run by `lossreg run` "
                          f"or lossreg.experiments.load_experiment")
    return config


def _build(cfg: Mapping, where: str, registry, top: bool = False, reduction: str | None = None):
    """One loss or weighted sum from a mapping. Keys are checked before any value is
    looked at (code keys, the shape, unknown keys), then each value the loss uses."""
    from .loss import Loss as _Loss
    from .registry import default_registry

    cfg = {_key(k, where): v for k, v in cfg.items()}
    for key in cfg:
        _refuse_code_key(key, where)
    if "terms" in cfg and "name" in cfg:
        raise ConfigError(f"{where}: give either 'name' (one loss) or 'terms' (a weighted "
                          f"sum), not both")
    if "terms" not in cfg and "name" not in cfg:
        raise ConfigError(f"{where}: a loss config needs 'name' (one loss) or 'terms' (a "
                          f"weighted sum); got keys {short_repr(sorted(cfg))}"
                          + did_you_mean_any(cfg, ("name", "terms")))
    if "terms" in cfg:
        for key in cfg:
            if key not in _SUM_KEYS:
                raise ConfigError(f"{where}: unknown key {short_repr(key)} in a weighted sum"
                                  f"{did_you_mean(key, _SUM_KEYS)} (keys: {', '.join(_SUM_KEYS)})")
    else:
        name = cfg["name"]
        _refuse_value(name, f"{where}.name")
        if not isinstance(name, str):
            raise ConfigError(f"{where}: 'name' must be a string, got {short_repr(name)}")
        spec = (registry or default_registry()).spec(name)
        known = list(_LOSS_KEYS) + list(spec.hyperparameters)
        for key in cfg:
            if key not in _LOSS_KEYS and key not in spec.hyperparameters:
                takes = ", ".join(spec.hyperparameters) or "no hyperparameters"
                raise ConfigError(f"{where}: unknown key {short_repr(key)} for loss "
                                  f"{spec.name!r}{did_you_mean(key, known)} (keys: name, "
                                  f"reduction, weight; {spec.name} takes {takes})")
    for key in ("reduction", "weight"):
        if key in cfg:
            _refuse_value(cfg[key], f"{where}.{key}")
    own_reduction = cfg.get("reduction")
    if own_reduction is not None and reduction is not None and own_reduction != reduction:
        raise ConfigError(f"{where}: reduction {short_repr(own_reduction)} differs from the "
                          f"weighted sum's {reduction!r}; all terms share one reduction")
    red = reduction if reduction is not None else own_reduction if own_reduction is not None \
        else "mean"
    weight = cfg.get("weight", 1.0)

    if "terms" in cfg:
        terms = cfg["terms"]
        if isinstance(terms, (str, bytes)) or not isinstance(terms, Sequence) or \
                isinstance(terms, Mapping):
            raise ConfigError(f"{where}: 'terms' must be a list of loss configs, got "
                              f"{type(terms).__name__}")
        if not terms:
            raise ConfigError(f"{where}: 'terms' is empty; a weighted sum needs at least one term")
        built = []
        for i, term in enumerate(terms):
            here = f"{where}.terms[{i}]"
            if not isinstance(term, Mapping):
                raise ConfigError(f"{here}: a term must be a mapping with 'name' and 'weight', "
                                  f"got {type(term).__name__}")
            loss_i = _build(term, here, registry, reduction=_red(red))
            built.append((_check_weight(term.get("weight", 1.0)), loss_i))
        loss: _Loss = WeightedSum(built, _red(red))
    else:
        hyper = {}
        for key, value in cfg.items():
            if key in _LOSS_KEYS:
                continue
            _refuse_value(value, f"{where}.{key}")
            hp = spec.hyperparameters[key]
            if isinstance(value, str) and value.strip().lower() in ("none", "null") \
                    and hp.nullable:
                value = None       # TOML has no null
            elif isinstance(value, Mapping):
                raise HyperparameterError(f"{key} must be {hp.constraint()}, got a mapping "
                                          f"(loss {spec.name!r})")
            elif isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
                value = list(value)  # ListConfig, tuples
            hyper[key] = value
        loss = _Loss(spec, reduction=_red(red), **hyper)
    if top and weight != 1.0:
        loss = WeightedSum([(_check_weight(weight), loss)], loss.reduction)
    elif top:
        _check_weight(weight)
    return loss


def _red(reduction: Any) -> str:
    if not isinstance(reduction, str):
        raise ReductionError(f"reduction must be one of {REDUCTIONS}, got "
                             f"{short_repr(reduction)}")
    return reduction


def _key(key: Any, where: str) -> str:
    if not isinstance(key, str):
        raise ConfigError(f"{where}: keys must be strings, got {short_repr(key)}")
    return key


def did_you_mean_any(cfg: Mapping, wanted: Sequence[str]) -> str:
    for key in cfg:
        hint = did_you_mean(key, wanted)
        if hint:
            return hint
    return ""


def _refuse_code(key: str, value: Any, where: str) -> None:
    """ConfigError for anything that is not plain data or that names code."""
    _refuse_code_key(key, where)
    _refuse_value(value, f"{where}.{key}")


def _refuse_code_key(key: str, where: str) -> None:
    if key in _CODE_KEYS:
        raise ConfigError(f"{where}: key {key!r} asks to import or call code; a lossreg config "
                          f"only names registered losses ('name') and sets data")


def _refuse_value(value: Any, where: str) -> None:
    if value is None or isinstance(value, (bool, numbers.Number, np.bool_, np.number)):
        return
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("${") or "${" in text:
            raise ConfigError(f"{where}: unresolved interpolation {short_repr(value)}; resolve "
                              f"it first (OmegaConf.to_container(cfg, resolve=True))")
        if _DOTTED.match(text) or _CALLISH.search(text):
            raise ConfigError(f"{where}: {short_repr(value)} looks like a module path or a "
                              f"call; a lossreg config never imports or runs code (name a "
                              f"registered loss)")
        return
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "biuf":
            raise ConfigError(f"{where}: arrays in a config must be numeric, got {value.dtype}")
        return
    if isinstance(value, Mapping):
        for k, v in value.items():
            _refuse_code(_key(k, where), v, where)
        return
    if isinstance(value, Sequence) and not isinstance(value, bytes):
        for i, v in enumerate(value):
            _refuse_value(v, f"{where}[{i}]")
        return
    raise ConfigError(f"{where}: a config holds plain data (numbers, strings, lists, "
                      f"tables), got {type(value).__name__}")


# -- files -----------------------------------------------------------------------------------------

def _toml_module():
    try:
        import tomllib
        return tomllib
    except ImportError:
        pass
    try:
        import tomli
        return tomli
    except ImportError:
        raise ConfigError("reading TOML on Python < 3.11 needs tomli: "
                          + install_hint("toml")) from None


def load_file(path: str | os.PathLike) -> dict[str, Any]:
    """Parse a .toml, .json, .yaml or .yml file into a plain dict (no code is run).

    Raises ConfigError for an unknown suffix, a file that is not UTF-8, a parse error, a
    config past the size and depth bounds of ``lossreg._limits`` (YAML is checked on its
    node graph, before any Python object is built, so alias and merge-key bombs cost
    nothing), a top level that is not a mapping, or YAML without PyYAML (naming the
    ``yaml`` extra); OSError when the file cannot be read.
    """
    path = pathlib.Path(path)
    kind = SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise ConfigError(f"{path}: unknown config format {path.suffix!r}; use one of "
                          f"{', '.join(SUFFIXES)}")
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {raw[exc.start]:#04x} at offset "
                          f"{exc.start}); save the config as UTF-8") from None
    try:
        if kind == "toml":
            data = _toml_module().loads(text)
        elif kind == "json":
            data = json.loads(text)
        else:
            try:
                import yaml  # noqa: F401
            except ImportError:
                raise ConfigError(f"{path}: reading YAML needs PyYAML: "
                                  + install_hint("yaml")) from None
            data = load_yaml(text, str(path))
    except ConfigError:
        raise
    except RecursionError:
        raise too_deep(str(path)) from None
    except Exception as exc:  # noqa: BLE001 - each parser has its own error class
        msg = " ".join(str(exc).split())
        msg = msg if len(msg) <= 300 else msg[:297] + "..."
        raise ConfigError(f"{path}: invalid {kind.upper()}: {msg}") from None
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path}: the top level must be a table/mapping, got "
                          f"{type(data).__name__}")
    check_size(data, str(path))
    return dict(data)
