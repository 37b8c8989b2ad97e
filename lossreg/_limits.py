"""Bounds on configs, and short quotes of values in error messages.

A config is data from anywhere. A few hundred bytes of YAML with anchors and aliases
describe 10^8 values (an alias is the same object again, so nothing grows until
something walks it), a YAML merge key (``<<: [*a, *a]``) copies in PyYAML's constructor,
an anchor can contain itself, and deep nesting overflows any recursive walk.
:func:`check_size` bounds the number of values (each alias counted every time it is
used) and the nesting depth, and refuses a structure that contains itself. It walks
iteratively and stops at the first value past a limit, so every such config fails fast
with ``ConfigError``; ``lossreg.config`` runs it before anything else looks at a config
(on YAML, on the parsed node graph, before PyYAML builds any Python object).

:func:`short_repr` quotes a value in a message at a bounded length, however large the
value is (it never builds the full repr).
"""

from __future__ import annotations

import reprlib
from collections.abc import Mapping, Sequence
from typing import Any, Callable, Iterable

from .errors import ConfigError

__all__ = ["MAX_NODES", "MAX_DEPTH", "check_size", "plain_children", "yaml_children",
           "load_yaml", "too_deep", "short_repr"]

#: Most values (mapping keys, mapping values, list items, leaves) a config may hold.
#: A loss config holds tens; a class_weight list holds one per class.
MAX_NODES = 100_000
#: Deepest nesting of mappings and lists in a config (top level = depth 0). A weighted
#: sum nested in a weighted sum adds two levels.
MAX_DEPTH = 32


def plain_children(node: Any) -> Sequence | None:
    """The values inside a mapping (its keys and values) or a list; None for a leaf.

    Strings, bytes and arrays are leaves."""
    if isinstance(node, Mapping):
        out = []
        for key, value in node.items():
            out.append(key)
            out.append(value)
        return out
    if isinstance(node, (str, bytes, bytearray)):
        return None
    if isinstance(node, Sequence):
        return node
    return None


def yaml_children(node: Any) -> Sequence | None:
    """The nodes inside a PyYAML mapping or sequence node (composed, not constructed)."""
    import yaml

    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return node.value
    return None


def check_size(root: Any, where: str, *,
               children: Callable[[Any], Sequence | None] = plain_children,
               max_nodes: int | None = None, max_depth: int | None = None) -> None:
    """ConfigError when ``root`` holds more than ``max_nodes`` values, nests deeper than
    ``max_depth`` or contains itself; otherwise nothing.

    ``children(node)`` gives a node's sized sequence of children or None for a leaf.
    Values reached twice (YAML aliases) count twice. The limits default to
    :data:`MAX_NODES` and :data:`MAX_DEPTH`, read at call time.
    """
    max_nodes = MAX_NODES if max_nodes is None else max_nodes
    max_depth = MAX_DEPTH if max_depth is None else max_depth
    count = 1
    on_path: set[int] = set()          # ids of the containers above the current node
    stack: list = [(root, 0)]
    while stack:
        item = stack.pop()
        if type(item) is int:          # every child of this container is done
            on_path.discard(item)
            continue
        node, depth = item
        kids = children(node)
        if kids is None:
            continue
        ident = id(node)
        if ident in on_path:
            raise ConfigError(f"{where}: the config contains itself (a YAML anchor used "
                              f"inside itself, or a mapping that holds itself)")
        if depth >= max_depth:
            raise too_deep(where, max_depth)
        count += len(kids)
        if count > max_nodes:
            raise ConfigError(f"{where}: the config holds more than {max_nodes} values "
                              f"(YAML aliases count each time they are used)")
        on_path.add(ident)
        stack.append(ident)
        stack.extend((kid, depth + 1) for kid in _reversed(kids))


def too_deep(where: str, max_depth: int | None = None) -> ConfigError:
    """The error for a config nested past the depth bound."""
    return ConfigError(f"{where}: the config nests deeper than "
                       f"{MAX_DEPTH if max_depth is None else max_depth} levels")


def load_yaml(text: str, where: str) -> Any:
    """``yaml.safe_load(text)`` with the bounds checked first: the depth while composing
    (PyYAML's scanner slows down with the square of the nesting depth, so deep input is
    cut off at once), then the size on the composed node graph, where aliases are shared
    nodes and merge keys are not expanded yet. Only then are Python objects built.

    Raises ConfigError past a bound; PyYAML's own errors otherwise; ImportError without
    PyYAML.
    """
    import yaml

    max_depth = MAX_DEPTH

    class BoundedLoader(yaml.SafeLoader):   # safe: never constructs objects from tags
        depth = 0

        def compose_node(self, parent, index):
            self.depth += 1                  # the top node is depth 1 here, 0 in check_size
            try:
                if self.depth > max_depth + 1:
                    raise too_deep(where, max_depth)
                return super().compose_node(parent, index)
            finally:
                self.depth -= 1

    loader = BoundedLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        check_size(node, where, children=yaml_children)
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _reversed(kids: Sequence) -> Iterable:
    try:
        return reversed(kids)
    except TypeError:
        return reversed(list(kids))


_REPR = reprlib.Repr()
_REPR.maxlevel = 3
_REPR.maxlist = _REPR.maxtuple = _REPR.maxset = _REPR.maxfrozenset = 8
_REPR.maxdict = 6
_REPR.maxstring = 80
_REPR.maxother = 80
_REPR.maxlong = 40


def short_repr(value: Any, limit: int = 160) -> str:
    """``repr(value)`` cut to about ``limit`` characters, never built in full: nested
    lists show their first items and ``...`` (``[[1.0, 1.0, ...], ...]``)."""
    try:
        text = _REPR.repr(value)
    except Exception:  # noqa: BLE001 - a message must never fail on a quote
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[:limit - 3] + "..."
