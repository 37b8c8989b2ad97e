"""The bridges are optional: ``import lossreg`` imports no framework, and a bridge whose
library is missing fails with a one-line MissingDependencyError naming its extra."""

from __future__ import annotations

import pytest

from .conftest import run_python


def test_import_lossreg_imports_no_framework():
    out = run_python("import sys, lossreg; lossreg.get('mse')([0.0], [1.0]); "
                     "print(sorted(m for m in ('torch', 'jax', 'sklearn') if m in sys.modules))")
    assert out.strip() == "[]"


@pytest.mark.parametrize("bridge, library, extra", [("torch", "torch", "torch"),
                                                     ("jax", "jax", "jax"),
                                                     ("sklearn", "sklearn", "sklearn")])
def test_missing_library_is_a_one_line_error_naming_the_extra(bridge, library, extra):
    out = run_python(f"import sys; sys.modules[{library!r}] = None\n"
                     "import lossreg\n"
                     "try:\n"
                     f"    import lossreg.{bridge}\n"
                     "except ImportError as e:\n"
                     "    print(type(e).__name__, isinstance(e, lossreg.LossError), '|', e)\n")
    assert out.startswith("MissingDependencyError True | ") and out.count("\n") == 1
    assert f'pip install "lossreg[{extra}]"' in out and f'pip install -e ".[{extra}]"' in out
