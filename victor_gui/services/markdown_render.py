"""Markdown to the HTML subset Qt's rich-text engine draws, with Pygments-coloured code.

Used for *finished* messages only: while a reply streams, the chat pane appends plain text
(cheap, never re-parses the whole message per token); when it ends, the message is rendered
once through here. Raw HTML in model output is escaped, never interpreted.
"""

from __future__ import annotations

import html
import re
from functools import lru_cache

from markdown_it import MarkdownIt
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import get_lexer_by_name
from pygments.util import ClassNotFound

_PRE_STYLE = ("background-color:#f4f4f6; padding:6px; margin-top:2px; font-family:monospace; "
              "white-space:pre-wrap;")


def _highlight(code: str, lang: str, _attrs: str) -> str:
    try:
        lexer = get_lexer_by_name(lang.strip()) if lang.strip() else None
    except ClassNotFound:
        lexer = None
    if lexer is None:
        return f'<pre style="{_PRE_STYLE}">{html.escape(code)}</pre>'
    # noclasses: Qt's rich text has no stylesheet for Pygments classes, so colours go inline.
    formatter = HtmlFormatter(noclasses=True, nowrap=True, style="default")
    return f'<pre style="{_PRE_STYLE}">{highlight(code, lexer, formatter)}</pre>'


@lru_cache(maxsize=1)
def _parser() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False,
                                   "highlight": _highlight})
    md.enable("table").enable("strikethrough")
    return md


# Qt's rich text draws tables without borders or padding unless the attributes say so.
_TABLE = '<table border="1" cellspacing="0" cellpadding="4" style="border-color:#d0d0d8;">'


# Whitespace among the closing tags at the very end. Qt imports it as a space at the end of
# the last paragraph, so text streamed after a live render would read "r b" for "rb".
_TAIL = re.compile(r"(?:\s*</\w+>)+\s*$")


# Each code block gets a "Copy" link above it; the view maps ``copy:N`` to code_blocks(text)[N].
_COPY_LINK = ('<p align="right" style="margin-top:4px; margin-bottom:0px; font-size:small;">'
              '<a href="copy:{n}" style="text-decoration:none;">Copy</a></p>')


def code_blocks(text: str) -> list[str]:
    """The source of every code block in ``text`` (fenced or indented), in order."""
    return [t.content for t in _parser().parse(text) if t.type in ("fence", "code_block")]


def _with_copy_links(html: str) -> str:
    parts = html.split("<pre")
    return parts[0] + "".join(_COPY_LINK.format(n=i) + "<pre" + part for i, part in enumerate(parts[1:]))


def markdown_to_html(text: str) -> str:
    """HTML for ``text`` (CommonMark + tables + strikethrough; raw HTML escaped), with a Copy
    link above each code block."""
    html = _with_copy_links(_parser().render(text).replace("<table>", _TABLE))
    tail = _TAIL.search(html)
    if tail is not None:
        html = html[: tail.start()] + re.sub(r"\s+", "", tail.group(0))
    return html


__all__ = ["code_blocks", "markdown_to_html"]
