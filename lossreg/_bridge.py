"""What the framework bridges (``lossreg.torch``, ``lossreg.jax``, ``lossreg.sklearn``)
share: importing their library with a one-line error naming the extra, turning a name, a
config or a loss object into a loss, and deciding what a loss's derivatives allow.

No framework is imported here; each bridge imports its own.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from .errors import HyperparameterError, MissingDependencyError, install_hint
from .loss import BaseLoss


def require(module: str, extra: str, purpose: str):
    """``import module`` or raise MissingDependencyError naming the extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(
            f"{purpose} needs {module}, which is not installed; install the {extra} extra: "
            + install_hint(extra)
        ) from exc


def resolve(name_or_loss: Any, reduction: str | None, hyper: Mapping[str, Any],
            default_reduction: str = "mean") -> BaseLoss:
    """A loss object from a name (``lossreg.get``), a config dict (``lossreg.from_config``)
    or a loss object (``lossreg.get``/``from_config`` result, used as it is).

    ``reduction`` None means the config's own, else ``default_reduction``; a loss object
    must already have the reduction asked for, and takes no hyperparameters.
    """
    import lossreg

    if isinstance(name_or_loss, BaseLoss):
        if hyper:
            raise HyperparameterError(
                f"hyperparameters {sorted(hyper)} given with a loss object; pass a name or "
                f"a config, or build the loss with them")
        if reduction is not None and reduction != name_or_loss.reduction:
            raise HyperparameterError(
                f"the loss object has reduction {name_or_loss.reduction!r} but "
                f"reduction={reduction!r} was asked for")
        return name_or_loss
    if isinstance(name_or_loss, Mapping):
        cfg = dict(name_or_loss)
        cfg.update(hyper)
        if reduction is not None:
            cfg["reduction"] = reduction
        cfg.setdefault("reduction", default_reduction)
        return lossreg.from_config(cfg)
    if isinstance(name_or_loss, str):
        return lossreg.get(name_or_loss, reduction=reduction or default_reduction, **hyper)
    raise HyperparameterError(f"expected a loss name, a config dict or a lossreg loss, got "
                              f"{type(name_or_loss).__name__}")


def terms(loss: BaseLoss) -> list:
    """The registered losses inside ``loss`` (itself, or a weighted sum's terms, flattened)."""
    inner = getattr(loss, "terms", None)
    if inner is None:
        return [loss]
    return [leaf for _, term in inner for leaf in terms(term)]


def diagonal_hessian_problem(loss: BaseLoss) -> str | None:
    """None when the Hessian of ``loss`` w.r.t. y_pred is diagonal and lossreg computes it
    (element-wise losses with kernels giving second derivatives, no ``outer``), so a
    Hessian-vector product is ``h * v``; else why not, in words."""
    for leaf in terms(loss):
        spec = leaf.spec
        if not spec.has_hessian:
            return (f"loss {spec.name!r} (from {spec.source}) has no Hessian: its kernels give "
                    f"no second derivatives (spec.has_hessian is False)")
        if spec.layout != "elementwise":
            return (f"loss {spec.name!r} works on rows: its Hessian has off-diagonal terms "
                    f"within each row, and lossreg computes only the diagonal")
        if spec.outer is not None:
            return (f"loss {spec.name!r} applies an outer function to the mean (as rmse's "
                    f"square root): its Hessian is dense, and lossreg computes only the "
                    f"diagonal")
    return None


def describe(loss: BaseLoss) -> str:
    """``name(k=v, ..., reduction=r)`` for reprs."""
    label = getattr(loss, "label", None)
    if label:
        return f"{label}, reduction={loss.reduction!r}"
    hp = ", ".join(f"{k}={v!r}" for k, v in loss.config().items() if k != "name")
    return f"{loss.name}({hp})"
