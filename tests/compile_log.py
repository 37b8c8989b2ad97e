"""Where the suite's time goes: a log of every Numba compile, per test (opt-in).

``LOSSREG_COMPILE_LOG=DIR python -m pytest ...`` (the root ``conftest.py`` loads this
plugin only then) appends one JSON line per compile to ``DIR/<pid>.jsonl``: the test
(``PYTEST_CURRENT_TEST``), the function (module and qualified name), the argument
types, whether it is a parallel compile, its nesting depth, and its wall and CPU
seconds (inclusive of nested compiles). Cache loads are logged too (``"load": true``)
with their seconds. Subprocesses the tests start log to the same directory: the plugin
puts a ``sitecustomize`` on their ``PYTHONPATH`` that installs the same listener when
lossreg's kernels are first imported. ``python -m tests.compile_log DIR`` summarises.
"""

from __future__ import annotations

import collections
import json
import os
import re
import sys
import tempfile
import threading
import time

ENV = "LOSSREG_COMPILE_LOG"

_SITE = '''
import importlib.abc, importlib.util, sys

class _Hook(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name != "lossreg.kernels._cache":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        run = spec.loader.exec_module

        def exec_module(module):
            run(module)
            sys.path.insert(0, {root!r})
            try:
                from tests.compile_log import install
            finally:
                sys.path.remove({root!r})
            install()
        spec.loader.exec_module = exec_module
        return spec

sys.meta_path.insert(0, _Hook())
'''

_state = threading.local()
_installed = False
_in_pytest = False          # set by pytest_configure: records of other processes say "sub"


def _test() -> str:
    return os.environ.get("PYTEST_CURRENT_TEST", "").rsplit(" (", 1)[0]


def _write(record: dict) -> None:
    directory = os.environ.get(ENV)
    if not directory:
        return
    record.update(pid=os.getpid(), test=_test(), sub=not _in_pytest, t=time.time())
    with open(os.path.join(directory, f"{os.getpid()}.jsonl"), "a") as fh:
        fh.write(json.dumps(record) + "\n")


def _describe(dispatcher) -> tuple[str, bool]:
    func = getattr(dispatcher, "py_func", None)
    name = f"{getattr(func, '__module__', '?')}.{getattr(func, '__qualname__', '?')}"
    parallel = bool((getattr(dispatcher, "targetoptions", None) or {}).get("parallel"))
    return name, parallel


def install() -> None:
    """Log Numba compiles (``numba:compile`` events) and lossreg cache loads."""
    global _installed
    if _installed:
        return
    _installed = True
    from numba.core import event

    from lossreg.kernels import _cache

    class Listener(event.Listener):
        def on_start(self, ev):
            stack = getattr(_state, "stack", None)
            if stack is None:
                stack = _state.stack = []
            stack.append((time.perf_counter(), time.thread_time()))

        def on_end(self, ev):
            t0, c0 = _state.stack.pop()
            data = ev.data or {}
            name, parallel = _describe(data.get("dispatcher"))
            _write({"func": name, "args": str(tuple(data.get("args") or ())),
                    "parallel": parallel, "depth": len(_state.stack),
                    "wall": time.perf_counter() - t0, "cpu": time.thread_time() - c0})

    event.register("numba:compile", Listener())

    load = _cache.KernelCache.load_overload

    def load_overload(self, sig, target_context):
        t0 = time.perf_counter()
        result = load(self, sig, target_context)
        if result is not None:
            _write({"func": f"{self._py_func.__module__}.{self._py_func.__qualname__}",
                    "args": str(sig), "load": True, "wall": time.perf_counter() - t0})
        return result

    _cache.KernelCache.load_overload = load_overload


def pytest_configure(config):
    """Log this process's compiles and make the tests' subprocesses log theirs."""
    global _in_pytest
    _in_pytest = True
    directory = os.environ[ENV]
    os.makedirs(directory, exist_ok=True)
    site = os.path.join(directory, "site")
    os.makedirs(site, exist_ok=True)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with open(os.path.join(site, "sitecustomize.py"), "w") as fh:
        fh.write(_SITE.format(root=root))
    path = os.environ.get("PYTHONPATH", "")
    if site not in path.split(os.pathsep):
        os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (path, site) if p)
    install()


def _short(args: str) -> str:
    return re.sub(r"Array\((\w+), (\d), '(\w)'[^)]*\)", r"\1[\2\3]", args)


def summarise(directory: str, top: int = 40) -> str:
    """Compile counts and seconds per test file, per test and per function."""
    records = []
    for name in os.listdir(directory):
        if name.endswith(".jsonl"):
            with open(os.path.join(directory, name)) as fh:
                records += [json.loads(line) for line in fh]
    comp = [r for r in records if not r.get("load") and r["depth"] == 0]
    loads = [r for r in records if r.get("load")]
    lines = [f"top-level compiles: {len(comp)}, wall {sum(r['wall'] for r in comp):.0f} s, "
             f"cpu {sum(r['cpu'] for r in comp):.0f} s; cache loads: {len(loads)}, "
             f"{sum(r['wall'] for r in loads):.1f} s"]
    sub = [r for r in comp if r.get("sub")]
    lines.append(f"  of which in subprocesses: {len(sub)}, cpu "
                 f"{sum(r['cpu'] for r in sub):.0f} s")

    def table(title, key):
        agg = collections.defaultdict(lambda: [0, 0.0])
        for r in comp:
            a = agg[key(r)]
            a[0] += 1
            a[1] += r["cpu"]
        lines.append(f"\n{title}")
        for k, (n, s) in sorted(agg.items(), key=lambda kv: -kv[1][1])[:top]:
            lines.append(f"{s:8.1f} s {n:5d}  {k}")

    table("per test file", lambda r: r["test"].split("::")[0])
    table("per test", lambda r: r["test"])
    table("per function", lambda r: r["func"])
    table("per function+args", lambda r: (r["func"], _short(r["args"])[:120]))
    return "\n".join(lines)


if __name__ == "__main__":
    print(summarise(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 40))
