"""lossreg.dask on a LocalCluster against in-memory lossreg, at an in-memory size.

    python benchmarks/dask_throughput.py                       # 1e8 elements
    python benchmarks/dask_throughput.py -o benchmarks/results/dask_throughput.json

``distributed.LocalCluster(n_workers=2, threads_per_worker=1)`` on 127.0.0.1 holds
y_true, y_pred (and the weights) persisted in the workers' memory, in blocks of
``--block`` elements; the timed call is the evaluation only (``evaluate(...).compute()``,
or the gradient persisted in the workers for ``value_and_grad``), each call after the
scheduler has forgotten the previous one's tasks (nothing is reused). The in-memory side is
the ordinary ``loss(y_true, y_pred)`` on the same data gathered to NumPy, with lossreg's
default threads. Best of ``--repeat`` after a warm-up; ratio = dask / in-memory (the
issue's target: at most 2). Every reduced value is also checked bit for bit.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time


def best(fn, repeat: int, after=None, cpu=time.process_time) -> tuple[float, float]:
    """The smallest wall time and the smallest CPU time (``cpu()``: seconds of CPU used
    so far, by this process or by the workers) of ``repeat`` calls after a warm-up."""
    fn()
    walls, cpus = [], []
    for _ in range(repeat):
        if after is not None:
            after()
        c0, t0 = cpu(), time.perf_counter()
        fn()
        walls.append(time.perf_counter() - t0)
        cpus.append(cpu() - c0)
    return min(walls), min(cpus)


def _block(which: int, block_info=None):
    """Block ``i`` of y_true (0), y_pred (1) or the weights (2): seeded by (which, i),
    so the data do not depend on where or when they are made."""
    import numpy as np

    info = block_info[None]
    i, (n,) = info["chunk-location"][0], info["chunk-shape"]
    x = np.random.default_rng([7, which, i]).random(n)
    return x * 4.0 - 2.0 if which == 1 else x


def _like(t, which: int, block_info=None):
    """``_block`` computed where the block ``t`` of y_true is."""
    return _block(which, block_info)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--elements", type=float, default=1e8)
    ap.add_argument("--block", type=float, default=2 ** 23)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--losses", default="mse,huber,binary_cross_entropy_with_logits")
    ap.add_argument("-o", "--output", default=None)
    args = ap.parse_args(argv)

    import dask
    import dask.array as da
    import numpy as np
    from distributed import Client, LocalCluster, wait

    import lossreg
    import lossreg.dask as ld

    n, block = int(args.elements), int(args.block)
    rows = []
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster, Client(cluster) as client:
        # y_pred and the weights are made where y_true's block is (they depend on it):
        # each block's inputs on one worker, as when each worker reads its part of a store
        chunks = da.core.normalize_chunks(block, (n,))
        t_d = da.map_blocks(_block, chunks=chunks, dtype=np.float64, which=0)
        p_d = t_d.map_blocks(_like, dtype=np.float64, which=1)
        w_d = t_d.map_blocks(_like, dtype=np.float64, which=2)
        t_d, p_d, w_d = client.persist([t_d, p_d, w_d])
        wait([t_d, p_d, w_d])
        t, p, w = t_d.compute(), p_d.compute(), w_d.compute()
        for name in args.losses.split(","):
            loss = lossreg.get(name)
            cases = {
                "value": (lambda: loss(t, p),
                          lambda: ld.evaluate(loss, t_d, p_d).compute()),
                "value, weighted": (lambda: loss(t, p, w),
                                    lambda: ld.evaluate(loss, t_d, p_d, w_d).compute()),
                "value_and_grad": (lambda: loss.value_and_grad(t, p),
                                   lambda: _persisted(client, wait, ld.value_and_grad(
                                       loss, t_d, p_d))),
                "value_and_grad, weighted": (
                    lambda: loss.value_and_grad(t, p, w),
                    lambda: _persisted(client, wait, ld.value_and_grad(
                        loss, t_d, p_d, w_d))),
            }
            for what, (mem, dsk) in cases.items():
                identical = bool(np.float64(mem() if "grad" not in what else mem()[0])
                                 == np.float64(dsk() if "grad" not in what else dsk()))
                t_mem, c_mem = best(mem, args.repeat)
                t_dask, c_dask = best(dsk, args.repeat, after=lambda: released(client),
                                      cpu=lambda: _cluster_cpu(client))
                row = {"loss": name, "call": what, "in_memory_s": round(t_mem, 4),
                       "dask_s": round(t_dask, 4), "ratio": round(t_dask / t_mem, 2),
                       "in_memory_cpu_s": round(c_mem, 4), "dask_cpu_s": round(c_dask, 4),
                       "cpu_ratio": round(c_dask / c_mem, 2), "bit_identical": identical}
                rows.append(row)
                print(f"{name:34s} {what:26s} in-memory {t_mem:7.3f} s  dask {t_dask:7.3f} s"
                      f"  ratio {t_dask / t_mem:5.2f}  (CPU {c_mem:6.2f} s / {c_dask:6.2f} s"
                      f" = {c_dask / c_mem:5.2f})  identical {identical}", flush=True)
    if args.output:
        import numba

        meta = {"python": platform.python_version(), "numpy": np.__version__,
                "numba": numba.__version__, "dask": dask.__version__, "cpus": os.cpu_count(),
                "elements": n, "block_elements": block,
                "cluster": "LocalCluster(n_workers=2, threads_per_worker=1), processes"}
        with open(args.output, "w") as fh:
            json.dump({"machine": meta, "results": rows}, fh, indent=2)
            fh.write("\n")
    return 0


def _cluster_cpu(client) -> float:
    """CPU seconds used so far by the workers, the scheduler and this client process."""
    used = client.run(time.process_time)
    return (sum(used.values()) + client.run_on_scheduler(time.process_time)
            + time.process_time())


def released(client, timeout: float = 10.0) -> None:
    """Wait until the scheduler has forgotten every lossreg task, so that the next call
    recomputes everything instead of reusing results left in the workers."""
    def count(dask_scheduler):
        return sum("lossreg" in str(key) for key in dask_scheduler.tasks)

    end = time.perf_counter() + timeout
    while client.run_on_scheduler(count) and time.perf_counter() < end:
        time.sleep(0.01)


def _persisted(client, wait, value_and_grad):
    """Compute the value; keep the gradient in the workers (as a training loop would)."""
    value, g = value_and_grad
    value, g = client.persist([value, g])
    wait([value, g])
    out = value.compute()
    client.cancel([value, g])
    return out


if __name__ == "__main__":
    sys.exit(main())
