"""MkDocs hook: formulas rendered to MathML when the site is built.

``pymdownx.arithmatex`` (generic mode) marks TeX as ``<span class="arithmatex">\\(...\\)</span>``
and ``<div class="arithmatex">\\[...\\]</div>``; ``on_page_content`` replaces each with
the MathML that ``latex2mathml`` (the ``docs`` extra) computes from it. Browsers display
MathML natively, so the built site loads no script and needs no network for its formulas
(MathJax used to come from a CDN). TeX that latex2mathml cannot convert stops the build.
"""

from __future__ import annotations

import html
import re

_BLOCK = re.compile(r'<div class="arithmatex">\s*\\\[(.*?)\\\]\s*</div>', re.S)
_INLINE = re.compile(r'<span class="arithmatex">\s*\\\((.*?)\\\)\s*</span>', re.S)


def to_mathml(tex: str, display: str) -> str:
    """MathML for one formula, ``display`` "block" or "inline"."""
    try:
        from latex2mathml.converter import convert
    except ImportError as exc:
        raise RuntimeError('rendering formulas needs latex2mathml: pip install -e ".[docs]"'
                           ) from exc
    try:
        return convert(tex.strip(), display=display)
    except Exception as exc:  # noqa: BLE001 - name the formula that failed
        raise RuntimeError(f"cannot render the formula {tex.strip()!r}: {exc}") from exc


def render(page_html: str) -> str:
    """``page_html`` with every arithmatex formula replaced by MathML."""
    page_html = _BLOCK.sub(lambda m: to_mathml(html.unescape(m.group(1)), "block"), page_html)
    return _INLINE.sub(lambda m: to_mathml(html.unescape(m.group(1)), "inline"), page_html)


def on_page_content(html_text: str, page, config, files) -> str:  # noqa: ARG001
    return render(html_text)
