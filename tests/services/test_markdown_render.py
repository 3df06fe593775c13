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


def test_each_code_block_gets_a_copy_link_in_order() -> None:
    from victor_gui.services.markdown_render import code_blocks

    text = "Two blocks:\n\n```python\nprint('a')\n```\n\nand\n\n    indented = True\n"
    html = markdown_to_html(text)
    assert html.count('href="copy:') == 2
    assert html.index('href="copy:0"') < html.index('href="copy:1"')
    assert code_blocks(text) == ["print('a')\n", "indented = True\n"]
