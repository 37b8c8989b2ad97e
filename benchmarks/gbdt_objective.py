"""Boosting objective call time on its own: ``lossreg.bench.gbdt_objectives`` (the
section ``lossreg bench`` runs when xgboost is installed), without the kernel tables.

    python benchmarks/gbdt_objective.py [--n 1000000] [--classes 10] [--rounds 2]

Prints, at n samples (and n x C for softmax), the best wall time of one objective call
(as XGBoost calls it: float32 margins and labels) for lossreg and for the NumPy
objectives of ``lossreg.bench``, their ratio, and the share of one XGBoost ``hist`` round
(default tree parameters) that the lossreg logistic objective takes.
"""

from __future__ import annotations

import argparse

from lossreg.bench import gbdt_objectives, print_gbdt


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--features", type=int, default=20)
    ap.add_argument("--budget", type=float, default=0.15)
    args = ap.parse_args()
    print_gbdt(gbdt_objectives(args.n, args.classes, args.budget, args.features, args.rounds))


if __name__ == "__main__":
    main()
