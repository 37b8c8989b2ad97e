"""lossreg's on-disk cache of compiled kernels, plugged into Numba per dispatcher.

``attach(dispatcher)`` gives a lossreg kernel (built-in or plugin, through
``lossreg.kernels.njit``) a ``KernelCache`` instead of Numba's ``FunctionCache``. It uses
its own cache locator, always pointing into lossreg's directory (``lossreg._cachedir``),
so ``LOSSREG_CACHE`` wins over ``NUMBA_CACHE_DIR`` for lossreg's kernels and lossreg
never changes ``NUMBA_CACHE_DIR`` (or any Numba setting) for the user's own code.

Nothing is read or created until a kernel first compiles: ``CacheState.directory()``
then resolves the directory once per process, creates it 0700 and checks that it can be
trusted. Whatever goes wrong on disk (an untrusted, read-only or full directory, a
corrupt, empty, truncated or garbled index or data file) the kernel compiles in memory
as if there were no cache, with one ``CacheWarning`` per kind of problem and process;
a corrupt entry is dropped so that the fresh compile rewrites it.
"""

from __future__ import annotations

import hashlib
import inspect
import logging
import os
import pathlib
import sys
import tempfile
import threading
import warnings
from typing import Any, Mapping

import numba
from numba.core.caching import (CompileResultCacheImpl, FunctionCache, IndexDataCacheFile,
                                _Cache, _CacheLocator, _SourceFileBackedLocatorMixin)

from .. import _cachedir
from ..errors import CacheWarning


class CacheState:
    """One process's view of the cache directory: resolved on first use, replaceable in
    tests (``STATE.reset(environ)``), and the record of warnings already given."""

    def __init__(self, environ: Mapping[str, str] | None = None):
        self.reset(environ)

    def reset(self, environ: Mapping[str, str] | None = None) -> None:
        self._environ = environ
        self._lock = threading.RLock()
        self._resolved = False
        self._directory: pathlib.Path | None = None
        self.writable = True
        self.warned: set[str] = set()
        self.reason: str | None = None     # why the cache is off, for `lossreg cache info`

    @property
    def environ(self) -> Mapping[str, str]:
        return os.environ if self._environ is None else self._environ

    def root(self) -> pathlib.Path | None:
        return _cachedir.configured_root(self.environ)

    def key(self) -> str:
        return _cachedir.cache_key(numba.__version__)

    def directory(self) -> pathlib.Path | None:
        """The key directory to load from and save to, or None (compile in memory)."""
        with self._lock:
            if not self._resolved:
                self._directory = self._resolve()
                self._resolved = True
            return self._directory

    def _resolve(self) -> pathlib.Path | None:
        root = self.root()
        if root is None:
            self.reason = f"disabled by {_cachedir.ENV}"
            return None
        directory = root / self.key()
        try:
            _cachedir.make_private_dir(root)
        except OSError as exc:
            return self._refuse("create", f"cannot create {root} ({exc.strerror or exc})")
        for path in (root, directory):
            if path.exists():
                problem = _cachedir.trust_problem(path)
                if problem:
                    return self._refuse("trust", f"refusing to load compiled kernels from an "
                                                 f"untrusted directory: {problem}")
        try:
            _cachedir.make_private_dir(directory)
        except OSError:            # a read-only root: the first save warns, loads still work
            pass
        return directory

    def _refuse(self, kind: str, message: str) -> None:
        self.reason = message
        self.warn(kind, f"{message}; compiling kernels in memory")
        return None

    def warn(self, kind: str, message: str) -> None:
        """A ``CacheWarning`` unless one of this kind was given already in this process."""
        with self._lock:
            if kind in self.warned:
                return
            self.warned.add(kind)
        warnings.warn(f"lossreg kernel cache: {message}", CacheWarning, stacklevel=2)


STATE = CacheState()
LOG = logging.getLogger("lossreg.kernels")


class CompileNotice:
    """Says once per process that kernels are being compiled, when a compile is still
    running ``delay`` seconds after it started: on the ``lossreg.kernels`` logger (INFO)
    always, and as one line on ``_cachedir.NOTICE_STREAM`` when it is set (the CLI sets
    stderr when a person is watching: ``lossreg._progress.enabled``)."""

    def __init__(self, delay: float = 1.0):
        self.delay = delay
        self.given = False
        self._depth = 0
        self._timer: threading.Timer | None = None
        self._what = ""
        self._lock = threading.Lock()

    def begin(self, what: str) -> None:
        with self._lock:
            self._depth += 1
            if self.given or self._timer is not None:
                return
            self._what = what
            self._timer = threading.Timer(self.delay, self._say)
            self._timer.daemon = True
            self._timer.start()

    def end(self) -> None:
        with self._lock:
            self._depth = max(0, self._depth - 1)
            if self._depth == 0 and self._timer is not None:
                self._timer.cancel()
                self._timer = None

    def _say(self) -> None:
        with self._lock:
            if self.given or self._depth == 0:
                return
            self.given = True
            text = (f"compiling kernels ({self._what}) on first use; "
                    f"{'cached for next time' if STATE.directory() else 'not cached'}")
        LOG.info(text)
        stream = _cachedir.NOTICE_STREAM
        if stream is not None:
            try:
                stream.write(f"lossreg: {text}\u2026\n")
                stream.flush()
            except (OSError, ValueError):
                pass


NOTICE = CompileNotice()


class _Locator(_SourceFileBackedLocatorMixin, _CacheLocator):
    """Numba cache locator for lossreg kernels: always inside lossreg's key directory,
    one subdirectory per source folder (Numba's own naming); new folders are 0700."""

    def __init__(self, py_func, py_file: str, directory: pathlib.Path):
        self._py_file = py_file
        self._lineno = py_func.__code__.co_firstlineno
        self._cache_path = str(directory / self.get_suitable_cache_subpath(py_file))

    def get_cache_path(self) -> str:
        return self._cache_path

    def ensure_cache_path(self) -> None:
        os.makedirs(self._cache_path, mode=0o700, exist_ok=True)
        tempfile.TemporaryFile(dir=self._cache_path).close()


class _Impl(CompileResultCacheImpl):
    """Numba's CompileResult pickling with ``_Locator``, whatever Numba's locator settings
    (``NUMBA_CACHE_DIR``, ``NUMBA_CACHE_LOCATOR_CLASSES``) say; ``flavour`` tells apart
    dispatchers of one Python function compiled with different options (a parallel
    kernel and its serial twin)."""

    def __init__(self, py_func, directory: pathlib.Path, flavour: str):
        self._lineno = py_func.__code__.co_firstlineno
        qualname = getattr(py_func, "__qualname__", py_func.__name__)
        source = inspect.getfile(py_func)
        if not os.path.isfile(source):
            raise OSError(f"no source file for {qualname} ({source})")
        self._locator = _Locator(py_func, source, directory)
        modname = os.path.splitext(os.path.basename(source))[0]
        self._filename_base = self.get_filename_base(f"{modname}.{qualname}-{flavour}",
                                                     getattr(sys, "abiflags", ""))


class _Files(FunctionCache):
    """Numba's index/data files of one function in lossreg's directory."""

    def __init__(self, py_func, directory: pathlib.Path, flavour: str):
        self._name = repr(py_func)
        self._py_func = py_func
        self._impl = _Impl(py_func, directory, flavour)
        self._cache_path = self._impl.locator.get_cache_path()
        self._cache_file = IndexDataCacheFile(cache_path=self._cache_path,
                                              filename_base=self._impl.filename_base,
                                              source_stamp=self._impl.locator.get_source_stamp())
        self.enable()

    @property
    def index_path(self) -> str:
        return self._cache_file._index_path

    def index_is_readable(self) -> bool:
        try:
            self._cache_file._load_index()
        except FileNotFoundError:
            return True
        except Exception:
            return False
        return True

    def drop_index(self) -> None:
        try:
            os.unlink(self.index_path)
        except OSError:
            pass


class KernelCache(_Cache):
    """The cache of one lossreg dispatcher: Numba's files in lossreg's directory, made
    on first use, and never an exception from the disk (see the module docstring)."""

    def __init__(self, py_func, flavour: str, state: CacheState | None = None):
        self._py_func = py_func
        self._flavour = flavour
        self._state = state
        self._files: _Files | None = None
        self._enabled = True

    @property
    def state(self) -> CacheState:
        return STATE if self._state is None else self._state

    def _get(self) -> _Files | None:
        if not self._enabled:
            return None
        if self._files is None:
            directory = self.state.directory()
            if directory is None:
                return None
            try:
                self._files = _Files(self._py_func, directory, self._flavour)
            except OSError:                # no source file (generated code): not cachable
                self._enabled = False
                return None
        return self._files

    @property
    def cache_path(self) -> str | None:
        files = self._get()
        return files.cache_path if files else None

    def enable(self) -> None:
        self._enabled = True

    def disable(self) -> None:
        self._enabled = False

    def flush(self) -> None:
        files = self._get()
        if files and self.state.writable:
            try:
                files.flush()
            except OSError:
                pass

    def load_overload(self, sig, target_context):
        """The cached compile of ``sig``, or None: Numba then compiles and calls
        ``save_overload`` (which ends the ``NOTICE`` begun here)."""
        files = self._get()
        loaded = None if files is None else self._load(files, sig, target_context)
        if loaded is None:
            NOTICE.begin(_describe(self._py_func, sig))
        return loaded

    def _load(self, files: _Files, sig, target_context):
        try:
            return files.load_overload(sig, target_context)
        except Exception as exc:          # noqa: BLE001 - any unreadable entry: recompile
            if not files.index_is_readable():
                files.drop_index()        # the fresh compile writes a new one
            self.state.warn("corrupt", f"ignoring an unreadable entry "
                                       f"{os.path.basename(files.index_path)} "
                                       f"({type(exc).__name__}: {_short(exc)}); recompiling "
                                       f"and rewriting it (further unreadable entries are "
                                       f"rewritten without a warning)")
            return None

    def save_overload(self, sig, data) -> None:
        NOTICE.end()
        files = self._get()
        if files is None or not self.state.writable:
            return
        for attempt in (0, 1):
            try:
                files.save_overload(sig, data)
                return
            except OSError as exc:
                self.state.writable = False
                self.state.warn("write", f"cannot write to {files.cache_path} "
                                         f"({exc.strerror or exc}); compiled kernels are "
                                         f"kept in memory only")
                return
            except Exception:             # noqa: BLE001 - an index corrupted meanwhile
                files.drop_index()
                if attempt:
                    return


def _describe(py_func, sig) -> str:
    """``huber_elem, float64`` from a (generated) kernel's name and its signature."""
    name = getattr(py_func, "__name__", "kernel").split("__")[0]
    dtypes = [str(getattr(a, "dtype", "")) for a in getattr(sig, "args", sig or ())]
    dtype = next((d for d in dtypes if d.startswith("float")), "")
    return f"{name}, {dtype}" if dtype else name


def _short(exc: BaseException, limit: int = 80) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def flavour(dispatcher) -> str:
    """A short digest of what, besides the Python function, shapes the compiled code."""
    options = getattr(dispatcher, "targetoptions", {}) or {}
    text = type(dispatcher).__name__ + repr(sorted((k, repr(v)) for k, v in options.items()))
    return hashlib.sha1(text.encode()).hexdigest()[:8]


def attach(dispatcher, state: CacheState | None = None) -> Any:
    """Give a Numba dispatcher lossreg's on-disk cache (replacing Numba's own); returns
    it. Objects without a Python function (already compiled, C callbacks) pass through."""
    py_func = getattr(dispatcher, "py_func", None)
    if py_func is None or not hasattr(dispatcher, "_cache"):
        return dispatcher
    dispatcher._cache = KernelCache(py_func, flavour(dispatcher), state)
    return dispatcher
