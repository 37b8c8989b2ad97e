"""The Registry: a pluggy PluginManager, entry-point loading and the name/alias index.

Built-in losses are plugins like any other: they register through the same
``register_losses(register)`` hook. Entry points of group ``lossreg`` are loaded one by
one; a plugin that fails to import, raises in its hook (any exception, SystemExit
included; KeyboardInterrupt alone goes through), registers an invalid spec or clashes by
name is recorded (``Registry.errors``) and the others still load. A plugin that looks
losses up while it is being registered gets a PluginError naming it and is recorded as
failed: there is no registry to read yet.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import threading
from dataclasses import dataclass
from importlib import metadata
from typing import Any, Callable, Iterable

import pluggy

from . import hookspecs
from ._env import flag
from ._suggest import close_matches
from .errors import PluginError, UnknownLossError
from .spec import LossSpec

ENTRY_POINT_GROUP = "lossreg"
BUILTIN_MODULES = ("lossreg.losses.distance", "lossreg.losses.probabilistic",
                   "lossreg.losses.nll", "lossreg.losses.glm",
                   "lossreg.losses.overlap",
                   "lossreg.losses.margin")
BUILTIN_SOURCE = "lossreg (built-in)"


def normalize(name: str) -> str:
    """Lookup key: case-insensitive, and '-', '_' and spaces are ignored."""
    return "".join(ch for ch in str(name).lower() if ch not in "-_ ")


@dataclass(frozen=True)
class PluginRecord:
    """One loaded (or failed) plugin: where it came from and what it registered."""

    name: str
    source: str
    losses: tuple[str, ...] = ()
    error: str | None = None
    status: str = ""    # "loaded", "partial", "failed", "blocked" or "kernel-error"

    def __post_init__(self) -> None:
        if not self.status:
            status = "loaded" if self.error is None else "partial" if self.losses else "failed"
            object.__setattr__(self, "status", status)

    def to_dict(self) -> dict:
        return {"name": self.name, "source": self.source, "losses": list(self.losses),
                "error": self.error, "status": self.status}


def plugins_disabled(environ=os.environ) -> bool:
    """``LOSSREG_DISABLE_PLUGINS`` read like every lossreg switch: 0/off/false/no keep
    plugins on."""
    return flag("LOSSREG_DISABLE_PLUGINS", environ)


def _dist_key(name: str) -> str:
    """Distribution names compare as PEP 503 does: case-, '-'/'_'/'.'-insensitive."""
    return "".join("-" if ch in "_." else ch for ch in str(name).strip().lower())


class Registry:
    """An isolated set of losses with its own ``pluggy.PluginManager``.

    ``Registry()`` loads the built-ins and every installed entry point (unless
    ``LOSSREG_DISABLE_PLUGINS`` is set). ``entry_points=False`` skips entry points,
    ``builtins=False`` skips the built-in losses, ``block`` names entry points (or
    distributions) never to load (as does ``LOSSREG_BLOCK_PLUGINS=a,b``; blocked ones are
    recorded with status "blocked", not as errors), and ``plugins`` are extra plugin
    objects or module names to register (recorded like entry points, never raising).
    Blocking uses pluggy's own (``pm.set_blocked``), so a blocked name never registers on
    ``pm``; the built-in modules are loaded first and cannot be blocked.
    """

    def __init__(self, *, builtins: bool = True, entry_points: bool | None = None,
                 block: Iterable[str] = (), plugins: Iterable[Any] = ()):
        _refuse_reentry("lossreg.Registry()")
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self._specs: dict[str, LossSpec] = {}
        self._index: dict[str, str] = {}        # normalized name/alias -> canonical name
        self._records: list[PluginRecord] = []
        env_block = os.environ.get("LOSSREG_BLOCK_PLUGINS", "")
        if isinstance(block, str):
            block = block.split(",")
        self.blocked = {b.strip() for b in [*block, *env_block.split(",")] if b.strip()}
        self._loaded_eps: set[tuple[str, str, str]] = set()
        if builtins:
            for module in BUILTIN_MODULES:
                self._load(lambda m=module: importlib.import_module(m), module, BUILTIN_SOURCE,
                           strict=True)
        for name in self.blocked:
            if not self.pm.has_plugin(name):    # set_blocked would unregister a built-in
                self.pm.set_blocked(name)
        if entry_points is None:
            entry_points = not plugins_disabled()
        if entry_points:
            self.load_entry_points()
        for plugin in plugins:
            name = plugin if isinstance(plugin, str) else getattr(plugin, "__name__", repr(plugin))
            loader = (lambda p=plugin: importlib.import_module(p)) if isinstance(plugin, str) \
                else (lambda p=plugin: p)
            self._load(loader, name, f"plugin {name}", strict=False)

    # -- loading -----------------------------------------------------------------------
    def load_entry_points(self) -> None:
        """Load every ``lossreg`` entry point not yet loaded or blocked."""
        blocked = {_dist_key(b) for b in self.blocked}
        for ep in sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            dist = getattr(ep, "dist", None)
            dist_name = dist.metadata["Name"] if dist is not None else "?"
            version = dist.version if dist is not None else "?"
            key = (_dist_key(dist_name), ep.name, ep.value)
            if key in self._loaded_eps:   # already loaded (or the same dist found twice)
                continue
            self._loaded_eps.add(key)
            source = f"{dist_name} {version} (entry point {ep.name} = {ep.value})"
            # Entry-point names need only be unique within a distribution; qualify a
            # repeated one so that a second distribution's "losses" is loaded, not skipped.
            qualified = f"{dist_name}:{ep.name}"
            name = ep.name if not self.pm.has_plugin(ep.name) else qualified
            if _dist_key(dist_name) in blocked:
                # Blocked by distribution: block this entry point's qualified name only, so
                # another distribution's entry point of the same name still loads.
                self.pm.set_blocked(qualified)
            if self.pm.is_blocked(ep.name) or self.pm.is_blocked(qualified):
                self._records.append(PluginRecord(ep.name, source, status="blocked"))
                continue
            self._load(ep.load, name, source, strict=False)

    def register_plugin(self, plugin: Any, name: str | None = None,
                        source: str | None = None) -> PluginRecord:
        """Register a plugin object (module or class instance) now; raise on any failure."""
        name = name or getattr(plugin, "__name__", None) or repr(plugin)
        return self._load(lambda: plugin, name, source or f"plugin {name}", strict=True)

    def _load(self, loader: Callable[[], Any], name: str, source: str, strict: bool) -> PluginRecord:
        """Import (``loader``) and register one plugin; every failure is recorded (or, when
        ``strict``, raised as PluginError). SystemExit and other BaseExceptions count as
        failures too; only KeyboardInterrupt goes through: a plugin never stops the host.
        While the plugin's code runs, lookups in a registry are refused (``_refuse_reentry``)."""
        added: list[str] = []
        loading = _Default.loading
        outer = (loading.plugin, loading.reentry)
        loading.plugin, loading.reentry = (name, source), None
        try:
            record = self._register_plugin(loader, name, source, strict, added)
            if loading.reentry is not None:  # refused, and the plugin swallowed the error
                raise PluginError(loading.reentry, source=source)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # noqa: BLE001 - a plugin must never break the registry
            if strict:
                self._forget(added)
                if self.pm.has_plugin(name):
                    self.pm.unregister(name=name)
                if isinstance(exc, PluginError):
                    raise
                raise PluginError(f"plugin {name!r} from {source} failed: "
                                  f"{type(exc).__name__}: {exc}", source=source) from exc
            record = PluginRecord(name, source, tuple(added), f"{type(exc).__name__}: {exc}")
        finally:
            loading.plugin, loading.reentry = outer
        self._records.append(record)
        return record

    def _register_plugin(self, loader: Callable[[], Any], name: str, source: str,
                         strict: bool, added: list[str]) -> PluginRecord:
        """``_load``'s work: import, register on pluggy, call its hook; the record."""
        plugin = loader()
        if self.pm.is_registered(plugin) or self.pm.has_plugin(name):
            raise PluginError(f"plugin {name!r} is already registered", source=source)
        if self.pm.register(plugin, name=name) is None:     # pluggy-blocked name
            return PluginRecord(name, source, status="blocked")
        if not any(i.plugin is plugin for i in self.pm.hook.register_losses.get_hookimpls()):
            raise PluginError(f"plugin {name!r} implements no lossreg hook "
                              f"(mark register_losses with @lossreg.hookimpl)", source=source)
        # Through pluggy's hook caller (wrappers, tracing), restricted to this plugin.
        others = [p for p in self.pm.get_plugins() if p is not plugin]
        errors: list[str] = []
        self.pm.subset_hook_caller("register_losses", remove_plugins=others)(
            register=self._registrar(source, added, errors, strict))
        return PluginRecord(name, source, tuple(added), "; ".join(errors) or None)

    def _registrar(self, source: str, added: list[str], errors: list[str], strict: bool):
        def register(spec: LossSpec) -> None:
            try:
                self.add(spec, source=source)
            except PluginError as exc:
                if strict:
                    raise
                errors.append(str(exc))
                return
            added.append(spec.name)
        return register

    def add(self, spec: LossSpec, source: str = "direct") -> None:
        """Add one spec; PluginError on an invalid spec or a name clash (naming both)."""
        if not isinstance(spec, LossSpec):
            raise PluginError(f"register() expects a lossreg.LossSpec, got {type(spec).__name__}",
                              source=source)
        spec = dataclasses.replace(spec, source=source)     # never mutate the plugin's spec
        spec.validate()
        keys = [normalize(spec.name), *(normalize(a) for a in spec.aliases)]
        for key, label in zip(keys, [spec.name, *spec.aliases]):
            owner = self._index.get(key)
            if owner is not None:
                raise PluginError(
                    f"loss name {label!r} from {source} clashes with {owner!r} from "
                    f"{self._specs[owner].source}", source=source)
        if len(set(keys)) != len(keys):
            raise PluginError(f"loss {spec.name!r} from {source} lists an alias twice", source=source)
        self._specs[spec.name] = spec
        for key in keys:
            self._index[key] = spec.name

    def _forget(self, names: list[str]) -> None:
        for name in names:
            self._specs.pop(name, None)
        self._index = {k: v for k, v in self._index.items() if v not in names}

    # -- lookup ------------------------------------------------------------------------
    def canonical(self, name: str) -> str:
        if not isinstance(name, str):
            raise UnknownLossError(repr(name), [])
        found = self._index.get(normalize(name))
        if found is None:
            options = {**{k: v for k, v in self._index.items()}}
            hits = close_matches(normalize(name), options, n=3)
            suggestions = list(dict.fromkeys(options[h] for h in hits))
            raise UnknownLossError(name, suggestions)
        return found

    def spec(self, name: str) -> LossSpec:
        return self._specs[self.canonical(name)]

    def names(self, family: str | None = None, task: str | None = None) -> list[str]:
        return sorted(n for n, s in self._specs.items()
                      if (family is None or s.family == family) and (task is None or s.task == task))

    def specs(self) -> list[LossSpec]:
        return [self._specs[n] for n in self.names()]

    def __contains__(self, name: str) -> bool:
        return normalize(name) in self._index

    def __len__(self) -> int:
        return len(self._specs)

    @property
    def records(self) -> list[PluginRecord]:
        return list(self._records)

    def errors(self) -> list[PluginRecord]:
        """Plugins that failed (or partly failed) to load, with their errors.

        Blocked plugins are not errors: they are in ``records`` with status "blocked".
        """
        return [r for r in self._records if r.error is not None]

    def verify_kernels(self, names: Iterable[str] | None = None) -> list[PluginRecord]:
        """Compile and run each plugin loss (or ``names``) on a tiny valid input.

        Kernels compile lazily, so a plugin whose kernel does not compile loads fine and
        fails only when called (with a PluginError naming its source). This finds such
        losses up front: each failure is recorded (status "kernel-error", so it shows in
        ``errors()``) and returned; the loss stays registered and other losses are
        unaffected. Compiling takes a few seconds per loss.
        """
        import numpy as np

        from .loss import Loss

        if names is None:
            names = [n for n, s in self._specs.items() if s.source != BUILTIN_SOURCE]
        found = []
        for name in names:
            spec = self.spec(name)
            try:
                t, p = spec.sample(np.random.default_rng(0), 3)
                reduction = "mean" if "mean" in spec.reductions else spec.reductions[0]
                Loss(spec, reduction).value_and_grad(t, p)
            except KeyboardInterrupt:
                raise
            except BaseException as exc:  # noqa: BLE001 - recorded, never raised
                owner = next((r.name for r in self._records if spec.name in r.losses), spec.name)
                error = str(exc) if isinstance(exc, PluginError) else f"{type(exc).__name__}: {exc}"
                record = PluginRecord(owner, spec.source, (spec.name,), error, status="kernel-error")
                self._records.append(record)
                found.append(record)
        return found

    def get(self, name: str, reduction: str = "mean", **kwargs: Any):
        from .loss import Loss

        return Loss(self.spec(name), reduction=reduction, **kwargs)


# -- the default registry ------------------------------------------------------------------

class _Loading(threading.local):
    """The plugin whose code (import or hook) runs now in this thread, as (name,
    source), and the message of a lookup refused meanwhile."""

    plugin: tuple[str, str] | None = None
    reentry: str | None = None


class _Default:
    """Holder of the lazily built default registry and of the per-thread loading state
    (both replaceable in tests)."""

    registry: Registry | None = None
    loading: _Loading = _Loading()


def _refuse_reentry(what: str) -> None:
    """PluginError when a plugin's import or hook looks losses up (``what``): the registry
    it would read is the one being built (re-entered, each lookup built another, nested,
    registry). The refusal is remembered, so the plugin fails even if it catches it."""
    loading = _Default.loading
    if loading.plugin is None:
        return
    name, source = loading.plugin
    message = (f"plugin {name!r} from {source} called {what} while being registered; "
               f"losses cannot be looked up before the registry is built: do it when your "
               f"loss is called, not at import or in register_losses")
    loading.reentry = message
    raise PluginError(message, source=source)


def default_registry() -> Registry:
    """The registry of ``lossreg.get``/``names``/``spec``, built on first use."""
    _refuse_reentry("lossreg.get/names/spec (the default registry)")
    if _Default.registry is None:
        _Default.registry = Registry()
    return _Default.registry


def set_default_registry(registry: Registry | None) -> Registry | None:
    """Replace the default registry (None rebuilds it lazily); returns the old one."""
    old, _Default.registry = _Default.registry, registry
    return old
