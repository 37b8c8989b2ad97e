"""The ``lossreg`` command line."""

from __future__ import annotations

import argparse
import sys

import numpy as np


def cmd_demo(args: argparse.Namespace) -> int:
    """Print a loss value and gradient for a few losses on a tiny example."""
    import lossreg

    y_true = np.array([0.0, 1.0, 2.0, 10.0])
    y_pred = np.array([0.5, 1.0, 3.5, 2.0])
    print(f"y_true = {y_true.tolist()}\ny_pred = {y_pred.tolist()}")
    for name, hyper in (("mse", {}), ("mae", {}), ("huber", {"delta": 0.5}),
                        ("smooth_l1", {"beta": 1.0})):
        loss = lossreg.get(name, **hyper)
        value, grad = loss.value_and_grad(y_true, y_pred)
        print(f"{loss!r:45s} value = {value:.6g}   grad = {np.round(grad, 6).tolist()}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lossreg", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help=cmd_demo.__doc__, description=cmd_demo.__doc__)
    demo.set_defaults(func=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
