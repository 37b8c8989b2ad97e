"""``lossreg new-plugin NAME``: write a ready-to-install plugin distribution.

``new_plugin("cauchy", "out/")`` creates ``out/lossreg-cauchy/`` with

* ``pyproject.toml`` declaring the ``lossreg`` entry point (and a ``test`` extra),
* ``src/lossreg_cauchy/losses.py``: one scalar ``@lossreg.kernels.njit`` element function
  expanded by ``elementwise_kernels`` into fused kernels, a NumPy reference, the
  ``LossSpec`` and the ``register_losses`` hook,
* ``tests/test_cauchy.py``: the conformance kit (``parametrize_checks``) plus a check
  that lossreg found the loss through the entry point,
* ``README.md`` with the install and test commands.

The generated loss is a real one to start from (the Cauchy/Lorentzian robust loss
``c**2/2 * log1p((r/c)**2)``); replace its math, reference, domains and metadata with
yours and keep the tests. ``pip install -e ".[test]" && pytest`` in the new folder passes
as generated. The CLI wires ``add_arguments`` and ``run`` to ``lossreg new-plugin``.
"""

from __future__ import annotations

import argparse
import pathlib
import re
import sys

from .errors import PluginError

_SLUG_RE = re.compile(r"^[a-z][a-z0-9]*([-_][a-z0-9]+)*$")
_LOSS_RE = re.compile(r"^[a-z][a-z0-9_]*$")


def plugin_names(name: str, loss_name: str | None = None) -> dict[str, str]:
    """Distribution, package, loss and entry-point names derived from ``name``.

    ``"cauchy"`` and ``"lossreg-cauchy"`` both give distribution ``lossreg-cauchy``,
    package ``lossreg_cauchy`` and loss ``cauchy``. Raises PluginError for a name that
    cannot be a distribution or a loss name.
    """
    slug = str(name).strip().lower().replace(" ", "-")
    if slug.startswith(("lossreg-", "lossreg_")):
        slug = slug[len("lossreg-"):]
    if not _SLUG_RE.match(slug):
        raise PluginError(f"plugin name {name!r} must start with a letter and contain only "
                          f"letters, digits, '-' and '_' (e.g. 'cauchy' or 'my-losses')")
    loss = loss_name if loss_name is not None else slug.replace("-", "_")
    if not _LOSS_RE.match(loss):
        raise PluginError(f"loss name {loss!r} must match {_LOSS_RE.pattern}")
    return {"dist": f"lossreg-{slug}", "package": f"lossreg_{slug.replace('-', '_')}",
            "loss": loss, "entry": slug.replace("-", "_")}


def _check_free(loss: str) -> None:
    """Refuse a loss name already taken by a built-in or an installed plugin."""
    from .registry import default_registry

    registry = default_registry()
    if loss in registry:
        owner = registry.spec(loss)
        raise PluginError(f"loss name {loss!r} is taken by {owner.name!r} from "
                          f"{owner.source}; choose another name (or --loss-name)")


def new_plugin(name: str, directory: str | pathlib.Path = ".", *, loss_name: str | None = None,
               force: bool = False, check_name: bool = True) -> pathlib.Path:
    """Write the distribution ``lossreg-<name>`` under ``directory``; return its folder.

    Raises PluginError for an unusable or taken name (``check_name=False`` skips the
    lookup in the installed registry) and FileExistsError when the folder exists and is
    not empty, unless ``force``.
    """
    names = plugin_names(name, loss_name)
    if check_name:
        _check_free(names["loss"])
    root = pathlib.Path(directory) / names["dist"]
    if root.exists() and any(root.iterdir()) and not force:
        raise FileExistsError(f"{root} exists and is not empty (use --force to overwrite)")
    files = {
        "pyproject.toml": _PYPROJECT,
        "README.md": _README,
        ".gitignore": "build/\ndist/\n*.egg-info/\n__pycache__/\n",
        f"src/{names['package']}/__init__.py": _INIT,
        f"src/{names['package']}/losses.py": _LOSSES,
        f"tests/test_{names['loss']}.py": _TESTS,
    }
    for relative, template in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(_fill(template, names), encoding="utf-8")
    return root


def _fill(template: str, names: dict[str, str]) -> str:
    from . import __version__

    text = template
    for key, value in (("__DIST__", names["dist"]), ("__PKG__", names["package"]),
                       ("__LOSS__", names["loss"]), ("__ENTRY__", names["entry"]),
                       ("__LOSSREG_VERSION__", __version__)):
        text = text.replace(key, value)
    return text.lstrip("\n")


# -- command line ------------------------------------------------------------------------------

def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Arguments of ``lossreg new-plugin``."""
    parser.add_argument("name", help="plugin name, e.g. 'cauchy' (gives lossreg-cauchy)")
    parser.add_argument("-o", "--output", default=".", metavar="DIR",
                        help="folder to create the distribution in (default: .)")
    parser.add_argument("--loss-name", default=None,
                        help="name of the generated loss (default: derived from NAME)")
    parser.add_argument("--force", action="store_true",
                        help="write into an existing, non-empty folder")
    return parser


def run(args: argparse.Namespace) -> int:
    """Create the distribution; print where and what to do next. 0 on success, 1 on error."""
    try:
        root = new_plugin(args.name, args.output, loss_name=getattr(args, "loss_name", None),
                          force=getattr(args, "force", False))
    except (PluginError, FileExistsError, OSError) as exc:
        print(f"lossreg new-plugin: error: {exc}", file=sys.stderr)
        return 1
    names = plugin_names(args.name, getattr(args, "loss_name", None))
    print(f"created {root}")
    print(f"next:\n  cd {root}\n  pip install -e \".[test]\"\n  pytest\n"
          f"  lossreg show {names['loss']}\n"
          f"then edit src/{names['package']}/losses.py (see docs/plugins.md).")
    return 0


# -- templates ---------------------------------------------------------------------------------

_PYPROJECT = '''
[build-system]
requires = ["setuptools>=64"]
build-backend = "setuptools.build_meta"

[project]
name = "__DIST__"
version = "0.1.0"
description = "The __LOSS__ loss for lossreg"
readme = "README.md"
requires-python = ">=3.10"
license = { text = "MIT" }
dependencies = ["lossreg>=__LOSSREG_VERSION__", "numba>=0.61", "numpy>=1.24"]

[project.optional-dependencies]
test = ["pytest>=7"]

# lossreg finds the plugin through this entry point: group "lossreg", any name, the value
# is the module holding the @lossreg.hookimpl register_losses function.
[project.entry-points.lossreg]
__ENTRY__ = "__PKG__.losses"

[tool.setuptools.packages.find]
where = ["src"]

[tool.pytest.ini_options]
testpaths = ["tests"]
'''

_INIT = '''
"""__DIST__: the __LOSS__ loss for lossreg (registered from ``__PKG__.losses``)."""

__version__ = "0.1.0"
'''

_LOSSES = '''
"""The __LOSS__ loss, registered with lossreg through the ``lossreg`` entry point.

Generated by ``lossreg new-plugin`` as a starting point: the Cauchy (Lorentzian) loss
``c**2 / 2 * log(1 + (r / c)**2)`` with r = y_pred - y_true, a robust loss whose gradient
``r / (1 + (r / c)**2)`` fades for outliers. Replace the element function, the reference,
the domains and the metadata with your loss; ``tests/`` runs lossreg's conformance kit
on whatever you register.
"""

from __future__ import annotations

import math

import numpy as np

import lossreg
from lossreg.kernels import elementwise_kernels, njit, vmath


@njit(error_model="numpy")
def __LOSS___elem(t, p, c):
    """(loss, d loss / d y_pred, d2 loss / d y_pred2) of one element, in float64 whatever
    the input dtype (return only the first two and the loss simply has no Hessian).

    Hyperparameters are positional arguments (never globals), so one compiled kernel
    serves every setting. No fastmath, no exceptions: lossreg checks the domains.
    vmath.log1p (not math.log1p) keeps the kernel loop vectorizable; the "numpy" error
    model drops the ZeroDivisionError branch of r / c.
    """
    r = np.float64(p) - np.float64(t)
    z = r / c
    q = 1.0 + z * z
    return 0.5 * c * c * vmath.log1p(z * z), r / q, (1.0 - z * z) / (q * q)


def __LOSS___reference(y_true, y_pred, c=1.0):
    """Plain NumPy per-element values (float64): the ground truth of the conformance kit."""
    r = np.asarray(y_pred, np.float64) - np.asarray(y_true, np.float64)
    return 0.5 * c * c * np.log1p((r / c) ** 2)


def __LOSS___reference_hessian(y_true, y_pred, c=1.0):
    """Plain NumPy per-element second derivatives: the kit checks the Hessian kernel."""
    z2 = ((np.asarray(y_pred, np.float64) - np.asarray(y_true, np.float64)) / c) ** 2
    return (1.0 - z2) / (1.0 + z2) ** 2


def specs() -> list[lossreg.LossSpec]:
    """The losses of this plugin (kernels compile lazily, on first call)."""
    return [lossreg.LossSpec(
        name="__LOSS__",
        family="robust",
        task="regression",
        reference=__LOSS___reference,
        reference_hessian=__LOSS___reference_hessian,
        kernels=elementwise_kernels(__LOSS___elem, style="blocks"),   # blocks: vmath losses
        hyperparameters={"c": lossreg.Hyperparameter(
            float, 1.0, lossreg.Interval(0.0, math.inf, closed_low=False),
            "scale: residuals well above c count logarithmically")},
        domains={"y_true": lossreg.Domain(doc="targets, finite reals"),
                 "y_pred": lossreg.Domain(doc="predictions, finite reals")},
        summary="Cauchy (Lorentzian) loss: quadratic near 0, logarithmic for outliers.",
        formula=r"\\ell(y, \\hat y) = \\frac{c^2}{2} \\log\\Bigl(1 + \\bigl(\\tfrac{\\hat y - y}{c}\\bigr)^2\\Bigr)",
        properties={"robust", "smooth", "nonnegative", "nonconvex"},
        notes="Not convex: start from a least-squares fit. Black & Anandan 1996.",
    )]


@lossreg.hookimpl
def register_losses(register):
    """The lossreg hook: register each spec (a failure here is recorded, never fatal)."""
    for spec in specs():
        register(spec)
'''

_TESTS = '''
"""Tests of __DIST__: lossreg's conformance kit plus the loss's own properties."""

import numpy as np
import pytest

import lossreg
from lossreg.testing import parametrize_checks


# One test per conformance check: reference vs kernels (float64, float32), finite-
# difference gradients, reductions, sample weights, out=, domains, metadata, config.
@pytest.mark.parametrize("check", parametrize_checks("__LOSS__"))
def test_conformance(check):
    check()


def test_found_through_the_entry_point():
    assert lossreg.spec("__LOSS__").source.startswith("__DIST__ ")
    assert not [e for e in lossreg.plugin_errors() if "__DIST__" in e.source]


def test_quadratic_near_zero_and_bounded_gradient():
    loss = lossreg.get("__LOSS__", c=2.0, reduction="none")
    r = np.array([1e-4, -2e-4])
    np.testing.assert_allclose(loss(np.zeros(2), r), 0.5 * r * r, rtol=1e-6)
    grad = loss.grad(np.zeros(3), np.array([2.0, -2.0, 1e6]))
    np.testing.assert_allclose(grad[:2], [1.0, -1.0])          # the maximum, at |r| = c
    assert abs(grad[2]) < 1e-5                                 # outliers barely pull
'''

_README = '''
# __DIST__

The `__LOSS__` loss for [lossreg](https://pypi.org/project/lossreg/), as a plugin.

```
pip install __DIST__            # or, from this folder: pip install -e ".[test]"
```

```python
import lossreg
loss = lossreg.get("__LOSS__", c=1.0)
value, grad = loss.value_and_grad(y_true, y_pred)
```

lossreg finds the loss through the entry point in `pyproject.toml`
(`[project.entry-points.lossreg]`); `lossreg list` shows it with its source
`__DIST__ <version>`.

## Develop

```
pip install -e ".[test]"
pytest                          # lossreg's conformance kit + this loss's own tests
lossreg check __LOSS__          # the same kit from the command line
```

Edit `src/__PKG__/losses.py`: the element function (value and derivative), the
NumPy reference, the domains and the metadata.
'''
