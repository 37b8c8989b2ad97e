"""``lossreg cache info | clear | warm``: inspect, empty or pre-fill the compiled-kernel
cache (``lossreg._cachedir`` says where it is; ``warm`` is for images and containers
that should start fast)."""

from __future__ import annotations

import argparse
import json
import re
import shutil
import time

from . import _cachedir

# The key subdirectories lossreg writes (``_cachedir.cache_key``): ``clear`` removes only
# these, never anything else a mistaken LOSSREG_CACHE may point at.
KEY_RE = re.compile(r"^lossreg-[^_/]+_numba-[^_/]+_")
SMALL, LARGE = 100, 100_000      # elements: the serial and the parallel variants


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    sub = parser.add_subparsers(dest="cache_command", required=True, metavar="ACTION")
    p = sub.add_parser("info", help="where the cache is, its state, size and entries",
                       description="Where the compiled-kernel cache is, whether it is "
                                   "used, and its size and entries per lossreg/Numba key.")
    p.add_argument("--json", action="store_true", help="the same as a JSON object")
    sub.add_parser("clear", help="delete the cached kernels (every version's)",
                   description="Delete lossreg's cached kernels, for every lossreg, Numba "
                               "and Python version (only lossreg's own subdirectories).")
    p = sub.add_parser("warm", help="compile and cache the kernels of the common calls",
                       description="Compile and cache the kernels a first call needs "
                                   f"(value and value_and_grad, at {SMALL} and {LARGE} "
                                   "elements) for the given losses, or all of them.")
    p.add_argument("names", nargs="*", metavar="NAME", help="losses (default: every one)")
    p.add_argument("--dtype", action="append", choices=("float64", "float32"),
                   help="dtype to compile for (repeatable; default: both)")
    p.add_argument("--hessian", action="store_true",
                   help="also grad_hess (gradient boosting, Newton steps) for the losses "
                        "that have a Hessian")
    return parser


def run(args: argparse.Namespace) -> int:
    return {"info": _info, "clear": _clear, "warm": _warm}[args.cache_command](args)


def info() -> dict:
    """The cache's location, key, state and per-key sizes."""
    from .kernels._cache import STATE, CacheState

    state = CacheState(STATE.environ)    # a fresh look (warnings go into the record)
    root = state.root()
    data: dict = {"directory": str(root) if root else None, "key": state.key()}
    if root is None:
        data.update(state="off", reason=state.reason or f"disabled by {_cachedir.ENV}")
    else:
        problem = next((_cachedir.trust_problem(path) for path in (root, root / data["key"])
                        if path.exists() and _cachedir.trust_problem(path)), None)
        if problem:
            data.update(state="refused", reason=problem)
        else:
            data.update(state="on", reason=None)
    keys = _cachedir.scan(root) if root else {}
    current = keys.get(data["key"], {"entries": 0, "bytes": 0})
    data.update(entries=current["entries"], bytes=current["bytes"],
                total_bytes=sum(k["bytes"] for k in keys.values()),
                other_keys=sorted(k for k in keys if k != data["key"]))
    return data


def _info(args: argparse.Namespace) -> int:
    data = info()
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    print(f"directory: {data['directory'] or '-'}")
    print(f"state:     {data['state']}" + (f" ({data['reason']})" if data["reason"] else ""))
    print(f"key:       {data['key']}")
    print(f"entries:   {data['entries']} compiled functions, {_size(data['bytes'])}")
    if data["other_keys"]:
        print(f"other:     {len(data['other_keys'])} other versions' entries, "
              f"{_size(data['total_bytes'] - data['bytes'])} (`lossreg cache clear`)")
    return 0


def _clear(args: argparse.Namespace) -> int:
    root = _cachedir.configured_root()
    if root is None:
        print(f"the kernel cache is off ({_cachedir.ENV}); nothing to clear")
        return 0
    removed = freed = 0
    for key, stats in _cachedir.scan(root).items():
        if KEY_RE.match(key):
            shutil.rmtree(root / key)
            removed += stats["entries"]
            freed += stats["bytes"]
    print(f"removed {removed} compiled functions ({_size(freed)}) from {root}")
    return 0


def _warm(args: argparse.Namespace) -> int:
    import numpy as np

    import lossreg
    from ._progress import Progress
    from .errors import LossError
    from .kernels._cache import STATE

    if STATE.directory() is None:
        raise LossError(f"the kernel cache is not in use ({STATE.reason}); "
                        "nothing would be kept")
    names = [lossreg.spec(n).name for n in args.names] or lossreg.names()
    dtypes = args.dtype or ["float64", "float32"]
    start = time.perf_counter()
    _cachedir.NOTICE_STREAM = None                # the bar says it
    with Progress(len(names) * len(dtypes), "compiling") as bar:
        for name in names:
            for dtype in dtypes:
                bar.set_label(f"{name} ({dtype})")
                loss = lossreg.get(name)
                for n in (SMALL, LARGE):
                    t, p = _inputs(lossreg.spec(name), n, np.dtype(dtype))
                    loss(t, p)
                    loss.value_and_grad(t, p)
                    if args.hessian and loss.spec.has_hessian:
                        loss.grad_hess(t, p)
                bar.update(f"{name} ({dtype})")
    print(f"warmed {len(names)} losses x {len(dtypes)} dtypes"
          f"{' (with grad_hess)' if args.hessian else ''} in "
          f"{time.perf_counter() - start:.1f} s into {STATE.directory()}")
    return 0


def _inputs(spec, n: int, dtype):
    """Valid inputs with about ``n`` elements (rows losses: n // classes rows; label
    targets when the loss takes them)."""
    import numpy as np

    rng = np.random.default_rng(0)
    if spec.layout == "rows":
        _, probe = spec.sample(rng, 2, dtype)
        t, p = spec.sample(rng, max(1, n // probe.shape[-1]), dtype)
        if spec.takes_labels and t.shape == p.shape:
            t = np.argmax(t, axis=-1).astype(np.int64)
        return t, p
    return spec.sample(rng, n, dtype)


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"
