"""The ``lossreg`` command: browse, evaluate, check, plot and benchmark losses, and run
config-driven experiments. Every sub-command has --help; most take --json."""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
import warnings
from typing import Any, Callable, Sequence

import numpy as np

# Sub-commands provided by modules other helpers own: (command, module, help). Their
# arguments are registered only when the module imports; the handler imports it again
# lazily, so a missing or broken module never breaks the rest of the CLI.
DELEGATED = (
    ("bench", "lossreg.bench", "benchmark the kernels against NumPy (progress bar, ratios)"),
    ("new-plugin", "lossreg.scaffold", "write a ready-to-install lossreg plugin distribution"),
    ("cache", "lossreg._cachecmd", "inspect, clear or pre-fill (warm) the compiled-kernel cache"),
)


class CLIError(Exception):
    """A bad command-line input that is not a LossError (one-line message, exit 1)."""


# -- helpers -------------------------------------------------------------------------------

def _emit_json(data: Any) -> None:
    """Strict JSON on stdout: NaN/inf become null, arrays become lists."""
    print(json.dumps(_finite(data), indent=2, default=_json_default, allow_nan=False))


def _finite(obj: Any) -> Any:
    if isinstance(obj, float):
        return obj if obj == obj and abs(obj) != float("inf") else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _finite(obj.tolist())
    if isinstance(obj, np.generic):
        return _finite(obj.item())
    return obj


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    return str(obj)


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
              for i, h in enumerate(header)]
    line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    return "\n".join([line(header), line(["-" * w for w in widths])] + [line(r) for r in rows])


def parse_value(text: str) -> Any:
    """A --hyper value: JSON (numbers, true/false, null, lists) or else the bare string."""
    try:
        return json.loads(text)
    except ValueError:
        low = text.strip().lower()
        if low in ("none", "null"):
            return None
        if low in ("true", "false"):
            return low == "true"
        return text


def parse_hyper(items: Sequence[str] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise CLIError(f"--hyper expects KEY=VALUE, got {item!r}")
        out[key.strip()] = parse_value(value)
    return out


def load_array(path: str, what: str) -> np.ndarray:
    """An array from .npy (no pickles, no .npz) or .csv (numbers, optional header row;
    the rules are in ``lossreg._datafiles``)."""
    from ._datafiles import DataFileError, read_csv, read_npy

    p = pathlib.Path(path)
    suffix = p.suffix.lower()
    if not p.is_file():
        raise CLIError(f"{what}: file not found: {path}")
    if suffix not in (".npy", ".csv", ".txt"):
        raise CLIError(f"{what}: {path}: use a .npy or .csv file")
    try:
        return read_npy(p) if suffix == ".npy" else read_csv(p)
    except DataFileError as exc:
        raise CLIError(f"{what}: {exc}") from None


def _fmt_value(value: Any) -> str:
    if isinstance(value, float):
        return repr(value)
    return str(value)


# -- list / show / plugins ---------------------------------------------------------------------

def _list_rows(args: argparse.Namespace) -> list[dict[str, Any]]:
    import lossreg

    rows = []
    for name in lossreg.names(family=args.family, task=args.task):
        spec = lossreg.spec(name)
        rows.append({"name": spec.name, "family": spec.family, "task": spec.task,
                     "aliases": list(spec.aliases), "source": spec.source,
                     "summary": spec.summary})
    return rows


def cmd_list(args: argparse.Namespace) -> int:
    """List the registered losses: name, family, task, aliases and source."""
    import lossreg

    rows = _list_rows(args)
    if args.json:
        _emit_json(rows)
        return 0
    if not rows:
        families = sorted({lossreg.spec(n).family for n in lossreg.names()})
        from ._suggest import did_you_mean
        hint = did_you_mean(args.family, families) if args.family else ""
        raise CLIError(f"no losses match (family={args.family!r}, task={args.task!r}){hint}; "
                       f"families: {', '.join(families)}")
    print(_table([[r["name"], r["family"], r["task"], ", ".join(r["aliases"]), r["source"]]
                  for r in rows], ["name", "family", "task", "aliases", "source"]))
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    """Show one loss: summary, formula, hyperparameters, domains, properties, source."""
    import lossreg

    spec = lossreg.spec(args.name)
    if args.json:
        _emit_json(spec.to_dict())
        return 0
    print(f"{spec.name} — {spec.summary}" if spec.summary else spec.name)
    rows = [("family", spec.family), ("task", spec.task),
            ("aliases", ", ".join(spec.aliases) or "—"), ("layout", spec.layout),
            ("reductions", ", ".join(spec.reductions)),
            ("hessian", "yes (loss.hessian, loss.grad_hess)" if spec.has_hessian else
             "no (this loss's kernels give no second derivatives)"),
            ("properties", ", ".join(sorted(spec.properties)) or "—"),
            ("source", spec.source), ("formula", spec.formula or "—")]
    for key, value in rows:
        print(f"  {key + ':':12s}{value}")
    print("hyperparameters:")
    if not spec.hyperparameters:
        print("  (none)")
    for h in spec.hyperparameters.values():
        default = h.default.tolist() if isinstance(h.default, np.ndarray) else h.default
        print(f"  {h.name} = {default!r}  ({h.constraint()})" + (f"  {h.doc}" if h.doc else ""))
    print("domains:")
    for arg in ("y_true", "y_pred"):
        dom = spec.domain(arg)
        print(f"  {arg}: {dom.describe()}" + (f"  {dom.doc}" if dom.doc else ""))
    if spec.notes:
        print("notes: " + " ".join(spec.notes.split()))
    return 0


def cmd_plugins(args: argparse.Namespace) -> int:
    """List every plugin record (built-ins included): name, source, losses, status, error."""
    import lossreg

    records = [r.to_dict() for r in lossreg.plugins()]
    failed = [r for r in records if r["error"]]
    if args.json:
        _emit_json(records)
    else:
        print(_table([[r["name"], r["status"], ", ".join(r["losses"]) or "—", r["source"]]
                      for r in records], ["plugin", "status", "losses", "source"]))
        for r in failed:
            print(f"error in {r['name']} ({r['source']}): {r['error']}")
    return 1 if (args.strict and failed) else 0


# -- eval --------------------------------------------------------------------------------------

def cmd_eval(args: argparse.Namespace) -> int:
    """Evaluate a loss (by NAME or --config FILE) on arrays from .npy or .csv files."""
    from .config import from_config, load_file

    if args.config:
        if len(args.inputs) != 2:
            raise CLIError("with --config give exactly Y_TRUE Y_PRED (the loss comes from the "
                           "config file)")
        cfg = dict(load_file(args.config))
        if list(cfg) == ["loss"] and isinstance(cfg["loss"], dict):
            cfg = dict(cfg["loss"])
        if args.hyper:
            if "terms" in cfg:
                raise CLIError("--hyper cannot change the terms of a weighted sum; edit the file")
            cfg.update(parse_hyper(args.hyper))
        if args.reduction:
            cfg["reduction"] = args.reduction
        yt_path, yp_path = args.inputs
    else:
        if len(args.inputs) != 3:
            raise CLIError("give NAME Y_TRUE Y_PRED (or --config FILE Y_TRUE Y_PRED)")
        name, yt_path, yp_path = args.inputs
        cfg = {"name": name, **parse_hyper(args.hyper)}
        if args.reduction:
            cfg["reduction"] = args.reduction
    loss = from_config(cfg)
    y_true = load_array(yt_path, "y_true")
    y_pred = load_array(yp_path, "y_pred")
    weights = load_array(args.weights, "weights") if args.weights else None
    value, grad = loss.value_and_grad(y_true, y_pred, sample_weight=weights)
    if args.json:
        out = {"loss": loss.config(), "value": value, "shape": list(np.shape(y_pred)),
               "grad_norm": float(np.linalg.norm(grad))}
        if args.grad:
            out["grad"] = grad
        _emit_json(out)
        return 0
    print(f"loss:  {loss!r}")
    if isinstance(value, np.ndarray):
        print("value: " + np.array2string(value, precision=6, threshold=50))
    else:
        print(f"value: {value!r}")
    if args.grad:
        print("grad:  " + np.array2string(grad, precision=6, threshold=50))
    else:
        print(f"|grad|: {float(np.linalg.norm(grad))!r}  (--grad prints it)")
    return 0


# -- check -------------------------------------------------------------------------------------

def cmd_check(args: argparse.Namespace) -> int:
    """Run the conformance suite (lossreg.testing.check_loss) on losses; exit 1 on failures."""
    import lossreg
    from lossreg.testing import check_loss

    from ._progress import Progress

    if args.all:
        if args.names:
            raise CLIError("give loss names or --all, not both")
        names = lossreg.names()
    elif not args.names:
        raise CLIError("give at least one loss NAME (or --all)")
    else:
        names = [lossreg.spec(n).name for n in args.names]   # unknown names fail here, early
    reports = []
    with Progress(len(names), "check", disable=True if args.json else None) as bar:
        for name in names:
            bar.set_label(name)
            reports.append(check_loss(name, raise_on_failure=False))
            bar.update(name)
    failed = any(r.failed for r in reports)
    if args.json:
        _emit_json([{"name": r.name, "ok": not r.failed, "passed": len(r.passed),
                     "failed": [{"check": c, "error": e} for c, e in r.failed],
                     "skipped": [{"check": c, "reason": e} for c, e in r.skipped]}
                    for r in reports])
        return 1 if failed else 0
    for r in reports:
        status = "FAILED" if r.failed else "ok"
        print(f"{r.name}: {status} — {len(r.passed)} passed, {len(r.failed)} failed, "
              f"{len(r.skipped)} skipped")
        for check, error in r.failed:
            print(f"  FAIL {check}: {' '.join(str(error).split())[:300]}")
        if args.verbose:
            for check, reason in r.skipped:
                print(f"  skip {check}: {reason}")
    return 1 if failed else 0


# -- plot --------------------------------------------------------------------------------------

def parse_loss_setting(text: str) -> tuple[str, dict[str, Any]]:
    """``NAME`` or ``NAME:K=V[,K=V...]`` (``huber:delta=2``) -> (name, hyperparameters).

    Values are read as --hyper values (JSON or a bare string); commas inside brackets
    belong to the value (``softmax:class_weight=[1,2]``)."""
    name, sep, rest = text.partition(":")
    if not name.strip():
        raise CLIError(f"expected NAME or NAME:K=V,..., got {text!r}")
    if not sep:
        return name.strip(), {}
    items, depth, start = [], 0, 0
    for i, ch in enumerate(rest):
        depth += ch in "[{(" and 1 or ch in "]})" and -1 or 0
        if ch == "," and depth == 0:
            items.append(rest[start:i])
            start = i + 1
    items.append(rest[start:])
    hyper: dict[str, Any] = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise CLIError(f"{text!r}: settings after ':' are K=V pairs separated by commas, "
                           f"e.g. huber:delta=2 (got {item!r})")
        hyper[key.strip()] = parse_value(value)
    return name.strip(), hyper


def cmd_plot(args: argparse.Namespace) -> int:
    """Draw loss and gradient curves of one or more losses to an image (needs matplotlib)."""
    from .config import from_config

    hyper = parse_hyper(args.hyper)
    settings = [parse_loss_setting(n) for n in args.names]
    if hyper and len(settings) != 1:
        raise CLIError("--hyper applies to a single loss; give each loss its own settings "
                       "instead, e.g. huber:delta=2 smooth_l1:beta=2")
    losses = [from_config({"name": name, **own, **hyper}) for name, own in settings]
    from .plotting import plot_losses

    path = plot_losses(losses, args.output, title=args.title)
    print(f"wrote {path}")
    return 0


# -- run ---------------------------------------------------------------------------------------

def cmd_run(args: argparse.Namespace) -> int:
    """Run a config-driven experiment (see examples/) and print its metric table."""
    from .experiments import format_table, load_experiment, run_experiment

    from ._progress import Progress

    overrides = {}
    if args.epochs is not None:
        overrides["epochs"] = args.epochs
    if args.seed is not None:
        overrides["seed"] = args.seed
    experiment = load_experiment(args.config, overrides=overrides)
    with Progress(len(experiment.losses), "run", disable=True if args.json else None) as bar:
        result = run_experiment(experiment, progress=bar.update)
    if args.json:
        _emit_json(result.to_dict())
    else:
        print(format_table(result))
    if args.plot:
        from .plotting import plot_metrics

        path = plot_metrics(result, args.plot)
        if not args.json:
            print(f"wrote {path}")
    return 0


# -- demo --------------------------------------------------------------------------------------

DEMO_LOSSES = (("mse", {}), ("mae", {}), ("huber", {"delta": 0.5}), ("smooth_l1", {"beta": 1.0}))


def cmd_demo(args: argparse.Namespace) -> int:
    """Print a loss value and gradient for a few losses on a tiny example."""
    import lossreg

    y_true = np.array([0.0, 1.0, 2.0, 10.0])
    y_pred = np.array([0.5, 1.0, 3.5, 2.0])
    n = y_true.size
    print("lossreg demo: four regression losses on one small example (reduction 'mean')")
    print(f"  y_true            = {_cells(y_true)}")
    print(f"  y_pred            = {_cells(y_pred)}")
    print(f"  r = y_pred-y_true = {_cells(y_pred - y_true)}")
    print()
    rows = []
    for name, hyper in DEMO_LOSSES:
        loss = lossreg.get(name, **hyper)
        value, grad = loss.value_and_grad(y_true, y_pred)
        label = name + ("(" + ", ".join(f"{k}={v}" for k, v in hyper.items()) + ")"
                        if hyper else "")
        rows.append([label, f"{value:.6g}", _cells(grad)])
    print(_table(rows, ["loss", "value", "grad = d(mean loss)/d y_pred, per element"]))
    print()
    print(f"value is the mean of the per-element losses; grad is its gradient with respect "
          f"to y_pred\n(the per-element derivative divided by n = {n}), what an optimiser "
          f"steps along.\nIn Python: lossreg.get(\"huber\", delta=0.5).value_and_grad("
          f"y_true, y_pred)")
    return 0


def _cells(values: np.ndarray) -> str:
    """Numbers in fixed-width cells, so that rows of them line up."""
    return "[" + " ".join(f"{float(v):8.4g}" for v in values) + " ]"


# -- delegated ---------------------------------------------------------------------------------

def _delegate(module: str) -> Callable[[argparse.Namespace], int]:
    def handler(args: argparse.Namespace) -> int:
        import importlib

        return int(importlib.import_module(module).run(args) or 0)
    return handler


def _unavailable(command: str, module: str, error: str) -> Callable[[argparse.Namespace], int]:
    def handler(args: argparse.Namespace) -> int:
        raise CLIError(f"`lossreg {command}` is unavailable: {module} failed to import ({error})")
    return handler


# -- parser ------------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lossreg", description=__doc__,
        epilog="Compiled kernels are cached on disk between runs (`lossreg cache info`); "
               "LOSSREG_CACHE=DIR moves the cache, LOSSREG_CACHE=0 turns it off.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, func: Callable, **kwargs) -> argparse.ArgumentParser:
        doc = (func.__doc__ or "").strip().splitlines()[0]
        p = sub.add_parser(name, help=doc, description=doc, **kwargs)
        p.set_defaults(func=func)
        return p

    p = add("list", cmd_list)
    p.add_argument("--family", help="only this family (e.g. distance, probabilistic)")
    p.add_argument("--task", help="only this task (regression, binary, multiclass, ...)")
    p.add_argument("--json", action="store_true", help="a JSON list of {name, family, task, "
                   "aliases, source, summary}")

    p = add("show", cmd_show)
    p.add_argument("name", help="loss name or alias (case-, '-'/'_'-insensitive)")
    p.add_argument("--json", action="store_true", help="the spec's metadata as JSON")

    p = add("plugins", cmd_plugins)
    p.add_argument("--json", action="store_true", help="a JSON list of plugin records")
    p.add_argument("--strict", action="store_true", help="exit 1 if any plugin failed to load")

    p = add("eval", cmd_eval, usage="lossreg eval (NAME | --config FILE) Y_TRUE Y_PRED "
                                    "[--hyper K=V ...] [--reduction R] [--weights FILE] [--json]")
    p.add_argument("inputs", nargs="+", metavar="NAME Y_TRUE Y_PRED",
                   help="loss name, then y_true and y_pred files (.npy or .csv)")
    p.add_argument("--hyper", action="append", metavar="K=V",
                   help="a hyperparameter, e.g. --hyper delta=0.5 (repeatable; JSON values)")
    p.add_argument("--reduction", choices=("mean", "sum", "none"), help="default: mean")
    p.add_argument("--weights", metavar="FILE", help="sample weights (.npy or .csv)")
    p.add_argument("--config", metavar="FILE", help="take the loss from a config file "
                   "(.toml, .json, .yaml) instead of NAME")
    p.add_argument("--grad", action="store_true", help="print (or include in JSON) the gradient")
    p.add_argument("--json", action="store_true", help="{loss, value, shape, grad_norm[, grad]}")

    p = add("check", cmd_check)
    p.add_argument("names", nargs="*", metavar="NAME", help="loss names or aliases")
    p.add_argument("--all", action="store_true", help="check every registered loss")
    p.add_argument("-v", "--verbose", action="store_true", help="also list skipped checks")
    p.add_argument("--json", action="store_true", help="one JSON record per loss")

    p = add("plot", cmd_plot)
    p.add_argument("names", nargs="+", metavar="NAME[:K=V,...]",
                   help="losses to draw on the same axes, each with its own settings if "
                        "any: huber:delta=2 smooth_l1:beta=2")
    p.add_argument("-o", "--output", required=True, metavar="PATH",
                   help="image file, the format following the suffix (.png, .svg, .pdf; "
                        "none: .png), or a directory to write NAMES.png into")
    p.add_argument("--hyper", action="append", metavar="K=V",
                   help="hyperparameters of a single NAME (same as NAME:K=V)")
    p.add_argument("--title", help="figure title (default: the loss names)")

    p = add("run", cmd_run)
    p.add_argument("config", metavar="CONFIG", help="experiment file (.toml, .json, .yaml), "
                   "e.g. examples/robust_regression.toml")
    p.add_argument("--epochs", type=int, help="override [experiment] epochs")
    p.add_argument("--seed", type=int, help="override [experiment] seed")
    p.add_argument("--json", action="store_true", help="settings, data and rows as JSON")
    p.add_argument("--plot", metavar="PATH", help="also draw the test metrics per loss to "
                   "an image (needs matplotlib)")

    add("demo", cmd_demo)

    for command, module, help_text in DELEGATED:
        try:
            import importlib
            mod = importlib.import_module(module)
            add_arguments = mod.add_arguments
        except (ImportError, AttributeError) as exc:
            p = sub.add_parser(command, help=f"{help_text} (unavailable)",
                               description=f"{help_text}. Unavailable here: {exc}")
            p.set_defaults(func=_unavailable(command, module, str(exc)))
            continue
        p = sub.add_parser(command, help=help_text, description=help_text)
        add_arguments(p)
        p.set_defaults(func=_delegate(module))
    return parser


def _one_line_warnings(show: Callable) -> Callable:
    """A ``warnings.showwarning`` that prints lossreg's own warnings (``LossregWarning``)
    as one ``lossreg: warning:`` line on stderr, without the file and source line Python
    adds, and passes any other warning to ``show``."""
    from .errors import LossregWarning

    def showwarning(message, category, filename, lineno, file=None, line=None):
        if isinstance(category, type) and issubclass(category, LossregWarning):
            print(f"lossreg: warning: {message}", file=file or sys.stderr)
        else:
            show(message, category, filename, lineno, file, line)
    return showwarning


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code. Errors print one line on stderr (exit 1)."""
    from .errors import LossError

    parser = build_parser()
    args = parser.parse_args(argv)
    from . import _cachedir
    from ._progress import enabled

    show = warnings.showwarning
    warnings.showwarning = _one_line_warnings(show)
    _cachedir.NOTICE_STREAM = sys.stderr if enabled() else None   # "compiling kernels..."
    try:
        return int(args.func(args) or 0)
    except BrokenPipeError:   # `lossreg list | head`: stop quietly, no flush error at exit
        try:
            import os
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError, AttributeError):
            pass
        return 0
    except (LossError, CLIError, OSError, ValueError) as exc:
        message = " ".join(str(exc).split()) or type(exc).__name__
        kind = "" if isinstance(exc, CLIError) else f"{type(exc).__name__}: "
        print(f"lossreg {args.command}: error: {kind}{message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("lossreg: interrupted", file=sys.stderr)
        return 130
    finally:
        warnings.showwarning = show
        _cachedir.NOTICE_STREAM = None


if __name__ == "__main__":
    sys.exit(main())
