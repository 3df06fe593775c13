"""How many tokens a text costs on a model.

# baseline until att-docs merges: llama-server's own tokenizer (``POST /tokenize``) when the
# provider is llama.cpp, else the documented estimate; att-docs' version of this file wins.

The estimate: 3.5 characters a token (English prose and code with common BPE vocabularies run
3.5-4.5; a lower figure counts more tokens, the safe side) plus a 10 % margin.
"""

from __future__ import annotations

import math

import httpx

from victor_gui.errors import ProviderError
from victor_gui.providers.base import BaseProvider
from victor_gui.providers.bounded import read_bounded
from victor_gui.providers.catalog import find_spec
from victor_gui.providers.http import parse_json_body
from victor_gui.providers.json_guard import Shape

CHARS_PER_TOKEN = 3.5
MARGIN = 1.1


def estimate_tokens(text: str) -> int:
    """The estimate of the module docstring (0 for empty text)."""
    return math.ceil(len(text) / CHARS_PER_TOKEN * MARGIN) if text else 0


def server_root(provider: BaseProvider) -> str | None:
    """llama-server's root URL (its ``/v1`` stripped) when ``provider`` is llama.cpp, else None."""
    spec = find_spec(provider.name)
    if spec is None or spec.name != "llamacpp" or not provider.base_url:
        return None
    return provider.base_url.rstrip("/").removesuffix("/v1")


async def count_tokens(text: str, provider: BaseProvider, model: str) -> tuple[int, str]:
    """``(tokens, how)``: ``how`` is ``"server"`` (llama-server counted) or ``"estimate"``."""
    root = server_root(provider)
    if root is not None and text:
        try:
            async with provider.http.stream("POST", f"{root}/tokenize", json={"content": text}) as response:
                if response.is_success:
                    data = parse_json_body(await read_bounded(response), provider=provider.name)
                    shape = Shape("llama.cpp /tokenize", provider.name, model=model)
                    return len(shape.items(shape.obj(data), "tokens")), "server"
        except (httpx.HTTPError, ProviderError):
            pass  # the estimate below is the documented fallback
    return estimate_tokens(text), "estimate"
