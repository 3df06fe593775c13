"""How many tokens a text costs a model: exact from llama-server, else an estimate that errs high.

* **llama.cpp** (the ``llamacpp`` provider, or an endpoint of that kind): ``POST /tokenize``
  ``{"content": text, "add_special": false}`` → ``{"tokens": [...]}`` on the server root
  (servers.md §4, native routes), counted with the model the server runs: exact.
* **Everyone else**, or when that call fails, is slow or the text is past
  :data:`MAX_EXACT_CHARS`: :func:`estimate_tokens`.

The estimate: ASCII characters / :data:`CHARS_PER_TOKEN` (3.5) plus one token per non-ASCII
character. Where the figures come from: OpenAI's published rule of thumb is ~4 characters a token
for English text with BPE vocabularies; source code, numbers and Markdown tables split into
more tokens per character, so 3.5 leaves a ~15% margin on prose and less on code. Outside ASCII
a character often costs a whole token or more (CJK; byte-fallback vocabularies), and less for
accented Latin inside words; one a character errs high for the latter. These are rules of
thumb, not measured here (the test model's vocabulary is a toy one). Erring high is the safe side:
the estimate decides whether a document fits the model's window, and overestimating only sends
retrieved passages where the whole text would have fitted, while underestimating overflows it.

:func:`count_tokens` is bounded in time (``wait_s``) and never raises.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the estimate is used in the converter's child process, which needs no httpx
    from victor_gui.providers.base import BaseProvider
    from victor_gui.providers.protocols.openai_compat import OpenAICompatProvider

log = logging.getLogger(__name__)

CHARS_PER_TOKEN = 3.5
# Past this the text is far over any window anyway, and the server's token list (~8 bytes of
# JSON a token) would be tens of MB: the estimate answers.
MAX_EXACT_CHARS = 2_000_000
DEFAULT_WAIT_S = 5.0
_REPLY_LIMIT = 64 * 1024 * 1024


@dataclass(frozen=True)
class TokenCount:
    """A text's cost in tokens, ``exact`` when the model's own tokenizer counted it."""

    tokens: int
    exact: bool


def estimate_tokens(text: str) -> int:
    """The estimate of the module docstring: ASCII chars / 3.5 + one per non-ASCII char."""
    if not text:
        return 0
    ascii_chars = len(text) if text.isascii() else len(text.encode("ascii", "ignore"))
    return math.ceil(ascii_chars / CHARS_PER_TOKEN + (len(text) - ascii_chars))


def counts_exactly(provider: BaseProvider) -> bool:
    """Whether :func:`count_tokens` asks ``provider``'s server (a llama-server) for the count."""
    from victor_gui.providers.protocols.openai_compat import OpenAICompatProvider

    return isinstance(provider, OpenAICompatProvider) and "llamacpp" in provider.spec.quirks


async def _tokenize(provider: OpenAICompatProvider, model: str, text: str) -> int | None:
    from victor_gui.providers.http import read_body

    # _send is the provider's own request path: its base URL candidates, key, key-transport
    # guard and timeouts; "//" puts /tokenize at the server root, not under /v1.
    response = await provider._send("POST", "//tokenize", body={"content": text, "add_special": False},
                                    model=model)
    if not response.is_success:
        await response.aclose()
        return None
    data = json.loads(await read_body(response, provider=provider.name, model=model, limit=_REPLY_LIMIT))
    tokens = data.get("tokens") if isinstance(data, dict) else None
    return len(tokens) if isinstance(tokens, list) else None


async def count_tokens(provider: BaseProvider, model: str, text: str, *,
                       wait_s: float = DEFAULT_WAIT_S) -> TokenCount:
    """``text``'s cost on ``model`` at ``provider``: exact from llama-server's ``/tokenize``,
    else (other providers, a failure, past ``wait_s`` seconds) the estimate. Never raises."""
    estimate = TokenCount(estimate_tokens(text), exact=False)
    if not text:
        return TokenCount(0, exact=True)
    from victor_gui.providers.protocols.openai_compat import OpenAICompatProvider

    if not isinstance(provider, OpenAICompatProvider) or not counts_exactly(provider):
        return estimate
    if len(text) > MAX_EXACT_CHARS:
        return estimate
    try:
        async with asyncio.timeout(wait_s):
            counted = await _tokenize(provider, model, text)
    except Exception as exc:  # the contract is "never raises": any failure means the estimate
        log.debug("token count from %s fell back to the estimate: %s", provider.name, type(exc).__name__)
        return estimate
    return TokenCount(counted, exact=True) if counted is not None else estimate
