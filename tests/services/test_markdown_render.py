"""Markdown for Qt: code coloured, raw HTML escaped, tables bordered, no trailing space."""

from __future__ import annotations

from victor_gui.services.markdown_render import markdown_to_html


def test_code_is_highlighted_and_raw_html_escaped() -> None:
    html = markdown_to_html("Hi <b>x</b>\n\n```python\ndef f():\n    return 1\n```\n")
    assert "&lt;b&gt;x&lt;/b&gt;" in html and "<b>x</b>" not in html
    assert "<pre" in html and "style=\"color:" in html.replace(": ", ":")


def test_tables_get_borders_and_the_tail_has_no_whitespace() -> None:
    html = markdown_to_html("| a | b |\n|---|---|\n| 1 | 2 |\n\n1. `open(..., \"r")
    assert '<table border="1"' in html
    assert html.endswith("</li></ol>")
