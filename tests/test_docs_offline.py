"""The docs site renders its formulas without a network: MathML computed at build time
(docs/hooks/mathml.py, latex2mathml from the docs extra) instead of MathJax from a CDN,
and system fonts instead of web fonts. The built site is checked in test_docs.py."""

import importlib.util
import pathlib
import re

import pytest

import lossreg

ROOT = pathlib.Path(__file__).resolve().parents[1]
REMOTE = re.compile(r"https?://|//[a-z0-9.-]+\.[a-z]{2,}/", re.I)


def load_hook():
    spec = importlib.util.spec_from_file_location("mathml_hook", ROOT / "docs" / "hooks" /
                                                  "mathml.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_the_docs_config_loads_nothing_from_the_network():
    yaml = pytest.importorskip("yaml")
    text = (ROOT / "mkdocs.yml").read_text()
    assert "mathjax" not in text.lower() and "cdn" not in text.lower()
    config = yaml.safe_load(text.replace("!!python/name:", ""))
    for key in ("extra_javascript", "extra_css"):
        for entry in config.get(key) or ():
            assert not REMOTE.search(str(entry)), (key, entry)
    assert config["theme"].get("font") is False            # no Google Fonts request
    assert "docs/hooks/mathml.py" in config["hooks"]


@pytest.mark.parametrize("name", lossreg.names())
def test_every_formula_renders_to_mathml(name):
    pytest.importorskip("latex2mathml")
    markdown = pytest.importorskip("markdown")
    hook = load_hook()
    formula = lossreg.spec(name).formula
    if not formula:
        pytest.skip(f"{name} gives no formula")
    md = markdown.Markdown(extensions=["pymdownx.arithmatex"],
                           extension_configs={"pymdownx.arithmatex": {"generic": True}})
    page = hook.render(md.convert(f"Inline $r < \\delta$.\n\n$$\n{formula}\n$$\n"))
    assert "arithmatex" not in page and "\\(" not in page and "\\[" not in page
    assert page.count("<math") == 2 and 'display="block"' in page
    assert "merror" not in page


def test_unrenderable_tex_names_the_formula():
    pytest.importorskip("latex2mathml")
    hook = load_hook()
    with pytest.raises(RuntimeError, match="cannot render the formula"):
        hook.render('<div class="arithmatex">\\[\\frac{1}{\\]</div>')
