"""Out-of-core evaluation with lossreg.dask: peak resident memory on inputs larger than RAM.

    python benchmarks/dask_memory.py                     # mse and softmax CE, 2e9 elements
    python benchmarks/dask_memory.py --elements 2e7 --grad-to /tmp/g   # gradient to .npy
    python benchmarks/dask_memory.py --elements 2e7 --grad-to /tmp/g --zarr   # to zarr
    python benchmarks/dask_memory.py -o benchmarks/results/dask_memory.json

Both inputs are generated lazily, block by block, with ``dask.array.random`` (uniform;
softmax logits in [-4, 4) with integer labels; 2e9 float64 elements of y_pred: 32 GB for
y_true and y_pred of mse together, more than this machine's RAM),
then reduced by ``lossreg.dask.evaluate`` on dask's threaded scheduler with a progress bar
(``dask.diagnostics.ProgressBar``). Peak resident memory is the process's
``ru_maxrss``; each case runs in a fresh subprocess so the figures do not mix. With
``--grad-to DIR`` the gradient of each loss is also written, block by block, to a
``.npy`` file in DIR (``dask.array.store`` into ``NpyWriter``: positioned writes, not a
memory map, whose dirty pages would count as resident memory), then deleted
(``--keep`` keeps it; ``numpy.load(path, mmap_mode="r")`` reads it). With ``--zarr``
(needs the optional ``zarr`` package) the gradient goes to a zarr store instead, through
dask's own ``Array.to_zarr``: the gradient is an ordinary dask array.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import time

CASES = ("mse", "softmax_cross_entropy")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


class NpyWriter:
    """A ``.npy`` file as a ``dask.array.store`` target: ``w[rows, ...] = block`` writes
    the block's bytes at its offset (blocks must span all trailing axes)."""

    def __init__(self, path: str, shape: tuple, dtype):
        import numpy as np

        self.shape, self.dtype = tuple(shape), np.dtype(dtype)
        self.row_bytes = self.dtype.itemsize * int(np.prod(self.shape[1:], dtype=np.int64))
        with open(path, "wb") as fh:
            np.lib.format.write_array_header_1_0(
                fh, {"descr": np.lib.format.dtype_to_descr(self.dtype),
                     "fortran_order": False, "shape": self.shape})
            self.header = fh.tell()
            fh.truncate(self.header + self.row_bytes * self.shape[0])
        self.fd = os.open(path, os.O_WRONLY)

    def __setitem__(self, index, block) -> None:
        import numpy as np

        rows = index[0] if isinstance(index, tuple) else index
        for axis, sl in enumerate(index[1:] if isinstance(index, tuple) else (), 1):
            if (sl.start or 0) != 0 or (sl.stop is not None and sl.stop != self.shape[axis]):
                raise ValueError("NpyWriter needs blocks spanning all trailing axes")
        data = np.ascontiguousarray(block, dtype=self.dtype).tobytes()
        os.pwrite(self.fd, data, self.header + (rows.start or 0) * self.row_bytes)

    def close(self) -> None:
        os.close(self.fd)


def run_case(name: str, elements: int, block: int, classes: int, grad_to: str | None,
             keep: bool, to_zarr: bool = False) -> dict:
    import dask
    import dask.array as da
    import numpy as np
    from dask.diagnostics import ProgressBar

    import lossreg
    import lossreg.dask as ld

    rng = da.random.default_rng(2024)
    if name == "softmax_cross_entropy":
        rows = elements // classes
        y_pred = rng.random((rows, classes), chunks=(block // classes, classes)) * 8.0 - 4.0
        y_true = rng.integers(0, classes, rows, chunks=block // classes)
    else:
        y_pred = rng.random(elements, chunks=block)
        y_true = rng.random(elements, chunks=block)
    loss = lossreg.get(name)
    start = time.perf_counter()
    with dask.config.set(scheduler="threads"), ProgressBar(dt=5.0, out=sys.stderr):
        if grad_to:
            os.makedirs(grad_to, exist_ok=True)
            value, g = ld.value_and_grad(loss, y_true, y_pred)
            if to_zarr:
                path = os.path.join(grad_to, f"{name}_grad.zarr")
                stored = g.to_zarr(path, overwrite=True, compute=False)
                value = float(dask.compute(value, stored)[0])
            else:
                path = os.path.join(grad_to, f"{name}_grad.npy")
                out = NpyWriter(path, y_pred.shape, np.float64)
                stored = da.store(g, out, lock=False, compute=False)
                value = float(dask.compute(value, stored)[0])
                out.close()
            if not keep:
                shutil.rmtree(path) if to_zarr else os.remove(path)
        else:
            value = ld.evaluate(loss, y_true, y_pred, compute=True)
    seconds = time.perf_counter() - start
    return {"loss": name, "elements": elements, "block_elements": block,
            "input_gb": 2 * elements * 8 / 1e9 if name == "mse"
            else (elements * 8 + elements // classes * 8) / 1e9,
            "gradient_to_npy": bool(grad_to) and not to_zarr,
            "gradient_to_zarr": bool(grad_to) and to_zarr, "value": value, "seconds": round(seconds, 1),
            "peak_rss_mb": round(peak_rss_mb(), 1)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--elements", type=float, default=2e9)
    ap.add_argument("--block", type=float, default=2 ** 23, help="elements per dask block")
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--losses", default=",".join(CASES))
    ap.add_argument("--grad-to", default=None, help="write gradients as .npy memmaps here")
    ap.add_argument("--keep", action="store_true", help="keep the gradient files")
    ap.add_argument("--zarr", action="store_true",
                    help="write the gradients to zarr stores (needs zarr), not .npy")
    ap.add_argument("-o", "--output", default=None, help="write the results as JSON here")
    ap.add_argument("--case", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.case:                       # child process: one case, JSON on stdout
        result = run_case(args.case, int(args.elements), int(args.block), args.classes,
                          args.grad_to, args.keep, args.zarr)
        print(json.dumps(result))
        return 0
    results = []
    for name in args.losses.split(","):
        cmd = [sys.executable, __file__, "--case", name, "--elements", str(args.elements),
               "--block", str(args.block), "--classes", str(args.classes)]
        if args.grad_to:
            cmd += ["--grad-to", args.grad_to] + (["--keep"] if args.keep else []) \
                + (["--zarr"] if args.zarr else [])
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, check=True)
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        results.append(result)
        print(f"{name:24s} {result['elements']:.2e} elements  {result['input_gb']:.1f} GB "
              f"inputs  {result['seconds']:8.1f} s  peak RSS {result['peak_rss_mb']:8.1f} MB"
              f"{'  (+ gradient to .npy)' if result['gradient_to_npy'] else ''}"
              f"{'  (+ gradient to zarr)' if result.get('gradient_to_zarr') else ''}")
    if args.output:
        import dask
        import numpy

        meta = {"python": platform.python_version(), "numpy": numpy.__version__,
                "dask": dask.__version__, "cpus": os.cpu_count(),
                "ram_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
                                / 1e9, 1)}
        with open(args.output, "w") as fh:
            json.dump({"machine": meta, "results": results}, fh, indent=2)
            fh.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
