"""MkDocs hooks that generate lossreg's catalogue, figures and computed numbers.

Nothing on the site is copied by hand from the code:

* ``on_config`` expands the "Catalogue" nav entry into one page per registered loss
  (``lossreg.names()``, so plugin losses appear too, grouped by family) and drops nav
  entries for optional pages other people own (plugins.md, determinism.md) when absent.
* ``on_files`` adds generated pages (``catalogue/*.md``) and figures
  (``assets/plots/*.png``, drawn by ``lossreg.plotting``) and copies the benchmark
  figure ``benchmarks/results/latest.png`` when it exists.
* ``on_page_markdown`` replaces markers written on a line of their own:
  ``<!-- lossreg:KEY -->`` inserts the markdown that generator KEY computes, and
  ``<!-- lossreg:run -->`` just before a ```` ```python ```` block executes the block
  (a namespace per page) and writes each top-level expression's value under it as a
  comment. An unknown KEY, or an example raising anything but a lossreg.LossError,
  stops the build.
"""

from __future__ import annotations

import ast
import contextlib
import io
import json
import logging
import math
import os
import pathlib
import posixpath
import re
import tempfile
import textwrap
from typing import Any, Callable

import numpy as np

log = logging.getLogger("mkdocs.hooks.lossreg")

ROOT = pathlib.Path(__file__).resolve().parents[2]
OPTIONAL_PAGES = ("plugins.md", "determinism.md")
CATALOGUE_INDEX = "catalogue/index.md"
BENCH_JSON = ROOT / "benchmarks" / "results" / "latest.json"
BENCH_PNG = ROOT / "benchmarks" / "results" / "latest.png"
BENCH_PNG_URI = "assets/bench/latest.png"
MARKER = re.compile(r"^<!--\s*lossreg:([a-z0-9_-]+)\s*-->[ \t]*$", re.M)
RUN_BLOCK = re.compile(r"^<!--\s*lossreg:run\s*-->[ \t]*\n```python\n(.*?)\n```[ \t]*$",
                       re.M | re.S)

_cache: dict[str, Any] = {}


# -- small formatting helpers -------------------------------------------------------------

def num(x: Any, digits: int = 6) -> str:
    """A float shown with ``digits`` significant digits (inf and nan spelled out)."""
    x = float(x)
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return f"{x:.{digits}g}"


def show(value: Any) -> str:
    """Readable value for example output: short floats, numpy arrays as lists."""
    if isinstance(value, (bool, np.bool_)) or value is None:
        return repr(value)
    if isinstance(value, (float, np.floating)):
        short = repr(float(value))
        return short if len(short) <= 10 else num(value)
    if isinstance(value, np.ndarray):
        with np.printoptions(precision=6, suppress=True, floatmode="maxprec"):
            return "array(" + np.array2string(value, separator=", ", prefix="array(") + ")"
    if isinstance(value, (list, tuple)) and value and all(
            isinstance(v, (float, np.floating, np.ndarray)) for v in value):
        inner = ", ".join(show(v) for v in value)
        return f"({inner})" if isinstance(value, tuple) else f"[{inner}]"
    return repr(value)


def table(header: list[str], rows: list[list[Any]]) -> str:
    def cell(v: Any) -> str:
        return str(v).replace("|", "\\|").replace("\n", " ")
    lines = ["| " + " | ".join(cell(h) for h in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def missing(*names: str) -> str | None:
    """An admonition when some losses a section needs are not registered in this build."""
    import lossreg

    absent = [n for n in names if n not in lossreg.default_registry()]
    if not absent:
        return None
    return ("!!! note \"Not available in this build\"\n    This section needs "
            + ", ".join(f"`{n}`" for n in absent)
            + ", which this installation of lossreg does not register.\n")


def rel(page_uri: str, target_uri: str) -> str:
    """Link from the page with source ``page_uri`` to the file ``target_uri``."""
    return posixpath.relpath(target_uri, posixpath.dirname(page_uri) or ".")


# -- figures --------------------------------------------------------------------------------

def _plot_png(losses: list, **kwargs: Any) -> bytes:
    from lossreg.plotting import plot_losses

    with tempfile.TemporaryDirectory() as tmp:
        path = plot_losses(losses, pathlib.Path(tmp) / "plot.png", **kwargs)
        return path.read_bytes()


def guide_figures() -> dict[str, Callable[[], bytes]]:
    """Figures of the guide pages: uri -> function drawing it (only when losses exist)."""
    import lossreg

    figs: dict[str, Callable[[], bytes]] = {
        "assets/plots/guide-regression.png": lambda: _plot_png(
            ["mse", "mae", lossreg.get("huber", delta=1.0), lossreg.get("huber", delta=2.0),
             lossreg.get("smooth_l1", beta=2.0)],
            title="Regression losses and their gradients (y_true = 0)"),
    }
    if not missing("binary_cross_entropy", "focal"):
        figs["assets/plots/guide-focal.png"] = lambda: _plot_png(
            ["binary_cross_entropy", lossreg.get("binary_cross_entropy", alpha=0.75),
             lossreg.get("focal", alpha=None, gamma=2.0), lossreg.get("focal")],
            title="BCE, alpha-weighted BCE and focal loss on probabilities")
    if not missing("kl_div", "js_div", "cross_entropy"):
        figs["assets/plots/guide-distributions.png"] = lambda: _plot_png(
            ["kl_div", "js_div", "cross_entropy"],
            title="KL, JS and cross-entropy on a 2-class row (1 - q, q)")
    return figs


# -- the catalogue ----------------------------------------------------------------------------

def _example_inputs(spec) -> tuple[Any, Any]:
    """Small valid inputs for a loss, rounded for reading; verified by calling the loss."""
    import lossreg

    rng = np.random.default_rng(7)
    shape_n = 4 if spec.layout == "elementwise" else 2
    y_true, y_pred = spec.sample(rng, shape_n)
    loss = lossreg.Loss(spec)

    def tidy(arr: np.ndarray, domain) -> np.ndarray:
        if arr.dtype.kind in "iub":
            return arr
        out = np.round(arr.astype(np.float64), 2)
        if domain.row_sum is not None and out.ndim == 2:
            out[:, -1] = np.round(domain.row_sum - out[:, :-1].sum(axis=1), 2)
        return out

    rounded = (tidy(y_true, spec.domain("y_true")), tidy(y_pred, spec.domain("y_pred")))
    try:
        loss.value_and_grad(*rounded)   # the kernel the example uses: one compile, not two
        return rounded
    except lossreg.LossError:
        return y_true, y_pred


def _literal(arr: np.ndarray) -> str:
    if arr.dtype.kind in "iub":
        return repr(arr.tolist())
    return repr(np.round(arr.astype(np.float64), 12).tolist())


def catalogue_example(spec) -> str:
    import lossreg

    y_true, y_pred = _example_inputs(spec)
    hyper = ", ".join(f"{k}={v!r}" for k, v in spec.defaults().items() if v is not None)
    call = f'lossreg.get("{spec.name}"' + (f", {hyper}" if hyper else "") + ")"
    code = (f"import lossreg\n\nloss = {call}\ny_true = {_literal(y_true)}\n"
            f"y_pred = {_literal(y_pred)}\n"
            "value, grad = loss.value_and_grad(y_true, y_pred)   # loss(...) and loss.grad(...)\n"
            "value\ngrad\n")
    if spec.has_hessian:
        code += "loss.hessian(y_true, y_pred)   # diagonal of the Hessian of the mean\n"
    if "none" in spec.reductions:
        code += (f'lossreg.get("{spec.name}", reduction="none")(y_true, y_pred)'
                 "   # per element or per row\n")
    return "```python\n" + run_python(code, {"lossreg": lossreg}) + "\n```\n"


def catalogue_page(spec) -> str:
    hp_rows = [[f"`{h.name}`", h.type_name, f"`{h.default!r}`",
                str(h.interval) if h.interval is not None else "—",
                "yes" if h.nullable else "no", h.doc or ""]
               for h in spec.hyperparameters.values()]
    dom_rows = []
    for arg in ("y_true", "y_pred"):
        d = spec.domain(arg)
        dom_rows.append([f"`{arg}`", str(d.interval), "yes" if d.allow_nan else "no",
                         "yes" if d.integer else "no",
                         "—" if d.row_sum is None else f"{num(d.row_sum)} ± {d.row_sum_tol:g}",
                         d.doc or ""])
    aliases = ", ".join(f"`{a}`" for a in spec.aliases) or "none"
    props = ", ".join(f"`{p}`" for p in sorted(spec.properties)) or "none declared"
    layout = ("element-wise (any shape, both arguments the same shape)"
              if spec.layout == "elementwise" else "rows (last axis holds the classes)")
    parts = [
        f"# {spec.name}\n",
        f"{spec.summary or '*(no summary)*'}\n",
        table(["attribute", "value"], [
            ["family", f"`{spec.family}`"], ["task", f"`{spec.task}`"], ["layout", layout],
            ["aliases", aliases], ["reductions", ", ".join(f'`{r}`' for r in spec.reductions)],
            ["Hessian", "yes: `loss.hessian`, `loss.grad_hess` (exact diagonal)"
             if spec.has_hessian else "no (the kernels give no second derivatives)"],
            ["properties", props], ["source", spec.source]]),
        "\n## Formula\n",
        (f"$$\n{spec.formula}\n$$\n" if spec.formula else "*(no formula given)*\n"),
        "## Hyperparameters\n",
        (table(["name", "type", "default", "valid interval", "None allowed", "meaning"], hp_rows)
         if hp_rows else "None.") + "\n",
        "## Input domains\n",
        table(["argument", "interval", "NaN", "integer", "row sum", "note"], dom_rows) + "\n",
    ]
    if spec.notes:
        parts += ["## Notes\n", f"{spec.notes}\n"]
    parts += ["## Loss and gradient\n", _catalogue_plot(spec), "## Example\n",
              catalogue_example(spec),
              "## Metadata\n",
              "??? info \"`lossreg.spec(\"" + spec.name + "\").to_dict()`\"\n"
              "    ```json\n" + textwrap.indent(json.dumps(spec.to_dict(), indent=2), "    ")
              + "\n    ```\n"]
    return "\n".join(parts)


def _catalogue_plot(spec) -> str:
    status = _cache.get("plots", {}).get(spec.name)
    if status is None or isinstance(status, str):
        why = status or "not generated"
        return f"!!! note \"No automatic plot\"\n    {why}\n"
    from lossreg.plotting import loss_curves

    curves = loss_curves(spec.name, points=5)
    slices = ", ".join(c.slice for c in curves if c.slice) or "y_true fixed at 0"
    return (f"![{spec.name}: loss and gradient](../assets/plots/{spec.name}.png)\n\n"
            f"Default hyperparameters. Horizontal axis: {curves[0].xlabel}; slices: {slices}. "
            "The right panel is the slope of the left one along that axis.\n")


def catalogue_index(page_uri: str = CATALOGUE_INDEX) -> str:
    import lossreg

    reg = lossreg.default_registry()
    out = ["# Catalogue\n",
           f"Every loss registered in this build: {len(reg)} in "
           f"{len({s.family for s in reg.specs()})} families. Each page is generated from "
           "the loss's `LossSpec` (`lossreg.spec(name)`) when the site is built, so plugin "
           "losses installed at build time are listed too.\n"]
    for family in sorted({s.family for s in reg.specs()}):
        rows = []
        for s in reg.specs():
            if s.family != family:
                continue
            hps = ", ".join(f"`{h.name}={h.default!r}`" for h in s.hyperparameters.values())
            rows.append([f"[`{s.name}`]({rel(page_uri, f'catalogue/{s.name}.md')})",
                         ", ".join(f"`{a}`" for a in s.aliases) or "—", s.task,
                         hps or "—", s.summary])
        out += [f"\n## {_family_title(family)}\n", table(["name", "aliases", "task", "hyperparameters",
                                            "summary"], rows)]
    return "\n".join(out) + "\n"


# -- executable examples ----------------------------------------------------------------------

def run_python(code: str, namespace: dict) -> str:
    """Run ``code``; under each top-level expression write its value as ``# -> value``.

    A lossreg.LossError raised by an expression is shown as ``# raises Name: message``;
    any other exception propagates and fails the build.
    """
    import lossreg

    tree = ast.parse(code)
    lines = code.rstrip("\n").split("\n")
    after: dict[int, list[str]] = {}
    for stmt in tree.body:
        if isinstance(stmt, ast.Expr):
            expr = compile(ast.Expression(stmt.value), "<docs example>", "eval")
            try:
                with contextlib.redirect_stdout(io.StringIO()) as printed:
                    value = eval(expr, namespace)  # noqa: S307 - our own docs examples
                text = printed.getvalue().rstrip("\n")
                if value is None:
                    if not text:
                        continue
                    shown = text
                else:
                    shown = show(value)
            except lossreg.LossError as exc:
                shown = f"raises {type(exc).__name__}: {exc}"
            after[stmt.end_lineno] = [f"# -> {shown.splitlines()[0]}"] + [
                f"#    {s}" for s in shown.splitlines()[1:]]   # aligned under "# -> "
        else:
            with contextlib.redirect_stdout(io.StringIO()):
                exec(compile(ast.Module([stmt], []), "<docs example>", "exec"), namespace)  # noqa: S102
    out = []
    for i, line in enumerate(lines, start=1):
        out.append(line)
        out.extend(after.get(i, []))
    return "\n".join(out)


def run_blocks(markdown: str, page_uri: str) -> str:
    namespace: dict[str, Any] = {"__name__": f"docs:{page_uri}"}

    def repl(m: re.Match) -> str:
        return "```python\n" + run_python(m.group(1), namespace) + "\n```"

    return RUN_BLOCK.sub(repl, markdown)


# -- computed sections of the guide -----------------------------------------------------------

def _fit_constant(loss, y: np.ndarray) -> float:
    """argmin_c loss(y, c) for a convex loss, by bisection on its (monotone) gradient."""
    lo, hi = float(y.min()), float(y.max())
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        g = float(np.sum(loss.grad(y, np.full_like(y, mid))))
        if g > 0:
            hi = mid
        elif g < 0:
            lo = mid
        else:
            return mid
    return 0.5 * (lo + hi)


def gen_regression_outliers(page_uri: str) -> str:
    import lossreg

    rng = np.random.default_rng(2024)
    inliers = np.round(10.0 + rng.normal(0.0, 1.0, 10), 2)
    y = np.concatenate([inliers, [60.0]])
    choices = [("mse", {}), ("mae", {}), ("huber", {"delta": 1.0}),
               ("smooth_l1", {"beta": 1.0}), ("huber", {"delta": 5.0})]
    rows = []
    centre = float(np.mean(inliers))
    for name, hyper in choices:
        loss = lossreg.get(name, **hyper)
        c = _fit_constant(loss, y)
        g = np.abs(loss.grad(y, np.full_like(y, centre)))
        share = g[-1] / g.sum() if g.sum() > 0 else 0.0
        label = name + (f"({', '.join(f'{k}={v:g}' for k, v in hyper.items())})" if hyper else "")
        rows.append([f"`{label}`", num(c, 4), num(c - centre, 3), f"{100 * share:.0f}%"])
    data = ", ".join(f"{v:g}" for v in inliers)
    return (f"Ten inliers ({data}; mean {num(centre, 4)}, median "
            f"{num(np.median(inliers), 4)}) and one outlier at 60. Fitting one constant "
            "prediction `c` to all eleven points by minimising each loss (bisection on "
            "`loss.grad`):\n\n"
            + table(["loss", "best constant c", "c − inlier mean",
                     "outlier's share of |gradient| at the inlier mean"], rows)
            + "\n\nMSE is pulled to the mean of all eleven points; MAE lands on the median; "
              "Huber and Smooth L1 with the same threshold find the same constant (one is a "
              "scaled copy of the other), close to the inliers, and a larger `delta` moves "
              "Huber towards MSE.\n")


def gen_regression_plot(page_uri: str) -> str:
    return (f"![MSE, MAE, Huber and Smooth L1]({rel(page_uri, 'assets/plots/guide-regression.png')})\n")


def gen_imbalance(page_uri: str) -> str:
    import lossreg

    note = missing("binary_cross_entropy", "focal")
    if note:
        return note
    cases = [("easy negative", 0.0, 0.05), ("hard negative", 0.0, 0.6),
             ("easy positive", 1.0, 0.9), ("hard positive", 1.0, 0.3)]
    losses = [("BCE", lossreg.get("binary_cross_entropy", reduction="none")),
              ("BCE, alpha=0.75", lossreg.get("binary_cross_entropy", alpha=0.75,
                                               reduction="none")),
              ("focal, gamma=2, alpha=None", lossreg.get("focal", alpha=None, gamma=2.0,
                                                         reduction="none")),
              ("focal (defaults: alpha=0.25, gamma=2)", lossreg.get("focal", reduction="none"))]
    t = np.array([c[1] for c in cases])
    p = np.array([c[2] for c in cases])
    values = [l(t, p) for _, l in losses]
    rows = [[f"{name} (y={int(y)}, p={pp:g})"] + [num(v[i], 3) for v in values]
            for i, (name, y, pp) in enumerate(cases)]
    rows.append(["hard / easy negative"] + [f"{v[1] / v[0]:.0f}×" for v in values])
    # a batch: 990 easy negatives, 10 hard positives
    n_neg, n_pos = 990, 10
    tb = np.concatenate([np.zeros(n_neg), np.ones(n_pos)])
    pb = np.concatenate([np.full(n_neg, 0.05), np.full(n_pos, 0.3)])
    share_rows = []
    for name, l in losses:
        per = l(tb, pb)
        g = np.abs(l.grad(tb, pb))
        share_rows.append([name, f"{100 * per[:n_neg].sum() / per.sum():.0f}%",
                           f"{100 * g[:n_neg].sum() / g.sum():.0f}%"])
    return ("Per-example loss (`reduction=\"none\"`):\n\n"
            + table(["example"] + [n for n, _ in losses], rows)
            + f"\n\nA batch of {n_neg} easy negatives (p = 0.05) and {n_pos} hard positives "
              "(p = 0.3): how much of the total loss and of the total gradient magnitude the "
              "easy negatives account for.\n\n"
            + table(["loss", "easy negatives' share of the loss",
                     "share of |gradient|"], share_rows) + "\n")


def _percent(fraction: float) -> str:
    pct = 100.0 * float(fraction)
    if pct >= 1.0:
        return f"{pct:.0f}%"
    return f"{pct:.2g}%" if pct >= 0.001 else "< 0.001%"


def gen_focal_factor(page_uri: str) -> str:
    """Share of BCE that focal loss (alpha=None) keeps, computed from the two losses."""
    import lossreg

    note = missing("binary_cross_entropy", "focal")
    if note:
        return note
    p_t = np.array([0.3, 0.5, 0.9, 0.99])
    y = np.ones_like(p_t)
    bce = lossreg.get("binary_cross_entropy", reduction="none")(y, p_t)
    rows = []
    for gamma in (0.5, 1.0, 2.0, 5.0):
        focal = lossreg.get("focal", alpha=None, gamma=gamma, reduction="none")(y, p_t)
        rows.append([f"{gamma:g}"] + [_percent(f / b) for f, b in zip(focal, bce)])
    return ("\n" + table(["γ"] + [f"p_t = {v:g}" for v in p_t], rows)
            + "\n\n(focal loss with `alpha=None` as a percentage of BCE, both computed by "
              "lossreg.)\n")


def gen_focal_plot(page_uri: str) -> str:
    return missing("binary_cross_entropy", "focal") or (
        f"![BCE vs focal]({rel(page_uri, 'assets/plots/guide-focal.png')})\n")


def gen_distributions(page_uri: str) -> str:
    import lossreg

    note = missing("kl_div", "js_div", "cross_entropy")
    if note:
        return note
    kl, js, ce = (lossreg.get(n) for n in ("kl_div", "js_div", "cross_entropy"))
    p = np.array([0.7, 0.2, 0.1])
    q = np.array([0.5, 0.3, 0.2])
    z = np.array([0.8, 0.2, 0.0])   # q with a zero where p > 0

    def attempt(f, a, b) -> str:
        try:
            return num(f(a, b), 4)
        except lossreg.LossError as exc:
            return f"{type(exc).__name__}"

    rows = [
        ["KL(p ‖ q) = `kl_div(p, q)`", attempt(kl, p, q), attempt(kl, p, z)],
        ["KL(q ‖ p) = `kl_div(q, p)`", attempt(kl, q, p), attempt(kl, z, p)],
        ["JS(p, q) = `js_div(p, q)`", attempt(js, p, q), attempt(js, p, z)],
        ["JS(q, p) = `js_div(q, p)`", attempt(js, q, p), attempt(js, z, p)],
        ["H(p, q) = `cross_entropy(p, q)`", attempt(ce, p, q), attempt(ce, p, z)],
        ["H(p) = `cross_entropy(p, p)`", attempt(ce, p, p), attempt(ce, p, p)],
    ]
    return (f"With p = {p.tolist()} (the target, `y_true`), q = {q.tolist()} and "
            f"q₀ = {z.tolist()} (a prediction that gives class 3 no mass):\n\n"
            + table(["quantity", "q", "q₀"], rows)
            + f"\n\nln 2 = {num(math.log(2), 4)} bounds JS. Cross-entropy minus entropy is "
              f"KL: {attempt(ce, p, q)} − {attempt(ce, p, p)} = "
              f"{num(ce(p, q) - ce(p, p), 4)}.\n")


def gen_distributions_plot(page_uri: str) -> str:
    return missing("kl_div", "js_div", "cross_entropy") or (
        f"![KL, JS, CE]({rel(page_uri, 'assets/plots/guide-distributions.png')})\n")


def gen_pitfall_kl(page_uri: str) -> str:
    import lossreg

    note = missing("kl_div")
    if note:
        return note
    rng = np.random.default_rng(3)
    n, c = 8, 10
    p = rng.dirichlet(np.ones(c), n)
    q = rng.dirichlet(np.ones(c), n)
    total = lossreg.get("kl_div", reduction="sum")(p, q)
    mean = lossreg.get("kl_div")(p, q)
    return (f"For a batch of n = {n} rows with C = {c} classes (random Dirichlet rows): "
            f"the summed KL is {num(total, 5)}; lossreg's `mean` is the mean over rows, "
            f"{num(mean, 5)} (PyTorch's `batchmean`); an element-wise mean as in PyTorch's "
            f"`reduction=\"mean\"` gives {num(total / (n * c), 5)}, {c} times smaller, and "
            "no longer the KL divergence of anything.\n")


def gen_pitfall_logits(page_uri: str) -> str:
    import lossreg

    note = missing("binary_cross_entropy", "binary_cross_entropy_with_logits")
    if note:
        return note
    y = np.array([0.0, 1.0, 0.0])
    z = np.array([-2.0, 0.5, 40.0])
    bce = lossreg.get("binary_cross_entropy", reduction="none")
    bcel = lossreg.get("binary_cross_entropy_with_logits", reduction="none")
    try:
        bce(y, z)
        err = "no error"
    except lossreg.LossError as exc:
        err = f"{type(exc).__name__}: {exc}"
    sig = 1.0 / (1.0 + np.exp(-z))
    via_p = bce(y, sig)
    direct = bcel(y, z)
    rows = [[f"{zz:g}", f"{yy:g}", repr(float(s)), num(a, 6), num(b, 6)]
            for zz, yy, s, a, b in zip(z, y, sig, via_p, direct)]
    return (f"Logits z = {z.tolist()} with targets {y.tolist()}. Passing the logits to "
            f"`binary_cross_entropy` is refused:\n\n```\n{err}\n```\n\n"
            "Squashing them first works until the sigmoid rounds to exactly 1.0 in float64:\n\n"
            + table(["z", "y", "sigmoid(z) in float64", "`binary_cross_entropy(y, sigmoid(z))`",
                     "`binary_cross_entropy_with_logits(y, z)`"], rows)
            + "\n\nThe probability path loses the information (log(1 − 1.0) is clamped at "
              "−100, as in PyTorch); the logit path computes "
              "max(z, 0) − z·y + log1p(exp(−|z|)) and stays exact.\n")


def gen_pitfall_smooth_l1(page_uri: str) -> str:
    import lossreg

    r = np.linspace(-10.0, 10.0, 2001)
    t = np.zeros_like(r)
    rows = []
    for b in (0.5, 1.0, 2.0):
        s = lossreg.get("smooth_l1", beta=b, reduction="none")
        h = lossreg.get("huber", delta=b, reduction="none")
        diff = np.max(np.abs(s(t, r) - h(t, r) / b))
        at10 = (np.zeros(1), np.array([10.0]))
        rows.append([f"{b:g}", num(diff, 2), num(s.grad(*at10)[0]), num(h.grad(*at10)[0])])
    l1 = lossreg.get("smooth_l1", beta=0.0, reduction="none")
    mae = lossreg.get("mae", reduction="none")
    d0 = np.max(np.abs(l1(t, r) - mae(t, r)))
    return (table(["β = δ", "max |smooth_l1(β) − huber(δ)/δ| on r ∈ [−10, 10]",
                   "smooth_l1 slope at r = 10", "huber slope at r = 10"], rows)
            + f"\n\nWith β = 0, Smooth L1 is MAE (largest difference {num(d0, 2)}).\n")


def gen_pitfall_order(page_uri: str) -> str:
    import lossreg

    mse = lossreg.get("mse")
    a, b = np.array([0.0, 0.0]), np.array([1.0, 3.0])
    out = (f"`mse([0, 0], [1, 3])` = {num(mse(a, b))} and `mse([1, 3], [0, 0])` = "
           f"{num(mse(b, a))}: the value is symmetric, but the gradient is taken with respect "
           f"to the second argument: {show(mse.grad(a, b))} versus {show(mse.grad(b, a))}.")
    if not missing("kl_div"):
        kl = lossreg.get("kl_div")
        p, q = np.array([0.7, 0.2, 0.1]), np.array([0.5, 0.3, 0.2])
        out += (f" Asymmetric losses change value too: `kl_div(p, q)` = {num(kl(p, q), 4)} "
                f"but `kl_div(q, p)` = {num(kl(q, p), 4)} for the p and q above.")
    return out + "\n"


# -- performance ---------------------------------------------------------------------------

def _flat(d: dict, prefix: str = "") -> list[tuple[str, Any]]:
    out = []
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out += _flat(v, key + ".")
        else:
            out.append((key, v))
    return out


def _cell(v: Any) -> str:
    if isinstance(v, float):
        return num(v, 4)
    if isinstance(v, (list, tuple)):
        return ", ".join(_cell(x) for x in v)
    return "—" if v is None else str(v)


def _seconds(t: Any) -> str:
    if not isinstance(t, (int, float)) or t is None:
        return "—"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if t >= scale:
            return f"{t / scale:.3g} {unit}"
    return f"{t * 1e9:.3g} ns"


def _ratio(a: Any, b: Any) -> str:
    ok = all(isinstance(v, (int, float)) and v > 0 for v in (a, b))
    return f"{a / b:.2f}" if ok else "—"


def _bench_tables(data: dict) -> list[str]:
    """Tables for the results `lossreg bench --json` writes (machine, rows, targets)."""
    out = ["\n### Measured on\n",
           table(["key", "value"], [[k, _cell(v)] for k, v in _flat(data["machine"])])]
    if isinstance(data.get("config"), dict):
        out += ["\n### Settings\n",
                table(["key", "value"], [[k, _cell(v)] for k, v in _flat(data["config"])])]
    if isinstance(data.get("targets"), list) and data["targets"]:
        rows = [["skipped" if t.get("passed") is None else "pass" if t.get("passed") else "FAIL",
                 t.get("target", ""), t.get("detail", "")] for t in data["targets"]]
        out += ["\n### Targets\n", table(["result", "target", "measured"], rows)]
    if isinstance(data.get("bandwidth"), dict) and data["bandwidth"]:
        out += ["\n### Bandwidth ceiling\n",
                "A parallel `out[i] = a[i] + b[i]` on the same machine, per dtype and size:\n",
                table(["dtype / N", "GB/s"], [[k, f"{v / 1e9:.1f}" if isinstance(v, (int, float))
                                               else _cell(v)] for k, v in data["bandwidth"].items()])]
    rows = []
    for r in data["rows"]:
        ours = r.get("lossreg", {})
        op = "value_and_grad"
        rows.append([f"`{r.get('loss')}`", r.get("dtype", ""), f"{r.get('n', 0):,}",
                     _seconds(ours.get(op)),
                     _ratio(r.get("ceiling", {}).get(op), ours.get(op)),
                     _ratio(r.get("numpy", {}).get(op) or r.get("numpy", {}).get("value"),
                            ours.get(op) if r.get("numpy", {}).get(op) else ours.get("value")),
                     _ratio(r.get("torch", {}).get(op) or r.get("torch", {}).get("forward_backward"),
                            ours.get(op)),
                     _ratio(r.get("sklearn", {}).get(op), ours.get(op))])
    big = max((r.get("n", 0) for r in data["rows"]), default=0)
    largest = [row for row, r in zip(rows, data["rows"]) if r.get("n", 0) == big]
    if rows:
        header = ["loss", "dtype", "N", "lossreg", "of ceiling", "× NumPy", "× PyTorch",
                  "× scikit-learn"]
        out += ["\n### Value and gradient\n",
                "Best wall-clock time of `loss.value_and_grad(y_true, y_pred, out=g)`; the "
                "other columns are ratios, higher is better for lossreg: the fraction of the "
                "bandwidth ceiling reached (time the ceiling needs to move the same bytes / "
                "lossreg's time) and the speed-up over each library (its time / lossreg's; "
                "NumPy value only where it has no gradient). — means not measured. "
                f"At the largest size measured (N = {big:,}):\n",
                table(header, largest), "",
                f"??? note \"All {len(rows)} measurements\"\n"
                + textwrap.indent(table(header, rows), "    ")]
    bridge = [[f"`{r.get('loss')}`", r.get("dtype", ""), f"{r.get('n', 0):,}",
               _seconds(r["torch_bridge"]["value_and_grad"]),
               _ratio(r["torch_bridge"]["value_and_grad"], r.get("lossreg", {}).get("value_and_grad")),
               _ratio(r.get("torch", {}).get("value_and_grad"), r["torch_bridge"]["value_and_grad"])]
              for r in data["rows"] if r.get("torch_bridge", {}).get("value_and_grad")]
    if bridge:
        out += ["\n### Through `lossreg.torch`\n",
                "Forward and backward through `lossreg.torch.Loss` (conversions and autograd "
                "around the fused pass): its time, that time over the bare "
                "`value_and_grad`, and PyTorch's own forward+backward time over it "
                "(higher is better for lossreg):\n",
                table(["loss", "dtype", "N", "fwd+bwd", "× bare call", "× PyTorch"], bridge)]
    if isinstance(data.get("overhead"), dict):
        out += ["\n### Per-call overhead (N = 10)\n",
                table(["call", "time"], [[f"`{k}`", _seconds(v)]
                                         for k, v in data["overhead"].items()])]
    return out


def gen_benchmarks(page_uri: str) -> str:
    if not BENCH_JSON.exists():
        return ("!!! note \"No benchmark results in this build\"\n"
                "    `lossreg bench` (or `python benchmarks/run.py`; `--quick` for a short "
                "run) writes `benchmarks/results/latest.json` and "
                "`benchmarks/results/latest.png`; rebuild the site afterwards and this page "
                "shows both, with the machine they were measured on.\n")
    data = json.loads(BENCH_JSON.read_text())
    out = [f"Rendered from `benchmarks/results/latest.json` "
           f"(modified {_mtime(BENCH_JSON)}).\n"]
    if not isinstance(data, dict):
        data = {"results": data}
    if isinstance(data.get("machine"), dict) and isinstance(data.get("rows"), list):
        out += _bench_tables(data)
        if BENCH_PNG.exists():
            out += [f"\n![Benchmark figure]({rel(page_uri, BENCH_PNG_URI)})\n"]
        return "\n".join(out) + "\n"
    machine_keys = [k for k in data if k.lower() in ("machine", "environment", "env", "system",
                                                     "host", "platform")]
    for key in machine_keys:
        if isinstance(data[key], dict):
            out += [f"\n### Measured on ({key})\n",
                    table(["key", "value"], [[k, _cell(v)] for k, v in _flat(data[key])])]
    scalars = [(k, v) for k, v in data.items()
               if k not in machine_keys and not isinstance(v, (dict, list))]
    if scalars:
        out += ["\n### Run\n", table(["key", "value"], [[k, _cell(v)] for k, v in scalars])]
    for key, value in data.items():
        if key in machine_keys:
            continue
        if isinstance(value, list) and value and all(isinstance(r, dict) for r in value):
            cols: list[str] = []
            for r in value:
                for k, _ in _flat(r):
                    if k not in cols:
                        cols.append(k)
            rows = [[_cell(dict(_flat(r)).get(c)) for c in cols] for r in value]
            out += [f"\n### {key}\n", table(cols, rows)]
        elif isinstance(value, dict) and value and all(isinstance(v, dict) for v in value.values()):
            cols = []
            for v in value.values():
                for k, _ in _flat(v):
                    if k not in cols:
                        cols.append(k)
            rows = [[k] + [_cell(dict(_flat(v)).get(c)) for c in cols] for k, v in value.items()]
            out += [f"\n### {key}\n", table([""] + cols, rows)]
        elif isinstance(value, dict):
            out += [f"\n### {key}\n", table(["key", "value"], [[k, _cell(v)] for k, v in _flat(value)])]
    if BENCH_PNG.exists():
        out += [f"\n![Benchmark figure]({rel(page_uri, BENCH_PNG_URI)})\n"]
    return "\n".join(out) + "\n"


def gen_serial_threshold(page_uri: str) -> str:
    """Which losses switch to their serial kernels below how many input elements."""
    import lossreg

    groups: dict[int, list[str]] = {}
    for spec in lossreg.default_registry().specs():
        groups.setdefault(int(spec.kernels.serial_below), []).append(spec.name)
    rows = [[f"{n:,}", ", ".join(f"`{x}`" for x in names)]
            for n, names in sorted(groups.items())]
    return table(["serial below (elements)", "losses"], rows) + "\n"


def _mtime(path: pathlib.Path) -> str:
    import datetime

    ts = datetime.datetime.fromtimestamp(path.stat().st_mtime, tz=datetime.timezone.utc)
    return ts.strftime("%Y-%m-%d %H:%M UTC")


# -- command line and API --------------------------------------------------------------------

def gen_cli(page_uri: str) -> str:
    import argparse

    from lossreg.cli import build_parser

    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "88"
    try:
        parser = build_parser()
        out = ["```text\n$ lossreg --help\n" + parser.format_help().rstrip() + "\n```\n"]
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        for action in subs:
            for name, sub in action.choices.items():
                out += [f"### `lossreg {name}`\n",
                        f"```text\n$ lossreg {name} --help\n{sub.format_help().rstrip()}\n```\n"]
                for nested in sub._actions:        # `lossreg cache info|clear|warm`
                    if isinstance(nested, argparse._SubParsersAction):
                        for verb, leaf in nested.choices.items():
                            out.append(f"```text\n$ lossreg {name} {verb} --help\n"
                                       f"{leaf.format_help().rstrip()}\n```\n")
    finally:
        if old is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = old
    return "\n".join(out)


def gen_cli_list(page_uri: str) -> str:
    """The output of `lossreg list` in this build."""
    from lossreg.cli import main

    with contextlib.redirect_stdout(io.StringIO()) as out:
        code = main(["list"])
    if code != 0:
        raise RuntimeError(f"`lossreg list` exited with {code}")
    return f"```text\n$ lossreg list\n{out.getvalue().rstrip()}\n```\n"


#: lossreg's bridge modules and the library each one needs to import.
BRIDGED_LIBRARIES = {"lossreg.torch": "torch", "lossreg.jax": "jax", "lossreg.sklearn": "sklearn",
                     "lossreg.xgboost": "xgboost", "lossreg.lightgbm": "lightgbm",
                     "lossreg.catboost": "catboost", "lossreg.dask": "dask"}


def gen_api(page_uri: str) -> str:
    """mkdocstrings directives for the public modules that exist in this build."""
    import importlib.util

    blocks = [
        ("Lookup", "lossreg", ["get", "names", "spec", "plugin_errors", "plugins"]),
        ("Loss", "lossreg.loss.Loss", None),
        ("Shared base of Loss and WeightedSum", "lossreg.loss.BaseLoss", None),
        ("Configs", "lossreg.config", None),
        ("Metadata", "lossreg.spec", ["LossSpec", "Hyperparameter", "Interval", "Domain"]),
        ("Registry", "lossreg.registry", ["Registry", "PluginRecord", "default_registry",
                                          "set_default_registry", "normalize"]),
        ("Errors", "lossreg.errors", None),
        ("Conformance kit", "lossreg.testing", None),
        ("Plotting", "lossreg.plotting", ["plot_losses", "loss_curves", "Curve"]),
        ("PyTorch bridge", "lossreg.torch", ["function", "Loss", "LossFunction"]),
        ("JAX bridge", "lossreg.jax", ["function", "LossFunction"]),
        ("scikit-learn bridge", "lossreg.sklearn", ["make_scorer", "response_method",
                                                    "LossMetric"]),
        ("XGBoost objectives", "lossreg.xgboost", ["objective", "metric", "XGBObjective",
                                                   "XGBMetric"]),
        ("LightGBM objectives", "lossreg.lightgbm", ["objective", "metric", "LGBMObjective",
                                                     "LGBMMetric", "multiclass_factor"]),
        ("CatBoost objectives", "lossreg.catboost", ["objective", "metric",
                                                     "CatBoostObjective", "CatBoostMetric"]),
        ("Dask: larger than memory and distributed", "lossreg.dask",
         ["evaluate", "grad", "value_and_grad", "hessian", "grad_hess"]),
        ("Kernel helpers", "lossreg.kernels", ["njit", "elementwise_kernels", "row_kernels"]),
        ("Kernel protocol", "lossreg.kernels.protocol", ["Kernels", "Job", "Outcome",
                                                         "RowKernels", "LabelKernels",
                                                         "PairKernels"]),
        ("Experiments", "lossreg.experiments", ["load_experiment", "run_experiment",
                                                "format_table", "Experiment", "Result"]),
        ("Plugin scaffold", "lossreg.scaffold", ["new_plugin"]),
    ]
    out = []
    for title, target, members in blocks:
        module = target.rsplit(".", 1)[0] if target.endswith("Loss") else target
        if importlib.util.find_spec(module) is None:
            continue   # e.g. lossreg.config before it exists
        library = BRIDGED_LIBRARIES.get(module)
        if library is not None and importlib.util.find_spec(library) is None:
            continue   # a bridge whose library this build lacks: it cannot be imported
        out.append(f"## {title}\n\n::: {target}")
        opts = ["    options:", "      show_root_heading: false"]
        if members:
            opts.append("      members:")
            opts += [f"        - {m}" for m in members]
        out.append("\n".join(opts) + "\n")
    return "\n".join(out)


EXAMPLE_SUFFIXES = {".toml": "toml", ".json": "json", ".yaml": "yaml", ".yml": "yaml"}


def _subcommand_help(name: str) -> str | None:
    import argparse

    from lossreg.cli import build_parser

    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "88"
    try:
        parser = build_parser()
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction) and name in action.choices:
                return action.choices[name].format_help().rstrip()
    finally:
        if old is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = old
    return None


def gen_experiments(page_uri: str) -> str:
    text = _subcommand_help("run")
    head = (f"```text\n$ lossreg run --help\n{text}\n```\n" if text else
            "*(This build's command line has no `run` command.)*\n")
    return head + "\n" + gen_examples(page_uri)


def _experiment_section(name: str, page_uri: str) -> str:
    """Run examples/NAME.toml (as `lossreg run` does) and show its metric table."""
    import importlib.util

    path = ROOT / "examples" / f"{name}.toml"
    if not path.exists() or importlib.util.find_spec("lossreg.experiments") is None:
        return f"*(The experiment `examples/{name}.toml` is not part of this build.)*\n"
    if importlib.util.find_spec("sklearn") is None:
        return (f"!!! note \"Experiment not run\"\n    `examples/{name}.toml` loads a data set "
                "bundled with scikit-learn, which is not installed in this build.\n")
    from lossreg.experiments import _num, format_table, run_experiment

    result = run_experiment(path)
    header = format_table(result).split("\n\n")[0].splitlines()
    rows = [[f"`{r['label']}`", f"`{r['loss'].get('name', 'terms')}`"]
            + [_num(r[m]) for m in result.metrics] + [_num(r["train_loss"])]
            for r in result.rows]
    return (f"**{header[0]}** (`lossreg run examples/{name}.toml`, run when this page was "
            "built):\n\n" + "".join(f"- {line}\n" for line in header[1:]) + "\n"
            + table(["label", "loss"] + result.metrics + ["train loss"], rows) + "\n")


def gen_experiment_regression(page_uri: str) -> str:
    return _experiment_section("robust_regression", page_uri)


def gen_experiment_imbalanced(page_uri: str) -> str:
    return _experiment_section("imbalanced_classification", page_uri)


def gen_experiment_gbdt(page_uri: str) -> str:
    import importlib.util

    if importlib.util.find_spec("xgboost") is None:
        return ("!!! note \"Experiment not run\"\n    `examples/gbdt_imbalanced.toml` trains "
                "XGBoost models, and XGBoost is not installed in this build.\n")
    return _experiment_section("gbdt_imbalanced", page_uri)


def gen_examples(page_uri: str) -> str:
    """The experiment files shipped in examples/, shown verbatim."""
    folder = ROOT / "examples"
    found = sorted(p for p in folder.rglob("*") if p.suffix in EXAMPLE_SUFFIXES) \
        if folder.is_dir() else []
    if not found:
        return "*(No example files in `examples/` in this build.)*\n"
    out = []
    for path in found:
        rel_path = path.relative_to(ROOT).as_posix()
        out += [f"### `{rel_path}`\n",
                f"```{EXAMPLE_SUFFIXES[path.suffix]}\n{path.read_text().rstrip()}\n```\n"]
    return "\n".join(out)


GENERATORS: dict[str, Callable[[str], str]] = {
    "regression-outliers": gen_regression_outliers,
    "regression-plot": gen_regression_plot,
    "imbalance": gen_imbalance,
    "focal-plot": gen_focal_plot,
    "focal-factor": gen_focal_factor,
    "distributions": gen_distributions,
    "distributions-plot": gen_distributions_plot,
    "pitfall-kl": gen_pitfall_kl,
    "pitfall-logits": gen_pitfall_logits,
    "pitfall-smooth-l1": gen_pitfall_smooth_l1,
    "pitfall-order": gen_pitfall_order,
    "benchmarks": gen_benchmarks,
    "serial-threshold": gen_serial_threshold,
    "cli": gen_cli,
    "cli-list": gen_cli_list,
    "api": gen_api,
    "catalogue-index": catalogue_index,
    "examples": gen_examples,
    "experiments": gen_experiments,
    "experiment-regression": gen_experiment_regression,
    "experiment-imbalanced": gen_experiment_imbalanced,
    "experiment-gbdt": gen_experiment_gbdt,
}


# -- mkdocs hooks -------------------------------------------------------------------------------

FAMILY_TITLES = {"glm": "GLM (counts, positive amounts)",
                 "overlap": "Overlap (cosine, Dice, Tversky)",
                 "margin": "Margin (hinge, SVM-style)"}


def _family_title(family: str) -> str:
    return FAMILY_TITLES.get(family) or family.replace("_", " ").capitalize()


def on_config(config, **kwargs):
    import lossreg

    docs = pathlib.Path(config.docs_dir)
    reg = lossreg.default_registry()
    nav = []
    for item in config.nav or []:
        title, target = next(iter(item.items())) if isinstance(item, dict) else (None, item)
        if target == CATALOGUE_INDEX:
            sections: list[Any] = [CATALOGUE_INDEX]
            for family in sorted({s.family for s in reg.specs()}):
                sections.append({_family_title(family): [
                    f"catalogue/{n}.md" for n in reg.names(family=family)]})
            nav.append({title or "Catalogue": sections})
        elif isinstance(target, str) and target in OPTIONAL_PAGES and not (docs / target).exists():
            log.info("lossreg docs: %s is not written yet; left out of the nav", target)
        else:
            nav.append(item)
    config.nav = nav
    return config


def on_files(files, config, **kwargs):
    from mkdocs.structure.files import File

    import lossreg

    reg = lossreg.default_registry()
    plots: dict[str, Any] = {}
    for spec in reg.specs():
        try:
            png = _plot_png([spec.name])
        except lossreg.LossError as exc:
            plots[spec.name] = f"lossreg.plotting could not derive a slice: {exc}"
            continue
        plots[spec.name] = True
        files.append(File.generated(config, f"assets/plots/{spec.name}.png", content=png))
    _cache["plots"] = plots
    for uri, draw in guide_figures().items():
        files.append(File.generated(config, uri, content=draw()))
    if BENCH_PNG.exists():
        files.append(File.generated(config, BENCH_PNG_URI, content=BENCH_PNG.read_bytes()))
    files.append(File.generated(config, CATALOGUE_INDEX, content=catalogue_index()))
    for spec in reg.specs():
        files.append(File.generated(config, f"catalogue/{spec.name}.md",
                                    content=catalogue_page(spec)))
    return files


CATALOGUE_LINK = re.compile(r"\[(`?)([a-z][a-z0-9_]*)(`?)\]\(((?:\.\./)*)catalogue/([a-z0-9_]+)\.md\)")


def unlink_absent_losses(markdown: str) -> str:
    """Links to catalogue pages of losses not registered in this build become plain names."""
    import lossreg

    names = set(lossreg.names())

    def repl(m: re.Match) -> str:
        return m.group(0) if m.group(5) in names else f"{m.group(1)}{m.group(2)}{m.group(3)}"

    return CATALOGUE_LINK.sub(repl, markdown)


def on_page_markdown(markdown, page, config, files, **kwargs):
    import importlib.util

    uri = page.file.src_uri
    markdown = unlink_absent_losses(markdown)
    # A page may declare modules its examples need (front matter `lossreg_requires`);
    # without them the examples are shown but not run, under a note.
    absent = [m for m in page.meta.get("lossreg_requires", [])
              if importlib.util.find_spec(m) is None]
    if absent:
        log.info("lossreg docs: %s: %s missing; examples not run", uri, ", ".join(absent))
        markdown = markdown.replace("<!-- lossreg:run -->\n", "")
        markdown = ("!!! warning \"Examples not checked in this build\"\n    "
                    + ", ".join(f"`{m}`" for m in absent) + " is not available, so the "
                    "examples on this page were not run when the site was built.\n\n" + markdown)
    else:
        markdown = run_blocks(markdown, uri)

    def repl(m: re.Match) -> str:
        key = m.group(1)
        if key == "run":
            raise ValueError(f"{uri}: '<!-- lossreg:run -->' must stand right before a "
                             "```python block")
        if key not in GENERATORS:
            raise KeyError(f"{uri}: unknown docs marker 'lossreg:{key}' "
                           f"(known: {', '.join(sorted(GENERATORS))})")
        return GENERATORS[key](uri)

    return MARKER.sub(repl, markdown)
