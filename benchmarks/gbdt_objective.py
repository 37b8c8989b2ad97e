"""Boosting objective call time: lossreg's XGBoost objectives against the NumPy objectives
the XGBoost documentation writes, and against one boosting round.

    python benchmarks/gbdt_objective.py [--n 1000000] [--classes 10] [--rounds 3]

Prints, at n samples (and n x C for softmax), the best-of-k wall time of one objective
call (the callable XGBoost calls: labels from a NumPy array, float32 margins as XGBoost
passes them) for lossreg and for NumPy, their ratio, and the share of one boosting round
(default tree parameters, hist) that the lossreg objective takes.
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def best(fn, repeat: int = 7) -> float:
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def numpy_logistic(predt, y):
    """XGBoost docs' logistic objective (custom_metric_obj tutorial style)."""
    p = 1.0 / (1.0 + np.exp(-predt))
    return p - y, p * (1.0 - p)


def numpy_softprob(predt, y):
    """XGBoost docs' softprob objective, vectorised (the tutorial loops over rows)."""
    e = np.exp(predt - predt.max(axis=1, keepdims=True))
    p = e / e.sum(axis=1, keepdims=True)
    g = p.copy()
    g[np.arange(len(y)), y.astype(np.int64)] -= 1.0
    h = np.maximum(2.0 * p * (1.0 - p), 1e-6)
    return g, h


def numpy_focal(predt, y, gamma=2.0):
    """A typical hand-written focal objective on the margin (first and second order)."""
    p = 1.0 / (1.0 + np.exp(-predt))
    pt = np.where(y == 1, p, 1 - p)
    s = np.where(y == 1, 1.0, -1.0)
    # d/dz of -(1 - pt)^g log pt with d pt/dz = s pt (1 - pt)
    one = 1.0 - pt
    logpt = np.log(np.clip(pt, 1e-15, None))
    g = s * one ** gamma * (gamma * pt * logpt - one)
    h = one ** gamma * pt * (gamma * logpt * (one - gamma * pt) + one * (2 * gamma + 1))
    return g, np.maximum(h, 1e-6)


def main() -> None:
    import xgboost as xgb

    import lossreg.xgboost as lx

    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--features", type=int, default=20)
    args = ap.parse_args()
    n, c = args.n, args.classes
    rng = np.random.default_rng(0)
    y_bin = (rng.random(n) < 0.3).astype(np.float32)
    z = rng.normal(size=n).astype(np.float32)
    y_mc = rng.integers(0, c, n).astype(np.float32)
    zm = rng.normal(size=(n, c)).astype(np.float32)

    rows = []
    for label, ours, theirs, yy, zz in [
        ("bce_with_logits", lx.objective("binary_cross_entropy_with_logits"),
         numpy_logistic, y_bin, z),
        ("sigmoid_focal", lx.objective("sigmoid_focal", alpha=None, gamma=2.0),
         numpy_focal, y_bin, z),
        (f"softmax ({c} classes)", lx.objective("softmax_cross_entropy"),
         numpy_softprob, y_mc, zm),
    ]:
        t_ours = best(lambda: ours(yy, zz))
        t_np = best(lambda: theirs(zz, yy))
        rows.append((label, t_ours, t_np))
        print(f"{label:24s} n={n:>9,d}  lossreg {1e3 * t_ours:8.2f} ms   NumPy "
              f"{1e3 * t_np:8.2f} ms   speed-up {t_np / t_ours:5.1f}x", flush=True)

    # share of one boosting round (default tree parameters, hist), binary
    x = rng.normal(size=(n, args.features)).astype(np.float32)
    d = xgb.DMatrix(x, label=y_bin)
    obj = lx.objective("binary_cross_entropy_with_logits")
    booster = xgb.train({"tree_method": "hist", "base_score": 0.0}, d, 1, obj=obj)
    t0 = time.perf_counter()
    booster = xgb.train({"tree_method": "hist", "base_score": 0.0}, d, args.rounds, obj=obj)
    per_round = (time.perf_counter() - t0) / args.rounds
    print(f"one boosting round (n={n:,d}, {args.features} features, hist, defaults): "
          f"{1e3 * per_round:.1f} ms; objective share {100 * rows[0][1] / per_round:.1f}%")


if __name__ == "__main__":
    main()
