"""The documentation site builds with `mkdocs build --strict` and is generated, not copied.

One build per test module, in-process so that the kernels the conformance tests already
compiled are reused (alone, the build spends 20-40 s compiling the kernels its examples
and plots use); the other tests read the built site or call the hook's functions.
"""

import html
import importlib.util
import logging
import os
import pathlib
import re
import types

import pytest

pytest.importorskip("mkdocs")
pytest.importorskip("material")
pytest.importorskip("mkdocstrings_handlers.python")
pytest.importorskip("matplotlib")

import lossreg  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]
HOOK = ROOT / "docs" / "hooks" / "lossreg_docs.py"


class _Collect(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.records = []

    def emit(self, record):
        self.records.append(f"{record.levelname}: {record.getMessage()}")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """Build in-process: kernels other tests already compiled are reused (seconds, not a
    minute); strict mode turns any warning into mkdocs's Abort."""
    from mkdocs.commands.build import build
    from mkdocs.config import load_config

    out = tmp_path_factory.mktemp("site")
    collect = _Collect()
    logger = logging.getLogger("mkdocs")
    logger.addHandler(collect)
    cwd = os.getcwd()
    os.environ.setdefault("NO_MKDOCS_2_WARNING", "1")
    try:
        os.chdir(ROOT)
        config = load_config(str(ROOT / "mkdocs.yml"), site_dir=str(out), strict=True)
        build(config)
    finally:
        os.chdir(cwd)
        logger.removeHandler(collect)
    assert not collect.records, "\n".join(collect.records)
    return out


def text(site, page):
    raw = (site / page / "index.html").read_text() if page else (site / "index.html").read_text()
    body = raw[raw.index("<article"):raw.index("</article>")]
    return html.unescape(re.sub(r"<[^>]+>", "", body)), raw


def hook():
    spec = importlib.util.spec_from_file_location("lossreg_docs_hook", HOOK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_registered_loss_has_a_generated_catalogue_page(site):
    for name in lossreg.names():
        page, raw = text(site, f"catalogue/{name}")
        s = lossreg.spec(name)
        assert s.summary in page
        for h in s.hyperparameters.values():
            assert h.name in page and str(h.interval or "—") in page
        for alias in s.aliases:
            assert alias in page
        if s.formula:                   # rendered to MathML at build time (hooks/mathml.py)
            assert '<math xmlns="http://www.w3.org/1998/Math/MathML" display="block">' in raw
        assert "# -> " in page          # the example was run
        plot = site / "assets" / "plots" / f"{name}.png"
        assert f"../../assets/plots/{name}.png" in raw
        assert plot.read_bytes()[:4] == b"\x89PNG"
    index, _ = text(site, "catalogue")
    assert f"{len(lossreg.names())} in" in index


def test_guide_pages_contain_computed_numbers_and_plots(site):
    page, raw = text(site, "choosing")
    assert "<!-- lossreg:" not in raw
    assert "guide-regression.png" in raw and (site / "assets/plots/guide-regression.png").exists()
    assert raw.count("<table>") >= 3
    # the bisection fits: Huber(delta=b) and Smooth L1(beta=b) share their minimiser
    row = re.search(r"huber\(delta=1\)\s*([\d.]+)\s*([-\d.]+)", page)
    row_s = re.search(r"smooth_l1\(beta=1\)\s*([\d.]+)\s*([-\d.]+)", page)
    assert row and row_s and row.group(1) == row_s.group(1)
    started, _ = text(site, "getting-started")
    assert "# -> 16.625" in started          # mse on the example, computed at build time
    assert "raises UnknownLossError" in started


def test_cli_and_api_pages_are_generated(site):
    cli, _ = text(site, "cli")
    assert "usage: lossreg" in cli
    api, raw = text(site, "api")
    assert "value_and_grad" in api and "check_loss" in api and "plot_losses" in api
    assert "LossSpec" in api


def test_optional_pages_are_in_the_nav_when_present(site):
    _, raw = text(site, "")
    for page in ("plugins", "determinism"):
        present = (ROOT / "docs" / f"{page}.md").exists()
        assert (f'href="{page}/"' in raw) == present


def test_run_python_shows_values_and_lossreg_errors():
    h = hook()
    out = h.run_python("import lossreg\nx = 2\nx + 0.5\nlossreg.get('hubr')\n", {})
    assert out.splitlines() == ["import lossreg", "x = 2", "x + 0.5", "# -> 2.5",
                                "lossreg.get('hubr')",
                                "# -> raises UnknownLossError: unknown loss 'hubr'; "
                                "did you mean 'huber'?"]
    with pytest.raises(ZeroDivisionError):      # anything else stops the build
        h.run_python("1 / 0\n", {})


def test_unknown_markers_stop_the_build():
    h = hook()
    page = types.SimpleNamespace(file=types.SimpleNamespace(src_uri="x.md"), meta={})
    with pytest.raises(KeyError, match="lossreg:nope"):
        h.on_page_markdown("a\n<!-- lossreg:nope -->\nb\n", page, None, None)
    md = h.on_page_markdown("[`mse`](catalogue/mse.md) [`zz`](catalogue/zz_missing.md)",
                            page, None, None)
    assert md == "[`mse`](catalogue/mse.md) `zz`"


def test_benchmark_section_renders_results_or_says_how_to_make_them(tmp_path, monkeypatch):
    h = hook()
    monkeypatch.setattr(h, "BENCH_JSON", tmp_path / "latest.json")
    monkeypatch.setattr(h, "BENCH_PNG", tmp_path / "latest.png")
    assert "No benchmark results" in h.gen_benchmarks("performance.md")
    (tmp_path / "latest.json").write_text(
        '{"machine": {"cpu": "TestCPU", "cores": 2}, "n": 1000000,'
        ' "results": [{"loss": "mse", "ratio": 0.987654}]}')
    (tmp_path / "latest.png").write_bytes(b"\x89PNG")
    md = h.gen_benchmarks("performance.md")
    assert "| cpu | TestCPU |" in md and "| mse | 0.9877 |" in md
    assert "](assets/bench/latest.png)" in md


def test_config_examples_ran_and_agree(site):
    if importlib.util.find_spec("lossreg.config") is None:
        pytest.skip("lossreg.config is not in this build")
    page, _ = text(site, "configs")
    # the weighted sum equals mse + 0.1 * mae on the page's example: 1.41667 + 0.1 * 0.83333
    assert page.count("# -> 1.5\n") == 2
    assert "raises ConfigError" in page and "Examples not checked" not in page


def test_command_examples_on_the_cli_page_parse():
    import shlex

    from lossreg.cli import build_parser

    page = (ROOT / "docs" / "cli.md").read_text()
    block = page.split("```bash\n", 1)[1].split("```", 1)[0]
    lines = [ln.split("#", 1)[0].strip() for ln in block.splitlines() if ln.strip()]
    assert len(lines) >= 5
    parser = build_parser()
    for line in lines:
        argv = shlex.split(line)
        assert argv[0] == "lossreg"
        parser.parse_args(argv[1:])   # SystemExit (a test error) on an unknown command/option


def test_benchmark_section_reads_lossreg_bench_json(tmp_path, monkeypatch):
    h = hook()
    monkeypatch.setattr(h, "BENCH_JSON", tmp_path / "latest.json")
    monkeypatch.setattr(h, "BENCH_PNG", tmp_path / "missing.png")
    import json

    (tmp_path / "latest.json").write_text(json.dumps({
        "machine": {"platform": "Linux-x86_64", "cpus": 2, "numba_threads": 2},
        "config": {"sizes": [10, 10000000], "quick": False},
        "bandwidth": {"float64/10000000": 8.0e9},
        "rows": [{"loss": "mse", "n": 10000000, "dtype": "float64", "layout": "elementwise",
                  "lossreg": {"value": 0.01, "grad": 0.02, "value_and_grad": 0.025},
                  "ceiling": {"value_and_grad": 0.0225}, "numpy": {"value": 0.05},
                  "torch": {"value_and_grad": 0.1}, "sklearn": {}}],
        "overhead": {"bare_njit": 2e-7, "mse.value": 1.5e-6},
        "targets": [{"target": "ceiling >= 0.9", "passed": True, "detail": "mse 0.90"}]}))
    md = h.gen_benchmarks("performance.md")
    assert "| cpus | 2 |" in md and "All 1 measurements" in md and "| float64/10000000 | 8.0 |" in md
    # time 25 ms; 0.9 of the ceiling; NumPy has only a value: 0.05 / 0.01; torch 0.1 / 0.025
    assert "| `mse` | float64 | 10,000,000 | 25 ms | 0.90 | 5.00 | 4.00 | — |" in md
    assert "| pass | ceiling >= 0.9 | mse 0.90 |" in md and "| `mse.value` | 1.5 µs |" in md
    assert "Benchmark figure" not in md


def test_bridges_page_examples_ran(site):
    page, _ = text(site, "bridges")
    if any(importlib.util.find_spec(m) is None for m in ("torch", "jax", "optax", "sklearn")):
        assert "Examples not checked" in page
        return
    assert "Examples not checked" not in page
    assert "raises LossError: cannot differentiate the gradient" in page   # rows: no double backward
    assert "('JaxRuntimeError', True)" in page                            # domain error under jit
    assert "{'logisticregression__C': 1.0}, {'logisticregression__C': 1.0}" in page
    api, _ = text(site, "api")
    assert "make_scorer" in api and "LossFunction" in api


def test_benchmark_section_shows_the_torch_bridge_rows(tmp_path, monkeypatch):
    import json

    h = hook()
    monkeypatch.setattr(h, "BENCH_JSON", tmp_path / "latest.json")
    monkeypatch.setattr(h, "BENCH_PNG", tmp_path / "missing.png")
    (tmp_path / "latest.json").write_text(json.dumps({
        "machine": {"cpus": 2}, "rows": [
            {"loss": "mse", "n": 10000000, "dtype": "float64", "lossreg": {"value_and_grad": 0.02},
             "torch": {"value_and_grad": 0.1}, "torch_bridge": {"value_and_grad": 0.04}}]}))
    md = h.gen_benchmarks("performance.md")
    assert "### Through `lossreg.torch`" in md and "| `mse` | float64 | 10,000,000 | 40 ms | 2.00 | 2.50 |" in md


def test_built_site_renders_formulas_without_the_network(site):
    """Formulas are MathML in the pages (no MathJax, no script or stylesheet from another
    host), so the site works offline."""
    remote = re.compile(r'<(?:script|link)\b[^>]*\b(?:src|href)="(?:https?:)?//', re.I)
    for page in site.rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        assert not remote.search(text), page
        assert "mathjax" not in text.lower() and 'class="arithmatex"' not in text, page
    huber = (site / "catalogue" / "huber" / "index.html").read_text(encoding="utf-8")
    assert '<math xmlns="http://www.w3.org/1998/Math/MathML" display="block">' in huber
