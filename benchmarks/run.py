#!/usr/bin/env python
"""Run the lossreg benchmark (same as ``lossreg bench``); options: ``--help``.

    python benchmarks/run.py            # full run: every built-in loss, N 1e1..1e7, f64+f32
    python benchmarks/run.py --quick    # mse and huber, N 1e1 and 1e5, float64

Results go to benchmarks/results/latest.json and latest.png (``-o DIR``, ``--json FILE``
or ``--plot FILE`` choose other places); ``--check`` exits 1 when a target FAILs.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from lossreg.bench import main  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def argv_with_default_output(argv: list[str]) -> list[str]:
    """``-o benchmarks/results`` unless the command line names an output already."""
    named = any(a in ("-o", "--output", "--json", "--plot") or
                a.startswith(("--output=", "--json=", "--plot=")) for a in argv)
    return argv if named else [*argv, "-o", str(RESULTS)]


if __name__ == "__main__":
    sys.exit(main(argv_with_default_output(sys.argv[1:])))
