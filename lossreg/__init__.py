"""lossreg: loss functions with Numba kernels and an open, pluggy-based catalogue.

    >>> import lossreg
    >>> lossreg.get("huber", delta=0.5)([0.0, 1.0], [0.5, 3.0])
    0.5

Importing lossreg is cheap: nothing is compiled and numba is not imported until the
first loss is looked up (the default registry is built lazily).
"""

from __future__ import annotations

from typing import Any

from . import _numba_threads  # noqa: F401  (its fork hook sees a layer started by anyone)
from .errors import (CacheWarning, ConfigError, DomainError, DTypeError, HyperparameterError,
                     LossError, LossregWarning, MissingDependencyError, PluginError,
                     ReductionError, ShapeError, UnknownLossError)
from .hookspecs import hookimpl
from .loss import Loss
from .registry import Registry, default_registry, set_default_registry
from .spec import Domain, Hyperparameter, Interval, LossSpec

__version__ = "0.1.0"

__all__ = [
    "CacheWarning", "ConfigError", "Domain", "DomainError", "DTypeError", "Hyperparameter",
    "HyperparameterError", "Interval", "Loss", "LossError", "LossSpec", "LossregWarning",
    "MissingDependencyError", "PluginError", "ReductionError",
    "Registry", "ShapeError", "UnknownLossError", "default_registry", "from_config", "get",
    "hookimpl", "names", "plugin_errors", "plugins", "set_default_registry", "spec",
]


def get(name: str, reduction: str = "mean", *, registry: Registry | None = None,
        n_threads: int | None = None, validate: bool = True, **hyperparameters: Any) -> Loss:
    """Look a loss up by name or alias and fix its hyperparameters.

    Names are case-insensitive and ignore '-' and '_'. Unknown names raise
    UnknownLossError with close matches; bad hyperparameters raise HyperparameterError,
    a reduction the loss does not support ReductionError.
    """
    reg = registry or default_registry()
    return Loss(reg.spec(name), reduction=reduction, n_threads=n_threads, validate=validate,
                **hyperparameters)


def names(family: str | None = None, task: str | None = None, *,
          registry: Registry | None = None) -> list[str]:
    """Sorted canonical names, optionally filtered by family and task."""
    return (registry or default_registry()).names(family=family, task=task)


def spec(name: str, *, registry: Registry | None = None) -> LossSpec:
    """The LossSpec (metadata, reference and kernels) of a loss name or alias."""
    return (registry or default_registry()).spec(name)


def plugin_errors(*, registry: Registry | None = None) -> list:
    """Plugins that failed to load or register, each with its source and error."""
    return (registry or default_registry()).errors()


def plugins(*, registry: Registry | None = None) -> list:
    """Every plugin record (built-ins included): name, source, losses, error."""
    return (registry or default_registry()).records


def __getattr__(name: str) -> Any:
    # Submodules and helpers that import more than the core, loaded on first use.
    if name == "from_config":
        from .config import from_config
        return from_config
    if name in ("testing", "kernels", "cli", "config", "experiments"):
        import importlib
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'lossreg' has no attribute {name!r}")
