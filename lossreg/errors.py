"""Exception classes: everything lossreg raises on purpose derives from LossError."""

from __future__ import annotations


class LossError(Exception):
    """Base of every error lossreg raises on purpose."""


class UnknownLossError(LossError, KeyError):
    """A loss name (or alias) that no registered plugin provides."""

    def __init__(self, name: str, suggestions: list[str] | tuple[str, ...] = ()):
        self.name = name
        self.suggestions = list(suggestions)
        msg = f"unknown loss {name!r}"
        if self.suggestions:
            msg += "; did you mean " + " or ".join(repr(s) for s in self.suggestions) + "?"
        else:
            msg += "; run `lossreg list` to see the registered losses"
        super().__init__(msg)

    def __str__(self) -> str:  # KeyError would otherwise repr() the message
        return self.args[0]


class HyperparameterError(LossError, ValueError):
    """A hyperparameter that is unknown, of the wrong type or outside its interval."""


class ReductionError(LossError, ValueError):
    """A ``reduction`` that is not "mean", "sum" or "none", or that the loss does not
    support (RMSE has only "mean"); the message lists the reductions the loss supports.
    Not a HyperparameterError: a reduction is not a hyperparameter of the loss."""


class DomainError(LossError, ValueError):
    """Input data outside the loss's domain.

    ``argument`` names the offending argument, ``constraint`` states what was violated and
    ``index`` is the first offending flat (C-order) index, or None when not element-wise.
    """

    def __init__(self, message: str, *, argument: str, constraint: str, index: int | None = None):
        super().__init__(message)
        self.argument = argument
        self.constraint = constraint
        self.index = index

    def __reduce__(self):
        """Picklable (keyword-only arguments): errors raised in a dask worker process
        reach the client intact."""
        return (_rebuild, (type(self), self.args[0] if self.args else "", self.argument,
                           self.constraint, self.index))


def _rebuild(cls, message, argument, constraint, index):
    return cls(message, argument=argument, constraint=constraint, index=index)


class DTypeError(DomainError, TypeError):
    """An argument whose dtype cannot be a loss input (object, complex, strings, ...)."""


class ShapeError(LossError, ValueError):
    """Shapes that do not fit together (the message names both), or an empty input."""


class ConfigError(LossError, ValueError):
    """A configuration that cannot be turned into a loss."""


class MissingDependencyError(LossError, ImportError):
    """An optional dependency (an extra such as ``lossreg[plot]`` or ``lossreg[torch]``)
    is not installed; the message names the extra to install (:func:`install_hint`)."""


def install_hint(extra: str) -> str:
    """How to install an extra, from PyPI and from a checkout of the repository."""
    return f'pip install "lossreg[{extra}]" (from a checkout: pip install -e ".[{extra}]")'


class PluginError(LossError):
    """A plugin that failed to load, registered an invalid spec, or clashed by name."""

    def __init__(self, message: str, *, source: str | None = None):
        super().__init__(message)
        self.source = source


class LossregWarning(UserWarning):
    """Base of every warning lossreg gives (filter them with this class)."""


class CacheWarning(LossregWarning):
    """The compiled-kernel cache cannot be used as asked (an untrusted, read-only or full
    directory, an unreadable entry): kernels compile in memory instead. Given at most
    once per kind of problem and process."""
