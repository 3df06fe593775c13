"""Split inline reasoning (``<think>…</think>``) out of streamed answer text.

Reasoning models served by llama.cpp, vLLM or LM Studio without a reasoning parser put their
thoughts inline in ``content``. :class:`ThinkTagSplitter` separates them as the text streams in,
holding back only the few characters that could be the start of a tag, so a tag cut across two
network chunks (``<thi`` + ``nk>``) never leaks into the answer.
"""

from __future__ import annotations

# (open, close) pairs: the common tag, DeepSeek's ASCII and full-width special tokens.
TAG_PAIRS: tuple[tuple[str, str], ...] = (
    ("<think>", "</think>"),
    ("<|begin_of_thinking|>", "<|end_of_thinking|>"),
    ("<｜begin▁of▁thinking｜>", "<｜end▁of▁thinking｜>"),
)
_OPENS = tuple(o for o, _ in TAG_PAIRS)
# Blanks held while waiting to see whether a reply opens with a tag. A reply that starts with
# more than this is not opening a reasoning block: it is released as text (held whole, a stream
# of blanks was copied on every piece, quadratically, and never shown).
MAX_LEADING_BLANK = 16 * 1024
_CLOSES = tuple(c for _, c in TAG_PAIRS)


def _held_suffix(text: str, tags: tuple[str, ...]) -> int:
    """Length of the longest tail of ``text`` that is a proper prefix of one of ``tags``."""
    # Every tag starts with "<": without one in the last few characters nothing can be held
    # (this runs once per streamed delta; the loop below alone cost ~25 µs a delta).
    longest = max(map(len, tags)) - 1
    if text.rfind("<", max(len(text) - longest, 0)) < 0:
        return 0
    best = 0
    for tag in tags:
        for n in range(min(len(tag) - 1, len(text)), best, -1):
            if text.endswith(tag[:n]):
                best = n
                break
    return best


def _find_first(text: str, tags: tuple[str, ...]) -> tuple[int, str] | None:
    hits = [(i, t) for t in tags if (i := text.find(t)) >= 0]
    return min(hits) if hits else None


class ThinkTagSplitter:
    """Incremental splitter: ``feed(text) -> (content, reasoning)``, then ``flush()`` at the end.

    ``anywhere=True`` (the provider's ``think_tags`` quirk) honours tags wherever they appear.
    ``anywhere=False`` honours them only when the reply *starts* with an opening tag (leading
    whitespace allowed); otherwise the text passes through untouched, so an answer that merely
    talks about ``<think>`` tags is not mangled. A stray closing tag in answer text is dropped.
    """

    def __init__(self, *, anywhere: bool = True) -> None:
        self._anywhere = anywhere
        self._decided = anywhere  # in start-only mode: have we seen enough to decide?
        self._active = anywhere
        self._buf = ""
        self._close: str | None = None  # the closing tag awaited while inside a block
        self._strip_next = False  # drop whitespace right after a closing tag

    @property
    def inside(self) -> bool:
        """True while reading a reasoning block."""
        return self._close is not None

    def feed(self, text: str) -> tuple[str, str]:
        """Take the next piece of text; return the (answer, reasoning) now safe to show."""
        if not text:
            return "", ""
        self._buf += text
        if not self._decided:
            head = self._buf.lstrip()
            if not head and len(self._buf) <= MAX_LEADING_BLANK:
                return "", ""
            if head.startswith(_OPENS):
                self._decided = self._active = True
                self._buf = head
            elif head and any(o.startswith(head) for o in _OPENS):
                return "", ""  # could still become an opening tag
            else:
                self._decided, self._active = True, False
        if not self._active:
            out, self._buf = self._buf, ""
            return out, ""
        return self._drain(final=False)

    def flush(self) -> tuple[str, str]:
        """Return whatever is held back (call once, when the stream ends)."""
        if not self._decided or not self._active:
            out, self._buf = self._buf, ""
            self._decided = True
            return out, ""
        return self._drain(final=True)

    def _drain(self, *, final: bool) -> tuple[str, str]:
        content: list[str] = []
        reasoning: list[str] = []
        while self._buf:
            if self._close is None:
                hit = _find_first(self._buf, _OPENS + _CLOSES)
                if hit is None:
                    keep = 0 if final else _held_suffix(self._buf, _OPENS + _CLOSES)
                    piece, self._buf = self._buf[: len(self._buf) - keep], self._buf[len(self._buf) - keep :]
                    self._emit_content(piece, content)
                    break
                index, tag = hit
                self._emit_content(self._buf[:index], content)
                self._buf = self._buf[index + len(tag) :]
                if tag in _OPENS:
                    self._close = _CLOSES[_OPENS.index(tag)]
                else:
                    self._strip_next = True  # stray closing tag: drop it
            else:
                index = self._buf.find(self._close)
                if index < 0:
                    keep = 0 if final else _held_suffix(self._buf, (self._close,))
                    reasoning.append(self._buf[: len(self._buf) - keep])
                    self._buf = self._buf[len(self._buf) - keep :]
                    break
                reasoning.append(self._buf[:index])
                self._buf = self._buf[index + len(self._close) :]
                self._close = None
                self._strip_next = True
        return "".join(content), "".join(reasoning)

    def _emit_content(self, piece: str, out: list[str]) -> None:
        if self._strip_next:
            stripped = piece.lstrip()
            if stripped:
                self._strip_next = False
            piece = stripped
        if piece:
            out.append(piece)
