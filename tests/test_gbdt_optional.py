"""The boosting adapters are optional: each module imports only with its library, a
missing library is a one-line MissingDependencyError naming the extra, and
``import lossreg`` imports none of them (they are never needed for the core)."""

import pytest

from .conftest import run_python

MODULES = {"xgboost": "lossreg.xgboost", "lightgbm": "lossreg.lightgbm",
           "catboost": "lossreg.catboost"}


@pytest.mark.parametrize("library", sorted(MODULES))
def test_missing_library_is_a_one_line_error_naming_the_extra(library):
    code = (f"import sys; sys.modules[{library!r}] = None\n"
            "import lossreg\n"
            "try:\n"
            f"    import {MODULES[library]}\n"
            "except lossreg.LossError as exc:\n"
            "    print(type(exc).__name__, isinstance(exc, ImportError)); print(exc)\n")
    kind, message = run_python(code).strip().split("\n")
    assert kind == "MissingDependencyError True"
    assert f'pip install "lossreg[{library}]"' in message
    assert f'pip install -e ".[{library}]"' in message


def test_import_lossreg_imports_no_booster():
    out = run_python("import sys, lossreg; lossreg.get('focal')([1.0], [0.5]); "
                     "print(sorted(m for m in sys.modules if m.split('.')[0] in "
                     "('xgboost', 'lightgbm', 'catboost') or m.startswith(('lossreg._gbdt', "
                     "'lossreg.xgboost', 'lossreg.lightgbm', 'lossreg.catboost'))))")
    assert out.strip() == "[]"
