"""``lossreg bench``: lossreg against NumPy, PyTorch, scikit-learn and memory bandwidth.

For every selected loss, size N (elements of ``y_pred``) and dtype, times the value,
the gradient and the fused value-and-gradient (best of several runs, gradient buffers
preallocated with ``out=``) and compares, in the same run, with

* a NumPy implementation (``spec.reference`` for values, closed-form gradients),
* PyTorch CPU forward (+ backward) and scikit-learn's private ``_loss`` module where
  they have the loss (skipped when not installed); these counterparts are the table
  ``lossreg.peers.PEERS``, which the tests check against lossreg,
* a memory-bandwidth ceiling: the bytes the call must move (read ``y_true`` and
  ``y_pred``; write the gradient) divided by the bandwidth of a parallel
  ``out[i] = a[i] + b[i]`` measured at the same N and dtype.

Then it measures the per-call overhead at N = 10 against a bare njit call, ``import
lossreg`` in a subprocess, first-call compile times cold and with ``LOSSREG_CACHE`` in a
new process, the serial/parallel crossover, thread-count determinism and, when xgboost
is installed, the boosting objectives (``lossreg.xgboost``) against NumPy objectives at
1e6 and 1e6 x 10 and against one XGBoost round; prints a table of ratios and one
PASS/FAIL line per target of issues 8 and 15; with ``-o DIR`` writes ``DIR/latest.json``
and ``DIR/latest.png`` (nothing is written unless asked); ``--check`` exits 1 when a
target FAILs.

Times are wall-clock on a shared machine: read the ratios of one run together.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from . import peers

SIZES = (10, 1_000, 100_000, 10_000_000)
QUICK_SIZES = (10, 100_000)
QUICK_LOSSES = ("mse", "huber")
DTYPES = ("float64", "float32")
OPS = ("value", "grad", "value_and_grad")
#: File names ``-o DIR`` writes (``benchmarks/run.py`` passes ``-o benchmarks/results``).
JSON_NAME = "latest.json"
PLOT_NAME = "latest.png"

# Targets of issue 8 (the benchmark prints PASS/FAIL; unit tests never time anything).
CEILING_TARGET = 0.9          # fused value_and_grad mse/huber at 1e7 float64
TORCH_TARGET = 2.0            # speed-up over PyTorch forward+backward at 1e7
SKLEARN_TARGET = 1.5          # speed-up over sklearn _loss loss_gradient at 1e7
VALIDATE_TARGET = 1.1         # validated / unvalidated time at 1e7 float64
OVERHEAD_TARGET = 3e-6        # seconds over a bare njit call at N = 10
IMPORT_TARGET = 0.3           # seconds for `import lossreg`
COLD_TARGET = 1.0             # seconds per kernel, first call, no cache
CACHED_TARGET = 0.05          # seconds, first call in a new process with LOSSREG_CACHE
# Targets of issue 15 (boosting objectives; measured only when xgboost is installed).
GBDT_SPEEDUP_TARGET = 5.0     # objective call vs the NumPy objective, at 1e6 and 1e6 x 10
GBDT_SHARE_TARGET = 0.10      # objective / one XGBoost round at 1e6 rows, default trees


# -- helpers -------------------------------------------------------------------------------

class Progress:
    """A one-line progress bar on stderr (plain lines when stderr is not a terminal)."""

    def __init__(self, total: int, enabled: bool = True):
        self.total, self.done, self.enabled = max(total, 1), 0, enabled
        self.tty = sys.stderr.isatty()

    def step(self, label: str) -> None:
        self.done += 1
        if not self.enabled:
            return
        width = 30
        filled = int(width * self.done / self.total)
        bar = "#" * filled + "." * (width - filled)
        text = f"[{bar}] {self.done}/{self.total} {label}"
        if self.tty:
            sys.stderr.write("\r" + text[:100].ljust(100))
            if self.done >= self.total:
                sys.stderr.write("\n")
        else:
            sys.stderr.write(text + "\n")
        sys.stderr.flush()


def best_time(fn: Callable[[], Any], budget: float) -> float:
    """Best seconds per call of ``fn`` over about ``budget`` seconds (at least 3 runs)."""
    t0 = time.perf_counter()
    fn()  # warm-up (compiles)
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    fn()
    one = max(time.perf_counter() - t0, 1e-9)
    number = max(1, min(20_000, int(2e-4 / one)))  # batch tiny calls: timer resolution
    least = 2 if one > 0.05 else 3                   # slow calls (N = 1e7): best of 2
    best, spent, runs = (one if number == 1 else math.inf), 0.0, 0
    while runs < least or (spent < budget and runs < 200):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        dt = time.perf_counter() - t0
        best = min(best, dt / number)
        spent += dt
        runs += 1
    del first
    return best


def _fmt_n(n: int) -> str:
    e = int(round(math.log10(n))) if n > 0 else 0
    return f"1e{e}" if 10 ** e == n else str(n)


def _fmt_t(t: float | None) -> str:
    if t is None:
        return "-"
    if t < 1e-3:
        return f"{t * 1e6:.2f}us"
    if t < 1:
        return f"{t * 1e3:.2f}ms"
    return f"{t:.2f}s"


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b <= 0 else a / b


def builtin_names() -> list[str]:
    import lossreg
    from .registry import BUILTIN_SOURCE

    return [n for n in lossreg.names() if lossreg.spec(n).source == BUILTIN_SOURCE]


# -- inputs ----------------------------------------------------------------------------------

def make_inputs(name: str, n: int, dtype: str, seed: int = 0):
    """Valid inputs with about ``n`` elements of y_pred; rows losses get n // C rows.

    softmax_cross_entropy gets integer class labels (what PyTorch and sklearn take).
    """
    import lossreg

    spec = lossreg.spec(name)
    rng = np.random.default_rng(seed)
    if spec.layout == "rows":
        probe_t, probe_p = spec.sample(rng, 2, np.dtype(dtype))
        rows = max(1, n // probe_p.shape[-1])
        t, p = spec.sample(rng, rows, np.dtype(dtype))
        if spec.takes_labels and t.shape == p.shape:
            t = np.argmax(t, axis=-1).astype(np.int64)
    else:
        t, p = spec.sample(rng, n, np.dtype(dtype))
    return np.ascontiguousarray(t), np.ascontiguousarray(p)


# -- NumPy, PyTorch and scikit-learn (the counterparts are lossreg.peers.PEERS) ---------------

def numpy_impl(name: str, t, p, hp: dict) -> dict[str, Callable]:
    import lossreg

    spec = lossreg.spec(name)
    grad_fn = peers.peer(name).numpy_grad

    def value():
        return peers.numpy_value(spec, t, p, hp)

    impl = {"value": value}
    if grad_fn is not None and grad_fn(t, p, **hp) is not None:
        impl["grad"] = lambda: grad_fn(t, p, **hp)
        impl["value_and_grad"] = lambda: (value(), grad_fn(t, p, **hp))
    return impl


def torch_impl(name: str, t, p, hp: dict, n_threads: int) -> dict[str, Callable] | None:
    """PyTorch forward (+ backward) where PyTorch ships the loss (``Peer.torch_native``)."""
    entry = peers.peer(name)
    if entry.torch is None or not entry.torch_native(**hp):
        return None
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(n_threads)
    tt = torch.from_numpy(t)
    pp = torch.from_numpy(p.copy()).requires_grad_(True)

    def f():
        return (entry.torch_fast or entry.torch)(tt, pp, "mean", **hp)

    def value():
        with torch.no_grad():
            return float(f())

    def forward_backward():
        out = f()
        (g,) = torch.autograd.grad(out, pp)
        return float(out.detach()), g

    return {"value": value, "grad": forward_backward, "value_and_grad": forward_backward}


def torch_function_floor(n: int, dtype=np.float64) -> Callable | None:
    """torch's own cost for any custom ``torch.autograd.Function``: forward+backward, timed
    as ``torch_bridge_impl`` times the bridge, of a Function that does no work (returns a
    ready value and gradient). The bridge's overhead is reported over this floor plus the
    bare lossreg call. None without PyTorch."""
    try:
        import torch
    except ImportError:
        return None
    value = torch.from_numpy(np.asarray(1.0, dtype))
    gradient = torch.zeros(n, dtype=torch.from_numpy(np.zeros(0, dtype)).dtype)

    class Empty(torch.autograd.Function):
        @staticmethod
        def forward(ctx, y_pred, y_true, sample_weight, loss):
            ctx.save_for_backward(y_pred, y_true)
            return value.clone()

        @staticmethod
        def backward(ctx, grad_output):
            ctx.saved_tensors
            return gradient, None, None, None

    tt = torch.zeros(n, dtype=gradient.dtype)
    pp = torch.zeros(n, dtype=gradient.dtype, requires_grad=True)

    def forward_backward():
        out = Empty.apply(pp, tt, None, None)
        (g,) = torch.autograd.grad(out, pp)
        return float(out.detach()), g
    return forward_backward


class _StubLoss:
    """Stands in for a lossreg loss inside the torch bridge and returns ready results, so
    that timing the bridge around it measures the bridge's own work alone."""

    reduction = "mean"

    def __init__(self, n: int):
        self.gradient = np.zeros(n)

    def value_and_grad(self, y_true, y_pred, sample_weight=None):
        return 1.0, self.gradient

    def __call__(self, y_true, y_pred, sample_weight=None):
        return 1.0


def torch_bridge_stub(n: int) -> Callable | None:
    """Forward+backward through ``lossreg.torch.Loss`` (module, conversions, checks,
    autograd.Function) around a loss that does no work: the bridge's own cost per call
    (including torch's floor for a custom Function, ``torch_function_floor``). None
    without PyTorch."""
    try:
        import torch

        from . import torch as bridge
    except ImportError:
        return None
    criterion = bridge.Loss("mse")
    criterion.loss = _StubLoss(n)
    tt = torch.zeros(n, dtype=torch.float64)
    pp = torch.zeros(n, dtype=torch.float64, requires_grad=True)

    def forward_backward():
        out = criterion(tt, pp)
        (g,) = torch.autograd.grad(out, pp)
        return float(out.detach()), g
    return forward_backward


def torch_bridge_impl(name: str, t, p, hp: dict, n_threads: int) -> Callable | None:
    """Forward+backward of the loss through ``lossreg.torch.Loss`` (issue 16's bridge):
    the bridge's conversions and autograd plumbing around lossreg's fused pass. None
    without PyTorch."""
    try:
        import torch

        from . import torch as bridge
    except ImportError:
        return None
    torch.set_num_threads(n_threads)
    criterion = bridge.Loss(name, **hp)
    tt = torch.from_numpy(t)
    pp = torch.from_numpy(p.copy()).requires_grad_(True)

    def forward_backward():          # as torch_impl's: value as a float, gradient tensor
        out = criterion(tt, pp)
        (g,) = torch.autograd.grad(out, pp)
        return float(out.detach()), g
    return forward_backward


BRIDGE_TARGET = 2.0           # through lossreg.torch: speed-up over torch fwd+bwd at 1e7
BRIDGE_LOSSES = ("mse", "huber", "binary_cross_entropy_with_logits", "softmax_cross_entropy")
# seconds the torch bridge adds per fwd+bwd at N = 10, measured around a stub loss and over
# torch's floor for any custom autograd.Function (torch_function_floor: ~20 us here, above
# the 10 us target on its own, so no Function-based bridge could meet it counted in)
BRIDGE_OVERHEAD_TARGET = 10e-6


def sklearn_impl(name: str, t, p, hp: dict, n_threads: int) -> dict[str, Callable] | None:
    factory = peers.peer(name).sklearn
    if factory is None:
        return None
    try:
        obj = factory(t, p, **hp)
    except ImportError:
        return None
    if obj is None:
        return None
    yt = t.astype(p.dtype) if t.dtype.kind != "f" else t
    loss_out = np.empty(p.shape[0], dtype=p.dtype)
    grad_out = np.empty_like(p)

    def value():
        return float(np.mean(obj.loss(yt, p, loss_out=loss_out, n_threads=n_threads)))

    def grad():
        return obj.gradient(yt, p, gradient_out=grad_out, n_threads=n_threads)

    def value_and_grad():
        lo, g = obj.loss_gradient(yt, p, loss_out=loss_out, gradient_out=grad_out,
                                  n_threads=n_threads)
        return float(np.mean(lo)), g

    try:
        value_and_grad()
    except Exception:  # noqa: BLE001 - a dtype/shape sklearn does not take: skip it
        return None
    return {"value": value, "grad": grad, "value_and_grad": value_and_grad}


# -- bandwidth ceiling -------------------------------------------------------------------------

_COPY: dict = {}


def _copy_kernels():
    if not _COPY:
        from numba import prange

        from .kernels import njit

        def copy_add(a, b, out):
            for i in prange(a.shape[0]):
                out[i] = a[i] + b[i]

        _COPY["parallel"] = njit(parallel=True)(copy_add)
        _COPY["serial"] = njit(copy_add)
    return _COPY


def bandwidth(n: int, dtype: str, budget: float) -> float:
    """Bytes per second of ``out[i] = a[i] + b[i]`` (3 arrays moved), best of serial and
    parallel (the serial loop wins below the parallel launch cost)."""
    k = _copy_kernels()
    a = np.random.default_rng(1).random(n).astype(dtype)
    b = a[::-1].copy()
    out = np.empty_like(a)
    t = min(best_time(lambda: k["parallel"](a, b, out), budget),
            best_time(lambda: k["serial"](a, b, out), budget))
    return 3 * a.nbytes / t


def bytes_moved(op: str, t: np.ndarray, p: np.ndarray) -> int:
    """Bytes a call must read and write at least: both inputs, plus the gradient."""
    return t.nbytes + p.nbytes + (p.nbytes if op != "value" else 0)


# OpenMP worker threads (Numba's omp layer, PyTorch's and sklearn's own libgomp) spin for
# a few milliseconds after a parallel region; on 2 cores a spinning pool of one library
# halves the next library's speed. A short pause between libraries keeps them apart.
_SETTLE = 0.03


# -- one loss -------------------------------------------------------------------------------------

def bench_case(name: str, n: int, dtype: str, budget: float, bw: float,
               comparators: set[str], n_threads: int) -> dict:
    import lossreg

    spec = lossreg.spec(name)
    loss = lossreg.get(name)
    hp = loss.hyperparameters
    t, p = make_inputs(name, n, dtype)
    g = np.empty_like(p)
    time.sleep(_SETTLE)  # let OpenMP pools of the previous library stop spinning
    ours = {
        "value": lambda: loss(t, p),
        "grad": lambda: loss.grad(t, p, out=g),
        "value_and_grad": lambda: loss.value_and_grad(t, p, out=g),
    }
    row: dict[str, Any] = {"loss": name, "n": int(p.size), "dtype": dtype, "shape": list(p.shape),
                           "layout": spec.layout, "lossreg": {}, "numpy": {}, "torch": {},
                           "sklearn": {}, "ceiling": {}, "torch_bridge": {}}
    for op, fn in ours.items():
        row["lossreg"][op] = best_time(fn, budget)
        row["ceiling"][op] = bytes_moved(op, t, p) / bw
    row["lossreg"]["value_and_grad_unvalidated"] = best_time(
        lambda: loss.value_and_grad(t, p, out=g, validate=False), budget)
    others = {"numpy": numpy_impl(name, t, p, hp)}
    if "torch" in comparators:
        others["torch"] = torch_impl(name, t, p, hp, n_threads)
    if "sklearn" in comparators:
        others["sklearn"] = sklearn_impl(name, t, p, hp, n_threads)
    bridge = torch_bridge_impl(name, t, p, hp, n_threads) if "torch" in comparators else None
    if bridge is not None:
        time.sleep(_SETTLE)
        row["torch_bridge"]["value_and_grad"] = best_time(bridge, budget)
    for lib, impl in others.items():
        time.sleep(_SETTLE)
        for op, fn in (impl or {}).items():
            if lib == "torch" and op == "grad":
                continue  # the same forward+backward as value_and_grad
            if lib == "numpy" and op == "value_and_grad":
                continue  # NumPy has no fused pass: value time + gradient time
            row[lib][op] = best_time(fn, budget)
        if "value_and_grad" in row["torch"]:
            row["torch"]["grad"] = row["torch"]["value_and_grad"]
        if "grad" in row["numpy"]:
            row["numpy"]["value_and_grad"] = row["numpy"]["value"] + row["numpy"]["grad"]
    return row


def ratios(row: dict) -> dict:
    """Speed-ups (other time / lossreg time) and fraction of the bandwidth ceiling."""
    out = {}
    for op in OPS:
        ours = row["lossreg"].get(op)
        out[op] = {
            "ceiling": _ratio(row["ceiling"].get(op), ours),
            "numpy": _ratio(row["numpy"].get(op), ours),
            "torch": _ratio(row["torch"].get(op), ours),
            "sklearn": _ratio(row["sklearn"].get(op), ours),
        }
    out["validated_over_unvalidated"] = _ratio(row["lossreg"].get("value_and_grad"),
                                               row["lossreg"].get("value_and_grad_unvalidated"))
    through = row.get("torch_bridge", {}).get("value_and_grad")
    out["torch_bridge"] = {"over_bare": _ratio(through, row["lossreg"].get("value_and_grad")),
                           "torch_speedup": _ratio(row["torch"].get("value_and_grad"), through)}
    return out


# -- overhead, import, compile, cache, threads ---------------------------------------------------

def overhead(budget: float) -> dict:
    """Seconds per call at N = 10 for lossreg entry points and a bare njit MSE."""
    import lossreg

    from .kernels import njit

    @njit
    def bare(a, b):
        s = 0.0
        for i in range(a.shape[0]):
            r = b[i] - a[i]
            s += r * r
        return s / a.shape[0]

    a = np.random.default_rng(0).random(10)
    b = np.random.default_rng(1).random(10)
    res = {"bare_njit": best_time(lambda: bare(a, b), budget)}
    for name in ("mse", "huber"):
        loss = lossreg.get(name)
        res[f"{name}.value"] = best_time(lambda: loss(a, b), budget)
        res[f"{name}.grad"] = best_time(lambda: loss.grad(a, b), budget)
        res[f"{name}.value_and_grad"] = best_time(lambda: loss.value_and_grad(a, b), budget)
        res[f"{name}.grad_hess"] = best_time(lambda: loss.grad_hess(a, b), budget)
        ones = np.ones_like(a)
        res[f"{name}.value_and_grad(general path)"] = best_time(   # weights: dispatch.prepare
            lambda: loss.value_and_grad(a, b, sample_weight=ones), budget)
    bridge = torch_bridge_impl("mse", a, b, {}, 1)
    if bridge is not None:            # keys without a dot: not lossreg entry points
        res["lossreg torch bridge fwd+bwd (mse)"] = best_time(bridge, budget)
        res["torch empty autograd Function fwd+bwd"] = best_time(torch_function_floor(10),
                                                                  budget)
        res["lossreg torch bridge fwd+bwd around a stub loss"] = best_time(
            torch_bridge_stub(10), budget)
        res["torch fwd+bwd (mse)"] = best_time(torch_impl("mse", a, b, {}, 1)["value_and_grad"],
                                               budget)
    return res


def _py(code: str, env: dict | None = None, timeout: float = 300) -> str:
    full = dict(os.environ)
    full.update(env or {})
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=full, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"subprocess failed: {proc.stderr.strip()[-800:]}")
    return proc.stdout


_IMPORT_CODE = """
import sys, time
t0 = time.perf_counter()
import lossreg
dt = time.perf_counter() - t0
print(dt, int('numba' in sys.modules))
"""

_FIRST_CALL_CODE = """
import json, time
import numpy as np
t0 = time.perf_counter()
import lossreg
loss = lossreg.get({name!r})
t1 = time.perf_counter()
res = {{"import_and_get": t1 - t0}}
if {init!r}:
    # Numba's one-time lazy set-up of its CPU target (registries; imports scipy for BLAS
    # when installed), paid by the first compile or cache load of any function.
    from numba.core.registry import cpu_target
    cpu_target.target_context.refresh()
    res["numba_init"] = time.perf_counter() - t1
for label, n in (("serial", 10), ("parallel", 100_000)):
    t = np.random.default_rng(0).random(n)
    p = np.random.default_rng(1).random(n)
    t0 = time.perf_counter()
    loss.value_and_grad(t, p)
    res["first_" + label] = time.perf_counter() - t0
    t0 = time.perf_counter()
    loss.value_and_grad(t, p)
    res["second_" + label] = time.perf_counter() - t0
print(json.dumps(res))
"""


def startup(names: tuple[str, ...] = ("mse", "huber")) -> dict:
    """Import time, cold first calls (one kernel each), and first calls from the cache.

    First calls are timed after Numba's one-time target set-up (reported on its own as
    ``numba_init``), so they show the kernel's compile or cache load; ``first_call_total``
    is one cached new process's first call with that set-up included.
    """
    res: dict[str, Any] = {}
    runs = [_py(_IMPORT_CODE).split() for _ in range(3)]
    res["import_seconds"] = min(float(r[0]) for r in runs)
    res["import_loads_numba"] = any(r[1] == "1" for r in runs)
    with tempfile.TemporaryDirectory() as empty, tempfile.TemporaryDirectory() as cache:
        for name in names:
            code = _FIRST_CALL_CODE.format(name=name, init=True)
            cold = json.loads(_py(code, {"LOSSREG_CACHE": "0", "NUMBA_CACHE_DIR": empty}))
            _py(code, {"LOSSREG_CACHE": cache})           # fills the cache
            warm = json.loads(_py(code, {"LOSSREG_CACHE": cache}))
            res[name] = {"cold": cold, "cached": warm}
        code = _FIRST_CALL_CODE.format(name=names[0], init=False)
        res["first_call_total"] = json.loads(_py(code, {"LOSSREG_CACHE": cache}))
    return res


_THREADS_CODE = """
import numpy as np, lossreg
rng = np.random.default_rng(3)
n = 1_000_003
t = rng.standard_normal(n); p = rng.standard_normal(n); w = rng.random(n)
out = []
for name in ("mse", "huber", "mae"):
    loss = lossreg.get(name)
    out.append(float(loss(t, p)).hex())
    out.append(float(loss(t, p, sample_weight=w)).hex())
    out.append(float(loss.value_and_grad(t, p)[0]).hex())
print(" ".join(out))
"""


def determinism() -> dict:
    """Reduced values for NUMBA_NUM_THREADS = 1, 2, 4 (subprocesses) and n_threads=."""
    import numba

    import lossreg
    from .spec import LossSpec

    per = {k: _py(_THREADS_CODE, {"NUMBA_NUM_THREADS": str(k)}).split() for k in (1, 2, 4)}
    identical = per[1] == per[2] == per[4]
    # n_threads honoured: a probe kernel reports how many threads ran its iterations
    # (1 + the largest thread id; numba.get_num_threads() would read the process's
    # setting, also in the serial compile that n_threads=1 runs)
    from numba import prange

    from .kernels import njit

    @njit(parallel=True, cache=False)      # defined per call: nothing to cache
    def probe(y_true, y_pred, out):
        for i in prange(y_pred.shape[0]):
            out[i] = numba.get_thread_id() + 1

    spec = LossSpec(name="thread_probe", family="bench", task="regression", forward=probe,
                    gradient=probe, reference=lambda t, p: np.zeros(np.shape(p)),
                    serial_below=0)
    seen = {}
    limit = numba.config.NUMBA_NUM_THREADS
    for k in sorted({1, limit}):
        x = np.zeros(10_000)
        seen[k] = float(lossreg.Loss(spec, "none", n_threads=k)(x, x).max())
    honoured = all(seen[k] == k for k in seen)
    return {"values_hex": per, "bit_identical_1_2_4": identical,
            "n_threads_seen": seen, "n_threads_honoured": honoured}


def serial_crossover(budget: float, names: tuple[str, ...]) -> dict:
    """Smallest N where a parallel value_and_grad (chunks on the worker threads) beats
    the serial run of the same plan, per element-wise loss."""
    import lossreg

    res = {}
    for name in names:
        spec = lossreg.spec(name)
        if spec.layout != "elementwise":
            continue
        found, table = None, {}
        for e in range(15, 21):            # from 2 chunks: one chunk is always serial
            n = 1 << e
            t, p = spec.sample(np.random.default_rng(0), n)
            g = np.empty_like(p)
            times = {}
            for serial in (True, False):
                loss = lossreg.get(name)
                loss._plan.serial_below = n + 1 if serial else 0
                times[serial] = best_time(lambda: loss.value_and_grad(t, p, out=g), budget)
            table[n] = {"serial": times[True], "parallel": times[False]}
            if found is None and times[False] < times[True]:
                found = n
        res[name] = {"crossover": found, "serial_below": spec.kernels.serial_below, "times": table}
    return res


# -- report ---------------------------------------------------------------------------------------

# -- boosting objectives (issue 15) ---------------------------------------------------------

def numpy_logistic(predt: np.ndarray, y: np.ndarray):
    """The logistic objective as the XGBoost documentation writes it in NumPy."""
    p = 1.0 / (1.0 + np.exp(-predt))
    return p - y, p * (1.0 - p)


def numpy_focal(predt: np.ndarray, y: np.ndarray, gamma: float = 2.0):
    """A hand-written focal objective on the margin (gradient and Hessian, floored)."""
    p = 1.0 / (1.0 + np.exp(-predt))
    pt, s = np.where(y == 1, p, 1 - p), np.where(y == 1, 1.0, -1.0)
    one, logpt = 1.0 - pt, np.log(np.clip(pt, 1e-15, None))
    g = s * one ** gamma * (gamma * pt * logpt - one)
    h = one ** gamma * pt * (gamma * logpt * (one - gamma * pt) + one * (2 * gamma + 1))
    return g, np.maximum(h, 1e-6)


def numpy_softprob(predt: np.ndarray, y: np.ndarray):
    """XGBoost's softprob objective in NumPy (the documentation's demo, vectorised)."""
    e = np.exp(predt - predt.max(axis=1, keepdims=True))
    p = e / e.sum(axis=1, keepdims=True)
    g = p.copy()
    g[np.arange(len(y)), y.astype(np.int64)] -= 1.0
    return g, np.maximum(2.0 * p * (1.0 - p), 1e-6)


def gbdt_objectives(n: int = 1_000_000, classes: int = 10, budget: float = 0.15,
                    features: int = 20, rounds: int = 2, seed: int = 0) -> dict:
    """Call time of ``lossreg.xgboost.objective`` (as XGBoost calls it: float32 margins,
    labels from the DMatrix's float32 array) against the NumPy objectives, at ``n``
    samples and ``n x classes``; and the time of one XGBoost ``hist`` round with default
    tree parameters at ``n`` rows, of which the logistic objective's share is reported.
    ImportError without xgboost."""
    import xgboost as xgb

    from . import xgboost as lx

    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.3).astype(np.float32)
    z = rng.normal(size=n).astype(np.float32)
    y_mc = rng.integers(0, classes, n).astype(np.float32)
    z_mc = rng.normal(size=(n, classes)).astype(np.float32)
    cases = [("bce_with_logits", lx.objective("binary_cross_entropy_with_logits"),
              numpy_logistic, y, z, 1),
             ("sigmoid_focal", lx.objective("sigmoid_focal", alpha=None, gamma=2.0),
              numpy_focal, y, z, 1),
             ("softmax_cross_entropy", lx.objective("softmax_cross_entropy"),
              numpy_softprob, y_mc, z_mc, classes)]
    rows = []
    for name, ours, theirs, yy, zz, c in cases:
        t_ours = best_time(lambda: ours(yy, zz), budget)
        t_np = best_time(lambda: theirs(zz, yy), budget)
        rows.append({"objective": name, "n": n, "classes": c, "lossreg": t_ours,
                     "numpy": t_np, "speedup": t_np / t_ours})
    d = xgb.DMatrix(rng.normal(size=(n, features)).astype(np.float32), label=y)
    params = {"tree_method": "hist", "base_score": 0.0}
    xgb.train(params, d, 1, obj=cases[0][1])                  # warm up
    start = time.perf_counter()
    xgb.train(params, d, rounds, obj=cases[0][1])
    per_round = (time.perf_counter() - start) / rounds
    return {"rows": rows, "round_seconds": per_round, "features": features,
            "round_share": rows[0]["lossreg"] / per_round, "xgboost": xgb.__version__}


def print_gbdt(g: dict, file=None) -> None:
    print("\nboosting objectives (lossreg.xgboost vs NumPy, one call):", file=file)
    for r in g["rows"]:
        shape = f"{_fmt_n(r['n'])}" + (f" x {r['classes']}" if r["classes"] > 1 else "")
        print(f"  {r['objective']:24s} N={shape:10s} lossreg {_fmt_t(r['lossreg'])}  "
              f"numpy {_fmt_t(r['numpy'])}  {r['speedup']:.2f}x", file=file)
    print(f"  one XGBoost round (hist, defaults, {_fmt_n(g['rows'][0]['n'])} rows, "
          f"{g['features']} features): {_fmt_t(g['round_seconds'])}; logistic objective "
          f"{100 * g['round_share']:.1f}% of it", file=file)


def print_table(rows: list[dict], file=None) -> None:
    file = file or sys.stdout
    head = (f"{'loss':34s} {'dtype':7s} {'N':>5s} {'op':14s} {'lossreg':>9s} "
            f"{'ceil':>5s} {'x numpy':>7s} {'x torch':>7s} {'x sklrn':>7s}")
    print(head, file=file)
    print("-" * len(head), file=file)
    for row in rows:
        r = ratios(row)
        for op in OPS:
            ro = r[op]

            def f(x):
                return f"{x:7.2f}" if x is not None else f"{'-':>7s}"
            print(f"{row['loss']:34s} {row['dtype']:7s} {_fmt_n(row['n']):>5s} {op:14s} "
                  f"{_fmt_t(row['lossreg'].get(op)):>9s} "
                  f"{(ro['ceiling'] if ro['ceiling'] is not None else 0):5.2f} "
                  f"{f(ro['numpy'])} {f(ro['torch'])} {f(ro['sklearn'])}", file=file)
    print("ceil = fraction of the bandwidth ceiling (1.0 = as fast as moving the bytes); "
          "x lib = lib time / lossreg time (>1: lossreg faster). torch: forward+backward "
          "for grad and value_and_grad; sklearn: _loss loss/gradient/loss_gradient.",
          file=file)


def targets(results: dict) -> list[tuple[str, bool | None, str]]:
    """(target, passed or None when not measured, detail)."""
    rows = results["rows"]
    big = max((r["n"] for r in rows), default=0)
    lines = []

    def at(name, dtype="float64"):
        return [r for r in rows if r["loss"] == name and r["dtype"] == dtype and r["n"] == big
                and big >= 10_000_000]

    got = [(name, ratios(r)["value_and_grad"]["ceiling"]) for name in ("mse", "huber")
           for r in at(name)]
    lines.append(("fused value_and_grad mse/huber at 1e7 float64 >= 0.9 of bandwidth ceiling",
                  all(v >= CEILING_TARGET for _, v in got) if got else None,
                  ", ".join(f"{n} {v:.2f}" for n, v in got) or "not measured (needs N=1e7)"))
    for lib, goal in (("torch", TORCH_TARGET), ("sklearn", SKLEARN_TARGET)):
        got = []
        for r in rows:
            if r["n"] == big and big >= 10_000_000:
                v = ratios(r)["value_and_grad"][lib]
                if v is not None:
                    got.append((f"{r['loss']}/{r['dtype'][-2:]}", v))
        lines.append((f">= {goal}x {lib} on every shared loss at 1e7 (value_and_grad)",
                      all(v >= goal for _, v in got) if got else None,
                      ", ".join(f"{n} {v:.2f}" for n, v in got) or "not measured"))
    got = [(f"{r['loss']}/{r['dtype'][-2:]}", ratios(r)["torch_bridge"]["torch_speedup"])
           for r in rows if r["n"] == big and big >= 10_000_000 and r["loss"] in BRIDGE_LOSSES]
    got = [(n, v) for n, v in got if v is not None]
    lines.append((f">= {BRIDGE_TARGET}x torch fwd+bwd through lossreg.torch.Loss at 1e7 "
                  f"({', '.join(BRIDGE_LOSSES)})",
                  all(v >= BRIDGE_TARGET for _, v in got) if got else None,
                  ", ".join(f"{n} {v:.2f}" for n, v in got) or "not measured"))
    got = [(r["loss"], ratios(r)["validated_over_unvalidated"]) for r in rows
           if r["n"] == big and r["dtype"] == "float64" and r["layout"] == "elementwise"
           and big >= 10_000_000]
    got = [(n, v) for n, v in got if v is not None]
    lines.append(("validated <= 1.1x unvalidated (value_and_grad, 1e7 float64, element-wise)",
                  all(v <= VALIDATE_TARGET for _, v in got) if got else None,
                  ", ".join(f"{n} {v:.2f}" for n, v in got) or "not measured"))
    ov = results.get("overhead")
    if ov:
        worst = max(v for k, v in ov.items() if k.count(".") == 1 and "general" not in k)
        lines.append(("overhead at N=10 <= 3 us over a bare njit call",
                      worst - ov["bare_njit"] <= OVERHEAD_TARGET,
                      f"worst {_fmt_t(worst - ov['bare_njit'])} "
                      f"(bare njit {_fmt_t(ov['bare_njit'])})"))
        through = ov.get("lossreg torch bridge fwd+bwd (mse)")
        if through is not None:
            floor = ov["torch empty autograd Function fwd+bwd"]
            own = ov["lossreg torch bridge fwd+bwd around a stub loss"] - floor
            lines.append(("lossreg.torch's own cost per fwd+bwd at N=10 <= 10 us (the bridge "
                          "around a stub loss, over torch's empty autograd.Function)",
                          own <= BRIDGE_OVERHEAD_TARGET,
                          f"{_fmt_t(own)}; with mse: bridge {_fmt_t(through)} = "
                          f"{_fmt_t(through - ov['mse.value_and_grad'])} over "
                          f"mse.value_and_grad {_fmt_t(ov['mse.value_and_grad'])} (torch's "
                          f"empty Function alone {_fmt_t(floor)}; torch's own mse fwd+bwd "
                          f"{_fmt_t(ov['torch fwd+bwd (mse)'])})"))
    st = results.get("startup")
    if st:
        lines.append(("import lossreg < 0.3 s and compiles nothing (numba not imported)",
                      st["import_seconds"] < IMPORT_TARGET and not st["import_loads_numba"],
                      f"{st['import_seconds']:.3f} s, numba imported: {st['import_loads_numba']}"))
        cold = [(n, st[n]["cold"]) for n in st if isinstance(st[n], dict) and "cold" in st[n]]
        worst = max(max(c["first_serial"], c["first_parallel"]) for _, c in cold)
        lines.append(("cold first call < 1 s per kernel",
                      worst < COLD_TARGET,
                      ", ".join(f"{n}: serial {c['first_serial']:.2f} s, parallel "
                                f"{c['first_parallel']:.2f} s" for n, c in cold)
                      + f" (one-time: import+get {cold[0][1]['import_and_get']:.2f} s, Numba "
                        f"target set-up {cold[0][1].get('numba_init', 0):.2f} s)"))
        warm = [(n, st[n]["cached"]) for n in st if isinstance(st[n], dict) and "cached" in st[n]]
        worst = max(max(c["first_serial"], c["first_parallel"]) for _, c in warm)
        lines.append(("LOSSREG_CACHE: new process first call < 50 ms (kernel load, serial / "
                      "parallel, after Numba's one-time target set-up)",
                      worst < CACHED_TARGET,
                      ", ".join(f"{n}: {c['first_serial'] * 1e3:.1f} ms / "
                                f"{c['first_parallel'] * 1e3:.1f} ms" for n, c in warm)))
        total = st.get("first_call_total")
        if total:
            init = max(c.get("numba_init", 0.0) for _, c in warm)
            lines.append(("LOSSREG_CACHE: new process first call < 50 ms including Numba's "
                          "one-time set-up", total["first_serial"] < CACHED_TARGET,
                          f"{total['first_serial'] * 1e3:.0f} ms (Numba target set-up alone "
                          f"{init * 1e3:.0f} ms)"))
    gb = results.get("gbdt")
    if gb:
        lines.append((f"boosting objective >= {GBDT_SPEEDUP_TARGET:g}x the NumPy objective "
                      "(1e6, 1e6 x C)",
                      all(r["speedup"] >= GBDT_SPEEDUP_TARGET for r in gb["rows"]),
                      ", ".join(f"{r['objective']} {r['speedup']:.2f}x" for r in gb["rows"])))
        lines.append((f"boosting objective <= {100 * GBDT_SHARE_TARGET:g}% of an XGBoost round",
                      gb["round_share"] <= GBDT_SHARE_TARGET,
                      f"{100 * gb['round_share']:.1f}% of {_fmt_t(gb['round_seconds'])}"))
    th = results.get("threads")
    if th:
        lines.append(("reductions bit-identical for 1, 2, 4 threads; n_threads honoured",
                      th["bit_identical_1_2_4"] and th["n_threads_honoured"],
                      f"identical {th['bit_identical_1_2_4']}, "
                      f"n_threads seen {th['n_threads_seen']}"))
    return lines


def plot(results: dict, path: Path) -> bool:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    rows = [r for r in results["rows"] if r["dtype"] == "float64"]
    names = sorted({r["loss"] for r in rows})
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for name in names:
        rs = sorted((r for r in rows if r["loss"] == name), key=lambda r: r["n"])
        ns = [r["n"] for r in rs]
        axes[0].plot(ns, [ratios(r)["value_and_grad"]["ceiling"] or 0 for r in rs], "o-",
                     label=name)
        tv = [ratios(r)["value_and_grad"]["torch"] for r in rs]
        if any(v is not None for v in tv):
            axes[1].plot([n for n, v in zip(ns, tv) if v], [v for v in tv if v], "o-", label=name)
    axes[0].set(xscale="log", xlabel="N (float64)", ylabel="fraction of bandwidth ceiling",
                title="value_and_grad vs memory bandwidth")
    axes[0].axhline(CEILING_TARGET, color="grey", ls="--", lw=1)
    axes[1].set(xscale="log", yscale="log", xlabel="N (float64)",
                ylabel="PyTorch fwd+bwd time / lossreg time", title="speed-up over PyTorch CPU")
    axes[1].axhline(TORCH_TARGET, color="grey", ls="--", lw=1)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


# -- CLI ----------------------------------------------------------------------------------

def _sizes(text: str) -> list[int]:
    try:
        return [int(float(x)) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"sizes must be numbers like 1e3,1e5, got {text!r}")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``lossreg bench`` (and ``benchmarks/run.py``)."""
    parser.add_argument("--losses", default=None,
                        help="comma-separated loss names (default: every built-in loss; "
                             "--quick: mse,huber)")
    parser.add_argument("--sizes", type=_sizes, default=None,
                        help="comma-separated N (default 1e1,1e3,1e5,1e7; --quick: 1e1,1e5)")
    parser.add_argument("--dtypes", default=None,
                        help="comma-separated dtypes (default float64,float32; --quick: float64)")
    parser.add_argument("--quick", action="store_true",
                        help="small run: mse and huber, N 1e1 and 1e5, float64, short timings, "
                             "no startup/thread subprocesses")
    parser.add_argument("--budget", type=float, default=None,
                        help="seconds of timing per measurement (default 0.15; --quick 0.02)")
    parser.add_argument("--no-torch", action="store_true", help="skip PyTorch")
    parser.add_argument("--no-sklearn", action="store_true", help="skip scikit-learn")
    parser.add_argument("--no-gbdt", action="store_true",
                        help="skip the boosting-objective timings (run when xgboost is "
                             "installed and not --quick)")
    parser.add_argument("--no-startup", action="store_true",
                        help="skip import/compile/cache/thread subprocess measurements")
    parser.add_argument("-o", "--output", metavar="DIR", default=None,
                        help=f"write {JSON_NAME} and {PLOT_NAME} (needs matplotlib) into DIR; "
                             f"without -o, --json or --plot nothing is written")
    parser.add_argument("--json", metavar="FILE", default=None,
                        help="write the results as JSON to FILE")
    parser.add_argument("--plot", metavar="FILE", default=None,
                        help="draw the ratios to FILE (needs matplotlib)")
    parser.add_argument("--check", action="store_true",
                        help="exit 1 when any target prints FAIL (SKIP does not fail)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")


def run(args: argparse.Namespace) -> int:
    """Run the benchmark; print ratios and PASS/FAIL lines; write files only when asked.
    Returns 0, or 1 on bad options or (with ``--check``) when a target FAILs."""
    import numba

    import lossreg

    quick = args.quick
    if args.losses:
        names = [lossreg.spec(n.strip()).name for n in args.losses.split(",") if n.strip()]
    else:
        names = list(QUICK_LOSSES) if quick else builtin_names()
    sizes = args.sizes or list(QUICK_SIZES if quick else SIZES)
    dtypes = [d.strip() for d in
              (args.dtypes or ("float64" if quick else ",".join(DTYPES))).split(",")]
    for d in dtypes:
        if d not in DTYPES:
            print(f"lossreg bench: unknown dtype {d!r}; use float64 and/or float32",
                  file=sys.stderr)
            return 1
    budget = args.budget if args.budget is not None else (0.02 if quick else 0.15)
    comparators = set()
    if not args.no_torch:
        comparators.add("torch")
    if not args.no_sklearn:
        comparators.add("sklearn")
    n_threads = numba.get_num_threads()

    steps = (len(sizes) * len(dtypes) * (1 + len(names)) + 1
             + (0 if quick or args.no_startup else 3) + (0 if quick or args.no_gbdt else 1))
    bar = Progress(steps, enabled=not args.no_progress)
    results: dict[str, Any] = {
        "machine": {"platform": platform.platform(), "processor": platform.processor(),
                    "cpus": os.cpu_count(), "numba_threads": n_threads,
                    "python": platform.python_version(), "numpy": np.__version__,
                    "numba": numba.__version__, "lossreg": lossreg.__version__},
        "config": {"losses": names, "sizes": sizes, "dtypes": dtypes, "budget": budget,
                   "quick": quick},
        "bandwidth": {}, "rows": [],
    }
    for lib in ("torch", "sklearn"):
        try:
            mod = __import__(lib)
            results["machine"][lib] = mod.__version__
        except ImportError:
            results["machine"][lib] = None
    for dtype in dtypes:
        for n in sizes:
            bw = bandwidth(n, dtype, budget)
            results["bandwidth"][f"{dtype}/{n}"] = bw
            bar.step(f"bandwidth {dtype} N={_fmt_n(n)}: {bw / 1e9:.1f} GB/s")
            for name in names:
                results["rows"].append(bench_case(name, n, dtype, budget, bw, comparators,
                                                  n_threads))
                bar.step(f"{name} {dtype} N={_fmt_n(n)}")
    results["overhead"] = overhead(budget)
    bar.step("overhead at N=10")
    phases = ()
    if not (quick or args.no_startup):
        phases = (("startup", startup, ()), ("threads", determinism, ()),
                  ("serial_crossover", serial_crossover,
                   (budget / 3, tuple(n for n in ("mse", "binary_cross_entropy_with_logits")
                                      if n in names))))
    if not (quick or args.no_gbdt):      # --no-startup keeps it: its own flag skips it
        phases += (("gbdt", gbdt_objectives, (1_000_000, 10, budget)),)
    if phases:
        for key, fn, fargs in phases:
            try:
                results[key] = fn(*fargs)
            except ImportError as exc:
                print(f"lossreg bench: {key} skipped: {exc}", file=sys.stderr)
            except Exception as exc:  # noqa: BLE001 - report it, keep the timings
                results.setdefault("errors", {})[key] = f"{type(exc).__name__}: {exc}"
                print(f"lossreg bench: {key} failed: {exc}", file=sys.stderr)
            bar.step(key)

    print(f"lossreg bench: {n_threads} numba threads, {results['machine']['platform']}")
    bws = ", ".join(f"{k}: {v / 1e9:.1f} GB/s" for k, v in results["bandwidth"].items())
    print(f"copy bandwidth (out[i] = a[i] + b[i]): {bws}")
    print_table(results["rows"])
    for r in results["rows"]:
        rb = ratios(r)["torch_bridge"]
        if rb["over_bare"] is not None:
            torch_x = "-" if rb["torch_speedup"] is None else f"{rb['torch_speedup']:.2f}"
            print(f"through lossreg.torch: {r['loss']} {r['dtype']} N={_fmt_n(r['n'])}: "
                  f"{_fmt_t(r['torch_bridge']['value_and_grad'])} fwd+bwd, "
                  f"{rb['over_bare']:.2f}x the bare value_and_grad, x torch {torch_x}")
    ov = results["overhead"]
    print("\nper-call time at N=10: " + ", ".join(f"{k} {_fmt_t(v)}" for k, v in ov.items()))
    if "serial_crossover" in results:
        for name, c in results["serial_crossover"].items():
            print(f"serial/parallel crossover {name}: parallel first faster at N={c['crossover']} "
                  f"(serial_below={c['serial_below']})")
    if "gbdt" in results:
        print_gbdt(results["gbdt"])
    results["targets"] = [{"target": t, "passed": ok, "detail": d} for t, ok, d in targets(results)]
    print()
    for t in results["targets"]:
        status = "SKIP" if t["passed"] is None else ("PASS" if t["passed"] else "FAIL")
        print(f"{status}  {t['target']}: {t['detail']}")
    json_path, plot_path = output_paths(args)
    if json_path:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(results, indent=1, default=str))
        print(f"wrote {json_path}")
    if plot_path:
        if plot(results, plot_path):
            print(f"wrote {plot_path}")
        else:
            from .errors import install_hint

            print("matplotlib not installed: no plot; " + install_hint("plot"), file=sys.stderr)
    failed = [t["target"] for t in results["targets"] if t["passed"] is False]
    if args.check and failed:
        print(f"lossreg bench --check: {len(failed)} target(s) FAILED", file=sys.stderr)
        return 1
    return 0


def output_paths(args: argparse.Namespace) -> tuple[Path | None, Path | None]:
    """(JSON file, plot file) to write: --json/--plot, else -o DIR's latest.*, else None."""
    out = Path(args.output) if getattr(args, "output", None) else None
    json_path = args.json or (out / JSON_NAME if out else None)
    plot_path = args.plot or (out / PLOT_NAME if out else None)
    return (Path(json_path) if json_path else None, Path(plot_path) if plot_path else None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lossreg bench", description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
