"""Markdown to the HTML subset Qt's rich-text engine draws, with Pygments-coloured code.

While a reply streams, the chat pane appends plain text and re-renders only the reply's last
part through here every few frames (:func:`render_parts`); when it ends, what is still plain is
rendered, in a worker thread. Raw HTML in model output is escaped, never interpreted.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from markdown_it import MarkdownIt
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import get_lexer_by_name
from pygments.util import ClassNotFound

from victor_gui.core.colour import readable_on


@dataclass(frozen=True, slots=True)
class CodeColours:
    """The colours the rendered HTML carries inline (Qt's rich text has no style sheet for it):
    code blocks (background, plain text, a Pygments style whose token colours are nudged until
    each reads on that background), table borders and the Copy link. The UI's theme sets them
    (:func:`set_code_colours`); these defaults are the light theme's."""

    code_background: str = "#f3f5f8"
    code_text: str = "#1f2328"
    pygments_style: str = "default"
    table_border: str = "#c9ced8"
    link: str = "#1a5fc8"


_colours = CodeColours()


def set_code_colours(colours: CodeColours) -> None:
    """Render with ``colours`` from now on (the theme changed). HTML already shown keeps its
    colours: the views re-render it (MessageView.restyle)."""
    global _colours
    _colours = colours


def code_colours() -> CodeColours:
    """The colours renders use now."""
    return _colours


@lru_cache(maxsize=4)
def _formatter(style_name: str, background: str) -> HtmlFormatter[str]:
    """An inline-colour formatter for ``style_name`` with every token colour readable on
    ``background`` (≥ 4.5:1) and token backgrounds and borders dropped (the block has one)."""
    from pygments.style import Style
    from pygments.styles import get_style_by_name

    base = get_style_by_name(style_name)
    styles: dict[Any, str] = {}
    for token, spec in base.styles.items():
        words = [readable_on(w, background) if w.startswith("#") else w
                 for w in spec.split() if not w.startswith(("bg:", "border:"))]
        styles[token] = " ".join(words)
    style = type(f"Readable_{style_name}", (Style,), {"styles": styles, "background_color": background})
    # noclasses: Qt's rich text has no stylesheet for Pygments classes, so colours go inline.
    return HtmlFormatter(noclasses=True, nowrap=True, style=style)


def _pre_style(c: CodeColours) -> str:
    return (f"background-color:{c.code_background}; color:{c.code_text}; padding:8px; margin-top:2px; "
            "font-family:monospace; white-space:pre-wrap;")


# A code block is highlighted once, not on every render that contains it: while a reply streams,
# its tail is re-rendered ~10 times a second and each finished block in it was re-highlighted
# every time (Pygments was over half of a live render's cost). Keyed by the colours too, so a
# theme change renders afresh; blocks longer than this are not kept.
_HIGHLIGHT_CACHE_CHARS = 16_000


def _highlight(code: str, lang: str, _attrs: str) -> str:
    if len(code) <= _HIGHLIGHT_CACHE_CHARS:
        return _highlight_cached(code, lang, _colours)
    return _highlight_with(code, lang, _colours)


@lru_cache(maxsize=64)
def _highlight_cached(code: str, lang: str, c: CodeColours) -> str:
    return _highlight_with(code, lang, c)


def _highlight_with(code: str, lang: str, c: CodeColours) -> str:
    try:
        lexer = get_lexer_by_name(lang.strip()) if lang.strip() else None
    except ClassNotFound:
        lexer = None
    if lexer is None:
        return f'<pre style="{_pre_style(c)}">{html.escape(code)}</pre>'
    formatter = _formatter(c.pygments_style, c.code_background)
    return f'<pre style="{_pre_style(c)}">{highlight(code, lexer, formatter)}</pre>'


@lru_cache(maxsize=1)
def _parser() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False,
                                   "highlight": _highlight})
    md.enable("table").enable("strikethrough")
    return md


# Qt's rich text draws tables without borders or padding unless the attributes say so.
_TABLE = '<table border="1" cellspacing="0" cellpadding="4" style="border-color:{border};">'


# Whitespace among the closing tags at the very end. Qt imports it as a space at the end of
# the last paragraph, so text streamed after a live render would read "r b" for "rb".
_TAIL = re.compile(r"(?:\s*</\w+>)+\s*$")


# Each code block gets a "Copy" link above it; the view maps ``copy:N`` to code_blocks(text)[N].
_COPY_LINK = ('<p align="right" style="margin-top:4px; margin-bottom:0px; font-size:small;">'
              '<a href="copy:{n}" style="text-decoration:none; color:{link};">Copy</a></p>')


def code_blocks(text: str) -> list[str]:
    """The source of every code block in ``text`` (fenced or indented), in order."""
    return [t.content for t in _parser().parse(text) if t.type in ("fence", "code_block")]


def _with_copy_links(html: str, first: int) -> str:
    parts = html.split("<pre")
    link = _colours.link
    return parts[0] + "".join(_COPY_LINK.format(n=first + i, link=link) + "<pre" + part
                              for i, part in enumerate(parts[1:]))


def _finish_html(html: str, first_code_block: int, *, last: bool = True) -> str:
    html = _with_copy_links(html.replace("<table>", _TABLE.format(border=_colours.table_border)),
                            first_code_block)
    if not last:  # nothing is ever appended after a finished part
        return html
    tail = _TAIL.search(html)
    if tail is not None:
        html = html[: tail.start()] + re.sub(r"\s+", "", tail.group(0))
    return html


def markdown_to_html(text: str, *, first_code_block: int = 0) -> str:
    """HTML for ``text`` (CommonMark + tables + strikethrough; raw HTML escaped), with a Copy
    link above each code block, numbered from ``first_code_block`` (a piece of a message)."""
    return _finish_html(_parser().render(text), first_code_block)


@dataclass(frozen=True, slots=True)
class RenderedPart:
    """One piece of a long message: its Markdown source, its HTML, and how many code blocks it
    holds (Copy links are numbered across the whole message)."""

    source: str
    html: str
    code_blocks: int


def render_parts(text: str, target_chars: int, *, first_code_block: int = 0,
                 render: bool = True) -> list[RenderedPart]:
    """Render ``text`` as consecutive parts of about ``target_chars`` of source each.

    Why: Qt parses and lays out a rich-text document whole, on the UI thread, and that cost
    grows with the document (a 50 kB reply with code takes ~100 ms). A view that shows each
    part as its own small document can build them one per event-loop turn, and a streaming
    view re-renders only its last part.

    Cuts fall only between top-level blocks, and each part is rendered from the token stream of
    one parse of the whole ``text``, so the parts' HTML joined is what the whole would render
    to (lists, numbering, link references included). The last block always lies in the last
    part: while a reply streams it may still grow. ``"".join(p.source for p in parts) == text``.
    With ``render=False`` only the cuts are found (a parse, a third of the cost or less) and
    every ``html`` is empty.
    """
    md = _parser()
    env: dict[str, object] = {}
    tokens = md.parse(text, env)
    # Starts of top-level blocks: (token index, first source line). Closing tokens have no map.
    starts = [(i, t.map[0]) for i, t in enumerate(tokens) if t.level == 0 and t.nesting >= 0 and t.map]
    line_offsets = [0]
    find = text.find
    pos = find("\n")
    while pos >= 0:
        line_offsets.append(pos + 1)
        pos = find("\n", pos + 1)
    cuts: list[tuple[int, int]] = [(0, 0)]  # (token index, char offset) where each part starts
    for index, line in starts[1:]:
        offset = line_offsets[line] if line < len(line_offsets) else len(text)
        if offset - cuts[-1][1] >= target_chars:
            cuts.append((index, offset))
    parts: list[RenderedPart] = []
    code_index = first_code_block
    for n, (index, offset) in enumerate(cuts):
        end_index, end_offset = cuts[n + 1] if n + 1 < len(cuts) else (len(tokens), len(text))
        chunk = tokens[index:end_index]
        blocks = sum(1 for t in chunk if t.type in ("fence", "code_block"))
        html = (_finish_html(md.renderer.render(chunk, md.options, env), code_index,
                             last=n + 1 == len(cuts)) if render else "")
        parts.append(RenderedPart(text[offset:end_offset], html, blocks))
        code_index += blocks
    return parts


__all__ = ["CodeColours", "RenderedPart", "code_blocks", "code_colours", "markdown_to_html", "render_parts",
           "set_code_colours"]
